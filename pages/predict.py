"""Predict: drop in photos or a video, or turn on the webcam; every face is found, boxed and labelled.

Detection, classification and drawing live in fer.serve.detection / prediction / live / video and the
figures in fer.charts.video; this page lays out widgets and keeps results in session state so reruns
do not redo the work.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import av
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from fer.charts.prediction import probability_figure
from fer.charts.video import shares_figure, timeline_figure
from fer.data.images import open_image, to_rgb
from fer.errors import FerError
from fer.formatting import count, escape_markdown, percent
from fer.serve.batch import annotated_zip, photos_in_folder, photos_in_zip
from fer.serve.detection import DETECTORS, PHOTO_CONFIG, VIDEO_CONFIG, VIDEO_FILE_CONFIG, make_detector
from fer.serve.drawing import annotate, encode_image
from fer.serve.live import LiveProcessor, LiveResult
from fer.serve.prediction import (Classifier, FacePrediction, ImageResult, predict_file, results_for_people,
                                  results_table)
from fer.serve.served import ServedModel
from fer.serve.video import VIDEO_SUFFIXES, VideoConfig, VideoResult, is_video, predict_video, video_table
from pages.common import current_user, served_model, use_app_shell
from widgets.gradcam import show_face_heatmaps

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]
DETECTOR_LABELS = {"yunet": "YuNet (finds turned and small faces)", "haar": "Haar cascade (older; misses turned faces)",
                   "mtcnn": "MTCNN (slow)"}
DETECTOR_KEY = "predict_detector"
RESULTS_KEY = "predict_results"  # {(file id, model name, mtime, detector, whole image?): (ImageResult, JPEG bytes)}
WHOLE_IMAGE_KEY = "predict_whole_{}"  # Per uploaded file: classify the whole image when no face is found.
PROCESSOR_KEY = "predict_live_processor"  # This session's LiveProcessor (its tracks, FPS and last frame).
SNAPSHOT_KEY = "predict_snapshot"  # A LiveResult the user kept with the snapshot button.
VIDEO_KEY = "predict_video_result"  # ((file id, model name, mtime, detector), VideoResult) of the last video read.
VIDEO_TYPES = [suffix.lstrip(".") for suffix in VIDEO_SUFFIXES]
# 640×480 at 30 fps, what most webcams give (bench/bench_webcam_browser.py measures what a machine keeps
# up with). When a machine cannot keep up, the frames that wait are dropped (process_newest), so the
# picture stays live. A 720p or 1080p camera would only make the browser and aiortc encode and
# decode bigger frames.
CAMERA_CONSTRAINTS = {
    "video": {"width": {"ideal": 640}, "height": {"ideal": 480}, "frameRate": {"ideal": 30}},
    "audio": False,
}
THRESHOLD_KEY = "predict_uncertain_below"  # Faces whose top class is less likely than this are "uncertain".
SELECTED_KEY = "predict_faces_{}"  # Per uploaded file: the face table's selection (its row highlights a box).
BATCH_KEY = "predict_batch"  # ((where, model key, detector), [ImageResult], [(name, JPEG)]) of the last batch.
UNCERTAIN_DEFAULT = 50  # %: below an even chance, the top class is less likely than all the others together.
CHART_CONFIG = {"displayModeBar": False}
# Seconds between webcam status refreshes: the first label shows within this of the first analysed
# frame. 0.5 s took the first label from 3.4 to 2.3 s after START at the same frame rate. Once Keras
# is imported in the server (Grad-CAM, a model without ONNX), Streamlit clears its session after
# every run: there 0.5 s cut the webcam to 2.6 frames/s and 2 s kept 11.7 (docs/benchmarks.md).
STATUS_REFRESH_S = 0.5
STATUS_REFRESH_WITH_KERAS_S = 2.0


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


def uncertain_below() -> float:
    return st.session_state.get(THRESHOLD_KEY, UNCERTAIN_DEFAULT) / 100


def face_heading(number: int, face: FacePrediction) -> str:
    """"**Face 2** · happy 81%", with a word of caution for an uncertain face or a whole-image read."""
    title = "Whole image (no face found)" if face.whole_image else f"Face {number}"
    line = f"**{title}** · **{face.label}** {face.confidence:.0%}"
    return line + (" · uncertain" if face.confidence < uncertain_below() else "")


def show_faces(result_faces: Sequence[FacePrediction], chart_key: str) -> None:
    """One face: its probability chart. Several: one compact table, a bar per class, the number on each
    row the number drawn on its box; selecting a row highlights that box (returns through session state)."""
    if len(result_faces) <= 1:
        for number, face in enumerate(result_faces, start=1):
            st.markdown(face_heading(number, face))
            st.plotly_chart(probability_figure(face), key=f"{chart_key}-{number}", config=CHART_CONFIG)
        return
    threshold = uncertain_below()
    classes = list(result_faces[0].probabilities)
    rows = [{"face": number, "label": face.label, "sure": "uncertain" if face.confidence < threshold else "",
             **{name: round(face.probabilities[name] * 100, 1) for name in classes}}
            for number, face in enumerate(result_faces, start=1)]
    bars = {name: st.column_config.ProgressColumn(name, min_value=0, max_value=100, format="%.1f%%", width="small",
                                                  help=f"The probability of {name}") for name in classes}
    st.caption("Each row's number is drawn on its face's box. Select a row to highlight that face.")
    st.dataframe(rows, hide_index=True, key=chart_key, on_select="rerun", selection_mode="single-row",
                 column_config={"face": st.column_config.NumberColumn("#", width="small"),
                                "sure": st.column_config.TextColumn("flag", width="small",
                                                                    help="uncertain: below the threshold above"),
                                **bars})


def selected_face(chart_key: str) -> int | None:
    """The 0-based face whose row is selected in a `show_faces` table, else None."""
    selection = st.session_state.get(chart_key)
    rows = (selection or {}).get("selection", {}).get("rows") if isinstance(selection, dict) else None
    if rows is None and selection is not None and hasattr(selection, "selection"):
        rows = selection.selection.rows
    return rows[0] if rows else None


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


def summary(results: Sequence[ImageResult]) -> str:
    """"**3 images · 5 faces found** · 1 read as a whole image · 1 could not be read"."""
    found = sum(not face.whole_image for result in results for face in result.faces)
    whole = sum(any(face.whole_image for face in result.faces) for result in results)
    failed = sum(not result.ok for result in results)
    uncertain = sum(face.confidence < uncertain_below() for result in results for face in result.faces)
    return (f"**{count(len(results), 'image')} · {count(found, 'face')} found**"
            + (f" · {whole} read as a whole image (no face found)" if whole else "")
            + (f" · {uncertain} uncertain (below {percent(uncertain_below(), decimals=0)})" if uncertain else "")
            + (f" · {failed} could not be read" if failed else ""))


def show_results_table(results: Sequence[ImageResult], served: ServedModel, pictures: list[tuple[str, bytes]],
                       *, key: str) -> None:
    """The summary, every face's row (percentages, no empty "None" cells), its CSV and one zip of the photos."""
    st.markdown(summary(results))
    table = results_table(results, served.classes, uncertain_below=uncertain_below())
    with st.expander("Results table", expanded=len(results) > 1):
        st.dataframe(results_for_people(table), hide_index=True, column_config={
            "file": st.column_config.TextColumn("file", width="medium"),
            "note": st.column_config.TextColumn("note", width="medium",
                                                help="Why a row has no face, or how it was read"),
        })
        left, right = st.columns(2)
        left.download_button("Download results (CSV)", table.to_csv(index=False).encode(), file_name="predictions.csv",
                             mime="text/csv", icon=":material/download:", key=f"download-{key}-csv")
        if pictures:
            right.download_button(f"Download {count(len(pictures), 'annotated photo')} (.zip)",
                                  annotated_zip(pictures), file_name="annotated-photos.zip", mime="application/zip",
                                  icon=":material/folder_zip:", key=f"download-{key}-zip")


