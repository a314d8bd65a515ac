"""Home: what FER Studio does, and which dataset and model are active."""

from pathlib import Path

import streamlit as st

from fer.data.datasets import DEMO
from fer.formatting import local_time, percent
from fer.labels import CLASSES
from pages.common import (active_dataset, active_dataset_source, active_choice, model_downloads, undrawn_demo_sizes,
                          use_app_shell)

use_app_shell()
st.title(":material/mood: FER Studio")
st.markdown(
    "Recognise facial expressions in 48×48 grayscale faces, from data to a working model:\n"
    "1. **Dataset**: explore a dataset — class balance, sample faces, mean faces, image quality.\n"
    "2. **Collect**: or make your own — name your classes and capture faces from the webcam or photos.\n"
    "3. **Train**: train a CNN on it, from scratch or starting from a model, and watch the curves live; "
    "stop and resume at will.\n"
    "4. **Evaluate**: confusion matrix, per-class scores and the mistakes a model makes.\n"
    "5. **Predict**: read the emotion in a photo or from your webcam.\n\n"
    f"Seven classes: {' · '.join(CLASSES)}, or your own. "
    "Pick the dataset and model in the sidebar; every page uses them. **Models** keeps the ones you trained."
)

left, right = st.columns(2)
with left, st.container(border=True):
    st.subheader("Active dataset")
    source = active_dataset_source()
    if sizes := undrawn_demo_sizes():  # Drawn by the first page that reads it, not here.
        st.markdown("**Built-in demo faces** · drawn the first time the Dataset, Train or Evaluate page opens "
                    "(a second or two)")
        for name, size in sizes.items():
            st.markdown(f"- {name}: {size:,} images")
    elif (dataset := active_dataset()) is not None:
        st.markdown(f"**{'Built-in demo faces' if source == DEMO else Path(source).name}** · "
                    f"`{dataset.format}` · fingerprint `{dataset.fingerprint}`")
        if source != DEMO:
            st.caption(dataset.source)
        for name, split in dataset.splits.items():
            st.markdown(f"- {name}: {len(split):,} images")
with right, st.container(border=True):
    st.subheader("Active model")
    chosen = active_choice()  # Described from its card: Home does not load the model.
    if chosen is not None:
        card = chosen.card
        st.markdown(f"**{chosen.name}** · preset `{card.preset or '?'}` · {chosen.shelf}")
        for split, metrics in card.metrics.items():
            if isinstance(metrics, dict) and isinstance(metrics.get("accuracy"), (int, float)):
                st.markdown(f"- {split} accuracy: {percent(metrics['accuracy'])}")
        for fact in card.facts():
            st.caption(fact)
        if card.recipes:
            with st.expander("Recipe" if len(card.recipes) == 1 else f"Recipes of its {len(card.recipes)} networks"):
                st.code("\n\n".join(card.recipes), language="bash", wrap_lines=True)
        if card.created:
            st.caption(f"Created {local_time(card.created)}")

if chosen is not None:
    with st.expander("Download this model: .keras, ONNX, TFLite and its card", icon=":material/download:"):
        model_downloads(chosen)
