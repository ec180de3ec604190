"""The demo benchmarks' camera for AVER: a real face (scikit-image's astronaut photograph,
which ships with that package) in a 640x480 30 fps video, moving a little."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeaffect._optional import require


def astronaut_frame(width: int = 640, height: int = 480) -> np.ndarray:
    data = require("skimage.data", "dev", "scikit-image")
    import cv2

    rgb = data.astronaut()
    frame = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (height, height))  # keep the face square
    canvas = np.full((height, width, 3), 40, np.uint8)
    x0 = (width - height) // 2
    canvas[:, x0:x0 + height] = frame
    return canvas


def astronaut_video(folder: Path, seconds: float, fps: int = 30) -> Path:
    import cv2

    video = Path(folder) / "astronaut.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    base = astronaut_frame()
    for i in range(int(seconds * fps)):
        writer.write(np.roll(base, (i % 10) - 5, axis=1))  # a little motion, the face stays detectable
    writer.release()
    return video
