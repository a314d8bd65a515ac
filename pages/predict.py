"""Predict: drop in photos or a video, or turn on the webcam; every face is found, boxed and labelled.

Detection, classification and drawing live in fer.serve.detection / prediction / live / video and the
figures in fer.charts.video; this page lays out widgets and keeps results in session state so reruns
do not redo the work.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import streamlit as st

from fer.charts.video import shares_figure, timeline_figure
from fer.data.images import open_image, to_rgb
from fer.errors import FerError
from fer.formatting import count
from fer.serve.detection import DETECTORS, PHOTO_CONFIG, VIDEO_CONFIG, VIDEO_FILE_CONFIG, make_detector
from fer.serve.drawing import annotate, encode_image
from fer.serve.prediction import FacePrediction, ImageResult, predict_file
from fer.serve.served import ServedModel
from fer.serve.video import VIDEO_SUFFIXES, VideoConfig, VideoResult, is_video, predict_video, video_table
from pages.common import served_model, use_app_shell
from widgets.face_results import (CHART_CONFIG, THRESHOLD_KEY, UNCERTAIN_DEFAULT, selected_face, show_faces,
                                  show_results_table)
from widgets.gradcam import show_face_heatmaps
from widgets.photo_batch import batch_section
from widgets.webcam import webcam_tab

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]
DETECTOR_LABELS = {"yunet": "YuNet (finds turned and small faces)", "haar": "Haar cascade (older; misses turned faces)",
                   "mtcnn": "MTCNN (slow)"}
DETECTOR_KEY = "predict_detector"
RESULTS_KEY = "predict_results"  # {(file id, model name, mtime, detector, whole image?): (ImageResult, JPEG bytes)}
WHOLE_IMAGE_KEY = "predict_whole_{}"  # Per uploaded file: classify the whole image when no face is found.
VIDEO_KEY = "predict_video_result"  # ((file id, model name, mtime, detector), VideoResult) of the last video read.
VIDEO_TYPES = [suffix.lstrip(".") for suffix in VIDEO_SUFFIXES]
SELECTED_KEY = "predict_faces_{}"  # Per uploaded file: the face table's selection (its row highlights a box).


DETECTOR_SETTINGS = {"photos": PHOTO_CONFIG, "video files": VIDEO_FILE_CONFIG, "webcam": VIDEO_CONFIG}


@st.cache_resource(show_spinner="Loading the face detector…")
def cached_detector(name: str, use: str):
    return make_detector(name, DETECTOR_SETTINGS[use])


def analysed(file, served: ServedModel, detector) -> tuple[ImageResult, bytes | None]:
    """An uploaded file's result and annotated JPEG, computed once per file and settings. Each face keeps
    the crop the model read (FacePrediction.crop), which Grad-CAM explains without detecting again."""
    whole = bool(st.session_state.get(WHOLE_IMAGE_KEY.format(file.file_id)))
    key = (file.file_id, *served.key, detector.name, whole)
    store = st.session_state.setdefault(RESULTS_KEY, {})
    if key not in store:
        result = predict_file(file.name, file.getvalue(), served.classifier, detector, whole_image=whole)
        picture = None if result.image is None else encode_image(
            annotate(result.image, result.faces, numbered=True), "JPEG")
        # The page only shows the annotated JPEG: dropping the decoded array keeps session memory small.
        store[key] = (replace(result, image=None), picture)
    return store[key]


def highlighted_picture(data: bytes, faces: Sequence[FacePrediction], index: int) -> bytes:
    """The photo annotated again with face `index` highlighted (the boxes are in the analysed image's pixels,
    which decoding the same bytes again gives back)."""
    return encode_image(annotate(to_rgb(open_image(data)), faces, numbered=True, highlight=index), "JPEG")


def show_result(file, result: ImageResult, picture: bytes | None, served: ServedModel | None = None) -> None:
    with st.container(border=True):
        st.markdown(f"**{result.name}**")
        if result.error:
            st.error(f"Could not analyse this file: {result.error}")
            return
        for note in result.notes:
            st.caption(f":material/info: {note}")
        if is_video(file.name, file.getvalue()):
            st.caption(":material/movie: The Video tab reads every frame of this animation and follows each face.")
        left, right = st.columns([3, 2])
        faces_key = SELECTED_KEY.format(file.file_id)
        chosen = selected_face(faces_key) if len(result.faces) > 1 else None
        if chosen is not None and chosen < len(result.faces):
            picture = highlighted_picture(file.getvalue(), result.faces, chosen)
        left.image(picture, width="stretch")
        left.download_button("Download annotated image", picture, file_name=f"{Path(result.name).stem}-annotated.jpg",
                             mime="image/jpeg", key=f"download-{file.file_id}", icon=":material/download:")
        with right:
            whole_key = WHOLE_IMAGE_KEY.format(file.file_id)
            if result.no_face:
                st.warning("No face found in this image.")
            elif any(face.whole_image for face in result.faces):
                st.warning("No face was found: the whole image was read as if it were one. The label is only "
                           "what the model makes of it, right for a close crop of a face and meaningless "
                           "for anything else.", icon=":material/warning:")
            if result.no_face or st.session_state.get(whole_key):
                st.checkbox("Classify the whole image as one face", key=whole_key,
                            help="For photos that are already a close crop of one face, which detectors can miss.")
            if len(result.faces) <= 1:
                show_faces(result.faces, f"chart-{file.file_id}")
            else:
                st.markdown(f"**{count(len(result.faces), 'face')}**, numbered on the photo")
        if len(result.faces) > 1:  # The whole width: a bar per class for every face, none cut off.
            show_faces(result.faces, faces_key)
        with right if len(result.faces) <= 1 else st.container():
            if result.faces and served is not None:
                show_face_heatmaps(served, [face.crop for face in result.faces if face.crop is not None],
                                   key=f"gradcam-{file.file_id}")


def upload_tab(served: ServedModel, detector) -> None:
    files = st.file_uploader("Drop photos here (jpg, png, webp, bmp or gif; several at once)", type=UPLOAD_TYPES,
                             accept_multiple_files=True, key="predict_uploads")
    if not files:
        st.info("Drop one or more photos above: every face is boxed, labelled and charted.")
        return
    progress = st.progress(0.0, text="Analysing photos…") if len(files) > 1 else None
    outcomes = []
    for number, file in enumerate(files, start=1):
        outcomes.append(analysed(file, served, detector))
        if progress:
            progress.progress(number / len(files), text=f"Analysed {number} of {len(files)}")
    if progress:
        progress.empty()
    current = {file.file_id for file in files}
    store = st.session_state[RESULTS_KEY]
    for key in [key for key in store if key[0] not in current]:  # Removed files free their memory.
        del store[key]
    results = [result for result, _ in outcomes]
    show_results_table(results, served, [(result.name, picture) for result, picture in outcomes if picture],
                       key="results")
    for file, (result, picture) in zip(files, outcomes):
        show_result(file, result, picture, served)


def video_tab(served: ServedModel, detector) -> None:
    config = VideoConfig()
    file = st.file_uploader(f"Drop a video ({', '.join(VIDEO_TYPES)})", type=VIDEO_TYPES, key="predict_video")
    if file is None:
        st.info(f"Drop a video: {config.sample_fps:g} frames a second are read (enough to follow an expression), "
                f"up to the first {config.max_seconds:g} seconds. Each face gets an emotion timeline.")
        return
    if not is_video(file.name, file.getvalue()):  # A still GIF is a photo.
        show_result(file, *analysed(file, served, detector), served)
        return
    key = (file.file_id, *served.key, detector.name)
    stored = st.session_state.get(VIDEO_KEY)
    if stored is None or stored[0] != key:
        bar = st.progress(0.0, text="Reading the video…")

        def progress(done: float, total: float) -> None:
            bar.progress(min(done / total, 1.0) if total else 0.0, text=f"Read {done:.1f} of {total:.1f} s")

        try:
            result = predict_video(file.getvalue(), served.classifier, detector, name=file.name, config=config,
                                   progress=progress)
        except FerError as error:
            bar.empty()
            st.error(f"Could not analyse this video: {error}")
            return
        bar.empty()
        st.session_state[VIDEO_KEY] = stored = (key, result)
    show_video_result(stored[1])


def show_video_result(result: VideoResult) -> None:
    tracks = result.track_ids
    seen = sum(bool(frame.faces) for frame in result.frames)
    st.markdown(f"**{result.name}** · {result.duration:.1f} s · {len(result.frames)} frames analysed · "
                f"a face in {seen} · {len(tracks)} face{'s' * (len(tracks) != 1)} tracked")
    for note in result.notes:
        st.caption(f":material/info: {note}")
    left, right = st.columns([3, 2])
    if result.clip:
        left.video(result.clip, format="video/mp4")
        left.download_button("Download annotated clip", result.clip, mime="video/mp4", icon=":material/download:",
                             key="download-clip",
                             file_name=f"{Path(result.name).stem}-annotated.mp4")
    table = video_table(result)
    right.download_button("Download per-frame results (CSV)", table.to_csv(index=False).encode(),
                          file_name=f"{Path(result.name).stem}-frames.csv", mime="text/csv",
                          icon=":material/download:",
                          key="download-video-csv")
    if not tracks:
        right.warning("No face found in the frames read.")
        return
    right.markdown("**Share of each emotion** (of each face's frames)")
    right.plotly_chart(shares_figure(result), key="video-shares", config=CHART_CONFIG)
    for track_id in tracks:
        timeline = result.timeline(track_id)
        st.markdown(f"**Face {track_id}** · seen {timeline[0][0]:.1f}–{timeline[-1][0]:.1f} s")
        st.plotly_chart(timeline_figure(result, track_id), key=f"video-timeline-{track_id}", config=CHART_CONFIG)
    with st.expander("Per-frame results"):
        st.dataframe(table.astype(object).where(table.notna(), ""), hide_index=True)  # Blank, not "None".


use_app_shell()
st.title(":material/photo_camera: Predict")
st.caption("Find every face in your photos, videos or webcam and read its expression.")

# A one-off notice (e.g. "runs on Keras") goes in a container that is always there: were it to shift
# the elements below, the tabs would remount and jump back to Photos on the next run (START's).
with st.container():
    served = served_model()
if served is None:
    st.stop()

detector_name = st.radio("Face detector", DETECTORS, format_func=lambda name: DETECTOR_LABELS.get(name, name),
                         horizontal=True, key=DETECTOR_KEY, persist_state="session")
st.caption(f"Model: **{served.name}** (change it in the sidebar)")
try:
    photo_detector, clip_detector, webcam_detector = (cached_detector(detector_name, use) for use in DETECTOR_SETTINGS)
except FerError as error:
    st.error(f"The {detector_name} face detector is unavailable: {error}")
    st.stop()

st.slider("Uncertain below", 0, 100, UNCERTAIN_DEFAULT, 5, key=THRESHOLD_KEY, format="%d%%",
          help="A face whose most likely class is less likely than this is flagged uncertain, in the table and "
               "its CSV: with seven classes, a top class under an even chance is often a guess.")
photos, video, webcam = st.tabs([":material/image: Photos", ":material/movie: Video", ":material/videocam: Webcam"])
with photos:
    upload_tab(served, photo_detector)
    batch_section(served, photo_detector)
with video:
    video_tab(served, clip_detector)
with webcam:
    webcam_tab(served.classifier, webcam_detector)
