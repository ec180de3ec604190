"""The spectrotemporal model on the device: a recording -> NumPy 3-channel log-Mel
segments and VLNEP histograms -> sequences of S segments -> the model's inputs. The
score is the mean over the sequences (the task's ``combine``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeaffect.families.base import DeviceAdapter
from edgeaffect.families.spectrotemporal.features import (SpectroConfig, recording_features, sequence_starts,
                                                          to_pixels)
from edgeaffect.families.spectrotemporal.vlnep import vlnep_histograms


def segment_features(z: np.ndarray, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Segments' 3-channel log-Mel -> (the same, their VLNEP histograms from the static channel)."""
    return z, vlnep_histograms(z[..., 0], rule)


def model_inputs(z: np.ndarray, hist: np.ndarray, config: SpectroConfig, norm: dict) -> dict[str, np.ndarray]:
    """One recording's segments -> a batch of its sequences (both streams standardised)."""
    pixels = to_pixels(z, np.asarray(norm["mel_mean"], np.float32), np.asarray(norm["mel_std"], np.float32))
    h = (hist - np.asarray(norm["vlnep_mean"], np.float32)) / np.asarray(norm["vlnep_std"], np.float32)
    starts = sequence_starts(len(z), config)
    idx = starts[:, None] + np.arange(config.segments_per_sequence)[None, :]
    return {"spectrogram": pixels[idx], "vlnep": h[idx].astype(np.float32)}


class SpectroAdapter(DeviceAdapter):
    needs_video = False

    def __init__(self, preprocessing: dict, task, labels):
        super().__init__(preprocessing, task, labels)
        self.features = SpectroConfig.from_dict(preprocessing["features"])
        self.rule = preprocessing["vlnep_rule"]
        self.norm = preprocessing["normalisation"]

    def load(self, media: Path, audio: Path | None = None):
        from edgeaffect.media import read_audio

        return read_audio(audio or media)

    def inputs(self, decoded) -> dict[str, np.ndarray]:
        y, sr = decoded
        z, hist = segment_features(recording_features(y, sr, self.features), self.rule)
        return model_inputs(z, hist, self.features, self.norm)

    def duration_s(self, decoded) -> float:
        y, sr = decoded
        return y.size / sr

    def describe_inputs(self) -> str:
        f = self.features
        return f"NumPy 3-channel log-Mel ({f.n_mels} bands) + VLNEP, sequences of {f.segments_per_sequence} segments"
