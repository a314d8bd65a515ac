"""The feature map: a 2-D map of the network's penultimate features for a sample of a split, drawn on request."""

from __future__ import annotations

import streamlit as st

from fer.charts.explain import feature_map_figure, selected_points
from fer.errors import FerError
from fer.evaluate.scoring import Evaluation
from fer.serve.served import ServedModel
from widgets.gradcam import keras_model

FEATURES_KEY = "evaluate_feature_map"  # {"key": what it was drawn for, "map", "labels", "predicted"}.
FEATURE_CHART_KEY = "evaluate_feature_chart"
GALLERY = 48  # Faces of a selection shown at once.


def show_feature_map(served: ServedModel, dataset, split: str, result: Evaluation) -> None:
    """The map's controls, and the map once drawn; selecting points shows their faces."""
    from fer.explain.features import MAX_POINTS

    left, middle, right = st.columns([2, 2, 1.2], vertical_alignment="bottom")
    method = left.segmented_control("Projection", ["pca", "tsne"], default="pca", required=True,
                                    format_func={"pca": "PCA", "tsne": "t-SNE"}.get, key="evaluate_map_method",
                                    help="PCA is instant; t-SNE separates clusters better but takes about a minute "
                                         "per 1,000 faces on a 2-core CPU.")
    cap = middle.number_input("Faces (at most)", 100, 5000, MAX_POINTS if method == "pca" else 1000, step=100,
                              key=f"evaluate_map_cap_{method}")
    key = (*served.key, dataset.fingerprint, split, method, int(cap))
    stored = st.session_state.get(FEATURES_KEY)
    if right.button("Draw the map", width="stretch"):
        stored = _draw_feature_map(key, served, dataset, split, result, method, int(cap))
    if not stored or stored["key"] != key:
        st.caption("The map places each face by the vector the network hands its class layer: faces the network "
                   "finds alike sit together. Drawing it loads the Keras model.")
        return
    mapped = stored["map"]
    if mapped.explained is not None:
        st.caption(f"{len(mapped.indexes):,} faces; the two axes keep {mapped.explained:.0%} of the features' "
                   "variance. Click a point or lasso several to see the faces.")
    event = st.plotly_chart(feature_map_figure(mapped, stored["labels"], stored["predicted"], dataset.classes),
                            key=FEATURE_CHART_KEY, on_select="rerun", selection_mode=("points", "lasso", "box"))
    chosen = selected_points(event)[:GALLERY]
    if chosen:
        images, names = dataset.split(split).images, result.classes
        st.image([images[index] for index in chosen], width=96, caption=[
            f"{names[result.labels[index]]} → {names[result.predictions[index]]}" for index in chosen])


def _draw_feature_map(key: tuple, served: ServedModel, dataset, split: str, result: Evaluation, method: str,
                      cap: int) -> dict | None:
    from fer.explain.features import capped_sample, feature_map, penultimate_features

    chosen = capped_sample(result.labels, cap)
    bar = st.progress(0.0, text="Reading features…")
    try:
        model = keras_model(*served.key, served)
        features = penultimate_features(model, dataset.split(split).images[chosen],
                                        progress=lambda fraction, message: bar.progress(fraction * 0.9, text=message))
        bar.progress(0.9, text="t-SNE (about a minute per 1,000 faces)…" if method == "tsne" else "PCA…")
        mapped = feature_map(features, chosen, method=method)
    except FerError as error:
        st.warning(f"No feature map: {error}")
        return None
    finally:
        bar.empty()
    stored = {"key": key, "map": mapped, "labels": result.labels[chosen], "predicted": result.predictions[chosen]}
    st.session_state[FEATURES_KEY] = stored
    return stored
