"""Evaluate: how good a model is on a dataset split, where it goes wrong, and whether its confidence can be trusted."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict

import numpy as np
import pandas as pd
import streamlit as st

from fer.charts import evaluation as charts
from fer.data.datasets import Dataset
from fer.errors import FerError
from fer.formatting import duration, escape_markdown
from fer.evaluate.scoring import (
    Evaluation,
    check_classes,
    combine_and_score,
    misclassified,
    evaluate_split,
    per_class_table,
    predictions_csv,
    report,
    report_csv,
    top_confusions,
    tta_effect,
    view_probabilities,
)
from fer.serve.served import ServedModel
from pages.common import (
    MODEL_KEY,
    accounts_configured,
    active_dataset,
    active_dataset_source,
    active_model_name,
    cached_dataset,
    current_user,
    model_choices,
    served_model,
    use_app_shell,
)
from widgets.confusion_cell import confusion_chart, show_cell_faces
from widgets.feature_map import show_feature_map
from widgets.gradcam import faces_with_gradcam

MODEL_PICK_KEY = "evaluate_model"  # Mirrors MODEL_KEY, so the sidebar and this page agree.
COMPARE_KEY = "evaluate_compare"
NO_COMPARISON = ""
ANY = "any"
GALLERY_SIZE = 48  # Most-confident mistakes shown at once.
CACHED_PREDICTIONS = 32  # (model, split, mirrored) results kept; FER2013's train split is 0.8 MB each.
VIEWS = ("counts", "row-normalised")


# Predictions are cached per model (its handle's name + file mtime), dataset content (fingerprint), split and
# whether the images were mirrored, so every toggle after the first run of a model is instant;
# flip TTA is the mean of the plain and the mirrored pass, so turning it on costs one more pass.
# A plain dict under st.cache_resource rather than st.cache_data, because a cache miss draws a
# progress bar, and st.cache_data cannot replay elements drawn into a container made outside it.
@st.cache_resource
def prediction_cache() -> tuple[OrderedDict, threading.Lock]:
    """All sessions' predictions {key: (probabilities, seconds)}, least recently used first."""
    return OrderedDict(), threading.Lock()


def cached_probabilities(served: ServedModel, source: str, fingerprint: str, split: str,
                         mirrored: bool) -> tuple[np.ndarray, float]:
    """(N, C) probabilities of the model on `split` and the seconds they took, computed once."""
    cache, lock = prediction_cache()
    key = (*served.key, source, fingerprint, split, mirrored)
    with lock:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    model = served.model
    images = cached_dataset(source).split(split).images
    slot = st.empty()
    what = f"Running {served.name} over the {split} split{' (mirrored)' if mirrored else ''}"
    started = time.perf_counter()
    try:
        probabilities = view_probabilities(
            model, images, mirrored=mirrored,
            progress=lambda fraction, message: slot.progress(min(fraction, 1.0), text=f"{what}: {message}"),
        )
    finally:
        slot.empty()
    with lock:
        cache[key] = (probabilities, time.perf_counter() - started)
        while len(cache) > CACHED_PREDICTIONS:
            cache.popitem(last=False)
        return cache[key]


def evaluate(served: ServedModel | None, dataset: Dataset, split: str, tta: bool) -> tuple[Evaluation, float] | None:
    """The model scored on `split` (and the seconds its predictions took), or None after saying why."""
    if served is None:
        return None
    try:
        check_classes(served.model, served.card.classes, dataset.classes)
    except FerError as error:
        st.error(f"Cannot evaluate **{served.name}** on this dataset: {error}")
        return None
    key = (served, active_dataset_source(), dataset.fingerprint, split)
    plain, seconds = cached_probabilities(*key, mirrored=False)
    mirrored, more = cached_probabilities(*key, mirrored=True) if tta else (None, 0.0)
    evaluation = combine_and_score(plain, mirrored, dataset.split(split).labels, served.card.classes,
                                   dataset.classes)
    return evaluation, seconds + more


