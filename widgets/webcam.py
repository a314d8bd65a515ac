"""Predict's Webcam tab: streamlit-webrtc sends the camera's frames to a fer.serve.live.LiveProcessor on its
worker thread; a fragment shows the latest labels and both frame rates; a snapshot keeps one frame.
"""

from __future__ import annotations

import sys

import av
import streamlit as st
import streamlit_webrtc

from fer.serve.drawing import encode_image
from fer.serve.live import LiveProcessor, LiveResult
from fer.serve.prediction import Classifier
from widgets.face_results import show_faces

PROCESSOR_KEY = "predict_live_processor"  # This session's LiveProcessor (its tracks, FPS and last frame).
SNAPSHOT_KEY = "predict_snapshot"  # A LiveResult the user kept with the snapshot button.
# 640×480 at 30 fps, what most webcams give (bench/bench_webcam_browser.py measures what a machine keeps
# up with). When a machine cannot keep up, the frames that wait are dropped (process_newest), so the
# picture stays live. A 720p or 1080p camera would only make the browser and aiortc encode and
# decode bigger frames.
CAMERA_CONSTRAINTS = {
    "video": {"width": {"ideal": 640}, "height": {"ideal": 480}, "frameRate": {"ideal": 30}},
    "audio": False,
}
# Seconds between webcam status refreshes: the first label shows within this of the first analysed
# frame. 0.5 s took the first label from 3.4 to 2.3 s after START at the same frame rate. Once Keras
# is imported in the server (Grad-CAM, a model without ONNX), Streamlit clears its session after
# every run: there 0.5 s cut the webcam to 2.6 frames/s and 2 s kept 11.7 (docs/benchmarks.md).
STATUS_REFRESH_S = 0.5
STATUS_REFRESH_WITH_KERAS_S = 2.0


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

    context = streamlit_webrtc.webrtc_streamer(  # Looked up on the module, where page tests put a stand-in.
        key="predict-webcam", mode=streamlit_webrtc.WebRtcMode.SENDRECV, queued_video_frames_callback=on_frames,
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
