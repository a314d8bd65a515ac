"""The webcam path: per-frame prediction, smoothed per face over recent frames, with an FPS meter.

Speed: the whole frame is searched for faces every few frames; in between, each known face is
looked for only in a small region around its last box (`search_near`), which is what keeps a
2-core machine near a 30 fps camera's rate. When it cannot keep up, the frames that queued up
while one was analysed are dropped, not analysed late (`process_newest`): the picture stays live
and the page shows the processed rate beside the camera's.

streamlit-webrtc calls the page's frame callback on its own worker thread. `LiveProcessor.process`
is that callback's body; it keeps the newest result behind a lock, and the page's script thread
reads it with `latest()`. Nothing here touches Streamlit.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import cv2
import numpy as np

from fer.errors import in_words
from fer.serve.detection import Box, Face, FaceDetector
from fer.serve.drawing import annotate
from fer.serve.prediction import Classifier, FacePrediction, classify_faces


@dataclass(frozen=True)
class LiveConfig:
    """How predictions are stabilised from frame to frame."""

    smoothing_frames: int = 6  # Average over 0.2-0.4 s at 30-15 fps: labels stop flickering but follow a change.
    match_iou: float = 0.3  # A face overlapping a track's last box this much is the same face.
    max_missed_frames: int = 8  # Keep a track through short detector misses (blinks, motion blur).
    fps_window: int = 30  # Frames the FPS figure averages over.
    # Between full-frame searches, faces are looked for only around where they just were: a small
    # region scaled so the face is about `region_face_pixels` wide costs ~1 ms instead of ~20 ms.
    full_search_every: int = 5  # Whole-frame detection 3-6×/s at 15-30 fps: new faces appear within 1/3 s.
    region_margin: float = 0.5  # The region extends the last box by half its size on every side.
    region_face_pixels: int = 64  # Comfortably above the Haar cascade's 24 px window.
    restart_after: float = 2.0  # Seconds without frames after which a stream counts as new (tracks, FPS reset).

    def __post_init__(self):
        if self.smoothing_frames < 1:
            raise ValueError(f"smoothing_frames must be at least 1, got {self.smoothing_frames}")
        if not 0 < self.match_iou <= 1:
            raise ValueError(f"match_iou must be in (0, 1], got {self.match_iou}")
        if self.full_search_every < 1:
            raise ValueError(f"full_search_every must be at least 1, got {self.full_search_every}")


class TrackedFace(NamedTuple):
    """A face seen in the current frame, its track number, and its smoothed prediction."""

    track_id: int
    prediction: FacePrediction


class _Track:
    def __init__(self, track_id: int, box: Box, window: int):
        self.track_id = track_id
        self.box = box
        self.missed = 0
        self.history: collections.deque[np.ndarray] = collections.deque(maxlen=window)


class FaceTracks:
    """Follows faces across frames by box overlap and averages each face's probabilities."""

    def __init__(self, config: LiveConfig = LiveConfig()):
        self.config = config
        self._tracks: list[_Track] = []
        self._next_id = 1

    def update(self, predictions: Sequence[FacePrediction]) -> list[TrackedFace]:
        """Match this frame's predictions to tracks; returns them smoothed, in the input order."""
        matches = self._match([p.box for p in predictions])
        tracked, seen = [], set()
        for index, prediction in enumerate(predictions):
            track = matches.get(index)
            if track is None:
                track = _Track(self._next_id, prediction.box, self.config.smoothing_frames)
                self._next_id += 1
                self._tracks.append(track)
            track.box, track.missed = prediction.box, 0
            track.history.append(np.array(list(prediction.probabilities.values()), np.float64))
            tracked.append(TrackedFace(track.track_id, _smoothed(prediction, track.history)))
            seen.add(track.track_id)
        for track in self._tracks:
            if track.track_id not in seen:
                track.missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= self.config.max_missed_frames]
        return tracked

    def _match(self, boxes: Sequence[Box]) -> dict[int, _Track]:
        """Greedy matching, best overlap first: {index of box: its track}."""
        pairs = sorted(
            ((box.iou(track.box), index, track) for index, box in enumerate(boxes) for track in self._tracks),
            key=lambda pair: pair[0], reverse=True,
        )
        matches: dict[int, _Track] = {}
        used: set[int] = set()
        for overlap, index, track in pairs:
            if overlap < self.config.match_iou:
                break
            if index not in matches and track.track_id not in used:
                matches[index] = track
                used.add(track.track_id)
        return matches

    def visible(self) -> list[Box]:
        """Boxes of the faces matched in the latest frame."""
        return [track.box for track in self._tracks if track.missed == 0]

    def reset(self) -> None:
        self._tracks, self._next_id = [], 1