def data_roots_of_user():
    """The folders this user's browser may read from (fer.data.roots), looked up when a folder is asked for."""
    from fer.data.roots import data_roots
    from pages.common import accounts_configured

    return data_roots(accounts=accounts_configured(), user=current_user())


def batch_section(served: ServedModel, detector) -> None:
    """Many photos at once, from a folder on the server (inside the data roots) or one zip: a table and a zip."""
    with st.expander("Many photos at once: a folder on the server, or a zip"):
        with st.form("predict_batch_form", border=False):
            folder = st.text_input("Folder on the server", key="predict_batch_folder",
                                   help="Inside the folders this server opens datasets from; sub-folders are read too.")
            archive = st.file_uploader("or a zip of photos", type=["zip"], key="predict_batch_zip")
            submitted = st.form_submit_button("Read them", icon=":material/photo_library:")
        if submitted:
            try:
                photos = (photos_in_zip(archive.getvalue()) if archive is not None
                          else photos_in_folder(folder, data_roots_of_user()))
            except FerError as error:
                st.error(f"Could not read the photos: {escape_markdown(str(error))}")
                return
            bar = st.progress(0.0, text="Analysing photos…")
            results, pictures = [], []
            for number, photo in enumerate(photos, start=1):
                result = predict_file(photo.name, photo.data, served.classifier, detector)
                if result.image is not None:
                    pictures.append((photo.name, encode_image(annotate(result.image, result.faces, numbered=True),
                                                              "JPEG")))
                results.append(replace(result, image=None))
                bar.progress(number / len(photos), text=f"Analysed {number} of {len(photos)}")
            bar.empty()
            st.session_state[BATCH_KEY] = (results, pictures)
        stored = st.session_state.get(BATCH_KEY)
        if stored:
            show_results_table(stored[0], served, stored[1], key="batch")


