"""Collect: name your own classes and add faces to them from the webcam or photos, to fine-tune a model on.

The set lives on disk (fer.data.collect) from the first face on, so a reload loses nothing; the open
set's name is kept in the URL (?set=…). Faces are found and levelled by fer.serve.detection, as on
Predict.
"""

from __future__ import annotations

import av
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from fer.data import collect
from fer.errors import FerError, in_words
from fer.serve.detection import PHOTO_CONFIG, VIDEO_CONFIG, make_detector
from fer.model.registry import DEFAULT_MODEL_NAME
from fer.paths import SHIPPED_MODELS_DIR
from pages.common import DATASET_KEY, START_FROM_KEY, current_user, use_app_shell

SET_KEY = "collect_set"  # The open set's name; mirrored to the URL's ?set= so a reload reopens it.
SET_PARAM = "set"
FRAME_KEY = "collect_latest_frame"  # This session's fer.data.collect.LatestFrame, fed by the video thread.
NOTICE_KEY = "collect_notice"  # (kind, sentence) of the last capture or action, shown until the next one.
BURST_KEY = "collect_burst"
PICKER_KEY = "collect_set_picker"
NEW_SET_KEY = "collect_new_set_name"
CLASSES_KEY = "collect_class_names"
GO_TRAIN_KEY = "collect_go_train"  # Set by "Fine-tune on these faces": the next run opens Train.
GRID_COLUMNS = 8
GRID_NEWEST = 64  # Faces shown per class (the newest): the grid stays quick with hundreds collected.
CAMERA_CONSTRAINTS = {"video": {"width": {"ideal": 640}, "height": {"ideal": 480}, "frameRate": {"ideal": 15}},
                      "audio": False}
DETECTOR_SETTINGS = {"photos": PHOTO_CONFIG, "webcam": VIDEO_CONFIG}


@st.cache_resource(show_spinner="Loading the face detector…")
def cached_detector(use: str):
    return make_detector("yunet", DETECTOR_SETTINGS[use])


def open_set_named(name: str | None) -> collect.FaceSet | None:
    if not name:
        return None
    try:
        return collect.open_set(name, current_user())
    except FerError:
        return None


def choose(name: str) -> None:
    st.session_state[SET_KEY] = name
    st.query_params[SET_PARAM] = name


def create_set() -> None:
    """The "Create set" button's callback (it runs before the picker is drawn, so it can point it at the new set)."""
    try:
        created = collect.new_set(st.session_state.get(NEW_SET_KEY, ""), current_user())
    except FerError as error:
        notice("error", str(error))
    else:
        choose(created.name)
        st.session_state[NEW_SET_KEY] = ""


def set_picker() -> collect.FaceSet | None:
    """Open a set or start a new one; returns the open set."""
    sets = [face_set.name for face_set in collect.face_sets(current_user())]
    current = open_set_named(st.session_state.get(SET_KEY) or st.query_params.get(SET_PARAM))
    if current is None and sets:
        current = open_set_named(sets[0])
    if current is not None:
        choose(current.name)
        st.session_state[PICKER_KEY] = current.name
    left, right = st.columns(2)
    if sets:
        left.selectbox("Set of faces", sets, key=PICKER_KEY, on_change=lambda: choose(st.session_state[PICKER_KEY]))
    new = right if sets else left  # The first set is named where the picker will be.
    new.text_input("New set", placeholder="classroom moods", max_chars=collect.MAX_NAME, key=NEW_SET_KEY)
    new.button("Create set", on_click=create_set, key="collect-create")
    return current


def add_classes(face_set: collect.FaceSet) -> None:
    try:
        face_set.add_classes(st.session_state.get(CLASSES_KEY, ""))
    except FerError as error:
        notice("error", str(error))
    else:
        st.session_state[CLASSES_KEY] = ""


