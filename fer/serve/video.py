"""Read the expressions in a video file: sample frames, detect and classify faces, follow each face.

Frames are decoded one at a time by PyAV (FFmpeg) and dropped after use; only the small per-frame
predictions are kept, so a long clip costs no more memory than a short one. Every frame must be
decoded (video codecs predict frames from earlier ones), but only sampled frames are converted to
RGB, searched for faces and classified. Faces are followed across sampled frames by box overlap
with the webcam's tracker (`fer.serve.live.FaceTracks`), so each face gets its own timeline.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, NamedTuple

import numpy as np

from fer.errors import FerError
from fer.labels import CLASSES
from fer.serve.detection import FaceDetector
from fer.serve.live import FaceTracks, LiveConfig, TrackedFace
from fer.serve.drawing import annotate
from fer.serve.prediction import Classifier, classify_faces, face_json

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".gif")


@dataclass(frozen=True)
class VideoConfig:
    """How a video file is sampled, capped and tracked."""

    # Expressions change over a few tenths of a second; 10 samples a second catches them at a third
    # of the cost of reading every frame of a 30 fps clip.
    sample_fps: float = 10.0
    # The cap: about 1,200 analysed frames, roughly a minute of work on a 2-core machine.
    max_seconds: float = 120.0
    max_side: int = 1280  # Frames are analysed at most this big: 720p faces stay findable, 4K costs a quarter.
    # Every frame is decoded at its full size before it is scaled, so a video is refused above this per
    # frame (judged from the stream's header, and enforced by FFmpeg's own max_pixels for the rest): 4K
    # DCI fits, an 8K frame (33 MP, 50 MB decoded, several in flight on FFmpeg's threads) does not.
    max_pixels: int = 4096 * 4096
    # Decoded frames, sampled or not: 120 s at 60 fps. A file claiming 1,000 fps cannot make the cap on
    # seconds cost 1,000 decodes a second.
    max_frames: int = 7200
    # Wall-clock seconds of work on one video; a longer run stops there and keeps what it found.
    max_work_seconds: float = 300.0
    # Same face from one sample to the next: boxes overlapping this much, gaps up to 8 samples (0.8 s).
    tracking: LiveConfig = LiveConfig(smoothing_frames=1, match_iou=0.3, max_missed_frames=8)
    clip: bool = True  # Also encode the sampled frames, annotated, as an H.264 .mp4 to download.
    clip_max_side: int = 640  # The annotated clip's longer side: small downloads, labels still legible.

    def __post_init__(self):
        if not 0 < self.sample_fps <= 60:
            raise ValueError(f"sample_fps must be in (0, 60], got {self.sample_fps}")
        for name in ("max_seconds", "max_pixels", "max_frames", "max_work_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be above 0, got {getattr(self, name)}")


class VideoFrame(NamedTuple):
    """One sampled frame: its time in seconds from the start, and the tracked faces in it."""

    time: float
    faces: tuple[TrackedFace, ...]


@dataclass(frozen=True)
class VideoResult:
    """What one video file gave: per sampled frame, its tracked faces; plus an annotated clip."""

    name: str
    width: int  # Of the frames as analysed (after any downscaling).
    height: int
    duration: float  # Seconds of video read (the whole clip, or up to the cap).
    sample_fps: float
    frames: tuple[VideoFrame, ...]
    classes: tuple[str, ...] = CLASSES
    clip: bytes | None = None  # H.264 .mp4 of the annotated sampled frames, if asked for.
    notes: tuple[str, ...] = field(default=())  # e.g. "only the first 120 s were read".

    @property
    def track_ids(self) -> list[int]:
        """Every tracked face, in the order they first appear."""
        return list(dict.fromkeys(face.track_id for frame in self.frames for face in frame.faces))

    def timeline(self, track_id: int) -> list[tuple[float, TrackedFace]]:
        """(time, face) for each sampled frame where this face was seen."""
        return [(frame.time, face) for frame in self.frames for face in frame.faces if face.track_id == track_id]

    def shares(self) -> dict[int, dict[str, float]]:
        """Per tracked face, the share of its sampled frames read as each class (in class order)."""
        shares = {}
        for track_id in self.track_ids:
            labels = [face.prediction.label for _, face in self.timeline(track_id)]
            shares[track_id] = {name: labels.count(name) / len(labels) for name in self.classes}
        return shares


def is_video(name: str, data: bytes | None = None) -> bool:
    """True for a video file name; a .gif counts only when animated (a still GIF is a photo)."""
    suffix = Path(name).suffix.lower()
    if suffix != ".gif":
        return suffix in VIDEO_SUFFIXES
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data) if data is not None else name) as image:
            return getattr(image, "n_frames", 1) > 1
    except Exception:  # Missing or not a readable GIF: the photo path reports it in words.
        return False


def predict_video(source: str | Path | bytes | BinaryIO, classifier: Classifier, detector: FaceDetector, *,
                  name: str | None = None, config: VideoConfig = VideoConfig(),
                  progress: Callable[[float, float], None] | None = None) -> VideoResult:
    """Sample, detect, classify and track the faces of a video file (path, bytes or binary file).

    `progress(seconds_read, seconds_to_read)` is called after each sampled frame. A file that is not
    a readable video raises FerError with a one-line message.
    """
    import av

    name = name or (str(source) if isinstance(source, (str, Path)) else "video")
    try:
        container = av.open(io.BytesIO(source) if isinstance(source, bytes) else source, mode="r")
    except (FileNotFoundError, IsADirectoryError, PermissionError) as error:  # As a photo's would say.
        raise FerError(f"cannot read the file ({error.strerror or type(error).__name__})") from error
    except (av.FFmpegError, OSError, ValueError) as error:
        raise FerError("not a video this app can read; it may be damaged or cut short "
                       f"(FFmpeg: {_reason(error)})") from error
    with container:
        if not container.streams.video:
            raise FerError("the file holds no video track")
        stream = container.streams.video[0]
        _check_frame_size(stream, config)
        stream.thread_type = "AUTO"  # FFmpeg decodes on several threads.
        # FFmpeg refuses any frame above the cap itself, so a stream that grows mid-file stops there too.
        stream.codec_context.options = {**stream.codec_context.options, "max_pixels": str(config.max_pixels)}
        total = _seconds_to_read(container, stream, config.max_seconds)
        tracks = FaceTracks(config.tracking)
        encoder = _ClipEncoder(config) if config.clip else None
        reading = _Reading()
        frames, shape = [], None
        try:
            for time, rgb in _sampled(container, stream, config, reading):
                predictions = classify_faces(rgb, detector.detect(rgb), classifier)
                faces = tuple(tracks.update(predictions))
                frames.append(VideoFrame(round(time, 3), faces))
                shape = rgb.shape
                if encoder:
                    encoder.add(annotate(rgb, [face.prediction for face in faces]))
                if progress:
                    progress(min(time, total), total)
        except av.FFmpegError as error:
            if not frames:
                raise FerError(f"the video could not be decoded ({_reason(error)})") from error
            reading.notes.append(f"the file is damaged after {frames[-1].time:.1f} s: only what came before was read")
            reading.damaged = True
        if not frames:
            raise FerError("the video has no frame that could be decoded")
        clip = encoder.finish() if encoder else None
    if reading.capped:
        duration = config.max_seconds
    elif reading.stopped:
        duration = reading.last_time
    elif reading.damaged:
        duration = frames[-1].time
    else:
        duration = max(total if total < config.max_seconds else 0.0, reading.last_time)
    return VideoResult(name, shape[1], shape[0], round(duration, 3), config.sample_fps, tuple(frames),
                       classifier.classes, clip, tuple(reading.notes))


class _Reading:
    """What happened while reading: the cap reached, damage found, the last frame's time, notes for the user."""

    def __init__(self):
        self.capped = self.damaged = self.stopped = False  # Stopped: by the frame or the work cap.
        self.last_time = 0.0
        self.notes: list[str] = []


