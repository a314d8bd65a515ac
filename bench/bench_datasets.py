"""Time opening FER2013 (Kaggle zip): first open (decode every image) and cached re-open.

    python bench/bench_datasets.py [PATH]   (default ../shared/datasets/fer2013/images.zip)

Uses a fresh, temporary FER_STUDIO_HOME so the first open really is the first.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "datasets" / "fer2013" / "images.zip"


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not source.exists():
        print(f"skipped: {source} is absent (the FER2013 zip is not on this machine)")
        return 0
    with tempfile.TemporaryDirectory() as home:
        os.environ["FER_STUDIO_HOME"] = home
        from fer.data.datasets import open_dataset

        rows = []
        for label in ("first open (decode)", "cached open", "cached open"):
            started = time.perf_counter()
            dataset = open_dataset(source)
            rows.append((label, time.perf_counter() - started))
    images = sum(len(split) for split in dataset.splits.values())
    print(f"{source.name}: {images:,} images, {len(dataset.skipped)} skipped, fingerprint {dataset.fingerprint}")
    print(f"| {'step':<22} | {'seconds':>8} |")
    print(f"|{'-' * 24}|{'-' * 10}|")
    for label, seconds in rows:
        print(f"| {label:<22} | {seconds:>8.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
