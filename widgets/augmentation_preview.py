"""The augmentation preview: training faces as the network will see them, through the same augmentation layers."""

from __future__ import annotations

import numpy as np
import streamlit as st

from fer.explain.galleries import evenly_spaced

FACES = 6  # Faces shown, spread over the split.
DRAWS = 6  # Augmented draws of each.
DRAW_KEY = "train_preview_draw"


@st.cache_data(show_spinner="Augmenting…", max_entries=8)
def augmented(faces: np.ndarray, augmentation, copies: int, seed: int) -> np.ndarray:
    from fer.explain.features import augmented_examples

    return augmented_examples(faces, augmentation, copies=copies, seed=seed)


def show_augmentation_preview(dataset, augmentation, split: str) -> None:
    """On request: a few faces of `split`, each drawn several times through `augmentation`."""
    if not st.toggle("Preview: faces as training sees them", key="train_augmentation_preview",
                     help="Six faces, each drawn six times through the same augmentation layers the model trains "
                          "with (the crop too, for presets that crop)."):
        return
    images = dataset.split(split).images
    if not len(images):
        return
    seed = int(st.session_state.get(DRAW_KEY, 0))
    faces = images[evenly_spaced(FACES, len(images))]
    grid = augmented(faces, augmentation, DRAWS, seed)  # (faces, draws, S, S)
    with st.container(key="augmentation_preview"):
        for face, draws in zip(faces, grid):
            st.image([face, *draws], width=56)
    if st.button("New draw", key="train_preview_new"):
        st.session_state[DRAW_KEY] = seed + 1
        st.rerun()
