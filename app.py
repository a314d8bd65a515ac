"""FER Studio: explore a facial-expression dataset, train a CNN, evaluate it, read emotions.

This shell runs before every page: it draws the sidebar, where the user picks the active dataset
and model for all pages (kept in st.session_state under pages.common's keys), then runs the page.
"""

import logging
import sys
from pathlib import Path

import streamlit as st

if "tensorflow" not in sys.modules:
    # pylibsrtp (streamlit-webrtc's SRTP binding, used by Predict) segfaults the process when it is
    # first imported after TensorFlow, which the sidebar imports below: load it first.
    import pylibsrtp  # noqa: F401

from fer.charts.palette import app_icon
from fer.data.datasets import DEMO, Dataset, open_dataset
from fer.data import synthetic
from fer.data.roots import DataRoots, data_roots
from fer.data.uploads import save_upload, upload_name
from fer.errors import FerError, in_words
from fer.formatting import escape_markdown
from pages.common import (DATASET_KEY, MODEL_KEY, accounts_configured, active_dataset_source, active_model_name,
                          cached_dataset, current_user, model_choices, model_notice, remember_choices, require_sign_in,
                          restore_choices, undrawn_demo_sizes,
                          use_app_shell)

use_app_shell()
st.set_page_config(page_title="FER Studio", page_icon=app_icon(), layout="wide")

CHOICES = ("Demo faces", "Path on the server", "Upload a zip or CSV")
CHOICE_KEY = "dataset_choice"  # The sidebar radio; DATASET_KEY only changes once a source opens.
UPLOAD_ERRORS_KEY = "upload_errors"  # {uploaded file id: message}, so a bad upload is opened once.
OPENED_KEY = "datasets_opened"  # Sources this session has opened (so the progress path runs once).
MODEL_PICKER_KEY = "model_picker"  # A key of its own: pages may set MODEL_KEY after the sidebar ran.


def session_roots() -> DataRoots:
    """The folders this browser session may open datasets from (fer.data.roots)."""
    return data_roots(accounts=accounts_configured(), user=current_user())


def source_label(source: str) -> str:
    """How the sidebar and Home name a dataset source."""
    if source == DEMO:
        return "the built-in demo faces"
    uploaded = upload_name(source, current_user())
    return f"upload '{uploaded}'" if uploaded is not None else str(Path(source))


def open_with_progress(source: str) -> Dataset:
    """The dataset at `source`; the first time in a session it is opened here, with a progress bar."""
    opened = st.session_state.setdefault(OPENED_KEY, set())
    if source in opened:
        return cached_dataset(source)
    slot = st.sidebar.empty()

    def report(fraction: float, message: str) -> None:
        slot.progress(min(max(fraction, 0.0), 1.0), text=message)

    try:
        # Drawing the demo set or decoding happens once; later opens read the disk cache.
        roots = None if source == DEMO else session_roots()
        dataset = cached_dataset(source, open_dataset(source, progress=report, roots=roots))
    finally:
        slot.empty()
    opened.add(source)
    return dataset


def describe(error: Exception) -> str:
    """The error in words for the sidebar; anything but our own errors also goes to the server log in full."""
    if not isinstance(error, FerError):
        logging.getLogger(__name__).error("Opening a dataset failed", exc_info=error)
    return in_words(error)


def activate(source: str, name: str) -> str | None:
    """Make `source` the active dataset if it opens; otherwise return why (the old one stays)."""
    try:
        open_with_progress(source)
    except Exception as error:  # noqa: BLE001  Corrupt input fails in many ways (BadZipFile, zlib.error…).
        # Escaped: a message names patterns like images/<split>/<class>/*.jpg, which Markdown would eat.
        return escape_markdown(f"Could not open {name}: {describe(error)}. The previous dataset stays active.")
    st.session_state[DATASET_KEY] = source
    return None


def initial_choice() -> str:
    source = active_dataset_source()
    if source == DEMO:
        return CHOICES[0]
    return CHOICES[2] if upload_name(source, current_user()) is not None else CHOICES[1]


def use_demo_if_chosen() -> None:
    if st.session_state[CHOICE_KEY] == CHOICES[0]:
        st.session_state[DATASET_KEY] = DEMO