def remember_model() -> None:
    st.session_state[MODEL_KEY] = st.session_state[MODEL_PICK_KEY]


def pick_split(dataset: Dataset, container) -> str | None:
    """The split to score (validation by default); None after saying there is none with images."""
    names = [name for name in dataset.split_names if len(dataset.splits[name])]
    if not names:
        st.warning("The active dataset has no images to evaluate.")
        return None
    if st.session_state.get("evaluate_split") not in names:
        st.session_state["evaluate_split"] = "validation" if "validation" in names else names[-1]
    return container.selectbox("Split", names, key="evaluate_split")


def percent(value: float) -> str:
    return f"{value:.1%}"


def show_headline(result: Evaluation, plain: Evaluation | None) -> None:
    """Accuracy, balanced accuracy, macro F1 and ECE; with TTA, each one's change against no TTA."""
    columns = st.columns(4)  # Short labels: a quarter of a 1000 px window cut "Balanced accuracy" to "Balanced accu…".
    for column, (name, attribute, help_text) in zip(columns, (
        ("Accuracy", "accuracy", "Share of images whose top class is the true class."),
        ("Balanced acc.", "balanced_accuracy", "Balanced accuracy: mean recall over classes, every class counting "
                                               "equally."),
        ("Macro F1", "macro_f1", "Mean of the per-class F1 scores."),
        ("ECE", "ece", "Expected calibration error: the average gap between confidence and accuracy over 10 "
                       "confidence bins (lower is better)."),
    )):
        value = getattr(result, attribute)
        delta = None if plain is None else f"{(value - getattr(plain, attribute)) * 100:+.1f} pp vs. no TTA"
        column.metric(name, percent(value), delta=delta, help=help_text,
                      delta_color="inverse" if attribute == "ece" else "normal")
    if plain is not None:
        effect = tta_effect(plain, result)
        st.caption(f"Flip TTA changed {effect.changed:,} of {result.images:,} predictions: "
                   f"{effect.fixed:,} wrong → right, {effect.broken:,} right → wrong.")


def show_confusion(result: Evaluation) -> None:
    view = st.segmented_control("Show", VIEWS, default=VIEWS[0], required=True, key="evaluate_view",
                                label_visibility="collapsed")
    left, right = st.columns([3, 2])
    with left.container(key="confusion_matrix"):
        confusion_chart(result, normalized=view == VIEWS[1])
    right.markdown("**Top confusions**")
    cells = top_confusions(result, limit=8)
    right.markdown("\n".join(
        f"{n}. **{cell.true}** taken for **{cell.predicted}**: {cell.count:,} ({cell.share:.1%} of {cell.true})"
        for n, cell in enumerate(cells, start=1)
    ) or "No mistakes at all.")


def show_per_class(result: Evaluation) -> None:
    table = per_class_table(result)
    shares = ("precision", "recall", "F1")
    table[list(shares)] = table[list(shares)] * 100  # Shown as percentages with one decimal.
    st.dataframe(table, hide_index=True, column_config={
        name: st.column_config.NumberColumn(name, format="%.1f%%") for name in shares})
    st.plotly_chart(charts.per_class_bars(result))


def show_mistakes(result: Evaluation, images: np.ndarray, served: ServedModel | None = None) -> None:
    options = [ANY, *result.classes]
    left, right = st.columns(2)
    true_class = left.selectbox("True class", options, key="evaluate_true")
    predicted_class = right.selectbox("Predicted class", options, key="evaluate_predicted")
    mistakes = misclassified(result, true_class=None if true_class == ANY else true_class,
                             predicted_class=None if predicted_class == ANY else predicted_class)
    if not mistakes:
        st.success("No misclassified images match these filters.")
        return
    st.caption(f"{len(mistakes):,} misclassified images; the {min(len(mistakes), GALLERY_SIZE)} the model was "
               "most sure about come first (confident mistakes are often label noise).")
    shown = mistakes[:GALLERY_SIZE]
    with st.container(key="mistakes_gallery"):
        st.image(faces_with_gradcam(served, [images[m.index] for m in shown], key="evaluate_mistakes_gradcam",
                                    labels=[m.predicted for m in shown]),
                 width=96,
                 caption=[f"{m.true} → {m.predicted} {m.confidence:.0%}" for m in shown])


