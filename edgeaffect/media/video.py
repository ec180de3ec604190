"""Video decoding with OpenCV: frame count and the frames at given positions."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeaffect._optional import require
from edgeaffect.errors import InputError, MediaError


@dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: float
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps if self.fps > 0 else 0.0


# Decoder threads per capture (None: the backend's default, one per core). The one-core
# benchmark sets 1 with ``set_decode_threads`` so decoding is counted on the core it claims.
_DECODE_THREADS: int | None = None


def set_decode_threads(n: int | None) -> None:
    """Threads each video decoder may use from now on (None: the backend's default)."""
    global _DECODE_THREADS
    _DECODE_THREADS = n


def _open(path: Path):
    cv2 = require("cv2", "device", package="opencv-python-headless")
    if not path.exists():
        raise InputError(f"file not found: {path}")
    if not path.is_file() or path.stat().st_size == 0:
        raise MediaError(f"not a readable video file: {path}")
    if _DECODE_THREADS is not None and hasattr(cv2, "CAP_PROP_N_THREADS"):
        cap = cv2.VideoCapture(str(path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, int(_DECODE_THREADS)])
    else:
        cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise MediaError(f"cannot open video {path} (corrupt, or not a video)")
    return cv2, cap


def _count_frames(cap) -> int:
    n = 0
    while cap.grab():
        n += 1
    return n


def video_info(path: str | os.PathLike) -> VideoInfo:
    path = Path(path)
    cv2, cap = _open(path)
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if n <= 0:
            n = _count_frames(cap)
        return VideoInfo(n, float(cap.get(cv2.CAP_PROP_FPS)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                         int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()


def _read_indices(cv2, cap, wanted: list[int]) -> dict[int, np.ndarray]:
    """Decode sequentially (seeking is unreliable across codecs, and most clips hold one
    keyframe) up to the last of ``wanted``; only those are converted to BGR (``grab``
    decodes, ``retrieve`` converts)."""
    out: dict[int, np.ndarray] = {}
    keep = set(wanted)
    last = max(wanted)
    i = 0
    while i <= last and cap.grab():
        if i in keep:
            ok, frame = cap.retrieve()
            if ok:
                out[i] = frame
        i += 1
    return out


def frame_positions(n_frames: int, count: int, position: str) -> list[int]:
    """Indices of ``count`` frames at 1/count intervals: the start or the centre of each."""
    offset = {"start": 0.0, "center": 0.5}[position]
    return [min(n_frames - 1, int((k + offset) * n_frames / count)) for k in range(count)]


def read_frames_at(path: str | os.PathLike, count: int, position: str = "start") -> list[np.ndarray]:
    """``count`` BGR frames taken at 1/count intervals of the video (uint8 [shape=(h, w, 3)])."""
    path = Path(path)
    cv2, cap = _open(path)
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if n <= 0:
            n = _count_frames(cap)
            cap.release()
            cv2, cap = _open(path)
        if n < count:
            raise MediaError(f"video {path} has {n} frames; at least {count} are needed")
        wanted = frame_positions(n, count, position)
        got = _read_indices(cv2, cap, wanted)
        if len(got) < len(set(wanted)):
            # The container over-reported its frame count: re-pick from the real count.
            cap.release()
            cv2, cap = _open(path)
            n = _count_frames(cap)
            if n < count:
                raise MediaError(f"video {path} decodes to {n} frames; at least {count} are needed")
            cap.release()
            cv2, cap = _open(path)
            wanted = frame_positions(n, count, position)
            got = _read_indices(cv2, cap, wanted)
        return [got[i] for i in wanted]
    finally:
        cap.release()


def read_all_frames(path: str | os.PathLike) -> tuple[list[np.ndarray], float]:
    """Every BGR frame of a video and its frame rate (30 where the container does not say)."""
    path = Path(path)
    cv2, cap = _open(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
        return frames, fps
    finally:
        cap.release()
