"""`python -m fer predict`: JSON shape, per-file errors, text output and a missing model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from fer.cli import main
from fer.labels import CLASSES
from fer.paths import PROJECT_ROOT
from fer.serve import runtime
from fer.serve.detection import DEFAULT_DETECTOR, DETECTORS
from helpers.videos import EMPTY

ROOT = PROJECT_ROOT


@pytest.fixture
def images(tmp_path) -> dict[str, Path]:
    paths = {"face": tmp_path / "astronaut.jpg", "blank": tmp_path / "blank.png", "broken": tmp_path / "broken.png"}
    Image.fromarray(data.astronaut()).save(paths["face"])
    Image.fromarray(np.full((120, 160, 3), 240, np.uint8)).save(paths["blank"])
    paths["broken"].write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
    paths["missing"] = tmp_path / "missing.jpg"
    return paths


def test_json_lists_faces_with_box_and_probabilities_per_image(tiny_model_path, images, capsys):
    order = ["face", "blank", "broken", "missing"]
    code = main(["predict", "--model", str(tiny_model_path), *(str(images[k]) for k in order), "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 1  # Some files failed; the others still have results.
    assert [Path(item["file"]).name for item in payload] == [images[k].name for k in order]
    face_result, blank, broken, missing = payload
    [face] = face_result["faces"]
    assert set(face["box"]) == {"x", "y", "width", "height"}
    assert face["box"]["width"] > 50
    assert list(face["probabilities"]) == list(CLASSES)
    assert sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    assert face["label"] in CLASSES and face_result["error"] is None
    assert blank["faces"] == [] and blank["error"] is None
    assert "not a readable image" in broken["error"]
    assert "cannot read the file" in missing["error"]


def test_whole_image_fallback(tiny_model_path, images, capsys):
    assert main(["predict", "--model", str(tiny_model_path), str(images["blank"]), "--whole-image", "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    [face] = result["faces"]
    assert face["whole_image"] and face["box"] == {"x": 20, "y": 0, "width": 120, "height": 120}


def test_text_output(tiny_model_path, images, capsys):
    code = main(["predict", "--model", str(tiny_model_path), str(images["face"]), str(images["blank"]),
                 str(images["broken"])])
    out, err = capsys.readouterr()
    assert code == 1
    assert "astronaut.jpg: face 1 at x=" in out
    assert "blank.png: no face found" in out
    assert "broken.png: error: not a readable image" in err


def test_an_unexpected_failure_is_one_line_in_words_and_its_traceback_goes_to_the_log(
        tiny_model_path, images, capfd, fer_home, monkeypatch):
    import fer.serve.detection
    from helpers.stand_ins import CrashingDetector

    monkeypatch.setattr(fer.serve.detection, "make_detector", lambda name: CrashingDetector())
    assert main(["predict", "--model", str(tiny_model_path), str(images["face"])]) == 1
    out, err = capfd.readouterr()
    problem, where = err.splitlines()
    assert problem == (f"{images['face']}: error: an unexpected problem stopped it from being read; "
                       "the log has the details")
    assert where == f"the log with the details: {fer_home / 'cli.log'}"
    assert "RuntimeError" not in err and "fell over" not in err
    log = (fer_home / "cli.log").read_text()
    assert "Traceback" in log and "RuntimeError: detector fell over" in log


def test_a_missing_model_is_a_clear_error(tmp_path, images, capsys):
    assert main(["predict", "--model", str(tmp_path / "nope.keras"), str(images["face"])]) == 2
    assert "error: model file" in capsys.readouterr().err


def test_module_entry_point_prints_only_json_on_stdout(tiny_model_path, images):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, "-m", "fer", "predict", "--model", str(tiny_model_path),
                          str(images["face"]), "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    [result] = json.loads(run.stdout)
    assert len(result["faces"]) == 1


def test_the_command_line_offers_every_detector_and_defaults_to_yunet(capsys):
    from fer.cli import main

    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    usage = " ".join(capsys.readouterr().out.split())
    assert "{" + ",".join(DETECTORS) + "}" in usage and f"(default {DEFAULT_DETECTOR}:" in usage


def test_cli_predict_prints_the_fallback_note_once_on_stderr(model_copy, tmp_path, capsys, monkeypatch):
    from fer.cli import main

    monkeypatch.setattr(runtime, "_export_in_child", lambda path: (None, "exporting it to ONNX failed (test)"))
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(photo)

    assert main(["predict", "--model", str(model_copy), str(photo), str(photo)]) == 0
    err = capsys.readouterr().err
    assert err.count("note: tiny.keras runs on Keras") == 1 and "exporting it to ONNX failed (test)" in err


def test_the_cli_reports_a_corrupt_video_on_its_line_and_goes_on(tiny_model_path, clip, tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(500))
    missing = tmp_path / "missing.mov"
    code = main(["predict", "--model", str(tiny_model_path), str(broken), str(missing), str(clip)])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip().splitlines() == [f"{broken}: error: not a video this app can read; it may be damaged or cut "
                                        "short (FFmpeg: Invalid data found when processing input)",
                                        f"{missing}: error: cannot read the file (No such file or directory)"]
    assert out.splitlines()[0].startswith(f"{clip}: 3.0 s, 30 frames analysed (10/s), a face in 20; 1 face(s) tracked")
    assert out.splitlines()[1].startswith(f"{clip}: face 1 (0.0–1.9 s): ")


def test_json_gives_frames_with_the_same_face_objects_as_photos(tiny_model_path, clip, capsys):
    photo = clip.with_name("astronaut.png")
    Image.fromarray(data.astronaut()).save(photo)
    assert main(["predict", "--model", str(tiny_model_path), str(clip), str(photo), "--json"]) == 0
    video_entry, photo_entry = json.loads(capsys.readouterr().out)
    assert video_entry["file"] == str(clip) and video_entry["error"] is None
    assert [frame["time"] for frame in video_entry["frames"]] == pytest.approx([index / 10 for index in range(30)])
    [face] = video_entry["frames"][0]["faces"]
    assert set(face) == set(photo_entry["faces"][0]) | {"track"} and face["track"] == 1
    assert list(face["probabilities"]) == list(CLASSES) and face["label"] in CLASSES
    assert video_entry["frames"][-1]["faces"] == []


def test_frames_without_a_face_are_searched_once_while_a_faceless_photo_is_searched_again(tiny_model_path, clip,
                                                                                             turned_searches, capsys):
    photo = clip.with_name("wall.png")
    Image.fromarray(EMPTY).save(photo)
    assert main(["predict", "--model", str(tiny_model_path), str(clip), str(photo), "--json"]) == 0
    video_entry, photo_entry = json.loads(capsys.readouterr().out)
    assert sum(not frame["faces"] for frame in video_entry["frames"]) >= 10 and photo_entry["faces"] == []
    assert len(turned_searches) == 2  # The photo's two turns; none for the clip's ten empty frames.
