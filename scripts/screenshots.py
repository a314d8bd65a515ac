"""Walk every page of FER Studio in Chromium at 1400 and 1000 px wide: check that no chart's labels overlap,
and save screenshots (the key views into docs/screenshots/, the README's pictures of the product).

    python scripts/screenshots.py [--out docs/screenshots] [--walk-only] [--port 8519]

It starts its own server on the demo set with a fresh FER_STUDIO_HOME and the shipped model, uploads a
photo of several faces and one without a face to Predict, and prints every overlap it measures (tick
labels, heatmap cells and bar texts, from the rendered SVG: tests/helpers/chart_geometry.py). It exits
with status 1 when any overlap is found. PNGs are reduced to 256 colours to stay small.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # The browser helpers in tests/browser/conftest.py; fer is installed.

from browser.conftest import launch_chromium, open_app, serve_app, wait_for_app  # noqa: E402
from helpers.chart_geometry import MEASURE_JS, overlaps  # noqa: E402

WIDTHS = (1400, 1000)
LONG = 300_000  # ms: the first model load and the demo set's drawing on a busy 2-core machine.
# (file name, page link, a CSS selector that shows the page has drawn, whether the README shows it)
PAGES = (
    ("home", "Home", "text=Active model", True),
    ("dataset", "Dataset", "text=Image quality", True),
    ("train", "Train", "text=Current run", False),
    ("evaluate", "Evaluate", ".st-key-confusion_matrix .js-plotly-plot", True),
    ("models", "Models", "text=Finished training runs", True),
    ("predict", "Predict", "text=Face detector", True),
)


def group_photo() -> bytes:
    """Three faces side by side: the astronaut, mirrored, and darker; a JPEG as a phone would give."""
    face = np.asarray(Image.fromarray(data.astronaut()).resize((360, 360)))
    strip = np.concatenate([face, face[:, ::-1], (face * 0.7).astype(np.uint8)], axis=1)
    buffer = io.BytesIO()
    Image.fromarray(strip).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def save_small(png: bytes, target: Path) -> None:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


def wait_for_charts(page) -> None:
    """Until every Plotly chart on the page has drawn its SVG (they draw after the script run ends)."""
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')]"
                           ".every(chart => chart.querySelector('.main-svg'))")
    page.wait_for_timeout(1000)  # Automargins take a second layout pass.


def walk(url: str, out: Path, keep: Path | None, playwright) -> list[str]:
    problems = []
    folder = Path(tempfile.mkdtemp())
    (folder / "group.jpg").write_bytes(group_photo())
    Image.fromarray(data.coffee()).save(folder / "coffee.jpg")
    browser = launch_chromium(playwright)
    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 1000})
        context.set_default_timeout(LONG)
        page = context.new_page()
        open_app(page, url)
        for name, link, marker, key_view in PAGES:
            links = page.get_by_role("link", name=re.compile(rf"{link}$"))
            if not links.count():
                problems.append(f"{width}px: no {link} page in the navigation")
                continue
            links.first.click()
            wait_for_app(page)
            page.locator(marker).first.wait_for()
            wait_for_app(page)
            if name == "predict":
                uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]').first
                uploader.set_input_files([str(folder / "group.jpg"), str(folder / "coffee.jpg")])
                page.get_by_text(re.compile(r"2 images")).first.wait_for()
            wait_for_app(page)
            if keep is not None and key_view:  # The README's picture: the first screen, as a person sees it.
                wait_for_charts(page)
                if name == "predict":  # The group photo's result: numbered boxes and their table.
                    group = (page.locator('[data-testid="stVerticalBlock"]')
                             .filter(has=page.get_by_text("group.jpg", exact=True))
                             .filter(has=page.locator('[data-testid="stImage"]')).last)  # The innermost.
                    save_small(group.screenshot(), keep / f"{name}-{width}.png")
                else:
                    save_small(page.screenshot(), keep / f"{name}-{width}.png")
            # The whole page in one tall window: Streamlit scrolls inside its own element, not the document.
            height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
            page.set_viewport_size({"width": width, "height": min(max(height, 1000), 12_000)})
            wait_for_charts(page)
            measured = page.evaluate(MEASURE_JS, page.locator("body").element_handle())
            problems += [f"{width}px {name}: {overlap.chart or 'a chart'}: '{overlap.first}' overlaps "
                         f"'{overlap.second}'" for overlap in overlaps(measured)]
            save_small(page.screenshot(), out / f"{name}-{width}.png")
            page.set_viewport_size({"width": width, "height": 1000})
            print(f"{width}px {name}: {len(measured)} charts measured", flush=True)
        context.close()
    browser.close()
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots",
                        help="where the key views go (the README links them)")
    parser.add_argument("--walk-only", action="store_true", help="check and keep full pages in a temporary folder")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="fer-screenshots-"))
    full = home / "pages"
    full.mkdir()
    keep = None if args.walk_only else args.out
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    server = serve_app(home)
    url = next(server)
    try:
        with sync_playwright() as playwright:
            problems = walk(url, full, keep, playwright)
    finally:
        next(server, None)
    print(f"full pages in {full}")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