def show_calibration(result: Evaluation) -> None:
    left, right = st.columns(2)
    left.markdown("**Confidence of the top class**")
    left.plotly_chart(charts.confidence_figure(result))
    right.markdown("**Reliability diagram**")
    right.plotly_chart(charts.reliability_figure(result))
    st.caption(f"Expected calibration error {result.ece:.1%}: bars below the diagonal mean the model is "
               "more confident than it is right (over-confident); above it, under-confident.")


def show_comparison(result: Evaluation, served: ServedModel, options: dict[str, str], dataset: Dataset, split: str,
                    tta: bool) -> None:
    others = {name: label for name, label in options.items() if name != served.name}
    if not others:
        st.info("Register a second model (train one on the **Train** page) to compare two models here.")
        return
    other = st.selectbox("Compare with", [NO_COMPARISON, *others], key=COMPARE_KEY,
                         format_func=lambda name: "choose a model…" if name == NO_COMPARISON else others[name])
    if other == NO_COMPARISON:
        return
    evaluated = evaluate(served_model(other), dataset, split, tta)
    if evaluated is None:
        return
    second, _ = evaluated
    names = {served.name: result, other: second}  # Names, not picker labels: each matrix's title fits half the page.
    st.dataframe(pd.DataFrame({
        name: [percent(e.accuracy), percent(e.balanced_accuracy), percent(e.macro_f1), percent(e.ece)]
        for name, e in names.items()
    }, index=["accuracy", "balanced accuracy", "macro F1", "calibration error (ECE)"]))
    st.plotly_chart(charts.comparison_bars(names, metric="f1"))
    normalized = st.session_state.get("evaluate_view") == VIEWS[1]
    for column, (name, evaluation) in zip(st.columns(2), names.items()):
        # No colour bars: each matrix has half the page, and every cell is written anyway.
        column.plotly_chart(charts.confusion_heatmap(evaluation, normalized=normalized, title=name, scale=False),
                            key=f"compare-{name}")


def show_downloads(result: Evaluation, served: ServedModel, split: str, tta: bool, seconds: float,
                   files: list[str]) -> None:
    stem = f"{served.name.replace(':', '-')}-{split}{'-tta' if tta else ''}"
    data = report(result, model=served.name, split=split, tta=tta, dataset=active_dataset_source(), seconds=seconds)
    left, middle, right = st.columns(3)
    left.download_button("Report (JSON)", json.dumps(data, indent=2), file_name=f"{stem}.json",
                         mime="application/json", width="stretch", icon=":material/download:")
    middle.download_button("Per-class table (CSV)", report_csv(result), file_name=f"{stem}.csv",
                           mime="text/csv", width="stretch", icon=":material/download:")
    right.download_button("Every prediction (CSV)", predictions_csv(result, files), file_name=f"{stem}-predictions.csv",
                          mime="text/csv", width="stretch", icon=":material/download:",
                          help="One row per image: its file, true and predicted class, confidence and each "
                               "class's probability")


OTHER_KEY = "evaluate_other_set"  # (path, model key, split, SplitEvaluation) of a labelled set scored aside.


