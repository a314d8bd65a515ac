"""Grad-CAM over faces: where the evidence for a class lies, on Predict's faces and Evaluate's galleries.

Grad-CAM needs the Keras model (gradients), which serving never loads: it is loaded here on demand,
with a spinner, only when the user turns a Grad-CAM toggle on (the feature map shares the loader).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from fer.errors import FerError
from fer.explain.galleries import class_indexes
from fer.serve.served import ServedModel


@st.cache_resource(show_spinner="Loading the Keras model (Grad-CAM and features need its gradients and layers)…",
                   max_entries=2)
def keras_model(path: str, modified: float, _served: ServedModel):
    """The Keras model of the handle whose key is (path, modified), loaded once per server process."""
    from fer.model.files import load_model

    return load_model(_served.path)[0]


@st.cache_resource(show_spinner=False, max_entries=2)
def gradcam(path: str, modified: float, _served: ServedModel):
    from fer.explain.gradcam import GradCam

    return GradCam(keras_model(path, modified, _served))


@st.cache_data(show_spinner="Computing Grad-CAM…", max_entries=32)
def heatmap_overlays(path: str, modified: float, faces: np.ndarray, classes: tuple[int, ...] | None,
                     _served: ServedModel) -> list[np.ndarray]:
    """Each (48, 48) face with the Grad-CAM of its class in `classes` (None: the model's top class) over it, as RGB."""
    from fer.explain.gradcam import overlay

    maps = gradcam(path, modified, _served)(faces, None if classes is None else list(classes)).maps
    return [overlay(face, heat) for face, heat in zip(faces, maps)]


def overlays_for(served: ServedModel, faces: np.ndarray, labels: list[str] | None = None) -> list[np.ndarray]:
    """Grad-CAM overlays of `faces` for the classes named in `labels` (default: the model's top class)."""
    classes = class_indexes(served.classes, labels)
    return heatmap_overlays(*served.key, np.asarray(faces),
                            None if classes is None else tuple(classes), served)


def faces_with_gradcam(served: ServedModel | None, faces: list[np.ndarray], *, key: str,
                       labels: list[str] | None = None) -> list[np.ndarray]:
    """`faces` as they are, or with the Grad-CAM heat maps of `labels` (the classes the page shows as
    predicted; default: the model's own top class) when the user turns the toggle on."""
    if not faces or served is None:
        return faces
    shown = st.toggle("Grad-CAM: where the evidence for the predicted class is", key=key,
                      help="Red marks the parts of the face that pushed the model most towards its top class "
                           "(for an ensemble, the mean over its networks). Loads the Keras model on first use.")
    if not shown:
        return faces
    try:
        return overlays_for(served, np.stack(faces), labels)
    except (FerError, ValueError) as error:  # ValueError: a class the model's card does not name.
        st.warning(f"No Grad-CAM for this model: {error}")
        return faces


def show_face_heatmaps(served: ServedModel, crops: list[np.ndarray], *, key: str) -> None:
    """Predict page: on request, each face of a photo as the model read it (48×48, the crops the prediction
    made), with its Grad-CAM beside it."""
    if not crops or not st.toggle("Grad-CAM: where the evidence is", key=key,
                                  help="Each face as the model reads it, with red where the evidence for its "
                                       "top class lies. Loads the Keras model on first use."):
        return
    faces = np.stack(crops)
    try:
        overlays = overlays_for(served, faces)
    except FerError as error:
        st.warning(f"No Grad-CAM for this model: {error}")
        return
    with st.container(key=f"{key}_faces"):
        st.image([picture for pair in zip(faces, overlays) for picture in pair], width=96,
                 caption=[text for number in range(1, len(faces) + 1) for text in (f"face {number}", "Grad-CAM")])