def class_adder(face_set: collect.FaceSet) -> None:
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    left.text_input("Add classes", placeholder="bored, focused, confused", key=CLASSES_KEY,
                    help="Class names separated by commas; letters, digits, '-' and '_' are kept.")
    right.button("Add classes", on_click=add_classes, args=(face_set,), key="collect-add-classes")


def notice(kind: str, sentence: str) -> None:
    st.session_state[NOTICE_KEY] = (kind, sentence)


def show_notice() -> None:
    """The last capture's or action's sentence, kept until the next one, in a container that is always
    drawn: an element appearing above the tabs would remount them, and the webcam with them."""
    kind, sentence = st.session_state.get(NOTICE_KEY, (None, None))
    with st.container():
        if kind:
            getattr(st, kind)(sentence)


def capture_into(face_set: collect.FaceSet, class_name: str) -> None:
    """A class's capture button: the largest face of each frame of a burst, saved at once."""
    latest: collect.LatestFrame = st.session_state[FRAME_KEY]
    frames = latest.burst(st.session_state.get(BURST_KEY, 1))
    if not frames:
        notice("warning", "No picture from the camera yet: press START and allow the camera, then capture.")
        return
    try:
        saved = collect.capture(face_set, class_name, frames, cached_detector("webcam"))
    except FerError as error:
        notice("warning", str(error))
        return
    missed = len(frames) - len(saved)
    notice("success", f"Saved {len(saved)} face{'s' * (len(saved) != 1)} to '{class_name}'"
           + (f" ({missed} frame{'s' * (missed != 1)} showed no face)." if missed else "."))


def webcam_capture(face_set: collect.FaceSet) -> None:
    latest = st.session_state.setdefault(FRAME_KEY, collect.LatestFrame())

    def on_frame(frame: av.VideoFrame) -> av.VideoFrame:
        latest.put(frame.to_ndarray(format="rgb24"))  # The video thread: no st.* calls here.
        return frame

    webrtc_streamer(key="collect-webcam", mode=WebRtcMode.SENDRECV, video_frame_callback=on_frame,
                    rtc_configuration={"iceServers": []}, media_stream_constraints=CAMERA_CONSTRAINTS,
                    async_processing=True)
    st.slider("Frames per capture", 1, 10, 5, key=BURST_KEY,
              help="A burst: this many frames, 0.15 s apart, each adding the largest face in view.")
    classes = face_set.classes()
    for column, name in zip(st.columns(max(len(classes), 1)), classes):
        column.button(name, icon=":material/photo_camera:", key=f"collect-capture-{name}", on_click=capture_into,
                      args=(face_set, name), width="stretch")


def photo_upload(face_set: collect.FaceSet) -> None:
    classes = face_set.classes()
    with st.form("collect_photos", border=False, clear_on_submit=True):
        files = st.file_uploader("Photos", type=["jpg", "jpeg", "png", "webp", "bmp"], accept_multiple_files=True)
        target = st.selectbox("Class", classes)
        if st.form_submit_button("Add every face in these photos") and files:
            add_photos(face_set, target, files)


def add_photos(face_set: collect.FaceSet, class_name: str, files) -> None:
    detector, saved, problems = cached_detector("photos"), 0, []
    for file in files:
        try:
            crops = collect.faces_in_photo(file.getvalue(), detector)
            if not crops:
                problems.append(f"{file.name}: no face found")
                continue
            saved += len(face_set.add_faces(class_name, crops, "photo"))
        except Exception as error:  # noqa: BLE001  One bad photo is reported; the others are still read.
            problems.append(f"{file.name}: {in_words(error)}")
    if saved:
        st.success(f"Saved {saved} face{'s' * (saved != 1)} to '{class_name}'.")
    for problem in problems:
        st.warning(problem)


def delete_sample(face_set: collect.FaceSet, class_name: str, file_name: str) -> None:
    try:
        face_set.delete(class_name, file_name)
    except FerError as error:
        notice("warning", str(error))


def remove_class(face_set: collect.FaceSet, class_name: str) -> None:
    face_set.remove_class(class_name)


