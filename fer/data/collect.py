"""Collected faces: a class-folders dataset a person builds in the browser, each face on disk as it is taken.

    user_datasets_dir(user)/<set>/collection.json   the class names, in the order they were typed
    user_datasets_dir(user)/<set>/<class>/*.png      one 48×48 grayscale face per file

The folder opens as any class-folders dataset (fer.data.datasets), so it can be the active dataset,
trained on and downloaded as a zip. Faces come from a webcam frame (the largest face in view) or an
uploaded photo (every face in it), found and levelled by fer.serve.detection as on Predict. Every name
comes from a browser: set and class names are reduced to plain characters, every path is checked to
stay inside the set's folder, and a face is written to a new file only, never over one.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image

from fer.errors import FerError
from fer.labels import IMAGE_SIZE
from fer.paths import user_datasets_dir

MANIFEST = "collection.json"
MAX_NAME = 40  # Characters in a set or class name: enough for "confused-at-the-board", short enough for a tab.
MAX_CLASSES = 20  # A few-shot task has a handful; more would not fit a page of buttons.
MAX_FACES_PER_CLASS = 1000  # About 2 kB each: bounds the folder, its zip and the page's grid.
_UNSAFE = re.compile(r"[^a-z0-9_-]+")


def safe_name(text: str, what: str = "name") -> str:
    """`text` as a folder name: lower case letters, digits, '-' and '_' (others become '-'), at most MAX_NAME.

    FerError when nothing usable is left ('../..' or '???')."""
    name = _UNSAFE.sub("-", str(text).strip().lower()).strip("-_")[:MAX_NAME].strip("-_")
    if not name:
        raise FerError(f"the {what} '{str(text)[:MAX_NAME]}' has no letters or digits; use letters, digits, "
                       "'-' or '_'")
    return name


class Sample(NamedTuple):
    """One collected face: its class and file."""

    class_name: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class FaceSet:
    """One collected set of faces: a class-folders dataset under the user's datasets folder."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    def classes(self) -> tuple[str, ...]:
        """The class names, in the order they were added (folders found on disk included)."""
        try:
            listed = json.loads(self.manifest.read_text()).get("classes", [])
        except (OSError, ValueError, AttributeError):
            listed = []
        on_disk = sorted(path.name for path in self.root.iterdir() if path.is_dir()) if self.root.is_dir() else []
        return tuple(dict.fromkeys([name for name in listed if isinstance(name, str) and _UNSAFE.sub("", name) == name
                                    and name] + on_disk))

    def add_classes(self, names: list[str] | str) -> tuple[str, ...]:
        """Add class names (a list, or one string separated by commas); returns every class."""
        if isinstance(names, str):
            names = [part for part in names.split(",") if part.strip()]
        classes = list(self.classes())
        for name in names:
            cleaned = safe_name(name, "class name")
            if cleaned not in classes:
                classes.append(cleaned)
        if len(classes) > MAX_CLASSES:
            raise FerError(f"a set holds at most {MAX_CLASSES} classes; this would make {len(classes)}")
        self._write_manifest(classes)
        return tuple(classes)

    def remove_class(self, name: str) -> None:
        """Remove a class and its faces."""
        folder = self._class_folder(name)
        if folder.is_dir():
            shutil.rmtree(folder)
        self._write_manifest([other for other in self.classes() if other != name])

    def samples(self, class_name: str) -> list[Sample]:
        """The class's faces, oldest first."""
        folder = self._class_folder(class_name)
        files = sorted(folder.glob("*.png")) if folder.is_dir() else []
        return [Sample(class_name, path) for path in files]

    def counts(self) -> dict[str, int]:
        return {name: len(self.samples(name)) for name in self.classes()}

    def add_faces(self, class_name: str, faces: list[np.ndarray], source: str) -> list[Sample]:
        """Save 48×48 grayscale `faces` as new files of `class_name` (each a new name: nothing is overwritten)."""
        if class_name not in self.classes():
            raise FerError(f"there is no class '{class_name}' in {self.name}; add it first")
        folder = self._class_folder(class_name)
        room = MAX_FACES_PER_CLASS - len(self.samples(class_name))
        if len(faces) > room:
            raise FerError(f"'{class_name}' holds at most {MAX_FACES_PER_CLASS} faces; {max(room, 0)} more fit")
        folder.mkdir(parents=True, exist_ok=True)
        stamp, saved = time.strftime("%Y%m%d-%H%M%S"), []
        for face in faces:
            saved.append(Sample(class_name, _write_new(folder, f"{safe_name(source, 'source')}-{stamp}", face)))
        return saved

    def delete(self, class_name: str, file_name: str) -> None:
        """Delete one face by its file name; FerError for a name that is not one of the class's faces."""
        folder = self._class_folder(class_name)
        path = (folder / file_name).resolve()
        if path.parent != folder.resolve() or path.suffix != ".png" or not path.is_file():
            raise FerError(f"'{file_name[:80]}' is not a face of '{class_name}'")
        path.unlink()

    def empty_classes(self) -> list[str]:
        return [name for name, count in self.counts().items() if not count]

    def zip_bytes(self) -> bytes:
        """The set as a zip of class folders (<set>/<class>/*.png), as FER Studio and other tools open them."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already.
            for name in self.classes():
                for sample in self.samples(name):
                    archive.write(sample.path, f"{self.name}/{name}/{sample.name}")
        return buffer.getvalue()

    def _class_folder(self, name: str) -> Path:
        if not name or _UNSAFE.sub("", name) != name or len(name) > MAX_NAME:
            raise FerError(f"'{str(name)[:MAX_NAME]}' is not a class name of this set")
        return self.root / name

    def _write_manifest(self, classes: list[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = self.manifest.with_name(f".{MANIFEST}.tmp")
        temporary.write_text(json.dumps({"classes": classes}))
        temporary.replace(self.manifest)


def _write_new(folder: Path, stem: str, face: np.ndarray) -> Path:
    """Write `face` as PNG to a file that did not exist (exclusive creation), numbering the stem."""
    face = np.asarray(face, np.uint8)
    if face.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise FerError(f"a face is a {IMAGE_SIZE}×{IMAGE_SIZE} grayscale crop, not {face.shape}")
    buffer = io.BytesIO()
    Image.fromarray(face).save(buffer, format="PNG")
    for number in range(1, 10_000):
        path = folder / f"{stem}-{number:03d}.png"
        try:
            with open(path, "xb") as file:
                file.write(buffer.getvalue())
            return path
        except FileExistsError:
            continue
    raise FerError(f"too many faces saved in one second in {folder.name}; try again")


# --- The sets of a user ------------------------------------------------------------------------------


def sets_dir(user: str | None = None) -> Path:
    return user_datasets_dir(user)


def face_sets(user: str | None = None) -> list[FaceSet]:
    """The user's collected sets (folders with a manifest), by name."""
    root = sets_dir(user)
    found = sorted(path for path in root.glob(f"*/{MANIFEST}")) if root.is_dir() else []
    return [FaceSet(path.parent) for path in found]


