"""What every page shares: the active dataset and model, loaded once and kept in session state.

The sidebar (app.py) writes the choices; pages read them through these helpers. Keys:
- "dataset_source": a dataset path (folder, zip, CSV) or fer.data.datasets.DEMO (the default);
- "model_path": the chosen model's .keras path (default: the shipped model, else the newest).
Those two keys are the one live copy of the choices. `remember_choices` writes them through to the
URL (?dataset=…&model=…, so a reload keeps them) and to fer.settings (so a new tab starts from the
last choice); `restore_choices` reads them back once per browser session.

Models are served on onnxruntime when they have an ONNX export (fer.serve.runtime), so no page
imports TensorFlow until the user trains.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from fer.data.datasets import DEMO, Dataset, demo_is_drawn, open_dataset
from fer.errors import FerError
from fer.settings import Choices, read_choices, write_choices

DATASET_KEY = "dataset_source"
MODEL_KEY = "model_path"
FALLBACK_TOLD_KEY = "runtime_notes_shown"  # Model files whose Keras fallback this session was told about.
RESTORED_KEY = "choices_restored"  # Set once this browser session has read its URL and the settings file.
SAVED_KEY = "choices_saved"  # The Choices this session last wrote to the settings file.
DATASET_PARAM, MODEL_PARAM = "dataset", "model"  # The URL's query parameters.
START_FROM_KEY = "train_start_from"  # The Train form's "Start from": a parent model's .keras path, or "" for scratch.


def use_app_shell() -> None:
    """Make sure app.py's shell runs this page; app.py and every page call it first, on every run.

    Streamlit decides once per process, when the first browser session starts, whether the app
    uses its legacy `pages/` folder: yes whenever a folder named `pages` sits next to the main
    script (PagesManager.uses_pages_directory), and only a call to st.navigation turns that off.
    In that legacy mode a page file runs on its own: no sidebar pickers, a raw page list ("app,
    common, dataset, …"), and st.navigation never runs, so reloading does not help either. It
    happens when the first request is a deep link (/predict), and when a link of the raw list is
    clicked before the first run of / has finished. Here the mode is turned off and the same page
    is rerun through app.py. No config option switches the mode off, and pages/ stays where it is.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()  # Same page (same URL path, same hash under both modes), now run by app.py.


@st.cache_resource(show_spinner="Opening dataset…", max_entries=4)
def cached_dataset(source: str, _opened: Dataset | None = None) -> Dataset:
    """Open a dataset once per server process (the disk cache makes re-opening fast too).

    `_opened`: the dataset at `source` already opened by the caller (the sidebar does, to show a
    progress bar: st elements must not be called inside a cached function); cached as is.
    """
    return _opened if _opened is not None else open_dataset(source)


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def cached_serving(path: str, modified: float):
    """The model ready to serve (fer.serve.runtime.ServingModel), loaded once per server process;
    `modified` (the file's mtime) reloads a replaced file."""
    from fer.serve.runtime import load_for_serving

    return load_for_serving(path)


def cached_model(path: str, modified: float):
    """(model, card) for serving: an ONNX model on onnxruntime, or the Keras model without an export."""
    served = cached_serving(path, modified)
    return served.model, served.card


def accounts_configured() -> bool:
    """Whether a lab configured Streamlit's login (an [auth] section in .streamlit/secrets.toml)."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001  No secrets file at all is the usual case: one local user.
        return False


def current_user() -> str | None:
    """The signed-in user's id (OpenID Connect's `sub`) when accounts are configured, else None.

    Pass it to fer's per-user functions (fer.paths.user_dir and the ones built on it): None means the one
    local user, whose space is FER_STUDIO_HOME itself. app.py stops every page before this can be called
    by someone who is not signed in.
    """
    if not accounts_configured() or not st.user.is_logged_in:
        return None
    return str(st.user.get("sub"))


def active_dataset_source() -> str:
    return st.session_state.get(DATASET_KEY, DEMO)


def undrawn_demo_sizes() -> dict[str, int] | None:
    """The demo set's split sizes while it is the active dataset and not drawn yet (pages that only
    describe it show these instead of drawing it), else None."""
    from fer.data.synthetic import demo_split_sizes

    return demo_split_sizes() if active_dataset_source() == DEMO and not demo_is_drawn() else None


def active_dataset() -> Dataset | None:
    """The active dataset, or None after showing why it could not be opened."""
    source = active_dataset_source()
    try:
        return cached_dataset(source)
    except FerError as error:
        st.error(f"Could not open the dataset: {error}")
        return None


def active_model_path() -> str | None:
    """The chosen model's path, else $FER_STUDIO_MODEL, else the default model's, else None (no model yet)."""
    import os

    from fer.model.registry import default_model_path

    if st.session_state.get(MODEL_KEY):
        return st.session_state[MODEL_KEY]
    if os.environ.get("FER_STUDIO_MODEL"):
        return os.environ["FER_STUDIO_MODEL"]
    try:
        return str(default_model_path())
    except FerError:
        return None


def restore_choices() -> None:
    """Once per browser session, before the sidebar draws: the dataset and model named in the URL (a
    reload), else the last ones saved in the settings file (a new tab). Choices already in the session,
    sources that no longer exist and models that are gone are left alone."""
    if st.session_state.get(RESTORED_KEY):
        return
    st.session_state[RESTORED_KEY] = True
    saved = read_choices()
    dataset = st.query_params.get(DATASET_PARAM) or saved.dataset
    model = st.query_params.get(MODEL_PARAM) or saved.model
    if DATASET_KEY not in st.session_state and dataset and (dataset == DEMO or Path(dataset).exists()):
        st.session_state[DATASET_KEY] = dataset
    if MODEL_KEY not in st.session_state and model and Path(model).is_file():
        st.session_state[MODEL_KEY] = model
    st.session_state[SAVED_KEY] = current_choices()  # Restoring is not a new choice to save.


def current_choices() -> Choices:
    """This session's choices: the active dataset (the demo set by default) and the chosen model, if any."""
    return Choices(active_dataset_source(), st.session_state.get(MODEL_KEY) or None)


