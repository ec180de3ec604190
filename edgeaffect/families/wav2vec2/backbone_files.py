"""One file of the wav2vec 2.0 feature model (one segment of normalised audio -> its summed
frame feature, static shapes, batch 1) per export format: written by the registered export
formats (``edgeaffect.export.formats``), run by the runtimes (``edgeaffect.runtime``), and
checked against Keras. Shared by the segment export (``backbone_export``) and the
real-time-factor tool (``rtf``).

Verification: each file runs the same ``VERIFY_INPUTS`` segments as Keras; the figures are
the max |diff| over the features relative to the largest |feature| and the mean per-frame
cosine similarity. Bounds (``BOUNDS``): float formats must agree to 1e-4 of the feature
scale; fp16 weights to 1e-2; dynamic int8 to a mean cosine of 0.99.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeaffect.export.formats import get_format
from edgeaffect.families.wav2vec2.backbone import normalise_audio
from edgeaffect.runtime import load_runner

FORMATS = ("tflite-fp32", "tflite-fp16", "tflite-dynamic-int8", "onnx-fp32", "onnx-dyn-int8")
# (max |diff| / max |keras| at most, mean per-frame cosine at least)
BOUNDS = {"tflite-fp32": (1e-4, 0.9999), "onnx-fp32": (1e-4, 0.9999), "tflite-fp16": (1e-2, 0.999),
          "tflite-dynamic-int8": (None, 0.99), "onnx-dyn-int8": (None, 0.99)}
# Every format gates. TFLite's dynamic range quantizes every conv and dense weight, the conv
# feature encoder included; on a full-size base model that alone drops the mean cosine to 0.95
# (the first conv + GroupNorm to 0.89), so the ops that break the bound get their float
# weights back (``edgeaffect.export.dynamic_range``). onnx-dyn-int8 quantizes the
# transformer's MatMuls only (conv encoder and positional conv stay float).
RECORDED_ONLY: set[str] = set()
VERIFY_INPUTS = 3
INPUT = "audio"  # the feature model's input name


def gelu_for(fmt: str) -> str:
    """The GELU the model a format is written from uses: tf2onnx cannot write erfc, so the
    ONNX formats get a twin whose GELU goes through erf (the same function)."""
    return "erf" if get_format(fmt).runtime == "onnxruntime" else "tf"


def backbone_file(fmt: str) -> str:
    """The backbone's file name in an export folder for one format."""
    return f"wav2vec2_{fmt.replace('-', '_')}{get_format(fmt).suffix}"


def write_file(model, fmt: str, samples: int, path: Path, want: np.ndarray | None = None, log=None) -> dict:
    """Write ``model`` (built for batch 1 and ``samples``, with ``gelu_for(fmt)``) in ``fmt``; no
    backbone format is statically calibrated. A format that chooses its float layers (dynamic
    range) is given ``want``'s bound as what it must hold, and ranks its ops on segments other
    than the verification ones."""
    f = get_format(fmt)
    if not (f.searches and want is not None):
        return f.write(model, {INPUT: (samples,)}, [], path) or {}
    xs = verify_inputs(samples)

    def accept(blob: bytes) -> list[str]:
        candidate = path.with_name(path.name + ".candidate")
        candidate.write_bytes(blob)
        try:
            r = checked(fmt, candidate, run_file(candidate, fmt, xs), want)
        finally:
            candidate.unlink(missing_ok=True)
        return [] if r["passed"] else [f"mean cosine {r['mean_cosine']:.5f} < {BOUNDS[fmt][1]}"]

    ranking = [{INPUT: x} for x in verify_inputs(samples, count=2, seed=1)]
    return f.write(model, {INPUT: (samples,)}, ranking, path, accept=accept, log=log) or {}


def run_file(path: Path, fmt: str, xs: np.ndarray, threads: int | None = None) -> np.ndarray:
    """The file's features for each segment of ``xs``, one at a time (batch 1)."""
    runner = load_runner(path, get_format(fmt).runtime, threads=threads)
    return np.stack([runner.run({INPUT: x[None]})[0] for x in xs])


def verify_inputs(samples: int, count: int = VERIFY_INPUTS, seed: int = 0) -> np.ndarray:
    """Speech-like test segments (harmonics with a moving pitch, noise, silence gaps),
    normalised as the feature extractor does."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000.0
    out = []
    for i in range(count):
        f0 = 110 + 60 * i + 20 * np.sin(2 * np.pi * 0.5 * t)
        phase = 2 * np.pi * np.cumsum(f0) / 16000.0
        y = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t + i))
        y = y + 0.05 * rng.standard_normal(samples)
        y[(t % 1.7) > 1.4] *= 0.01
        out.append(y)
    return normalise_audio(np.stack(out))


def compare(got: np.ndarray, want: np.ndarray) -> dict:
    scale = float(np.max(np.abs(want)))
    num = np.sum(got * want, axis=-1)
    den = np.linalg.norm(got, axis=-1) * np.linalg.norm(want, axis=-1) + 1e-12
    return {"max_abs_diff": float(np.max(np.abs(got - want))), "rel_max_diff": float(np.max(np.abs(got - want))) / scale,
            "mean_cosine": float(np.mean(num / den)), "min_cosine": float(np.min(num / den))}


def checked(fmt: str, path: Path, got: np.ndarray, want: np.ndarray) -> dict:
    """A written file's features against Keras's, and whether they meet the format's bound."""
    rel, cos = BOUNDS[fmt]
    r = {"file": path.name, "bytes": path.stat().st_size, **compare(got, want)}
    r["passed"] = (rel is None or r["rel_max_diff"] <= rel) and r["mean_cosine"] >= cos
    return r
