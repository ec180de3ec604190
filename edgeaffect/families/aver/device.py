"""AVER on the device: a clip (or a camera frame and the newest audio) -> the network's
inputs, with NumPy and OpenCV only."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgeaffect.families.aver.features import AverFeatureConfig, clip_features, model_inputs
from edgeaffect.families.base import DeviceAdapter, LiveInput


class AverAdapter(DeviceAdapter):
    needs_video = True

    def __init__(self, preprocessing: dict, task, labels):
        super().__init__(preprocessing, task, labels)
        self.features = AverFeatureConfig.from_dict(preprocessing["features"])
        self.mean = np.asarray(preprocessing["mfcc_mean"], np.float32)
        self.std = np.asarray(preprocessing["mfcc_std"], np.float32)

    def load(self, media: Path, audio: Path | None = None):
        from edgeaffect.media import read_audio, read_frames_at

        y, sr = read_audio(audio or media)
        frames = read_frames_at(media, self.features.n_segments, self.features.frame_position)
        return frames, y, sr

    def inputs(self, decoded) -> dict[str, np.ndarray]:
        frames, y, sr = decoded
        return model_inputs(clip_features(frames, y, sr, self.features), self.mean, self.std)

    def describe_inputs(self) -> str:
        n = self.features.n_segments
        return f"{n} Haar faces + {n} x {self.features.mfcc.n_mfcc} MFCC (NumPy)"

    def live_rate(self, config) -> float:
        return config.max_fps

    def live_input(self, frame, audio, config) -> LiveInput:
        """The newest frame's face (detected on a downscaled copy) and the MFCCs of the last
        ``config.segment_s`` of audio: one of the six samples a clip gives."""
        from edgeaffect.features import faces as F
        from edgeaffect.features.mfcc import mfcc

        t0 = time.perf_counter()
        face = None
        if frame is not None:
            gray = F.to_gray(frame)
            box = F.detect_face_scaled(gray, self.features.face, config.detect_width)
            if box is not None:
                face = F.crop_face(gray, box, self.features.face.size)
        t1 = time.perf_counter()
        sr = audio.ring.sample_rate if audio else 16000
        n = max(int(sr * config.segment_s), self.features.mfcc.n_fft)
        y = audio.ring.latest(n) if audio else np.zeros(n, np.float32)
        rms = float(np.sqrt(np.mean(y ** 2)))
        coeffs = mfcc(y + 1e-9 * (rms == 0), sr, self.features.mfcc).mean(axis=1).astype(np.float32)
        t2 = time.perf_counter()
        stage = {"face": (t1 - t0) * 1e3, "features": (t2 - t1) * 1e3}
        if face is None:
            return LiveInput(None, "no face", rms, stage)
        x = model_inputs({"face": face[None], "mfcc": coeffs[None]}, self.mean, self.std)
        return LiveInput(x, "ok", rms, stage)
