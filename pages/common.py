"""What every page shares: the active dataset and model, loaded once and kept in session state.

The sidebar (app.py) writes the choices; pages read them through these helpers. Keys:
- "dataset_source": a dataset path (folder, zip, CSV) or fer.data.datasets.DEMO (the default);
- "model_name": the chosen model's name (fer.model.registry: a registered model or "run:<folder>" of
  this user's; default: the shipped model, else the newest). Never a path: a browser hands in names only,
  and `served_model` turns the name into the one ServedModel handle every page and widget uses.
Those two keys are the one live copy of the choices. `remember_choices` writes them through to the
URL (?dataset=…&model=…, so a reload keeps them) and to fer.settings (so a new tab starts from the
last choice); `restore_choices` reads them back once per browser session.

Models are served on onnxruntime when they have an ONNX export (fer.serve.runtime), so no page
imports TensorFlow until the user trains or asks for Grad-CAM.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from fer.data.datasets import DEMO, Dataset, demo_is_drawn, open_dataset
from fer.data.roots import data_roots
from fer.errors import FerError, in_words
from fer.formatting import file_size, percent
from fer.model.registry import RegisteredModel
from fer.serve.served import ServedModel
from fer.settings import Choices, read_choices, write_choices

DATASET_KEY = "dataset_source"
MODEL_KEY = "model_name"
NOTICE_KEY = "model_notice"  # Why the model a link named was not opened; shown once by the sidebar.
FALLBACK_TOLD_KEY = "runtime_notes_shown"  # Model files whose Keras fallback this session was told about.
RESTORED_KEY = "choices_restored"  # Set once this browser session has read its URL and the settings file.
SIGNED_IN_KEY = "signed_in_user"  # The user this browser session belongs to (accounts on).
SAVED_KEY = "choices_saved"  # The Choices this session last wrote to the settings file.
DATASET_PARAM, MODEL_PARAM = "dataset", "model"  # The URL's query parameters.
START_FROM_KEY = "train_start_from"  # The Train form's "Start from": a model's name, or "" for scratch.


def use_app_shell() -> None:
    """Make sure app.py's shell runs this page; app.py and every page call it first, on every run.

    Streamlit decides once per process, when the first browser session starts, whether the app
    uses its legacy `pages/` folder: yes whenever a folder named `pages` sits next to the main
    script, and only a call to st.navigation turns that off. In that legacy mode a page file runs
    on its own: no sidebar pickers, a raw page list ("app, common, dataset, …"), and st.navigation
    never runs, so reloading does not help either. It happens when the first request is a deep link
    (/predict), and when a link of the raw list is clicked before the first run of / has finished.
    Here the mode is turned off and the same page is rerun through app.py.
    """
    if leave_legacy_pages_mode():
        st.rerun()  # Same page (same URL path, same hash under both modes), now run by app.py.


def leave_legacy_pages_mode() -> bool:
    """Turn Streamlit's legacy `pages/` mode off, now and for every session started later in this process
    (AppTest starts each run afresh); True if it was on.

    Streamlit 1.67 has no public switch for it (no config option; only st.navigation, which runs too
    late for a deep link), so this is the one place that sets its private flag,
    PagesManager.uses_pages_directory. tests/pages/test_common.py guards the flag's name and meaning.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if not hasattr(PagesManager.__init__, "streamlits_own"):
        original = PagesManager.__init__

        def init(self, *args, **kwargs):
            original(self, *args, **kwargs)
            PagesManager.uses_pages_directory = False

        init.streamlits_own = original
        PagesManager.__init__ = init
    was_on = bool(PagesManager.uses_pages_directory)
    PagesManager.uses_pages_directory = False
    return was_on


@st.cache_resource(show_spinner="Opening dataset…", max_entries=4)
def cached_dataset(source: str, _opened: Dataset | None = None) -> Dataset:
    """Open a dataset once per server process (the disk cache makes re-opening fast too).

    `_opened`: the dataset at `source` already opened by the caller (the sidebar does, to show a
    progress bar: st elements must not be called inside a cached function); cached as is.
    """
    return _opened if _opened is not None else open_dataset(source)


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def cached_served_model(name: str, path: str, modified: float, _choice) -> ServedModel:
    """The model called `name` ready to serve (fer.serve.served), built once per server process and file
    version: keyed by its file (two users may each have a model of one name) and modification time (a
    replaced file is a new handle). `_choice`: the fer.model.registry.RegisteredModel the name resolved to
    for this user."""
    from fer.serve.served import serve

    return serve(_choice, modified)


