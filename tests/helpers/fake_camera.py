"""A video of a face for Chromium's fake camera (--use-file-for-fake-video-capture reads .y4m files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data


def face_frame(shift: int) -> np.ndarray:
    """A 640×480 RGB frame with the astronaut's photo, nudged sideways by `shift` pixels."""
    frame = np.full((480, 640, 3), 70, np.uint8)
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((480, 480)))
    frame[:, 80 + shift:560 + shift] = photo
    return frame


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 15) -> Path:
    """A YUV4MPEG2 (4:2:0, full-range BT.601) video, the format Chromium's fake camera plays."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            red, green, blue = (frame[..., index].astype(np.float32) for index in range(3))
            luma = 0.299 * red + 0.587 * green + 0.114 * blue
            blue_difference = -0.168736 * red - 0.331264 * green + 0.5 * blue + 128
            red_difference = 0.5 * red - 0.418688 * green - 0.081312 * blue + 128
            video.write(b"FRAME\n")
            for plane in (luma, _halve(blue_difference), _halve(red_difference)):
                video.write(np.clip(np.rint(plane), 0, 255).astype(np.uint8).tobytes())
    return path


def _halve(plane: np.ndarray) -> np.ndarray:
    """Average 2×2 blocks: 4:2:0 chroma."""
    height, width = plane.shape
    return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))


def people_in_turn(count: int = 12, frames_each: int = 4) -> list[np.ndarray]:
    """640×480 frames showing `count` different people's faces in turn (scikit-image's LFW faces, enlarged:
    YuNet finds each), every face held for `frames_each` frames."""
    import cv2

    faces = data.lfw_subset()[:count]  # The subset's first 100 images are faces (the rest are not).
    frames = []
    for face in faces:
        enlarged = cv2.resize(np.rint(face * 255).astype(np.uint8), (300, 300), interpolation=cv2.INTER_CUBIC)
        frame = np.full((480, 640), 70, np.uint8)
        frame[90:390, 170:470] = enlarged
        frames += [cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)] * frames_each
    return frames
