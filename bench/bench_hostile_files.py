"""Time and peak memory of `python -m fer` answering each kind of hostile file (the tests' own bombs).

    python bench/bench_hostile_files.py

Prints a Markdown table: the bomb, the command, its exit status, wall time and peak resident memory
(VmHWM of the command's own process). The target is 20 s and 1.5 GB each (docs/security.md).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import av
import numpy as np
from PIL import Image
from skimage import data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fer.labels import CLASSES  # noqa: E402
from helpers.hostile_files import deflated_zeros, face_png, png_bomb, run_measured, write_zip  # noqa: E402


def oversize_video(path: Path) -> Path:
    """Two 6000×6000 MJPEG frames: 36 MP each, above the 16.8 MP cap."""
    frame = av.VideoFrame.from_ndarray(np.full((6000, 6000, 3), 90, np.uint8), format="rgb24").reformat(
        format="yuvj420p")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=2)
        stream.width, stream.height, stream.pix_fmt = 6000, 6000, "yuvj420p"
        for index in range(2):
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        faces = {f"images/train/{name}/0.png": face_png(index) for index, name in enumerate(CLASSES)}
        huge = work / "huge.csv"
        with open(huge, "wb") as out:
            out.write(b"emotion,pixels,Usage\n3,")
            for _ in range(100):
                out.write(b"0 " * (1 << 20))
        photo = work / "face.png"
        Image.fromarray(data.astronaut()).save(photo)
        cases = {
            "zip entry inflating to 2 GiB": ["info", "--dataset", str(write_zip(
                work / "entry.zip", faces, {"images/train/happy/bomb.png": deflated_zeros(2 << 30)}))],
            "30000×30000 PNG in a zip": ["info", "--dataset", str(write_zip(
                work / "png.zip", {**faces, "images/train/fear/bomb.png": png_bomb(30_000, 30_000)}))],
            "a 200 MB CSV line": ["info", "--dataset", str(huge)],
            "6000×6000 video, then a photo": ["predict", str(oversize_video(work / "big.mkv")), str(photo)],
        }
        print("| hostile file | command | exit | wall | peak memory |")
        print("|---|---|---|---|---|")
        for name, args in cases.items():
            measured = run_measured(["fer", *args, "--json"], cwd=ROOT, env={"FER_STUDIO_HOME": str(work / "home")})
            print(f"| {name} | `fer {args[0]}` | {measured.returncode} | {measured.seconds:.1f} s | "
                  f"{measured.peak_bytes / 1e9:.2f} GB |")


if __name__ == "__main__":
    main()