def dataset_picker() -> None:
    """Sidebar: choose where the dataset comes from; the active one changes only if the new one opens."""
    sidebar = st.sidebar
    sidebar.subheader("Dataset")
    st.session_state.setdefault(CHOICE_KEY, initial_choice())
    if initial_choice() == CHOICES[1]:  # The active dataset is a path on the server, e.g. restored after a reload.
        st.session_state.setdefault("dataset_path", active_dataset_source())
    choice = sidebar.radio("Source", CHOICES, key=CHOICE_KEY, on_change=use_demo_if_chosen,
                           label_visibility="collapsed")
    if choice == CHOICES[0]:
        total = sum(synthetic.demo_split_sizes().values())
        sidebar.caption(f"{total:,} synthetic 48×48 faces, drawn on first use; no download needed.")
    elif choice == CHOICES[1]:
        with sidebar.form("dataset_path_form", border=False):
            path = st.text_input("Folder, .zip or .csv on the server", key="dataset_path",
                                 placeholder="/data/fer2013/images.zip")
            submitted = st.form_submit_button("Open")
        if submitted:
            try:
                # Resolved inside the data roots or refused in one sentence, before anything is listed.
                resolved = session_roots().resolve(path)
            except FerError as error:
                sidebar.error(f"Could not open it: {error}. The previous dataset stays active.")
            else:
                if problem := activate(str(resolved), f"'{path.strip()}'"):
                    sidebar.error(problem)
    else:
        upload = sidebar.file_uploader("Kaggle-layout zip or fer2013.csv", type=["zip", "csv"],
                                       key="dataset_upload")
        errors = st.session_state.setdefault(UPLOAD_ERRORS_KEY, {})
        if upload is not None and upload.file_id not in errors:
            try:
                saved = save_upload(upload.name, upload.getvalue(), current_user())
            except (FerError, OSError) as error:
                saved, problem = None, f"Could not store '{upload.name}': {in_words(error)}"
            else:
                problem = activate(str(saved), f"'{upload.name}'")
            if problem and saved is not None:
                saved.unlink(missing_ok=True)
            errors[upload.file_id] = problem
        if upload is not None and errors.get(upload.file_id):
            sidebar.error(errors[upload.file_id])


def active_dataset_summary(page_reads_data: bool) -> None:
    """Open the active dataset (with progress the first time) and say what it is. The demo set is
    drawn only once a page reads the data, so a new user's Home shows without waiting for it."""
    source = active_dataset_source()
    if not page_reads_data and (sizes := undrawn_demo_sizes()):
        counts = " · ".join(f"{name} {size:,}" for name, size in sizes.items())
        st.sidebar.caption(f"**Active:** {source_label(source)}  \n{counts} images · drawn when a page first "
                           "needs them")
        return
    try:
        dataset = open_with_progress(source)
    except Exception as error:  # noqa: BLE001  As in activate(): a message, never a traceback.
        st.sidebar.error(f"Could not open the active dataset {source_label(source)}: {describe(error)}")
        return
    counts = " · ".join(f"{name} {len(split):,}" for name, split in dataset.splits.items())
    st.sidebar.caption(f"**Active:** {source_label(source)}  \n{counts} images · `{dataset.fingerprint}`")


def remember_model() -> None:
    st.session_state[MODEL_KEY] = st.session_state[MODEL_PICKER_KEY]


def model_picker() -> None:
    """Sidebar: choose, by name, the model Evaluate and Predict use (registered models and finished runs)."""
    st.sidebar.subheader("Model")
    model_notice()
    labels = model_choices()
    if not labels:
        st.sidebar.caption("No models yet: train one on the **Train** page.")
        return
    current = active_model_name()
    if current in labels:
        st.session_state[MODEL_PICKER_KEY] = current  # Follow changes other pages made.
    chosen = st.sidebar.selectbox("Model", list(labels), key=MODEL_PICKER_KEY, format_func=labels.get,
                                  on_change=remember_model, label_visibility="collapsed")
    st.sidebar.caption(labels.get(chosen, ""))  # The whole label: the sidebar's box cuts long ones short.


DATA_PAGES = ("dataset", "train", "evaluate")  # The url paths of the pages that read the active dataset.
# Material icons, drawn from Streamlit's own icon font: emoji show as empty boxes without an emoji font.
pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/dataset.py", title="Dataset", icon=":material/dataset:"),
    st.Page("pages/collect.py", title="Collect", icon=":material/add_a_photo:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/analytics:"),
    st.Page("pages/predict.py", title="Predict", icon=":material/photo_camera:"),
    st.Page("pages/models.py", title="Models", icon=":material/inventory_2:"),
]
require_sign_in(pages)  # With accounts configured, nothing below runs until this session has signed in.
navigation = st.navigation(pages)
restore_choices()
dataset_picker()
active_dataset_summary(page_reads_data=navigation.url_path in DATA_PAGES)
model_picker()
remember_choices()  # Pages change the choices only in widget callbacks, which run before this script.
navigation.run()
