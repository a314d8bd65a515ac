"""How fast is prediction? One crop, one 640×480 frame, and the webcam callback path.

Three numbers, each against its target on this 2-core machine:

- classify one 48×48 crop (`Classifier.probabilities`, the compiled predict_on_batch path),
  median of `--repeats` calls — target < 10 ms;
- detect and classify a 640×480 frame holding one face (`predict_image` with the webcam's
  Haar settings), median — target < 50 ms;
- the webcam path: what the Predict page's frame callback does per frame (av.VideoFrame →
  RGB array → detect, classify, smooth, draw → av.VideoFrame), frames per second over
  `--frames` frames — target >= 15. WebRTC's own VP8 decoding and encoding (done by aiortc
  outside the callback) is not included.

Each row also gives CPU ms per call (all of this process's threads): on a machine shared with
a training run, wall-clock time mostly measures the other processes. Reference rows (no target)
show the photo settings and MTCNN. The model is `--model`, else the shipped/newest registered
model, else an untrained `--preset` network (speed does not depend on the weights). The face is
scikit-image's astronaut photo.

    .venv/bin/python bench/bench_predict.py
    .venv/bin/python bench/bench_predict.py --model models/fer2013.keras --json
    .venv/bin/python bench/bench_predict.py --members 3 --flip --no-mtcnn   # an ensemble's cost, untrained
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import av  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from fer.errors import FerError  # noqa: E402
from fer.serve.detection import PHOTO_CONFIG, VIDEO_CONFIG, make_detector  # noqa: E402
from fer.labels import CLASSES  # noqa: E402
from fer.serve.live import LiveProcessor  # noqa: E402
from fer.serve.prediction import Classifier, predict_image  # noqa: E402


def untrained_classifier(preset: str, members: int, flip: bool) -> tuple[Classifier, str]:
    """An untrained ensemble of `members` `preset` networks, averaged over the mirror view with `flip`."""
    from fer.model.presets import build_model, ensemble, tta_views, with_test_time_augmentation

    model = ensemble([build_model(preset) for _ in range(members)])
    if flip:
        model = with_test_time_augmentation(model, tta_views())
    passes = members * (2 if flip else 1)
    return Classifier(model, CLASSES), f"untrained: {members} × '{preset}'{' + flip' * flip} ({passes} passes per face)"


def load_classifier(model: str | None, preset: str) -> tuple[Classifier, str]:
    if model:
        return Classifier.from_path(model), model
    try:
        from fer.model.registry import default_model_path

        path = default_model_path()
        return Classifier.from_path(path), str(path)
    except FerError:
        from fer.model.presets import build_model

        return Classifier(build_model(preset), CLASSES), f"untrained '{preset}' preset (no registered model yet)"


def webcam_frame(shift: int = 0) -> np.ndarray:
    """A 640×480 RGB frame with the astronaut's photo (one face), nudged sideways by `shift`."""
    frame = np.full((480, 640, 3), 70, np.uint8)
    frame[:, 80 + shift:560 + shift] = np.asarray(Image.fromarray(data.astronaut()).resize((480, 480)))
    return frame