def _reason(error: Exception) -> str:
    """FFmpeg's own words for what went wrong, without error codes or file names."""
    text = getattr(error, "strerror", None) or str(error)
    return text.rstrip(".").replace("\n", " ")[:160] or type(error).__name__


def _seconds_to_read(container, stream, cap: float) -> float:
    """The clip's length, up to the cap (for progress); the cap when the file does not say."""
    if stream.duration is not None and stream.time_base is not None:
        length = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        length = container.duration / 1_000_000  # av.time_base: microseconds.
    else:
        return cap
    return min(length, cap)


def _sampled(container, stream, config: VideoConfig, reading: _Reading) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds from the first frame, (H, W, 3) RGB) for frames `config.sample_fps` apart, up to the cap."""
    start, next_time, step, index = None, 0.0, 1.0 / config.sample_fps, 0
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    started = time.monotonic()
    for frame in container.decode(stream):
        if index and (index >= config.max_frames or time.monotonic() - started > config.max_work_seconds):
            reading.stopped = True
            cap = (f"{config.max_frames:,} frames" if index >= config.max_frames
                   else f"{config.max_work_seconds:g} s of work")
            reading.notes.append(f"only the first {reading.last_time:.1f} s were read (the cap for one video: {cap})")
            return
        moment = frame.time if frame.time is not None else index / rate
        index += 1
        start = moment if start is None else start
        moment -= start
        if moment >= config.max_seconds:
            reading.capped = True
            reading.notes.append(f"only the first {config.max_seconds:g} s were read (the cap for one video)")
            return
        reading.last_time = moment
        if moment + 1e-6 < next_time:
            continue  # Decoded (later frames depend on it) but not analysed.
        next_time = (math.floor(moment / step + 1e-6) + 1) * step
        width, height = _fit(frame.width, frame.height, config.max_side)
        rgb = frame.to_ndarray(format="rgb24", width=width, height=height)
        # Phones store portrait video sideways with a rotation to apply on display (counterclockwise
        # degrees; np.rot90 turns counterclockwise too): faces must be upright for the detector.
        turns = round((frame.rotation or 0) / 90) % 4
        yield moment, np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _check_frame_size(stream, config: VideoConfig) -> None:
    """Refuse a video whose frames are larger than the cap, from its header, before any is decoded."""
    width, height = stream.codec_context.width or 0, stream.codec_context.height or 0
    if width * height > config.max_pixels:
        raise FerError(f"the video's frames are {width:,}×{height:,} pixels; this app reads videos up to "
                       f"{config.max_pixels / 1e6:.1f} megapixels a frame (4K): scale it down first")


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled so the longer side is at most `max_side`, kept even for YUV 4:2:0."""
    factor = min(1.0, max_side / max(width, height))
    return max(2, int(width * factor) // 2 * 2), max(2, int(height * factor) // 2 * 2)


class _ClipEncoder:
    """Annotated frames → an in-memory H.264 .mp4 at the sampling rate (opened on the first frame)."""

    def __init__(self, config: VideoConfig):
        self._config = config
        self._buffer = io.BytesIO()
        self._container = None
        self._stream = None

    def add(self, rgb: np.ndarray) -> None:
        import av
        from fractions import Fraction

        if self._container is None:
            self._container = av.open(self._buffer, mode="w", format="mp4")
            rate = Fraction(self._config.sample_fps).limit_denominator(1000)
            self._stream = self._container.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height = _fit(rgb.shape[1], rgb.shape[0], self._config.clip_max_side)
            self._stream.pix_fmt = "yuv420p"  # What browsers play.
            self._stream.options = {"preset": "veryfast", "crf": "26"}
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(
            width=self._stream.width, height=self._stream.height, format="yuv420p")
        self._container.mux(self._stream.encode(frame))

    def finish(self) -> bytes | None:
        if self._container is None:
            return None
        self._container.mux(self._stream.encode())  # Flush the encoder's delayed frames.
        self._container.close()
        return self._buffer.getvalue()


# --- Tables and JSON ----------------------------------------------------------------------------


def video_json(result: VideoResult) -> dict:
    """A JSON-ready dict: the file, its size and length, and per sampled frame its faces.

    Each face is a photo's face object (`face_json`) with its "track" number added.
    """
    return {
        "file": result.name,
        "error": None,
        "width": result.width,
        "height": result.height,
        "duration": result.duration,
        "sample_fps": result.sample_fps,
        "notes": list(result.notes),
        "frames": [
            {"time": frame.time,
             "faces": [{**face_json(face.prediction), "track": face.track_id} for face in frame.faces]}
            for frame in result.frames
        ],
    }


def video_table(result: VideoResult):
    """A pandas DataFrame, one row per face per sampled frame (and one per frame without a face)."""
    import pandas as pd

    rows = []
    for frame in result.frames:
        if not frame.faces:
            rows.append({"time": frame.time, "face": pd.NA, "note": "no face"})
        for tracked in frame.faces:
            face = tracked.prediction
            rows.append({"time": frame.time, "face": tracked.track_id, **face.box._asdict(), "label": face.label,
                         "confidence": face.confidence, **face.probabilities, "note": ""})
    columns = ["time", "face", "x", "y", "width", "height", "label", "confidence", *result.classes, "note"]
    table = pd.DataFrame(rows, columns=columns)
    for column in ("face", "x", "y", "width", "height"):
        table[column] = table[column].astype("Int64")  # Integers, with blanks for frames without a face.
    return table


def summary_lines(result: VideoResult) -> list[str]:
    """A few lines for the command line: length, faces, and each face's most frequent expressions."""
    seen = sum(bool(frame.faces) for frame in result.frames)
    lines = [f"{result.name}: {result.duration:.1f} s, {len(result.frames)} frames analysed "
             f"({result.sample_fps:g}/s), a face in {seen}; {len(result.track_ids)} face(s) tracked"]
    for track_id, shares in result.shares().items():
        timeline = result.timeline(track_id)
        top = sorted(shares.items(), key=lambda item: -item[1])[:3]
        lines.append(f"{result.name}: face {track_id} ({timeline[0][0]:.1f}–{timeline[-1][0]:.1f} s): "
                     + ", ".join(f"{label} {share:.0%}" for label, share in top if share > 0))
    lines += [f"{result.name}: note: {note}" for note in result.notes]
    return lines

