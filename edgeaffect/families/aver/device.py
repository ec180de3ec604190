"""AVER on the device: a clip (or a camera frame and the newest audio) -> the network's
inputs, with NumPy and OpenCV only."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeaffect.families.aver.features import AverFeatureConfig, clip_features, model_inputs
from edgeaffect.contract.family import DeviceAdapter, LiveInput, LiveSettings, check_inputs
from edgeaffect.errors import InputError
from edgeaffect.schema import Bool, Int, List, Nullable, Num, Str, Table, field_error

_MFCC = Table({"n_mfcc": Int(min=1, max=512), "n_fft": Int(min=16, max=1 << 16), "hop_length": Int(min=1),
               "n_mels": Int(min=1, max=1024), "fmin": Num(min=0), "fmax": Nullable(Num(above=0)),
               "top_db": Nullable(Num(above=0))},
              optional={"n_mfcc", "n_fft", "hop_length", "n_mels", "fmin", "fmax", "top_db"}, closed=True)
_FACE = Table({"size": Int(min=8, max=1024), "cascade": Str(pattern=r"[\w.-]+\.xml", what="a Haar cascade file name"),
               "scale_factor": Num(above=1, max=2), "min_neighbors": Int(min=0), "min_size_frac": Num(above=0, max=1),
               "search": Str(choices=("largest-first", "exhaustive")), "band_ratio": Num(above=1, max=100),
               "coarse_px": Int(min=24, max=4096), "track_frames": Bool(), "track_ratio": Num(above=1, max=4),
               "track_margin": Num(min=0, max=4)},
              optional={"size", "cascade", "scale_factor", "min_neighbors", "min_size_frac", "search", "band_ratio",
                        "coarse_px", "track_frames", "track_ratio", "track_margin"}, closed=True)
_FEATURES = Table({"n_segments": Int(min=1, max=1000), "frame_position": Str(choices=("start", "center")),
                   "mfcc": _MFCC, "face": _FACE, "reuse_nearest_face": Bool()},
                  optional={"n_segments", "frame_position", "mfcc", "face", "reuse_nearest_face"}, closed=True)
PREPROCESSING = Table({"features": _FEATURES, "mfcc_mean": List(Num(), min_len=1),
                       "mfcc_std": List(Num(above=0), min_len=1), "face_scale": Num(above=0)},
                      optional={"face_scale"})


@dataclass(frozen=True)
class AverLive(LiveSettings):
    """The live demo's settings for AVER."""

    segment_s: float = 0.5  # audio per sample: about one sixth of a RAVDESS clip, as in training
    max_fps: float = 30.0  # cap on inferences per second
    # Haar detection runs on a copy this wide (the box is scaled back and the crop taken from
    # the full frame): 4x fewer pixels at 640x480, the largest share of the demo's latency.
    detect_width: int = 320
    # Face tracking: each frame follows the last face (the cascade in a window around it,
    # faces 0.75x to 1.33x its size); every `detect_every`-th frame also searches for a
    # larger face (the largest face wins, as in the full search); a lost track gets the full
    # search at once. 1: the full search on every frame, no tracking. `edgeaffect bench-demo`
    # measures the live label's accuracy both ways (edgeaffect/families/aver/README.md).
    detect_every: int = 6

    def __post_init__(self):
        if self.detect_every < 1 or self.detect_width < 16 or self.segment_s <= 0 or self.max_fps <= 0:
            raise InputError(f"live settings out of range: {self} (detect_every >= 1, detect_width >= 16, "
                             "segment_s and max_fps above 0)")


class AverAdapter(DeviceAdapter):
    needs_video = True
    live_settings = AverLive
    live_stages = ("face", "features")
    live_reported = {"no face": "without a face"}
    live_reference = ("detect_every", 1)  # the full face search on every frame

    preprocessing_spec = PREPROCESSING

    @classmethod
    def validate(cls, preprocessing: dict, manifest: dict) -> None:
        features = AverFeatureConfig.from_dict(preprocessing["features"])
        n = features.mfcc.n_mfcc
        for key in ("mfcc_mean", "mfcc_std"):
            if len(preprocessing[key]) != n:
                raise field_error(None, f"preprocessing.{key}", f"{n} numbers (one per MFCC, features.mfcc.n_mfcc)",
                                  f"{len(preprocessing[key])} numbers")
        size = features.face.size
        check_inputs(manifest, {"face": [size, size, 1], "mfcc": [n, 1]})

    def __init__(self, preprocessing: dict, task, labels):
        super().__init__(preprocessing, task, labels)
        self.features = AverFeatureConfig.from_dict(preprocessing["features"])
        self.mean = np.asarray(preprocessing["mfcc_mean"], np.float32)
        self.std = np.asarray(preprocessing["mfcc_std"], np.float32)
        self._tracker = None  # the live demo's face tracker, made on its first frame

    def load(self, media: Path, audio: Path | None = None):
        from edgeaffect.media import read_audio, read_frames_at

        y, sr = read_audio(audio or media)
        frames = read_frames_at(media, self.features.n_segments, self.features.frame_position)
        return frames, y, sr

    def inputs(self, decoded) -> dict[str, np.ndarray]:
        frames, y, sr = decoded
        return model_inputs(clip_features(frames, y, sr, self.features), self.mean, self.std)

    def duration_s(self, decoded) -> float:
        _, y, sr = decoded
        return y.size / sr

    def describe_inputs(self) -> str:
        n = self.features.n_segments
        return f"{n} Haar faces ({self.features.face.search}) + {n} x {self.features.mfcc.n_mfcc} MFCC (NumPy)"

    def reference(self) -> "AverAdapter":
        """The same bundle with the paper's exhaustive face search (one pass, every scale)."""
        from dataclasses import replace

        ref = copy.copy(self)
        ref._tracker = None  # its own tracking state, not the original's
        ref.features = replace(self.features, face=replace(self.features.face, search="exhaustive"))
        return ref

    def live_rate(self, settings: AverLive) -> float:
        return settings.max_fps

    def live_counters(self) -> dict[str, int]:
        return {"searches": self._tracker.detections if self._tracker is not None else 0}

    @classmethod
    def demo_video(cls, folder: Path, seconds: float, fps: int = 30) -> Path:
        from edgeaffect.families.aver.demo_media import astronaut_video

        return astronaut_video(folder, seconds, fps)

    def live_input(self, frame, audio, config: AverLive) -> LiveInput:
        """The newest frame's face (detected on a downscaled copy) and the MFCCs of the last
        ``config.segment_s`` of audio: one of the six samples a clip gives."""
        import edgeaffect.families.aver.faces as F
        from edgeaffect.features.mfcc import mfcc

        t0 = time.perf_counter()
        face = None
        every = config.detect_every
        if self._tracker is None or self._tracker.every != every:
            self._tracker = F.FaceTracker(self.features.face, every=every, width=config.detect_width)
        if frame is not None:
            gray = F.to_gray(frame)
            box = self._tracker(gray)
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
