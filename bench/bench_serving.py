"""Serving without TensorFlow: the new path (onnxruntime) against the old one (Keras), side by side.

Every part runs the old and the new path in turn in one run, so a CPU shared with other work slows
both alike; the table gives medians and the old/new ratio. Parts (`--parts`, default all):

- crop: crop → probabilities with the shipped model, ms a face in batches of 256 and for one face:
  Keras `predict_on_batch`, onnxruntime float32, and the served variant (the card's `serving`), plus
  onnxruntime settings (threads, graph optimisation, spinning) on the served file;
- predict: `python -m fer predict PHOTO`, the whole process (old: FER_STUDIO_RUNTIME=keras);
- evaluate: `python -m fer evaluate --dataset FER2013` on its 3,589 validation faces, whole process;
- coldstart: `streamlit run app.py` until Home is fully rendered in Chromium (the browser is started
  first), with a fresh FER_STUDIO_HOME (a new user) and a warm one, each against the app of
  `--old-tree` when given; then the Predict page opened on that server until its model is loaded
  (old: FER_STUDIO_RUNTIME=keras).
- dataset: on a started server with Home shown, a click on Dataset in the sidebar until the page is
  rendered with its charts: a new user's first visit (the demo set is drawn then) against a second
  server on the same FER_STUDIO_HOME (the demo set read from the disk cache).

    .venv/bin/python bench/bench_serving.py
    .venv/bin/python bench/bench_serving.py --parts crop predict --runs 5
    mkdir /tmp/old && git archive 4824ef3 | tar -x -C /tmp/old   # the app before it served on onnxruntime
    .venv/bin/python bench/bench_serving.py --parts coldstart --old-tree /tmp/old
    mkdir /tmp/before && git archive f127f9a | tar -x -C /tmp/before   # demo drawn before Home
    .venv/bin/python bench/bench_serving.py --parts coldstart --old-tree /tmp/before
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # The browser helpers in tests/browser/conftest.py; fer is installed.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODEL = ROOT / "models" / "fer2013.keras"
FER2013 = ROOT.parent / "shared" / "datasets" / "fer2013" / "images.zip"
PARTS = ("crop", "predict", "evaluate", "coldstart", "dataset")


def row(name: str, old: list[float] | None, new: list[float], target: str = "", unit: str = "s") -> str:
    new_median = statistics.median(new)
    if old:
        old_median = statistics.median(old)
        return (f"| {name} | {old_median:.2f} {unit} | {new_median:.2f} {unit} | {old_median / new_median:.1f}× "
                f"| {target} | {len(new)} |")
    return f"| {name} | | {new_median:.2f} {unit} | | {target} | {len(new)} |"


# --- crop → probabilities ------------------------------------------------------------------------------


def bench_crop(rounds: int) -> list[str]:
    import numpy as np

    from fer.model import export
    from fer.model.files import load_model
    from fer.serve.runtime import OnnxModel, SessionSettings, served_file

    faces = export.sample(export.validation_faces(export.read_card(MODEL)), 256, seed=7)
    served = served_file(MODEL)
    float32 = MODEL.with_suffix(".onnx")
    models = {"Keras predict_on_batch (old)": load_model(MODEL)[0], "onnxruntime float32": OnnxModel(float32),
              f"onnxruntime {served.name} (served)": OnnxModel(served)}
    settings = {
        "2 threads": SessionSettings(intra_op_threads=2),
        "1 thread": SessionSettings(intra_op_threads=1),
        "basic graph optimisation": SessionSettings(optimization="basic"),
        "spinning threads": SessionSettings(spinning=True),
    }
    models |= {f"served, {name}": OnnxModel(served, value) for name, value in settings.items()}
    batch = faces.images.astype(np.float32)
    wall = {name: ([], []) for name in models}
    cpu = {name: ([], []) for name in models}
    for model in models.values():
        model.predict_on_batch(batch)  # Warm up (Keras traces its function).
    for _ in range(rounds):  # The models in turn in every round, so a shared CPU slows them alike.
        for name, model in models.items():
            for column, (inputs, repeats) in enumerate(((batch, 1), (batch[:1], 20))):
                started, started_cpu = time.perf_counter(), time.process_time()
                for _ in range(repeats):
                    model.predict_on_batch(inputs)
                faces_done = repeats * len(inputs)
                wall[name][column].append((time.perf_counter() - started) * 1000 / faces_done)
                cpu[name][column].append((time.process_time() - started_cpu) * 1000 / faces_done)
    lines = ["| model | ms a face, batches of 256 (CPU ms) | ms, one face (CPU ms) |", "|---|---|---|"]
    lines += [f"| {name} | {statistics.median(wall[name][0]):.2f} ({statistics.median(cpu[name][0]):.2f}) | "
              f"{statistics.median(wall[name][1]):.2f} ({statistics.median(cpu[name][1]):.2f}) |" for name in models]
    pixels = faces.images.astype(np.float32)
    difference = np.abs(models["onnxruntime float32"].predict_on_batch(pixels)
                        - np.asarray(models["Keras predict_on_batch (old)"].predict_on_batch(pixels))).max()
    lines.append(f"\nonnxruntime float32 vs Keras on these 256 faces: max |difference| {difference:.1e}")
    return lines


# --- whole processes -------------------------------------------------------------------------------------


def timed_process(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds


def bench_processes(name: str, command: list[str], runs: int, target: str) -> str:
    old, new = [], []
    for _ in range(runs):  # Alternating, so both see the same load.
        old.append(timed_process(command, {"FER_STUDIO_RUNTIME": "keras"}))
        new.append(timed_process(command, {}))
    return row(name, old, new, target)


def photo() -> Path:
    from PIL import Image
    from skimage import data

    path = Path(tempfile.mkdtemp()) / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(path)
    return path


# --- cold start in Chromium -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(home: Path, env: dict[str, str], tree: Path = ROOT) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=tree, env={**os.environ, "FER_STUDIO_HOME": str(home), **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return server, url
        except OSError:
            time.sleep(0.05)
        if server.poll() is not None:
            raise SystemExit("streamlit exited early")


def rendered(page) -> None:
    """Streamlit has finished the script run (no 'Running…' icon) and the page's content is there."""
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')"
        " && document.querySelectorAll('[data-testid=\"stMarkdown\"]').length > 0", timeout=120_000)