def median_ms(work, repeats: int, warmup: int = 5) -> tuple[float, float]:
    """Median wall-clock ms per call, and median CPU ms (all threads of this process) per call."""
    for _ in range(warmup):
        work()
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        work()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def webcam_fps(processor: LiveProcessor, frames: int) -> tuple[float, float]:
    """Frames per second through the page's callback body over `frames` moving frames, and CPU ms per frame.

    Frames arrive as the decoder delivers them (yuv420p), so the RGB conversion is part of the cost.
    """
    video = [av.VideoFrame.from_ndarray(webcam_frame(shift), format="rgb24").reformat(format="yuv420p")
             for shift in range(-20, 20, 2)]

    def callback(frame: av.VideoFrame) -> av.VideoFrame:  # Same body as pages/predict.py's on_frame.
        return av.VideoFrame.from_ndarray(processor.process(frame.to_ndarray(format="rgb24")), format="rgb24")

    for frame in video[:5]:
        callback(frame)
    started, started_cpu = time.perf_counter(), time.process_time()
    for index in range(frames):
        callback(video[index % len(video)])
    return frames / (time.perf_counter() - started), (time.process_time() - started_cpu) / frames * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a .keras model (default: shipped/newest, else an untrained --preset)")
    parser.add_argument("--preset", default="vgg40", help="architecture to time when no model is registered")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--members", type=int, default=0,
                        help="time an untrained ensemble of this many --preset networks instead of a model "
                             "(speed does not depend on the weights): what a shipped ensemble would cost")
    parser.add_argument("--flip", action="store_true", help="with --members: also average over the mirror image")
    parser.add_argument("--no-mtcnn", action="store_true", help="skip the MTCNN reference row")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    classifier, model_name = (untrained_classifier(args.preset, args.members, args.flip) if args.members
                              else load_classifier(args.model, args.preset))
    classifier.warm_up()
    haar_video, haar_photo = make_detector("haar", VIDEO_CONFIG), make_detector("haar", PHOTO_CONFIG)
    frame = webcam_frame()
    assert len(haar_video.detect(frame)) == 1, "the benchmark frame must hold exactly one detectable face"
    crop = np.random.default_rng(0).integers(0, 256, (1, 48, 48), dtype=np.uint8)

    under = lambda limit: (lambda value: value < limit)  # noqa: E731
    rows = [
        ("classify one 48×48 crop", *median_ms(lambda: classifier.probabilities(crop), args.repeats), "ms", "< 10",
         under(10)),
        ("detect + classify 640×480, one face (haar, webcam settings)",
         *median_ms(lambda: predict_image(frame, classifier, haar_video), args.repeats), "ms", "< 50", under(50)),
        ("webcam path: frame in → annotated frame out (haar)",
         *webcam_fps(LiveProcessor(classifier, haar_video), args.frames), "frames/s", ">= 15",
         lambda value: value >= 15),
        ("reference: detect + classify 640×480 (haar, photo settings)",
         *median_ms(lambda: predict_image(frame, classifier, haar_photo), max(args.repeats // 4, 5)), "ms", "", None),
    ]
    if not args.no_mtcnn:
        mtcnn_video = make_detector("mtcnn", VIDEO_CONFIG)
        rows.append(("reference: detect + classify 640×480 (mtcnn, webcam settings)",
                     *median_ms(lambda: predict_image(frame, classifier, mtcnn_video), max(args.repeats // 10, 5)),
                     "ms", "", None))
        rows.append(("reference: webcam path (mtcnn)",
                     *webcam_fps(LiveProcessor(classifier, mtcnn_video), max(args.frames // 3, 30)), "frames/s", "",
                     None))
    load_after = os.getloadavg()[0]

    results = [{"measure": name, "value": round(value, 2), "unit": unit, "cpu_ms": round(cpu, 2), "target": target,
                "met": None if check is None else bool(check(value))} for name, value, cpu, unit, target, check in rows]
    context = {"model": model_name, "cpus": os.cpu_count(), "load_average_1min": [load_before, load_after],
               "keras_backend": os.environ["KERAS_BACKEND"]}
    if args.json:
        print(json.dumps({"context": context, "results": results}, indent=2))
        return 0
    print(f"model: {model_name}\nCPUs: {os.cpu_count()} · 1-min load average {load_before:.1f} → {load_after:.1f}\n")
    width = max(len(r["measure"]) for r in results) + 2
    print("measure".ljust(width) + "value".rjust(10) + " " * 10 + "CPU ms".rjust(8) + "  target    met")
    for r in results:
        met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
        print(r["measure"].ljust(width)
              + f"{r['value']:>10.1f} {r['unit']:<9}{r['cpu_ms']:>8.1f}  {r['target']:<10}{met}")
    print("\nCPU ms: processor time per crop/frame summed over this process's threads (less sensitive to"
          " other processes' load than wall-clock time).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
