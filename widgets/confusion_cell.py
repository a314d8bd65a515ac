"""The clickable confusion matrix: click a cell, see its faces, most confident first (with Grad-CAM on request)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from fer.charts.explain import clickable_confusion, selected_cell
from fer.evaluate.scoring import Evaluation
from fer.explain.galleries import confusion_cell_members
from fer.serve.served import ServedModel
from widgets.gradcam import faces_with_gradcam

CELL_KEY = "evaluate_confusion_cell"  # st.plotly_chart's selection state of the clickable matrix.
CELL_GALLERY = 48  # Faces of a confusion cell shown at once, most confident first.


def confusion_chart(result: Evaluation, *, normalized: bool) -> None:
    """The confusion matrix; clicking a cell selects it (read by `show_cell_faces`)."""
    st.plotly_chart(clickable_confusion(result, normalized=normalized), key=CELL_KEY, on_select="rerun",
                    selection_mode="points")


def show_cell_faces(result: Evaluation, images: np.ndarray, served: ServedModel | None) -> None:
    """The faces of the clicked confusion cell, most confident first, with their probabilities."""
    cell = selected_cell(st.session_state.get(CELL_KEY))
    if cell is None:
        st.caption("Click a cell of the matrix to see its faces.")
        return
    true, predicted = cell
    names = result.classes
    members = confusion_cell_members(result, true, predicted)
    what = f"true **{names[true]}**, predicted **{names[predicted]}**"
    if not len(members):
        st.info(f"No faces are {what.replace('**', '')}.")
        return
    st.markdown(f"{len(members):,} faces: {what}" + (f" (the {CELL_GALLERY} most confident)"
                                                     if len(members) > CELL_GALLERY else ""))
    shown = members[:CELL_GALLERY]
    faces = faces_with_gradcam(served, [images[index] for index in shown], key="evaluate_cell_gradcam",
                               labels=[names[predicted]] * len(shown))
    captions = [f"{names[predicted]} {result.probabilities[index, predicted]:.0%}" + (
        "" if true == predicted else f" · {names[true]} {result.probabilities[index, true]:.0%}") for index in shown]
    with st.container(key="confusion_cell_faces"):
        st.image(faces, width=96, caption=captions)