def search_near(frame: np.ndarray, boxes: Sequence[Box], detector: FaceDetector,
                config: LiveConfig = LiveConfig()) -> list[Face] | None:
    """Re-find each known face in a small region around its last box; None if any is not found.

    Each region is scaled so the face is about `config.region_face_pixels` wide, which keeps
    the detector's search tiny. None tells the caller to search the whole frame instead.
    """
    height, width = frame.shape[:2]
    found = []
    for box in boxes:
        pad_x, pad_y = int(box.width * config.region_margin), int(box.height * config.region_margin)
        left, top = max(box.x - pad_x, 0), max(box.y - pad_y, 0)
        right, bottom = min(box.x + box.width + pad_x, width), min(box.y + box.height + pad_y, height)
        if right - left < 2 or bottom - top < 2:
            return None
        scale = min(1.0, config.region_face_pixels / max(box.width, box.height, 1))
        region = frame[top:bottom, left:right]
        if scale < 1.0:
            region = cv2.resize(region, (max(1, round((right - left) * scale)), max(1, round((bottom - top) * scale))),
                                interpolation=cv2.INTER_AREA)
        candidates = detector.detect(region)
        if not candidates:
            return None
        # (scaled region) → frame pixels, keeping the candidate that best matches the old box.
        mapped = [face._replace(box=_shifted(face.box.scaled(1 / scale), left, top),
                                landmarks=None if face.landmarks is None else {
                                    name: (x / scale + left, y / scale + top)
                                    for name, (x, y) in face.landmarks.items()})
                  for face in candidates]
        found.append(max(mapped, key=lambda face: face.box.iou(box)))
    return found


def _shifted(box: Box, dx: int, dy: int) -> Box:
    return Box(box.x + dx, box.y + dy, box.width, box.height)


def _smoothed(prediction: FacePrediction, history: collections.deque) -> FacePrediction:
    mean = np.mean(history, axis=0)
    names = list(prediction.probabilities)
    best = int(np.argmax(mean))
    return FacePrediction(prediction.box, names[best], float(mean[best]),
                          {name: float(p) for name, p in zip(names, mean)}, prediction.score)


class FpsMeter:
    """Frames per second over the last `window` frames."""

    def __init__(self, window: int = 30, clock: Callable[[], float] = time.perf_counter):
        self._times: collections.deque[float] = collections.deque(maxlen=window)
        self._clock = clock

    def tick(self) -> float:
        """Record a frame now; returns the current rate."""
        self._times.append(self._clock())
        return self.fps

    @property
    def count(self) -> int:
        """Frames recorded in the window."""
        return len(self._times)

    @property
    def fps(self) -> float:
        if len(self._times) < 2 or self._times[-1] == self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])


@dataclass(frozen=True)
class LiveResult:
    """The newest processed frame: the annotated picture, its faces, the rate, and when."""

    frame: np.ndarray  # (H, W, 3) RGB with boxes and labels drawn.
    faces: tuple[TrackedFace, ...]
    fps: float
    frame_index: int
    time: float  # The clock's value when the frame was done.
    camera_fps: float = 0.0  # Frames a second the camera delivered, analysed or dropped.
    dropped: int = 0  # Frames skipped since the stream started because a newer one was waiting.

    def age(self, now: float | None = None) -> float:
        """Seconds since this frame was processed (by time.monotonic unless told)."""
        return (time.monotonic() if now is None else now) - self.time