def remember_choices() -> None:
    """Write this session's choices to the URL and, when they changed here, to the settings file.

    Only a change made in this session is saved, so an idle tab never overwrites another tab's newer choice.
    """
    choices = current_choices()
    for param, value in ((DATASET_PARAM, choices.dataset), (MODEL_PARAM, choices.model)):
        if value is None:
            if param in st.query_params:
                del st.query_params[param]  # e.g. a model named in the URL that no longer exists.
        elif st.query_params.get(param) != value:
            st.query_params[param] = value
    if choices != st.session_state.get(SAVED_KEY):
        write_choices(choices)
        st.session_state[SAVED_KEY] = choices


def load_model_or_warn(path: str | None):
    """(model, card) for `path`, or None after telling the user what to do."""
    import os

    if path is None:
        st.info("No model yet: train one on the **Train** page (or with `python -m fer train`).")
        return None
    try:
        served = cached_serving(path, os.path.getmtime(path))
    except (FerError, OSError) as error:
        st.error(f"Could not load the model: {error}")
        return None
    told = st.session_state.setdefault(FALLBACK_TOLD_KEY, set())
    if served.runtime == "keras" and path not in told:
        told.add(path)
        st.info(served.note or f"{os.path.basename(path)} runs on Keras: it has no ONNX export.")
    return served.model, served.card


def model_downloads(path: str) -> None:
    """'Download this model': each of its files with its measured validation accuracy, and a button that
    makes the TFLite files (in a child process: TensorFlow's converter stays out of the server)."""
    import subprocess
    import sys
    from pathlib import Path

    from fer.model.downloads import downloads, missing_tflite

    for number, item in enumerate(downloads(path)):
        left, right = st.columns([4, 1], vertical_alignment="center")
        accuracy = f" · validation accuracy {item.accuracy:.1%}" if item.accuracy is not None else ""
        left.markdown(f"**{item.label}** · {item.path.stat().st_size / 1e6:.1f} MB{accuracy}  \n"
                      f":gray[{item.note}]")
        right.download_button("Download", data=lambda file=item.path: file.read_bytes(), file_name=item.path.name,
                              mime="application/octet-stream", key=f"download-{number}", on_click="ignore")
    missing = missing_tflite(path)
    if missing and st.button(f"Make TFLite {' and '.join(missing)}", help="runs python -m fer export MODEL "
                             "--format tflite and scores each file on the validation faces (a minute or two)"):
        with st.spinner("Converting to TFLite and scoring on the validation faces…"):
            done = subprocess.run([sys.executable, "-m", "fer", "export", path, "--format", "tflite"],
                                  capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        if done.returncode != 0:
            errors = [line.removeprefix("error: ") for line in done.stderr.splitlines() if line.startswith("error: ")]
            st.error(f"Could not make the TFLite files: {(errors or ['the converter failed'])[-1]}")
        else:
            st.rerun()