def live_processor(classifier: Classifier, detector) -> LiveProcessor:
    """This session's processor, pointed at the current model and detector."""
    processor = st.session_state.get(PROCESSOR_KEY)
    if processor is None:
        processor = st.session_state[PROCESSOR_KEY] = LiveProcessor(classifier, detector)
    processor.configure(classifier, detector)
    return processor


def live_status(processor: LiveProcessor, playing: bool) -> None:
    """The labels and rate of the processor's latest result (written by the video thread)."""
    result = processor.latest()
    if processor.error:
        st.error(f"Frames are not being analysed: {processor.error}")
    if not playing or result is None or result.age() > 3:
        st.caption("Press **START** and allow the camera: labels and the processed frame rate appear here.")
        return
    processed, camera = st.columns(2)
    processed.metric("Processed frames per second", f"{result.fps:.1f}")
    camera.metric("Camera frames per second", f"{result.camera_fps:.1f}",
                  help="What the camera delivers. When the machine cannot analyse every frame, the ones that "
                       "wait are dropped rather than shown late.")
    st.caption(f"{result.frame_index:,} frames analysed since START" + (
        f", {result.dropped:,} dropped to stay live" if result.dropped else ""))
    if not result.faces:
        st.markdown("Live: no face in view")
    for tracked in result.faces:
        face = tracked.prediction
        st.markdown(f"Live: face {tracked.track_id} · **{face.label}** {face.confidence:.0%}")


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


def show_snapshot(snapshot: LiveResult) -> None:
    with st.container(border=True):
        st.markdown(f"**Snapshot** · frame {snapshot.frame_index} · {snapshot.fps:.1f} frames/s")
        left, right = st.columns([3, 2])
        left.image(snapshot.frame, width="stretch")
        left.download_button("Download snapshot", encode_image(snapshot.frame, "JPEG"), file_name="snapshot.jpg",
                             mime="image/jpeg", icon=":material/download:", key="download-snapshot")
        with right:
            if not snapshot.faces:
                st.warning("No face was in view.")
            show_faces([tracked.prediction for tracked in snapshot.faces], "chart-snapshot")


def webcam_tab(classifier: Classifier, detector) -> None:
    processor = live_processor(classifier, detector)
    if detector.name == "mtcnn":
        st.caption("MTCNN manages only a few frames per second on a CPU; the Haar cascade keeps up with the camera.")

    async def on_frames(frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        # Runs on streamlit-webrtc's worker thread, never the script's: no st.* calls here. It gets every
        # frame that arrived while the last one was analysed; only the newest is analysed and sent back,
        # so a slow machine drops frames rather than lag. The result reaches the page through the
        # processor, which hands it over behind a lock.
        annotated = processor.process_newest([frame.to_ndarray(format="rgb24") for frame in frames])
        return [av.VideoFrame.from_ndarray(annotated, format="rgb24")]

    context = webrtc_streamer(
        key="predict-webcam", mode=WebRtcMode.SENDRECV, queued_video_frames_callback=on_frames,
        rtc_configuration={"iceServers": []},  # Localhost needs no STUN server: works offline.
        media_stream_constraints=CAMERA_CONSTRAINTS, async_processing=True,
    )
    # A fragment refreshes the status from the processor while the camera plays, and never otherwise:
    # each refresh is a Streamlit run, which the video thread shares two cores with.
    playing = context.state.playing
    refresh = STATUS_REFRESH_WITH_KERAS_S if "keras" in sys.modules else STATUS_REFRESH_S  # Streamlit's own test.
    st.fragment(live_status, run_every=refresh if playing else None)(processor, playing)
    snap, clear = st.columns([1, 4])
    if snap.button("Snapshot", icon=":material/photo_camera:", disabled=not context.state.playing,
                   help="Keep the current frame and its labels"):
        latest = processor.latest()
        if latest is None:
            st.warning("No frame has been analysed yet: wait for a label, then take the snapshot.")
        else:
            st.session_state[SNAPSHOT_KEY] = latest
    if st.session_state.get(SNAPSHOT_KEY) is not None:
        if clear.button("Clear snapshot"):
            del st.session_state[SNAPSHOT_KEY]
        else:
            show_snapshot(st.session_state[SNAPSHOT_KEY])


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