def open_set(name: str, user: str | None = None) -> FaceSet:
    """An existing set by name; FerError when there is none."""
    face_set = FaceSet(sets_dir(user) / safe_name(name, "set name"))
    if not face_set.manifest.is_file():
        raise FerError(f"there is no set of faces named '{str(name)[:MAX_NAME]}'")
    return face_set


def new_set(name: str, user: str | None = None) -> FaceSet:
    """A new, empty set; FerError when the name is taken (a set is never overwritten)."""
    face_set = FaceSet(sets_dir(user) / safe_name(name, "set name"))
    if face_set.root.exists():
        raise FerError(f"a set named '{face_set.name}' already exists; open it or pick another name")
    face_set._write_manifest([])
    return face_set


# --- Faces from pictures -----------------------------------------------------------------------------


def face_crops(rgb: np.ndarray, detector, *, largest_only: bool = False) -> list[np.ndarray]:
    """48×48 crops of the faces in an (H, W, 3) RGB picture, found and levelled as on Predict
    (left to right; with `largest_only`, the biggest face alone, as a webcam capture takes)."""
    from fer.serve.detection import crop_face

    faces = detector.detect(rgb)
    if largest_only and faces:
        faces = [max(faces, key=lambda face: face.box.area)]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return [crop_face(gray, face) for face in faces]


def faces_in_photo(data: bytes, detector) -> list[np.ndarray]:
    """Every face in an uploaded photo's bytes; FerError in words when it is not a readable picture."""
    from fer.data.images import open_image, to_rgb

    return face_crops(to_rgb(open_image(data)), detector)


class LatestFrame:
    """The webcam's newest frame, handed from the video thread to the page's thread behind a lock."""

    def __init__(self):
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._index = 0

    def put(self, frame: np.ndarray) -> None:
        with self._lock:
            self._frame, self._index = frame, self._index + 1

    def get(self) -> tuple[int, np.ndarray | None]:
        """(how many frames have arrived, the newest one or None)."""
        with self._lock:
            return self._index, self._frame

    def burst(self, count: int, *, gap_seconds: float = 0.15, timeout: float = 3.0) -> list[np.ndarray]:
        """Up to `count` distinct frames, `gap_seconds` apart (frames in a row differ too little to teach)."""
        frames, seen, deadline = [], 0, time.monotonic() + timeout
        while len(frames) < count and time.monotonic() < deadline:
            index, frame = self.get()
            if frame is not None and index != seen:
                frames.append(frame)
                seen = index
                if len(frames) < count:
                    time.sleep(gap_seconds)
            else:
                time.sleep(0.02)
        return frames


def capture(face_set: FaceSet, class_name: str, frames: list[np.ndarray], detector) -> list[Sample]:
    """Save the largest face of each webcam frame to `class_name`; FerError (nothing saved) when no frame shows one."""
    crops = [crop for frame in frames for crop in face_crops(frame, detector, largest_only=True)]
    if not crops:
        raise FerError("no face in view: face the camera in good light and try again (nothing was saved)")
    return face_set.add_faces(class_name, crops, "webcam")