def score_other_set(served: ServedModel) -> None:
    """Score a labelled set from the server without making it the active dataset (the sidebar's stays)."""
    from fer.data.datasets import open_dataset

    with st.form("evaluate_other_form", border=False):
        left, right = st.columns([4, 1], vertical_alignment="bottom")
        path = left.text_input("A labelled set on the server (folder, .zip or fer2013.csv)", key="evaluate_other_path",
                               help="Inside the folders this server opens datasets from. It is scored with the "
                                    "model above and does not become the active dataset.")
        submitted = right.form_submit_button("Score it", icon=":material/fact_check:", width="stretch")
    if submitted:
        from fer.data.roots import data_roots

        roots = data_roots(accounts=accounts_configured(), user=current_user())
        bar = st.progress(0.0, text="Opening the set…")
        try:
            other = open_dataset(roots.resolve(path), roots=roots,
                                 progress=lambda fraction, message: bar.progress(min(fraction, 1.0), text=message))
            split = "validation" if len(other.splits.get("validation", ())) else next(
                (name for name in other.split_names if len(other.splits[name])), None)
            if split is None:
                raise FerError("it has no labelled images")
            scored = evaluate_split(served.model, served.card.classes, other, split, model_name=served.name,
                                    progress=lambda fraction, message: bar.progress(min(fraction, 1.0), text=message))
        except FerError as error:
            st.error(f"Could not score it: {escape_markdown(str(error))}")
            return
        finally:
            bar.empty()
        st.session_state[OTHER_KEY] = (path, served.key, split, scored, list(other.split(split).files))
    stored = st.session_state.get(OTHER_KEY)
    if not stored or stored[1] != served.key:
        return
    path, _, split, scored, files = stored
    result = scored.evaluation
    st.caption(f"**{escape_markdown(served.name)}** on **{escape_markdown(path)}** ({split} split): "
               f"{result.images:,} images in {duration(scored.seconds)}. The active dataset is unchanged.")
    show_headline(result, None)
    st.plotly_chart(charts.confusion_heatmap(result), key="other-confusion")
    st.download_button("Every prediction (CSV)", predictions_csv(result, files), icon=":material/download:",
                       file_name=f"{served.name.replace(':', '-')}-other-{split}-predictions.csv", mime="text/csv")


use_app_shell()
st.title(":material/analytics: Evaluate")
dataset = active_dataset()
options = model_choices()
if dataset is None:
    st.stop()
if not options:
    served_model(None)  # Says there is no model yet.
    st.stop()

active = active_model_name()
if active in options:
    st.session_state[MODEL_PICK_KEY] = active  # Follow a model chosen in the sidebar.
model_column, split_column, tta_column = st.columns([3, 2, 1.7], vertical_alignment="bottom")  # "Flip TTA" whole.
name = model_column.selectbox("Model", list(options), key=MODEL_PICK_KEY, format_func=options.get,
                              on_change=remember_model)
split = pick_split(dataset, split_column)
served = served_model(name)
if served is None:
    st.stop()
card = served.card
built_in_flip = card.averages_mirror_image  # Flipping again would only repeat the same two views.
if built_in_flip:
    st.session_state["evaluate_tta"] = False
tta = tta_column.toggle("Flip TTA", key="evaluate_tta", disabled=built_in_flip,
                        help="This model already averages each face with its mirror image." if built_in_flip
                        else "Test-time augmentation: average each face's prediction with its mirror image's.")

evaluated = evaluate(served, dataset, split, tta) if split else None
if evaluated is None:
    st.stop()
result, seconds = evaluated
plain = evaluate(served, dataset, split, tta=False)[0] if tta else None
st.caption(f"**{card.name}** on the **{split}** split: {result.images:,} images, "
           f"predicted in {duration(seconds)}{' (image + mirror)' if tta else ''}.")
for fact in card.facts():
    st.caption(fact)
show_headline(result, plain)

confusion_tab, class_tab, mistakes_tab, calibration_tab, compare_tab = st.tabs(
    ["Confusion matrix", "Per class", "Mistakes", "Calibration", "Compare models"])
with confusion_tab:
    show_confusion(result)
    show_cell_faces(result, dataset.split(split).images, served)
with class_tab:
    show_per_class(result)
with mistakes_tab:
    show_mistakes(result, dataset.split(split).images, served)
with calibration_tab:
    show_calibration(result)
with compare_tab:
    show_comparison(result, served, options, dataset, split, tta)
with st.expander("What the network learned: a map of its features"):
    show_feature_map(served, dataset, split, result)
show_downloads(result, served, split, tta, seconds, list(dataset.split(split).files))
with st.expander("Score another labelled set, without making it the active dataset"):
    score_other_set(served)