def cold_start(browser, home: Path, env: dict[str, str], tree: Path = ROOT) -> tuple[float, float | None]:
    """(seconds from `streamlit run` to Home rendered, then seconds to open Predict with its model loaded;
    None for another tree, whose pages differ)."""
    started = time.perf_counter()
    server, url = start_server(home, env, tree)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        # Home's last element: the download section here, the model's box in an old tree.
        page.get_by_text("Download this model" if tree == ROOT else "Active model").wait_for(timeout=120_000)
        rendered(page)
        home_seconds = time.perf_counter() - started
        if tree != ROOT:
            page.close()
            return home_seconds, None
        started = time.perf_counter()
        page.goto(f"{url}/predict")
        page.get_by_text("(change it in the sidebar)").wait_for(timeout=120_000)  # Drawn once the model is loaded.
        rendered(page)
        predict_seconds = time.perf_counter() - started
        page.close()
        return home_seconds, predict_seconds
    finally:
        server.terminate()
        server.wait(timeout=20)


def dataset_page(browser, home: Path) -> float:
    """Seconds from a click on Dataset in the sidebar (Home shown, on a freshly started server) to the
    Dataset page rendered with its class-distribution chart."""
    server, url = start_server(home, {})
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.get_by_text("Download this model").wait_for(timeout=120_000)
        rendered(page)
        started = time.perf_counter()
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Dataset").click()
        page.locator(".st-key-distribution_chart .js-plotly-plot").wait_for(timeout=120_000)
        rendered(page)
        seconds = time.perf_counter() - started
        page.close()
        return seconds
    finally:
        server.terminate()
        server.wait(timeout=20)


def bench_dataset_page(runs: int) -> list[str]:
    from browser.conftest import launch_chromium
    from playwright.sync_api import sync_playwright

    first, again = [], []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as home:
                first.append(dataset_page(browser, Path(home)))  # A new user: the demo set is drawn now.
                again.append(dataset_page(browser, Path(home)))  # Drawn already: read from the disk cache.
        browser.close()
    return ["| click on Dataset → page rendered | demo set drawn on this visit (a new user) | already drawn | runs |",
            "|---|---|---|---|",
            f"| median | {statistics.median(first):.2f} s | {statistics.median(again):.2f} s | {runs} |"]


def bench_coldstart(runs: int, old_tree: Path | None) -> list[str]:
    from browser.conftest import launch_chromium
    from playwright.sync_api import sync_playwright

    fresh, fresh_old, warm, warm_old, predict_old, predict_new = [], [], [], [], [], []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for _ in range(runs):
            if old_tree:
                with tempfile.TemporaryDirectory() as home:
                    fresh_old.append(cold_start(browser, Path(home), {}, old_tree)[0])
            with tempfile.TemporaryDirectory() as home:
                fresh.append(cold_start(browser, Path(home), {})[0])  # A new user.
                if old_tree:
                    warm_old.append(cold_start(browser, Path(home), {}, old_tree)[0])
                predict_old.append(cold_start(browser, Path(home), {"FER_STUDIO_RUNTIME": "keras"})[1])
                seconds, new = cold_start(browser, Path(home), {})
                warm.append(seconds)
                predict_new.append(new)
        browser.close()
    return [row("cold start → Home rendered, fresh FER_STUDIO_HOME (a new user; old: `--old-tree`)",
                fresh_old or None, fresh, "≤ 3 s"),
            row("cold start → Home rendered, warm FER_STUDIO_HOME (old: `--old-tree`)", warm_old, warm, "≤ 3 s"),
            row("then open Predict until its model is loaded", predict_old, predict_new)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--runs", type=int, default=3, help="runs of each whole-process measurement")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the crop timings")
    parser.add_argument("--old-tree", type=Path, help="the app before this change, for the cold start's old column "
                        "(e.g. git archive 4824ef3 | tar -x -C /tmp/old)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    if "crop" in args.parts:
        print("\n".join(bench_crop(args.rounds)) + "\n")
    header = ["| measurement | old (Keras) | new (onnxruntime) | old / new | target | runs |",
              "|---|---|---|---|---|---|"]
    lines = []
    if "predict" in args.parts:
        lines.append(bench_processes("`python -m fer predict PHOTO`, whole process",
                                     [sys.executable, "-m", "fer", "predict", str(photo())], args.runs, "≤ 2.5 s"))
    if "evaluate" in args.parts:
        lines.append(bench_processes("`python -m fer evaluate` on FER2013 validation (3,589), whole process",
                                     [sys.executable, "-m", "fer", "evaluate", "--dataset", str(FER2013)],
                                     args.runs, "≤ 10 s"))
    if "coldstart" in args.parts:
        lines += bench_coldstart(args.runs, args.old_tree)
    if lines:
        print("\n".join(header + lines))
    if "dataset" in args.parts:
        print("\n".join(bench_dataset_page(args.runs)))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
