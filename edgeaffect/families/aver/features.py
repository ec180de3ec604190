"""Audio-visual emotion features (Ding, Tang, Lu, IEEE TAC 2025, Sec. III-A/B).

A clip gives ``n_segments`` (6) samples. Sample k pairs
- the face in the frame at k/6 of the video (Haar cascade, grayscale, 64x64), and
- the 40 MFCCs of the k-th of 6 equal, non-overlapping audio segments, averaged over time
  (librosa defaults, hop 512, at the file's own sample rate).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

import edgeaffect.families.aver.faces as _faces
from edgeaffect.errors import MediaError
from edgeaffect.families.aver.faces import NoFaceError
from edgeaffect.features.mfcc import MfccConfig
from edgeaffect.features.mfcc import mfcc as mfcc_numpy


@dataclass(frozen=True)
class AverFeatureConfig:
    n_segments: int = 6
    frame_position: str = "start"  # paper: frames "at one-sixth intervals"; "center" is the alternative
    mfcc: MfccConfig = field(default_factory=MfccConfig)
    face: _faces.FaceConfig = field(default_factory=_faces.FaceConfig)
    # A frame with no detected face borrows the box of the nearest frame that has one;
    # a clip with no face at all is unusable. The paper does not say what it did.
    reuse_nearest_face: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AverFeatureConfig":
        d = dict(d)
        return cls(mfcc=MfccConfig(**d.pop("mfcc", {})), face=_faces.FaceConfig(**d.pop("face", {})), **d)


def split_segments(y: np.ndarray, n_segments: int, min_samples: int) -> list[np.ndarray]:
    """``n_segments`` equal, non-overlapping pieces (a remainder of < n samples is dropped)."""
    seg = y.size // n_segments
    if seg < min_samples:
        raise MediaError(
            f"audio too short: {y.size} samples give {n_segments} segments of {seg}; "
            f"each needs at least {min_samples} (n_fft) samples"
        )
    return [y[k * seg : (k + 1) * seg] for k in range(n_segments)]


def audio_features(y: np.ndarray, sr: int, config: AverFeatureConfig = AverFeatureConfig(),
                   mfcc_fn=mfcc_numpy) -> np.ndarray:
    """Per-segment time-averaged MFCCs [shape=(n_segments, n_mfcc)], float32."""
    if not np.any(y):
        raise MediaError("audio is digital silence (all samples zero); check the microphone or file")
    segments = split_segments(y, config.n_segments, config.mfcc.n_fft)
    return np.stack([mfcc_fn(s, sr, config.mfcc).mean(axis=1) for s in segments]).astype(np.float32)


def face_features(frames: list[np.ndarray], config: AverFeatureConfig = AverFeatureConfig()) -> np.ndarray:
    """Grayscale face crops [shape=(len(frames), size, size)], uint8."""
    grays = [_faces.to_gray(f) for f in frames]
    return crops_from_boxes(grays, _faces.find_faces(grays, config.face), config)


def crops_from_boxes(grays: list[np.ndarray], boxes: list, config: AverFeatureConfig) -> np.ndarray:
    """The crops of found boxes; a frame without one borrows the nearest frame's box
    (``reuse_nearest_face``)."""
    found = [i for i, b in enumerate(boxes) if b is not None]
    if not found:
        raise NoFaceError(f"no face found in any of the {len(grays)} sampled frames")
    if len(found) < len(boxes) and not config.reuse_nearest_face:
        raise NoFaceError(f"no face in {len(boxes) - len(found)} of {len(grays)} sampled frames")
    crops = []
    for i, g in enumerate(grays):
        box = boxes[i] or boxes[min(found, key=lambda j: abs(j - i))]
        crops.append(_faces.crop_face(g, box, config.face.size))
    return np.stack(crops)


def clip_features(frames: list[np.ndarray], y: np.ndarray, sr: int,
                  config: AverFeatureConfig = AverFeatureConfig(), mfcc_fn=mfcc_numpy) -> dict[str, np.ndarray]:
    """One clip -> ``{"face": (n, 64, 64) uint8, "mfcc": (n, 40) float32}``."""
    if len(frames) != config.n_segments:
        raise MediaError(f"expected {config.n_segments} frames, got {len(frames)}")
    return {"face": face_features(frames, config), "mfcc": audio_features(y, sr, config, mfcc_fn)}


def model_inputs(feats: dict[str, np.ndarray], mfcc_mean: np.ndarray, mfcc_std: np.ndarray) -> dict[str, np.ndarray]:
    """Features -> the float32 tensors the network takes: faces scaled to [0, 1],
    MFCCs standardised with the training split's statistics."""
    face = feats["face"].astype(np.float32)[..., None] / 255.0
    mfcc = ((feats["mfcc"] - mfcc_mean) / mfcc_std).astype(np.float32)[..., None]
    return {"face": face, "mfcc": mfcc}
