"""fer.data.collect: collected faces on disk as a class-folders dataset, with hostile names kept inside it."""

import io
import threading
import time
import zipfile

import numpy as np
import pytest
from PIL import Image
from skimage import data

from fer.data import collect
from fer.data.datasets import open_dataset
from fer.errors import FerError
from fer.serve.detection import make_detector


@pytest.fixture(scope="module")
def detector():
    return make_detector("yunet")


def faces(count: int, seed: int = 0) -> list[np.ndarray]:
    return list(np.random.default_rng(seed).integers(0, 256, (count, 48, 48), dtype=np.uint8))


@pytest.mark.parametrize("given, kept", [("Bored Face!", "bored-face"), ("../../etc/passwd", "etc-passwd"),
                                         ("  Focused_2 ", "focused_2"), ("a" * 90, "a" * 40)])
def test_names_from_the_browser_become_plain_folder_names(given, kept):
    assert collect.safe_name(given) == kept


@pytest.mark.parametrize("given", ["..", "/", "???", "", "  "])
def test_a_name_without_letters_or_digits_is_refused_in_words(given):
    with pytest.raises(FerError, match="has no letters or digits"):
        collect.safe_name(given, "class name")


def test_a_set_saves_each_face_at_once_and_opens_as_a_class_folders_dataset(fer_home):
    face_set = collect.new_set("My Moods")
    assert face_set.root == fer_home / "datasets" / "my-moods"
    assert face_set.add_classes("Bored, focused ,bored") == ("bored", "focused")
    face_set.add_faces("bored", faces(3), "webcam")
    face_set.add_faces("focused", faces(2, seed=1), "upload")
    reopened = collect.open_set("my-moods")  # As after a reload: everything comes from disk.
    assert reopened.counts() == {"bored": 3, "focused": 2}
    assert [face_set.name for face_set in collect.face_sets()] == ["my-moods"]
    dataset = open_dataset(reopened.root, use_cache=False)
    assert dataset.classes == ("bored", "focused") and sum(map(len, dataset.splits.values())) == 5
    saved = np.asarray(Image.open(reopened.samples("bored")[0].path))
    assert saved.shape == (48, 48) and np.array_equal(saved, faces(3)[0])


def test_a_set_is_never_overwritten_and_faces_never_replace_each_other(fer_home):
    face_set = collect.new_set("moods")
    with pytest.raises(FerError, match="already exists"):
        collect.new_set("Moods")
    face_set.add_classes(["calm"])
    first = face_set.add_faces("calm", faces(2), "webcam")
    second = face_set.add_faces("calm", faces(2, seed=5), "webcam")  # The same second: new numbers.
    assert len({sample.path for sample in first + second}) == 4 and len(face_set.samples("calm")) == 4
    with pytest.raises(FerError, match="no set of faces named"):
        collect.open_set("elsewhere")


def test_deleting_takes_one_face_and_refuses_any_path_outside_the_class(fer_home):
    face_set = collect.new_set("moods")
    face_set.add_classes("calm, upset")
    kept, gone = face_set.add_faces("calm", faces(2), "webcam")
    face_set.delete("calm", gone.name)
    assert face_set.samples("calm") == [kept]
    for class_name, file_name in (("calm", "../collection.json"), ("calm", "/etc/passwd"), ("..", kept.name),
                                  ("upset", kept.name), ("calm", "missing.png")):
        with pytest.raises(FerError):
            face_set.delete(class_name, file_name)
    assert face_set.manifest.exists() and kept.path.exists()


def test_the_zip_holds_the_class_folders(fer_home):
    face_set = collect.new_set("moods")
    face_set.add_classes("calm, upset")
    face_set.add_faces("upset", faces(2), "webcam")
    with zipfile.ZipFile(io.BytesIO(face_set.zip_bytes())) as archive:
        names = archive.namelist()
    assert len(names) == 2 and all(name.startswith("moods/upset/") and name.endswith(".png") for name in names)
    assert face_set.empty_classes() == ["calm"]


def test_a_webcam_capture_keeps_the_face_and_one_without_a_face_saves_nothing(fer_home, detector):
    face_set = collect.new_set("moods")
    face_set.add_classes("calm")
    astronaut = data.astronaut()
    saved = collect.capture(face_set, "calm", [astronaut, astronaut], detector)
    assert len(saved) == 2 and len(face_set.samples("calm")) == 2
    with pytest.raises(FerError, match="no face in view.*nothing was saved"):
        collect.capture(face_set, "calm", [np.full((240, 320, 3), 128, np.uint8)], detector)
    assert len(face_set.samples("calm")) == 2


def test_every_face_in_an_uploaded_photo_becomes_a_sample(detector):
    buffer = io.BytesIO()
    Image.fromarray(np.hstack([data.astronaut(), data.astronaut()])).save(buffer, format="JPEG")
    crops = collect.faces_in_photo(buffer.getvalue(), detector)
    assert len(crops) == 2 and all(crop.shape == (48, 48) for crop in crops)
    with pytest.raises(FerError):
        collect.faces_in_photo(b"not a picture", detector)


def test_a_burst_takes_distinct_frames_from_the_video_thread():
    latest = collect.LatestFrame()
    stop = threading.Event()

    def camera():
        number = 0
        while not stop.is_set():
            latest.put(np.full((4, 4, 3), number % 256, np.uint8))
            number += 1
            time.sleep(0.01)

    thread = threading.Thread(target=camera)
    thread.start()
    try:
        frames = latest.burst(3, gap_seconds=0.05)
    finally:
        stop.set()
        thread.join()
    assert len(frames) == 3 and len({int(frame[0, 0, 0]) for frame in frames}) == 3
    assert collect.LatestFrame().burst(2, timeout=0.1) == []
