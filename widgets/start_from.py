"""The Train form's "Start from": random weights, or a model to fine-tune (fer.train.finetune), with the
settings that only a fine-tuning run has. The choice is a model's name (fer.model.registry); the
Collect page's "Fine-tune on these faces" sets it to the shipped model before opening Train.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from fer.errors import FerError
from fer.train.config import TrainConfig
from fer.train.parents import parent_choices, parent_name, resolve_parent
from pages.common import START_FROM_KEY

SCRATCH = ""  # The choice that trains from random weights.
DECIDED_BY_PARENT = ("preset", "dtype_policy")  # TrainConfig fields a parent model fixes: the form hides them.


def start_from_input(user: str | None) -> Path | None:
    """The "Start from" selectbox; the chosen parent's .keras file, or None for random weights."""
    choices = {SCRATCH: "random weights (train from scratch)", **parent_choices(user)}
    if st.session_state.get(START_FROM_KEY) not in choices:
        st.session_state[START_FROM_KEY] = SCRATCH  # A name from another session or a removed model.
    name = st.selectbox("Start from", list(choices), format_func=choices.get, key=START_FROM_KEY,
                        help="Fine-tune a trained model instead of starting from random weights: with a few dozen "
                             "faces per class this reaches far higher accuracy in minutes. Other classes than the "
                             "model's get a new head, trained alone first.")
    if name == SCRATCH:
        return None
    try:
        return resolve_parent(name, user)
    except FerError as error:
        st.error(str(error))
        return None


def defaults_for(parent: Path | None) -> TrainConfig:
    """The values the form starts at: the seed recipe from scratch, the small-data recipe from a parent."""
    if parent is None:
        return TrainConfig()
    from fer.train.finetune import finetune_config

    return finetune_config(parent)


def describe_parent(parent: Path, defaults: TrainConfig) -> None:
    """What the parent decides for the run."""
    st.caption(f"The architecture (`{defaults.preset}`), its augmentation and float32 weights come from "
               f"**{parent_name(parent)}**; new classes get a new head, trained alone for the head epochs first.")
