"""Does the input pipeline slow training? Seed CNN images/s with augmentation vs model-only.

Both variants train the `seed` preset (TensorFlow backend) on FER2013-sized synthetic data
(28,709 random 48×48 images, the size of FER2013's train split) fed through `Dataset.tf_data`,
the pipeline fer.train.loop uses:

- augmented:  the preset's own augmentation layers (flip, ±20° rotation, ±20% zoom) in the model;
- model-only: the same network with no augmentation layers (rescaling only).

Each variant gets `--warmup` untimed batches (tracing, filling the shuffle buffer), then
`--batches` timed training steps, taken in alternating rounds so that a change in background
load hits both variants alike. Prints images/s for both and their ratio (the target is >= 0.90).

    .venv/bin/python bench/bench_pipeline.py            # 30 timed batches each, batch size 64
    .venv/bin/python bench/bench_pipeline.py --json
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "tensorflow"  # The benchmark is defined on the TensorFlow backend.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

from fer.data.datasets import Dataset, Split  # noqa: E402
from fer.labels import CLASSES, IMAGE_SIZE  # noqa: E402
from fer.model.presets import PRESETS, build_model  # noqa: E402
from fer.model.augmentation import NO_AUGMENTATION  # noqa: E402

FER2013_TRAIN_IMAGES = 28_709


def synthetic_dataset(images: int, seed: int = 0) -> Dataset:
    """Random pixels and labels: the pipeline's and the network's cost do not depend on content."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(images, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    labels = rng.integers(0, len(CLASSES), size=images)
    return Dataset(source="synthetic", format="synthetic", classes=CLASSES,
                   splits={"train": Split(pixels, labels, files=())})


def compiled(augmented: bool) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = build_model("seed", augmentation=None if augmented else NO_AUGMENTATION)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def train_steps(model: keras.Model, batches, steps: int) -> float:
    """Seconds for `steps` training steps, each pulling its batch from the pipeline."""
    start = time.perf_counter()
    for _ in range(steps):
        images, labels = next(batches)
        model.train_on_batch(images, labels)  # Returns the loss as numbers, so the step has finished.
    return time.perf_counter() - start


def run(batches: int, warmup: int, batch_size: int, rounds: int, images: int) -> dict:
    dataset = synthetic_dataset(images)
    variants = {"augmented": compiled(True), "model-only": compiled(False)}
    # One endless shuffled pipeline per variant, exactly as training builds it.
    streams = {name: iter(dataset.tf_data("train", batch_size=batch_size, shuffle=True, seed=0).repeat())
               for name in variants}
    for name, model in variants.items():
        train_steps(model, streams[name], warmup)
    seconds = dict.fromkeys(variants, 0.0)
    per_round = [batches // rounds + (1 if r < batches % rounds else 0) for r in range(rounds)]
    for steps in per_round:
        for name, model in variants.items():
            seconds[name] += train_steps(model, streams[name], steps)
    rate = {name: batches * batch_size / seconds[name] for name in variants}
    return {
        "images_per_second": {name: round(value, 1) for name, value in rate.items()},
        "ratio_augmented_to_model_only": round(rate["augmented"] / rate["model-only"], 3),
        "timed_batches": batches, "warmup_batches": warmup, "batch_size": batch_size, "rounds": rounds,
        "train_images": images, "augmentation": str(PRESETS["seed"].augmentation),
        "backend": keras.backend.backend(), "keras": keras.__version__,
        "tensorflow": __import__("tensorflow").__version__, "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2), "machine": platform.processor() or platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=30, help="timed batches per variant")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches per variant first")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="alternations between the variants")
    parser.add_argument("--images", type=int, default=FER2013_TRAIN_IMAGES)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.batches < args.rounds or args.rounds < 1:
        parser.error("--batches must be at least --rounds, and --rounds at least 1")
    result = run(args.batches, args.warmup, args.batch_size, args.rounds, args.images)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for name, value in result["images_per_second"].items():
        print(f"{name:>11}: {value:8.1f} images/s")
    print(f"      ratio: {result['ratio_augmented_to_model_only']:.3f} (augmented / model-only; target >= 0.90)")
    print(f"({result['timed_batches']} timed batches of {result['batch_size']} each after {result['warmup_batches']} "
          f"warm-up, {result['rounds']} alternating rounds; {result['train_images']:,} images; "
          f"{result['backend']} backend, TF {result['tensorflow']}, {result['cpus']} CPUs, "
          f"1-min load average {result['load_average_1min']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