def accounts_configured() -> bool:
    """Whether a lab configured Streamlit's login (an [auth] section in .streamlit/secrets.toml).

    A secrets file that exists but cannot be read raises FerError: whether sign-in is required is then
    unknown, and the app must not open without it (require_sign_in says so and stops).
    """
    try:
        return "auth" in st.secrets
    except Exception as error:  # noqa: BLE001  Streamlit raises the same error for no file and a broken one.
        if not any(Path(path).exists() for path in st.get_option("secrets.files")):
            return False  # No secrets at all, the usual case: one local user.
        logging.getLogger(__name__).error("The secrets file cannot be read", exc_info=error)
        raise FerError("the server's secrets file cannot be read, so FER Studio cannot tell who may sign in. "
                       "The person who runs this server: fix or remove .streamlit/secrets.toml (the log says "
                       "why it cannot be read), then restart") from error


def signed_in() -> bool:
    """Whether this browser session has signed in through Streamlit's login, with a subject to name it."""
    return bool(st.user.get("is_logged_in")) and bool(st.user.get("sub"))


def current_user() -> str | None:
    """The signed-in user's id (OpenID Connect's `sub`) when accounts are configured, else None.

    Pass it to fer's per-user functions (fer.paths.user_dir and the ones built on it): None means the one
    local user, whose space is FER_STUDIO_HOME itself. app.py stops every page (require_sign_in) before
    this can be called by someone who is not signed in.
    """
    if not accounts_configured() or not signed_in():
        return None
    return str(st.user.get("sub"))


def require_sign_in(pages: list) -> None:
    """With accounts configured: until this session has signed in, the app shows only a sign-in button
    and stops; once signed in, the sidebar names the user and offers to sign out. Without accounts, nothing.

    app.py calls it with its st.Page list before the sidebar and the page run, so nobody reaches any page,
    upload or run unsigned. The pages are registered hidden: a link to one (/train) finds it, without a
    "page not found", and the sidebar lists none of them (without st.navigation it would list the pages/
    folder's files).
    """
    try:
        configured = accounts_configured()
    except FerError as error:
        st.navigation(pages, position="hidden")
        st.error(f"FER Studio cannot open: {error}.")
        st.stop()
    if not configured:
        return
    if not signed_in():
        st.navigation(pages, position="hidden")
        st.title(":material/mood: FER Studio")
        st.markdown("This FER Studio is shared. Sign in to use it: your uploads, runs and models stay yours.")
        st.button("Sign in", type="primary", on_click=st.login, key="sign_in")
        st.stop()
    if st.session_state.setdefault(SIGNED_IN_KEY, current_user()) != current_user():
        st.session_state.clear()  # Another user in this same session: nothing of the last one's carries over.
        st.session_state[SIGNED_IN_KEY] = current_user()
    who = st.user.get("name") or st.user.get("email") or st.user.get("sub")
    st.sidebar.caption(f"Signed in as **{who}**")
    st.sidebar.button("Sign out", on_click=st.logout, key="sign_out")


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


def active_model_name() -> str | None:
    """The chosen model's name, else $FER_STUDIO_MODEL (a name the server's operator set), else the default
    model's, else None (no model yet). Always a name: fer.model.registry resolves it for this user."""
    import os

    from fer.model.registry import default_model

    if st.session_state.get(MODEL_KEY):
        return st.session_state[MODEL_KEY]
    if os.environ.get("FER_STUDIO_MODEL"):
        return os.environ["FER_STUDIO_MODEL"]
    try:
        return default_model(current_user()).name
    except FerError:
        return None


def model_choices() -> dict[str, str]:
    """{name: label} of every model this user can choose: registered models, then their finished runs."""
    from fer.model.registry import model_choices as choices

    return {model.name: model.label for model in choices(current_user())}


def active_choice() -> RegisteredModel | None:
    """The active model's registry entry (name, file, card, shelf) without loading it, for pages that only
    describe it (Home); None after saying why there is none."""
    from fer.model.registry import resolve_model

    name = active_model_name()
    if name is None:
        st.info("No model yet: train one on the **Train** page (or with `python -m fer train`).")
        return None
    try:
        return resolve_model(name, current_user())
    except FerError as error:
        st.error(f"Could not load the model: {error}")
        return None


