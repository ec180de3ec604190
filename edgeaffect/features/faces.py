"""Face crops as the audio-visual paper makes them: Haar cascade, grayscale, 64x64."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from edgeaffect._optional import require
from edgeaffect.errors import MissingDependencyError


@dataclass(frozen=True)
class FaceConfig:
    size: int = 64
    cascade: str = "haarcascade_frontalface_default.xml"
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size_frac: float = 0.1  # smallest face side, as a fraction of the frame's shorter side


@lru_cache(maxsize=4)
def _cascade(name: str):
    cv2 = require("cv2", "device", package="opencv-python-headless")
    path = cv2.data.haarcascades + name
    detector = cv2.CascadeClassifier(path)
    if detector.empty():
        raise MissingDependencyError(f"cannot load the Haar cascade {path}; reinstall 'opencv-python-headless<5'")
    return detector


def to_gray(frame: np.ndarray) -> np.ndarray:
    cv2 = require("cv2", "device", package="opencv-python-headless")
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def detect_face(gray: np.ndarray, config: FaceConfig = FaceConfig()) -> tuple[int, int, int, int] | None:
    """The largest face as (x, y, w, h), or None."""
    side = max(16, int(min(gray.shape[:2]) * config.min_size_frac))
    faces = _cascade(config.cascade).detectMultiScale(
        gray, scaleFactor=config.scale_factor, minNeighbors=config.min_neighbors, minSize=(side, side)
    )
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: int(f[2]) * int(f[3]))
    return int(x), int(y), int(w), int(h)


def crop_face(gray: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """Crop ``box`` and resize to size x size (uint8)."""
    cv2 = require("cv2", "device", package="opencv-python-headless")
    x, y, w, h = box
    return cv2.resize(gray[y : y + h, x : x + w], (size, size), interpolation=cv2.INTER_AREA)


def detect_face_scaled(gray: np.ndarray, face_cfg, width: int):
    """``detect_face`` on a downscaled copy, the box mapped back to ``gray``'s pixels."""
    cv2 = require("cv2", "device", package="opencv-python-headless")
    scale = width / gray.shape[1] if gray.shape[1] > width else 1.0
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    box = detect_face(small, face_cfg)
    return None if box is None else tuple(int(round(v / scale)) for v in box)
