"""Hostile videos are answered in words within 20 s and 1.5 GB: frames too large are refused from the header,
and decoding stops at a frame count and a work time; the other files of the batch still run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import numpy as np
from PIL import Image
from skimage import data

from fer.errors import FerError
from fer.labels import CLASSES
from fer.serve.detection import Box, Face
from fer.serve.prediction import FacePrediction
from fer.serve.video import VideoConfig, predict_video
from helpers.hostile_files import run_measured

ROOT = Path(__file__).resolve().parents[3]


def write_video(path: Path, width: int, height: int, frames: int, fps: int, codec: str = "libx264") -> Path:
    """A video of `frames` flat grey frames."""
    pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    image = av.VideoFrame.from_ndarray(np.full((height, width, 3), 90, np.uint8), format="rgb24").reformat(
        format=pix_fmt)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for index in range(frames):
            image.pts = index
            container.mux(stream.encode(image))
        container.mux(stream.encode())
    return path


class OneFace:
    name = "fake"

    def detect(self, image):
        return [Face(Box(8, 8, 32, 32), 0.99)]


class Happy:
    classes = CLASSES

    def classify(self, crops, boxes, scores=()):
        row = {name: 0.1 / (len(CLASSES) - 1) for name in CLASSES} | {"happy": 0.9}
        return [FacePrediction(box, "happy", 0.9, row, 0.99) for box in boxes]


def test_a_video_of_frames_larger_than_4k_is_refused_from_its_header_and_the_batch_goes_on(tmp_path):
    big = write_video(tmp_path / "big.mkv", 6000, 6000, 2, 2, codec="mjpeg")
    photo = tmp_path / "face.png"
    Image.fromarray(data.astronaut()).save(photo)
    measured = run_measured(["fer", "predict", str(big), str(photo), "--json"], cwd=ROOT,
                            env={"FER_STUDIO_HOME": str(tmp_path / "home")})
    assert "Traceback" not in measured.stderr, measured.stderr
    assert measured.seconds < 20, f"took {measured.seconds:.1f} s"
    assert measured.peak_bytes < 1.5e9, f"peaked at {measured.peak_bytes / 1e9:.2f} GB"
    results = {Path(item["file"]).name: item for item in json.loads(measured.stdout)}
    assert results["big.mkv"]["error"] == ("the video's frames are 6,000×6,000 pixels; this app reads videos up to "
                                           "16.8 megapixels a frame (4K): scale it down first")
    assert results["face.png"]["error"] is None and results["face.png"]["faces"]


def test_the_frame_size_cap_is_judged_before_decoding(tmp_path):
    video = write_video(tmp_path / "small.mp4", 128, 96, 3, 10)
    try:
        predict_video(video, Happy(), OneFace(), config=VideoConfig(max_pixels=128 * 95, clip=False))
    except FerError as error:
        assert str(error).startswith("the video's frames are 128×96 pixels; this app reads videos up to 0.0 megapixels")
    else:
        raise AssertionError("a frame above the cap was read")
    bytes_video = predict_video(video.read_bytes(), Happy(), OneFace(), config=VideoConfig(clip=False))
    assert len(bytes_video.frames) == 3


def test_a_video_claiming_a_thousand_frames_a_second_stops_at_the_frame_cap(tmp_path):
    video = write_video(tmp_path / "fast.mp4", 64, 64, 400, 1000)
    result = predict_video(video, Happy(), OneFace(), config=VideoConfig(max_frames=100, clip=False))
    assert result.notes == ("only the first 0.1 s were read (the cap for one video: 100 frames)",)
    assert result.duration == 0.099 and len(result.frames) == 1


def test_decoding_stops_at_the_work_time_cap_and_keeps_what_it_found(tmp_path):
    video = write_video(tmp_path / "slow.mp4", 64, 64, 30, 10)
    result = predict_video(io.BytesIO(video.read_bytes()), Happy(), OneFace(),
                           config=VideoConfig(max_work_seconds=1e-9, clip=False))
    assert len(result.notes) == 1 and result.notes[0].endswith("(the cap for one video: 1e-09 s of work)")
