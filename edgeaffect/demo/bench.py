"""Media for the demo benchmark: a real face (scikit-image's astronaut photograph, which
ships with the package) in a 640x480 30 fps video, and 16 kHz speech-like audio."""

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


def speech_like(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced, formant-shaped, amplitude-modulated signal (seeded): speech-like enough for
    MFCCs and level meters, without any recording."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(h * phase) / h * (1 + 2 * np.exp(-((h * 140 - 700) / 300) ** 2)) for h in range(1, 30))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.3 * y * env / np.abs(y).max() + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def make_demo_media(folder: Path, seconds: float, fps: int = 30, sr: int = 16000) -> tuple[Path, Path]:
    import cv2

    from edgeaffect.media.audio import write_wav

    video = folder / "astronaut.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    base = astronaut_frame()
    for i in range(int(seconds * fps)):
        writer.write(np.roll(base, (i % 10) - 5, axis=1))  # a little motion, the face stays detectable
    writer.release()
    wav = folder / "speech.wav"
    write_wav(wav, speech_like(sr, seconds), sr)
    return video, wav
