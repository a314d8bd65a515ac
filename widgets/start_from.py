"""The Train form's "Start from": random weights, or a model to fine-tune (fer.train.finetune), with the
settings that only a fine-tuning run has. The choice is a model's name (fer.model.registry); the
Collect page's "Fine-tune on these faces" sets it to the shipped model before opening Train.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from fer.errors import FerError
from fer.train.config import NEW_HEADS, TrainConfig
from fer.train.parents import parent_choices, parent_name, resolve_parent
from pages.common import START_FROM_KEY

SCRATCH = ""  # The choice that trains from random weights.


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


def finetune_inputs(parent: Path, defaults: TrainConfig) -> dict:
    """The settings of a run from `parent`: {TrainConfig field: value}."""
    from fer.train.finetune import count_heads

    networks = count_heads(parent)
    st.caption(f"The architecture (`{defaults.preset}`) and its augmentation come from **{parent_name(parent)}**.")
    values = {
        "parent": str(parent),
        "head_epochs": int(st.number_input("Head epochs (new classes: the rest frozen)", min_value=0, max_value=100,
                                           value=defaults.head_epochs, step=1)),
        "backbone_rate": float(st.slider("Backbone's share of the learning rate", 0.01, 1.0,
                                         float(defaults.backbone_rate), 0.01)),
        "new_head": st.selectbox("New head reads", list(NEW_HEADS), index=list(NEW_HEADS).index(defaults.new_head),
                                 help="\n".join(f"- **{name}**: {text}" for name, text in NEW_HEADS.items())),
    }
    if networks > 1:
        values["parent_members"] = int(st.number_input(
            f"Networks to fine-tune (of {networks}; 0 = all)", min_value=0, max_value=networks,
            value=defaults.parent_members, step=1, help="Fewer networks train in less time; the outputs of the "
                                                         "ones kept are averaged."))
    return values

