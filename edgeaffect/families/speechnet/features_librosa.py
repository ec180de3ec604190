"""The fusion features with librosa (training side; the reference the NumPy version
in ``fusion.py`` is held to). Same frames, same blocks, same order."""

from __future__ import annotations

import numpy as np

from edgeaffect._optional import require
from edgeaffect.families.speechnet.features import FusionConfig, prepare_audio


def fusion_features_librosa(y: np.ndarray, sr: int, config: FusionConfig = FusionConfig()) -> np.ndarray:
    """Per-frame fusion features [shape=(t, dim)] float32, computed with librosa."""
    librosa = require("librosa", "train")
    y = prepare_audio(y, sr, config)
    sr, n, hop = config.sample_rate, config.n_fft, config.hop_length
    sizes = dict(config.composition)
    stft = dict(sr=sr, n_fft=n, hop_length=hop)
    blocks = {}
    cep = librosa.feature.mfcc(y=y, n_mfcc=max(sizes.get("mfcc", 1), sizes.get("mfcc_delta", 0)),
                               n_mels=config.n_mels, **stft)
    blocks["mfcc"] = cep
    padded = np.pad(cep[: sizes.get("mfcc_delta", 0)], ((0, 0), (1, 1)), mode="edge")
    blocks["mfcc_delta"] = padded[:, 2:] - padded[:, :-2]  # the paper's Eq. 17
    chroma = librosa.feature.chroma_stft(y=y, tuning=0.0, **stft)
    blocks["chroma"] = chroma
    blocks["tonnetz"] = librosa.feature.tonnetz(chroma=chroma, sr=sr)
    blocks["contrast"] = librosa.feature.spectral_contrast(y=y, n_bands=config.contrast_bands,
                                                           fmin=config.contrast_fmin, **stft)
    blocks["zcr"] = librosa.feature.zero_crossing_rate(y, frame_length=n, hop_length=hop)
    blocks["centroid"] = librosa.feature.spectral_centroid(y=y, **stft)
    blocks["bandwidth"] = librosa.feature.spectral_bandwidth(y=y, **stft)
    blocks["rolloff"] = librosa.feature.spectral_rolloff(y=y, roll_percent=config.rolloff_percent, **stft)
    if "pitch" in sizes:
        blocks["pitch"] = librosa.yin(y, fmin=config.pitch_fmin, fmax=config.pitch_fmax, sr=sr, frame_length=n,
                                      hop_length=hop, trough_threshold=config.yin_threshold)[None]
    t = cep.shape[1]
    out = np.concatenate([blocks[name][:size, :t] for name, size in config.composition], axis=0)
    return out.T.astype(np.float32)