def served_model(name: str | None = None) -> ServedModel | None:
    """The handle of the model called `name` (default: the active model), or None after saying why not.
    Pages and widgets take everything about the model from this handle."""
    from fer.model.registry import resolve_model
    from fer.serve.served import modification_time

    name = name or active_model_name()
    if name is None:
        st.info("No model yet: train one on the **Train** page (or with `python -m fer train`).")
        return None
    try:
        choice = resolve_model(name, current_user())
        served = cached_served_model(name, str(choice.path), modification_time(choice), choice)
    except (FerError, OSError) as error:
        st.error(f"Could not load the model: {in_words(error)}")
        return None
    told = st.session_state.setdefault(FALLBACK_TOLD_KEY, set())
    if served.runtime == "keras" and served.key not in told:
        told.add(served.key)
        st.info(served.note or f"{served.name} runs on Keras: it has no ONNX export.")
    return served


def restore_choices() -> None:
    """Once per browser session, before the sidebar draws: the dataset and model named in the URL (a
    reload), else the last ones saved in the settings file (a new tab). Choices already in the session,
    sources that no longer exist and models that are gone are left alone."""
    if st.session_state.get(RESTORED_KEY):
        return
    st.session_state[RESTORED_KEY] = True
    saved = read_choices(current_user())
    dataset = st.query_params.get(DATASET_PARAM) or saved.dataset
    if DATASET_KEY not in st.session_state and dataset and (dataset == DEMO or data_roots(
            accounts=accounts_configured(), user=current_user()).allows(dataset)):  # Else one path outside its roots.
        st.session_state[DATASET_KEY] = dataset
    if MODEL_KEY not in st.session_state:
        restore_model(st.query_params.get(MODEL_PARAM), saved.model)
    st.session_state[SAVED_KEY] = current_choices()  # Restoring is not a new choice to save.


def restore_model(from_url: str | None, from_settings: str | None) -> None:
    """Choose the model named in the URL, else the one in the settings file, when it is a model of this user's.

    A URL naming anything else (a path, another user's run, a name nobody registered) leaves the default
    model active and gets one sentence (NOTICE_KEY), which never repeats what was typed beyond a short name.
    """
    from fer.model.registry import resolve_model

    for name, where in ((from_url, "url"), (from_settings, "settings")):
        if not name:
            continue
        try:
            resolve_model(name, current_user())
        except FerError as error:
            if where == "url":
                st.session_state[NOTICE_KEY] = f"The link's model was not opened: {error}. The default model stays."
            continue
        st.session_state[MODEL_KEY] = name
        return


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
        write_choices(choices, current_user())
        st.session_state[SAVED_KEY] = choices


def model_notice() -> None:
    """Say in the sidebar, once, why the model a link named was not opened (restore_model wrote it)."""
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.sidebar.warning(notice)


def model_downloads(chosen: RegisteredModel | ServedModel) -> None:
    """'Download this model': each of its files with its measured validation accuracy, and a button that
    makes the TFLite files (in a child process: TensorFlow's converter stays out of the server)."""
    from fer.model.downloads import downloads, missing_tflite

    path = str(chosen.path)
    for number, item in enumerate(downloads(path)):
        left, right = st.columns([4, 1], vertical_alignment="center")
        accuracy = f" · validation accuracy {percent(item.accuracy)}" if item.accuracy is not None else ""
        left.markdown(f"**{item.label}** · {file_size(item.path.stat().st_size)}{accuracy}  \n"
                      f":gray[{item.note}]")
        right.download_button("Download", data=lambda file=item.path: file.read_bytes(), file_name=item.path.name,
                              mime="application/octet-stream", key=f"download-{number}", on_click="ignore")
    missing = missing_tflite(path)
    if missing and chosen.shelf in ("shipped", "published"):
        st.caption(f"TFLite files are made for your own models only: the {chosen.shelf} models' folder is read-only.")
    elif missing and st.button(f"Make TFLite {' and '.join(missing)}", help="runs python -m fer export MODEL "
                             "--format tflite and scores each file on the validation faces (a minute or two)"):
        from fer.train.tasks import make_tflite

        try:
            with st.spinner("Converting to TFLite and scoring on the validation faces…"):
                make_tflite(path, user=current_user())  # A child process holding a job slot, with a time limit.
        except FerError as error:
            st.error(f"{str(error)[:1].upper()}{str(error)[1:]}")
        else:
            st.rerun()
