"""Videos for Chromium's fake camera (--use-file-for-fake-video-capture): YUV4MPEG2 files of faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 15) -> Path:
    """A YUV4MPEG2 (4:2:0, full-range BT.601) video of (H, W, 3) RGB frames, the format Chromium's fake camera plays."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            r, g, b = (frame[..., i].astype(np.float32) for i in range(3))
            y = 0.299 * r + 0.587 * g + 0.114 * b
            u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
            v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
            video.write(b"FRAME\n")
            for plane in (y, _halve(u), _halve(v)):
                video.write(np.clip(np.rint(plane), 0, 255).astype(np.uint8).tobytes())
    return path


def _halve(plane: np.ndarray) -> np.ndarray:
    """Average 2×2 blocks: 4:2:0 chroma."""
    height, width = plane.shape
    return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))


def people_in_turn(count: int = 12, frames_each: int = 4) -> list[np.ndarray]:
    """640×480 frames showing `count` different people's faces in turn (scikit-image's LFW faces, enlarged:
    YuNet finds each), every face held for `frames_each` frames."""
    from skimage import data

    faces = data.lfw_subset()[:count]  # The subset's first 100 images are faces (the rest are not).
    frames = []
    for face in faces:
        enlarged = cv2.resize(np.rint(face * 255).astype(np.uint8), (300, 300), interpolation=cv2.INTER_CUBIC)
        frame = np.full((480, 640), 70, np.uint8)
        frame[90:390, 170:470] = enlarged
        frames += [cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)] * frames_each
    return frames
