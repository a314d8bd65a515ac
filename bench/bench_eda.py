"""Time the Dataset page on the full FER2013 zip: first render, cached rerun, and after a restart.

    .venv/bin/python bench/bench_eda.py [--zip ../shared/datasets/fer2013/images.zip]

The page is rendered with streamlit's AppTest through app.py, as a user reaches it: the sidebar
opens the zip (decoding every image the first time), then pages/dataset.py computes and draws.
Three cases, each in a fresh FER_STUDIO_HOME so nothing from earlier runs is reused:
- first: nothing cached anywhere (decode + statistics + figures);
- rerun: the same session again (Streamlit's caches hit);
- restart: a new session after clearing Streamlit's in-memory caches, as after a server restart:
  the decoded dataset comes from the disk cache, the statistics are recomputed.
Targets: first < 10 s, rerun < 2 s. Library import time (TensorFlow, once per server
process) is reported apart. The pure functions are timed too.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = ROOT.parent / "shared" / "datasets" / "fer2013" / "images.zip"
FIRST_TARGET_S, RERUN_TARGET_S = 10.0, 2.0


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def use_navigation_mode() -> None:
    """Make AppTest run app.py as a server does after its first st.navigation call (pages.common)."""
    from pages.common import leave_legacy_pages_mode

    leave_legacy_pages_mode()


def render_dataset_page(zip_path: Path):
    """A new AppTest session on the Dataset page with `zip_path` active; returns (app, seconds)."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    app.session_state["dataset_source"] = str(zip_path)
    app.switch_page("pages/dataset.py")
    _, seconds = timed(app.run)
    if app.exception or app.error:
        raise SystemExit(f"the page failed: {[e.value for e in [*app.exception, *app.error]]}")
    return app, seconds


def page_timings(zip_path: Path) -> dict[str, float]:
    import streamlit as st

    import fer.data.datasets

    opening = []  # Seconds spent in open_dataset during each page run (app.py looks it up per run).
    real_open = fer.data.datasets.open_dataset

    def timed_open(*args, **kwargs):
        result, seconds = timed(real_open, *args, **kwargs)
        opening.append(seconds)
        return result

    fer.data.datasets.open_dataset = timed_open
    app, first = render_dataset_page(zip_path)
    decode = sum(opening)
    _, rerun = timed(app.run)
    st.cache_data.clear()
    st.cache_resource.clear()
    _, restart = render_dataset_page(zip_path)
    fer.data.datasets.open_dataset = real_open
    return {"first": first, "first_decode": decode, "rerun": rerun, "restart": restart}


def function_timings(zip_path: Path) -> dict[str, float]:
    from fer.charts import dataset as charts
    from fer.data import eda
    from fer.data.datasets import open_dataset

    dataset, opened = timed(open_dataset, zip_path)  # From the disk cache the page run wrote.
    timings = {"open_dataset (disk cache)": opened}
    distribution, timings["class_distribution"] = timed(eda.class_distribution, dataset)
    profiles, timings["class_profiles (all splits)"] = timed(eda.class_profiles, dataset)
    report, timings["quality_report"] = timed(eda.quality_report, dataset)
    samples, timings["sample_per_class (8)"] = timed(eda.sample_per_class, dataset, "train", per_class=8, seed=0)
    images = eda.gather_images(dataset, [(s.split, s.index) for s in samples])
    start = time.perf_counter()
    charts.distribution_chart(distribution)
    charts.sample_grid(images, samples, dataset.classes)
    charts.mean_faces_chart(profiles, stretch=True)
    charts.pixel_histogram_chart(profiles)
    charts.contrast_chart(report.contrast, report.thresholds)
    timings["figures (5)"] = time.perf_counter() - start
    summary = report.summary()
    print(f"dataset: {sum(len(s) for s in dataset.splits.values()):,} images, "
          f"{summary['duplicate_groups_within'] + summary['duplicate_groups_across']:,} duplicate groups "
          f"({summary['duplicate_groups_across']:,} across splits), {summary['near_blank']} near-blank, "
          f"{summary['low_contrast']} low-contrast")
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", type=Path, default=DEFAULT_ZIP, help="the Kaggle FER2013 images.zip")
    zip_path = parser.parse_args().zip.resolve()
    if not zip_path.exists():
        print(f"skipped: {zip_path} is absent (the FER2013 zip is needed for this benchmark)")
        return 0

    with tempfile.TemporaryDirectory(prefix="fer-bench-eda-") as home:  # Nothing cached yet; removed after.
        os.environ["FER_STUDIO_HOME"] = home
        return run(zip_path)


def run(zip_path: Path) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    start = time.perf_counter()
    import fer.model.registry  # noqa: F401  (TensorFlow: what the sidebar's model picker imports once)
    import streamlit.testing.v1  # noqa: F401
    print(f"imports (once per server process): {time.perf_counter() - start:.1f} s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    use_navigation_mode()

    pages = page_timings(zip_path)
    print(f"Dataset page, first render (decode + statistics + figures): {pages['first']:6.2f} s "
          f"(target < {FIRST_TARGET_S:g} s), of which decoding the zip {pages['first_decode']:.2f} s")
    print(f"Dataset page, rerun (cached):                               {pages['rerun']:6.2f} s "
          f"(target < {RERUN_TARGET_S:g} s)")
    print(f"Dataset page, after a restart (disk-cached decode):         {pages['restart']:6.2f} s")
    for name, seconds in function_timings(zip_path).items():
        print(f"  {name:<28} {seconds:6.3f} s")
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")
    met = pages["first"] < FIRST_TARGET_S and pages["rerun"] < RERUN_TARGET_S
    print("targets met" if met else "targets MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