def grid(face_set: collect.FaceSet) -> None:
    """Each class's faces, newest last, each with a delete button."""
    for name in face_set.classes():
        samples = face_set.samples(name)
        st.markdown(f"**{name}** · {len(samples)} face{'s' * (len(samples) != 1)}")
        if not samples:
            st.caption("No faces yet.")
            st.button("Remove this class", key=f"collect-remove-{name}", on_click=remove_class,
                      args=(face_set, name))
            continue
        shown = samples[-GRID_NEWEST:]
        if len(samples) > len(shown):
            st.caption(f"The newest {len(shown)} of {len(samples)}.")
        for start in range(0, len(shown), GRID_COLUMNS):
            for column, sample in zip(st.columns(GRID_COLUMNS), shown[start:start + GRID_COLUMNS]):
                column.image(sample.path.read_bytes(), width=64)
                column.button(":material/delete:", key=f"collect-delete-{name}-{sample.name}", help="Delete this face",
                              on_click=delete_sample, args=(face_set, name, sample.name))


def use_as_dataset(face_set: collect.FaceSet) -> None:
    st.session_state[DATASET_KEY] = str(face_set.root)
    st.session_state["dataset_choice"] = "Path on the server"  # app.py's sidebar radio follows.
    st.session_state["dataset_path"] = str(face_set.root)


def fine_tune_from(face_set: collect.FaceSet, parent: str) -> None:
    """The fine-tune button's callback (before the sidebar is drawn): this set active, the Train form's parent
    (a model's name) chosen."""
    use_as_dataset(face_set)
    st.session_state[START_FROM_KEY] = parent
    st.session_state[GO_TRAIN_KEY] = True  # Kept until a run acts on it: the webcam's own reruns may come first.


def actions(face_set: collect.FaceSet) -> None:
    empty, classes = face_set.empty_classes(), face_set.classes()
    problem = ("Add at least two classes." if len(classes) < 2 else
               f"Capture faces for {', '.join(empty)} first." if empty else None)
    active = st.session_state.get(DATASET_KEY) == str(face_set.root)
    left, middle, right = st.columns(3)
    left.button("This is the active dataset" if active else "Use as the active dataset", disabled=bool(problem)
                or active, on_click=use_as_dataset, args=(face_set,), key="collect-use",
                icon=":material/check_circle:" if active else ":material/dataset:")
    if problem:
        st.caption(problem)
    shipped = SHIPPED_MODELS_DIR / f"{DEFAULT_MODEL_NAME}.keras"  # Its name, not its path, goes to the form.
    right.button("Fine-tune on these faces", icon=":material/model_training:", type="primary",
                 disabled=bool(problem) or not shipped.exists(),
                 key="collect-fine-tune", on_click=fine_tune_from, args=(face_set, DEFAULT_MODEL_NAME),
                 help="Opens Train with this set as the dataset and the shipped model as the starting point.")
    middle.download_button("⬇️ Download as zip", face_set.zip_bytes() if not problem else b"",
                           file_name=f"{face_set.name}.zip", mime="application/zip", disabled=bool(problem),
                           key="collect-download")


use_app_shell()
if st.session_state.pop(GO_TRAIN_KEY, False):
    st.switch_page("pages/train.py")
st.title(":material/add_a_photo: Collect faces")
st.caption("Teach a model your own classes: name them, add a few dozen faces to each from the webcam or photos, "
           "then fine-tune the shipped model on them. Every face is saved the moment it is taken.")
face_set = set_picker()
show_notice()
if face_set is None:
    st.info("Name a new set to start.")
    st.stop()
class_adder(face_set)
if not face_set.classes():
    st.info("Add the classes you want to tell apart, e.g. *bored, focused, confused*.")
    st.stop()
webcam, photos = st.tabs([":material/videocam: Webcam", ":material/image: Photos"])
with webcam:
    webcam_capture(face_set)
with photos:
    photo_upload(face_set)
st.divider()
actions(face_set)
grid(face_set)
