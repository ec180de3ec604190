"""Accuracy of the two int8 ONNX models against the float Keras model, on the tiny synthetic
runs the tests use (tests/conftest.py): the QAT QDQ model (``onnx-qdq``) and the TensorRT-ready
post-training one (``onnx-int8-trt``).

    PYTHONPATH=. python scripts/compare_int8.py [--work DIR] [--model aver|speechnet|both]

Synthetic corpora: the figures show the formats' behaviour, never a paper result."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

FORMATS = ("onnx-fp32", "onnx-qdq", "onnx-int8-trt")


def aver(work: Path):
    from edgeaffect.data.dataset import build_aver_dataset
    from edgeaffect.data.synthetic import generate
    from edgeaffect.train.trainer import train_aver
    from tests.conftest import SMALL

    generate(work / "corpus", SMALL)
    data = build_aver_dataset(work / "corpus", stretch_rate=0.8, cache_dir=work / "cache")
    return train_aver("aver-ravdess", data, work / "run", split="paper", max_epochs=60), data


def speechnet(work: Path):
    from edgeaffect.data.synthetic_speech import SpeechCorpusConfig, generate_emodb
    from edgeaffect.train.families import load_corpus
    from edgeaffect.train.speechnet import train_speechnet
    from tests.conftest import tiny_speechnet_config

    generate_emodb(work / "emodb", SpeechCorpusConfig(speakers=6, texts=6))
    data = load_corpus("speechnet-emodb", work / "emodb", work / "speech-cache")
    return train_speechnet("speechnet-emodb", data, work / "speech-run", epochs=100, config=tiny_speechnet_config()), data


def compare(name: str, run, data, work: Path) -> None:
    from edgeaffect.export.exporter import export_run
    from edgeaffect.runtime import load_runner
    from edgeaffect.train.trainer import split_inputs

    out = work / f"{name}-export"
    manifest = export_run(run, data, out, FORMATS, qat_epochs=5)
    x, y = split_inputs(run, data, "test")
    ref = run.model.predict(x, batch_size=512, verbose=0)
    print(f"\n{name}: {len(y)} test samples, float Keras accuracy {(ref.argmax(1) == y).mean():.4f}")
    print(f"{'format':14s} {'source':6s} {'acc':>7s} {'agree(float)':>13s} {'max|p-float|':>13s}")
    for fmt, e in manifest["files"].items():
        probs = load_runner(out / e["file"], "onnxruntime").run(x)
        print(f"{fmt:14s} {e['source_model']:6s} {(probs.argmax(1) == y).mean():7.4f} "
              f"{(probs.argmax(1) == ref.argmax(1)).mean():13.4f} {np.abs(probs - ref).max():13.3g}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", type=Path, default=Path("build/compare-int8"))
    p.add_argument("--model", choices=("aver", "speechnet", "both"), default="both")
    a = p.parse_args()
    if a.model in ("aver", "both"):
        compare("aver-ravdess", *aver(a.work), a.work)
    if a.model in ("speechnet", "both"):
        compare("speechnet-emodb", *speechnet(a.work), a.work)


if __name__ == "__main__":
    main()