class LiveProcessor:
    """Per-stream state for the webcam: classifier, detector, face tracks, FPS and the latest result.

    `process` runs on the video worker thread; `latest` and `configure` on the page's thread.
    """

    def __init__(self, classifier: Classifier, detector: FaceDetector, config: LiveConfig = LiveConfig(),
                 clock: Callable[[], float] = time.monotonic):
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()  # Guards everything below against the two threads.
        self._classifier, self._detector = classifier, detector
        self._tracks = FaceTracks(config)
        self._fps = FpsMeter(config.fps_window, clock)
        self._camera = FpsMeter(config.fps_window, clock)
        self._dropped = 0
        self._latest: LiveResult | None = None
        self._frames = 0
        self.error: str | None = None  # The last frame's failure, shown by the page; None when fine.

    def configure(self, classifier: Classifier, detector: FaceDetector) -> None:
        """Switch model or detector (the page calls this on every run); tracks restart on a change."""
        with self._lock:
            if classifier is not self._classifier or detector is not self._detector:
                self._classifier, self._detector = classifier, detector
                self._tracks.reset()

    def process(self, frame: np.ndarray) -> np.ndarray:
        """Predict, smooth and draw one (H, W, 3) RGB frame; returns the annotated frame.

        A failure leaves the frame as it was and sets `error`: the video keeps playing.
        """
        with self._lock:
            classifier, detector = self._classifier, self._detector
            if self._latest is not None and self._clock() - self._latest.time > self.config.restart_after:
                self._restart_rates()
            known = self._tracks.visible()
            full_search = not known or self._frames % self.config.full_search_every == 0
        try:
            faces = None if full_search else search_near(frame, known, detector, self.config)
            if faces is None:
                faces = detector.detect(frame)
            predictions = classify_faces(frame, faces, classifier)
        except Exception as error:  # Seen by the user on the page; raising would only kill this frame.
            logging.getLogger(__name__).error("Analysing a webcam frame failed", exc_info=error)
            self.error = in_words(error)  # The page says "Frames are not being analysed: …".
            return frame
        self.error = None
        with self._lock:
            tracked = self._tracks.update(predictions)
            fps = self._fps.tick()
            self._frames += 1
            index = self._frames
            if not self._camera.count:  # Frames handed to `process` alone: each one came from the camera.
                camera_fps, dropped = fps, 0
            else:
                camera_fps, dropped = self._camera.fps, self._dropped
        annotated = annotate(frame, [face.prediction for face in tracked])
        result = LiveResult(annotated, tuple(tracked), fps, index, self._clock(), camera_fps, dropped)
        with self._lock:
            self._latest = result
        return annotated

    def process_newest(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Of the frames that arrived while the last one was analysed, count all and analyse the newest.

        Dropping the older ones keeps the picture at the camera's present moment when the machine is
        slower than the camera; a queue would fall further behind with every frame.
        """
        if not frames:
            raise ValueError("process_newest needs at least one frame")
        with self._lock:
            if self._latest is not None and self._clock() - self._latest.time > self.config.restart_after:
                self._restart_rates()
                self._latest = None  # Restarted here: `process` must not restart again and lose these counts.
            for _ in frames:
                self._camera.tick()
            self._dropped += len(frames) - 1
        return self.process(frames[-1])

    def _restart_rates(self) -> None:
        """A new stream after a pause: tracks and rates start over (the caller holds the lock)."""
        self._tracks.reset()
        self._fps = FpsMeter(self.config.fps_window, self._clock)
        self._camera = FpsMeter(self.config.fps_window, self._clock)
        self._dropped = 0

    def latest(self) -> LiveResult | None:
        """The newest result, or None before the first frame."""
        with self._lock:
            return self._latest

    def reset(self) -> None:
        """Forget tracks, rate and the last result (a new stream starts)."""
        with self._lock:
            self._restart_rates()
            self._latest, self._frames = None, 0
