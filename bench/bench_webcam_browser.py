"""The webcam end to end in real Chromium: seconds from START to the first label, and frames processed per second.

What a user gets, browser and server together on this machine: the app runs under `streamlit run`
(its own FER_STUDIO_HOME), Chromium plays a 30 fps (--camera-fps) .y4m of scikit-image's astronaut as its fake
camera, opens Predict → Webcam and clicks START. Printed, per run:

- first frame: seconds from the START click until the browser shows the first frame back from the
  server (labels are drawn on frames from the first analysed one on);
- first label: seconds from the START click until the page shows "Live: face N · <label>" (its status
  refreshes once a second);
- processed fps: frames the server analysed per second over `--seconds`, from the page's own
  "frames analysed" count (first and last change seen, so the page's refresh period cancels out);
- the page's own "Processed frames per second" metric (median of what it showed);
- shown fps and size: frames the browser's <video> presented per second (the camera's rate when it keeps
  up), and their size;
- server and Chromium CPU: percent of one core over the window (from /proc), on a 2-core machine;
- the server's memory (RSS) over the window, and whether TensorFlow is loaded in it (Streamlit clears
  the Keras session after every script and fragment run when Keras is imported).

`--variant NAME:KEY=VALUE,...` compares server settings side by side (each variant's server started in
turn, `--rounds` times, alternating); `--env KEY=VALUE` applies to all; `--runs` repeats START/STOP on
one server; `--profile out.svg` attaches py-spy to the server for the window.

    .venv/bin/python bench/bench_webcam_browser.py
    .venv/bin/python bench/bench_webcam_browser.py --rounds 2 --variant "gc on:STREAMLIT_RUNNER_POST_SCRIPT_GC=true" \
        --variant "gc off:STREAMLIT_RUNNER_POST_SCRIPT_GC=false"
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # The browser helpers in tests/browser/conftest.py; fer is installed.

from browser.conftest import launch_chromium, serve_app, wait_for_app  # noqa: E402
from browser.test_predict_browser import LABEL, face_frame, goto_predict, write_y4m  # noqa: E402

CAMERA_FPS = 30  # What the page asks of a camera, and what most webcams give.
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds used so far by each of these processes that is still running."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    return used


def cpu_percent(before: dict[int, float], after: dict[int, float], seconds: float) -> int:
    """Percent of one core used between two `cpu_seconds` readings by the processes alive at both."""
    return round(100 * sum(after[pid] - before[pid] for pid in before.keys() & after.keys()) / seconds)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def loaded(pid: int, library: str) -> bool:
    """Whether a process has a shared library whose path contains `library` mapped (e.g. TensorFlow's)."""
    return library in Path(f"/proc/{pid}/maps").read_text()


def pids_where(match) -> list[int]:
    """Processes whose command line satisfies `match(cmdline)`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if match(command):
                found.append(int(entry.name))
    return found


def measure(url: str, server_pid: int, video: Path, seconds: float, profile: str | None) -> dict:
    """One START-to-STOP session in a fresh Chromium; returns the measured numbers."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, [
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ])
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            goto_predict(page, url)
            page.get_by_role("tab", name=re.compile("Webcam")).click(timeout=60_000)
            wait_for_app(page)
            # The visible one: a stale copy of the component can linger, zero-sized, while a rerun finishes.
            component = page.locator('iframe[title*="webrtc_streamer"]:visible').content_frame
            start = component.get_by_role("button", name="START")
            start.wait_for(timeout=120_000)
            wait_for_app(page)
            started = time.perf_counter()
            start.click(timeout=30_000)
            label = page.get_by_text(re.compile(rf"Live: face \d+ · {LABEL} \d+%"))
            first_frame = None  # When the browser shows the first frame come back from the server.
            while not label.count():
                if time.perf_counter() - started > 120:
                    raise TimeoutError("no label on the page within 120 s of START")
                video_element = component.locator("video")
                if first_frame is None and video_element.count() and video_element.first.evaluate(
                        "v => v.getVideoPlaybackQuality().totalVideoFrames") > 0:
                    first_frame = time.perf_counter() - started
                time.sleep(0.05)
            first_label = time.perf_counter() - started

            chromium = pids_where(lambda command: "chromium" in command and "--type=" in command or
                                  command.startswith(("/usr/bin/chromium", "/usr/lib/chromium")))
            spy = None
            if profile:
                # A .svg gets a flame graph; any other name py-spy's collapsed stacks ("raw"), one line per stack.
                spy = subprocess.Popen(
                    [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(server_pid),
                     "-d", str(int(seconds)), "-o", profile, "--nonblocking",
                     "-f", "flamegraph" if profile.endswith(".svg") else "raw"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            video_element = component.locator("video").first
            shown_before = video_element.evaluate("v => v.getVideoPlaybackQuality().totalVideoFrames")
            cpu_before = cpu_seconds([server_pid]), cpu_seconds(chromium)
            window_start = time.perf_counter()
            counts, metrics = [], []  # (time, frames analysed) at each change; the page's fps metric.
            rss = [rss_mb(server_pid)]
            while time.perf_counter() - window_start < seconds:
                try:
                    text = page.locator('[data-testid="stCaptionContainer"]').filter(
                        has_text="frames analysed").first.inner_text(timeout=2_000)
                    metric = page.locator('[data-testid="stMetricValue"]').first.inner_text(timeout=2_000)
                except PlaywrightTimeout:  # The status hides while no frame has been analysed for 3 s.
                    continue
                count = int(re.search(r"([\d,]+) frames analysed", text).group(1).replace(",", ""))
                if not counts or count != counts[-1][1]:
                    counts.append((time.perf_counter(), count))
                metrics.append(float(metric))
                rss.append(rss_mb(server_pid))
                time.sleep(0.25)
            elapsed = time.perf_counter() - window_start
            cpu_after = cpu_seconds([server_pid]), cpu_seconds(chromium)
            shown_after = video_element.evaluate("v => v.getVideoPlaybackQuality().totalVideoFrames")
            size = video_element.evaluate("v => `${v.videoWidth}×${v.videoHeight}`")
            if spy:
                spy.wait(timeout=60)
            component.get_by_role("button", name="STOP").click(timeout=30_000)
        except Exception:
            shot = Path(tempfile.gettempdir()) / "bench-webcam-failure.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"the page when it failed: {shot}", file=sys.stderr)
            raise
        finally:
            browser.close()
    (first_time, first_count), (last_time, last_count) = (counts[0], counts[-1]) if counts else ((0, 0), (1, 0))
    return {
        "first_frame_s": None if first_frame is None else round(first_frame, 2),
        "first_label_s": round(first_label, 2),
        "processed_fps": round((last_count - first_count) / max(last_time - first_time, 1e-9), 1),
        "page_metric_fps": round(statistics.median(metrics), 1),
        "shown_fps": round((shown_after - shown_before) / elapsed, 1),
        "shown_size": size,
        "server_cpu_pct": cpu_percent(cpu_before[0], cpu_after[0], elapsed),
        "chromium_cpu_pct": cpu_percent(cpu_before[1], cpu_after[1], elapsed),
        "server_rss_mb": f"{rss[0]:.0f}→{rss[-1]:.0f} (max {max(rss):.0f})",
        "tensorflow_in_server": "yes" if loaded(server_pid, "_pywrap_tensorflow") else "no",
    }


def run_variant(env: dict[str, str], video: Path, home: Path, seconds: float, runs: int,
                profile: str | None) -> list[dict]:
    """Start a server with `env`, measure `runs` START/STOP sessions against it, stop it."""
    server = serve_app(home, env)
    url = next(server)
    port = url.rsplit(":", 1)[1]
    server_pid = pids_where(lambda command: "streamlit run" in command and f"--server.port {port}" in command)[0]
    try:
        return [measure(url, server_pid, video, seconds, profile if run == 0 else None) for run in range(runs)]
    except Exception:
        log = (home / "streamlit.log").read_text().splitlines()[-30:]
        print("server log (last lines):\n" + "\n".join(log), file=sys.stderr)
        raise
    finally:
        next(server, None)  # Stops the server.


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window after the first label")
    parser.add_argument("--runs", type=int, default=1, help="START/STOP sessions per server")
    parser.add_argument("--rounds", type=int, default=1, help="times each variant's server is started, alternating")
    parser.add_argument("--model", help="name of the registered model the server uses (FER_STUDIO_MODEL; default: "
                        "the shipped model)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="server environment")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                        help="server settings compared side by side (default: one variant, as configured)")
    parser.add_argument("--profile", metavar="FILE", help="py-spy profile of the server over the first window "
                        "(.svg: flame graph, else collapsed stacks)")
    parser.add_argument("--camera-fps", type=int, default=CAMERA_FPS, help="frames a second the fake camera plays")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    common = dict(item.split("=", 1) for item in args.env)
    common.setdefault("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")
    if args.model:
        common["FER_STUDIO_MODEL"] = args.model
    variants = {"as configured": {}}
    if args.variant:
        variants = {}
        for spec in args.variant:
            name, _, settings = spec.partition(":")
            variants[name] = dict(item.split("=", 1) for item in settings.split(",") if item)
    load = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-webcam-") as scratch:
        scratch = Path(scratch)
        video = write_y4m(scratch / "face.y4m", [face_frame(shift) for shift in range(-20, 20, 2)], args.camera_fps)
        for round_number in range(args.rounds):
            for name, settings in variants.items():
                home = scratch / f"{name.replace(' ', '-')}-{round_number}"
                home.mkdir()
                profile = args.profile if round_number == 0 and len(variants) == 1 else None
                for row in run_variant({**common, **settings}, video, home, args.seconds, args.runs, profile):
                    rows.append({"variant": name, **row})
    if args.json:
        print(json.dumps({"env": common, "variants": variants, "rows": rows}, indent=2))
        return 0
    print(f"camera {args.camera_fps} fps 640×480; window {args.seconds:.0f} s; CPUs: {os.cpu_count()}; "
          f"load average before: {load:.2f}, after: {os.getloadavg()[0]:.2f}")
    for name, settings in variants.items() if args.variant else ():
        print(f"  {name}: {', '.join(f'{key}={value}' for key, value in settings.items()) or 'as configured'}")
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|---" * len(header) + "|")
    for row in rows:
        print("| " + " | ".join(str(row[key]) for key in header) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
