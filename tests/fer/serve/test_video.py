"""Video files (fer.serve.video): sampling, tracking, the timeline, the cap, bad files, JSON, CSV and the clip."""

from __future__ import annotations

import io
import struct

import av
import numpy as np
import pytest
from PIL import Image

from fer.errors import FerError
from fer.model.registry import default_model_path
from fer.serve.detection import DEFAULT_DETECTOR, make_detector
from fer.serve.prediction import Classifier, face_json
from helpers.videos import EMPTY, FakeClassifier, FakeDetector, face_frame, write_mp4
from fer.serve.video import VideoConfig, is_video, predict_video, video_json, video_table


@pytest.fixture(scope="module")
def shipped() -> Classifier:
    return Classifier.from_path(default_model_path())


def test_a_generated_clip_gives_the_expected_timeline(clip, shipped):
    result = predict_video(clip, shipped, make_detector(DEFAULT_DETECTOR))
    assert [frame.time for frame in result.frames] == pytest.approx([index / 10 for index in range(30)])
    assert result.duration == pytest.approx(3.0)
    with_face, without = result.frames[:20], result.frames[20:]
    assert [len(frame.faces) for frame in with_face] == [1] * 20  # The face is found in every frame that has it...
    assert all(not frame.faces for frame in without)  # ...and nowhere after.
    assert result.track_ids == [1]  # One face, followed as it moves.
    labels = [face.prediction.label for _, face in result.timeline(1)]
    assert labels.count("happy") >= 18, labels  # The shipped model reads the astronaut as happy.
    assert result.shares()[1]["happy"] == labels.count("happy") / 20


def test_a_phone_video_stored_sideways_is_read_upright(tmp_path):
    upright = face_frame()  # (480, 640, 3)
    sideways = np.ascontiguousarray(np.rot90(upright, 1))  # Stored turned left, as the sensor saw it.
    video = write_mp4(tmp_path / "portrait.mp4", [sideways] * 3)
    raw = bytearray(video.read_bytes())
    # The track header's display matrix, as phones write it: turn 90° clockwise when showing.
    matrix_at = raw.find(b"tkhd") + 4 + 40
    raw[matrix_at:matrix_at + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 640 << 16, 0, 0x40000000)
    detector = FakeDetector()
    result = predict_video(bytes(raw), FakeClassifier(), detector, config=VideoConfig(clip=False))
    assert (result.width, result.height) == (640, 480)
    assert np.abs(detector.images[0].astype(int) - upright).mean() < 8  # Upright again (H.264 blurs a little).


@pytest.mark.parametrize(("name", "codec"), [("clip.mov", "libx264"), ("clip.webm", "libvpx-vp9")])
def test_mov_and_webm_files_are_read(tmp_path, name, codec):
    video = write_mp4(tmp_path / name, [face_frame()] * 5 + [EMPTY] * 5, codec=codec)
    result = predict_video(video.read_bytes(), FakeClassifier(), FakeDetector(), name=name,
                           config=VideoConfig(clip=False))
    assert [len(frame.faces) for frame in result.frames] == [1] * 5 + [0] * 5


def test_frames_are_sampled_at_the_rate_not_every_frame(tmp_path):
    video = write_mp4(tmp_path / "thirty.mp4", [face_frame()] * 30, fps=30)  # 1 s at 30 fps.
    classifier = FakeClassifier()
    result = predict_video(video, classifier, FakeDetector(), config=VideoConfig(sample_fps=10, clip=False))
    assert [frame.time for frame in result.frames] == pytest.approx([index / 10 for index in range(10)], abs=0.02)
    assert classifier.faces == 10


def test_a_long_clip_stops_at_the_cap_and_says_so(clip):
    seen = []
    result = predict_video(clip, FakeClassifier(), FakeDetector(), config=VideoConfig(max_seconds=1.5, clip=False),
                           progress=lambda done, total: seen.append((done, total)))
    assert result.frames[-1].time == pytest.approx(1.4) and result.duration == 1.5
    assert result.notes == ("only the first 1.5 s were read (the cap for one video)",)
    assert [total for _, total in seen] == [1.5] * len(result.frames)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


@pytest.mark.parametrize("damage", ["random bytes", "cut in half", "empty"])
def test_a_corrupt_video_gives_one_clear_error(clip, damage):
    whole = clip.read_bytes()
    data_ = {"random bytes": np.random.default_rng(0).bytes(20_000), "cut in half": whole[:len(whole) // 2],
             "empty": b""}[damage]
    with pytest.raises(FerError) as error:
        predict_video(data_, FakeClassifier(), FakeDetector(), name="broken.mp4")
    message = str(error.value)
    assert message.startswith("not a video this app can read") and "\n" not in message
    assert "<" not in message and "Error" not in message  # Words, not a Python repr or an exception name.


def test_json_and_csv_agree_with_the_result(clip):
    result = predict_video(clip, FakeClassifier(), FakeDetector(), config=VideoConfig(clip=False))
    entry = video_json(result)
    first = result.frames[0].faces[0]
    assert entry["frames"][0]["faces"] == [{**face_json(first.prediction), "track": 1}]
    table = video_table(result)
    assert len(table) == 30  # 20 frames with one face each, 10 rows saying "no face".
    assert table["face"].isna().sum() == 10 and set(table.loc[table["face"].isna(), "note"]) == {"no face"}
    assert table.loc[0, "label"] == "happy" and table.loc[0, "happy"] == pytest.approx(0.9)


def test_the_annotated_clip_is_a_playable_mp4_of_the_sampled_frames(clip):
    result = predict_video(clip, FakeClassifier(), FakeDetector(), config=VideoConfig(clip_max_side=320))
    with av.open(io.BytesIO(result.clip)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (320, 240)
        assert sum(1 for _ in container.decode(stream)) == len(result.frames)


def test_an_animated_gif_is_a_video_and_a_still_gif_a_photo(tmp_path):
    frames = [Image.fromarray(face_frame(shift)).resize((320, 240)) for shift in (0, 10, 20)]
    animated, still = io.BytesIO(), io.BytesIO()
    frames[0].save(animated, format="GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
    frames[0].save(still, format="GIF")
    assert is_video("a.gif", animated.getvalue()) and not is_video("b.gif", still.getvalue())
    assert is_video("c.MOV") and is_video("d.webm") and not is_video("e.png")
    result = predict_video(animated.getvalue(), FakeClassifier(), FakeDetector(), name="a.gif",
                           config=VideoConfig(clip=False))
    assert [frame.time for frame in result.frames] == pytest.approx([0.0, 0.2, 0.4])
