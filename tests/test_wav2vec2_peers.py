"""The side-by-side benchmark (issue 29): ours and the PyTorch / ONNX Runtime path on one
wav2vec 2.0 checkpoint. Tiny random checkpoint, 1 s segments; the peers' steps run in this
process (the command runs each in its own), the whole command behind the slow marker."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from edgeaffect.families.wav2vec2 import peers  # noqa: E402

SAMPLES = 16000


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("peers")
    peers.write_checkpoint(out, "tiny")
    return out


def test_the_peers_compute_our_feature_and_their_int8_holds(run_dir):
    """ONNX Runtime on PyTorch's own export agrees with PyTorch eager to float precision (the
    wrapper sums the same hidden states our feature model does); the dynamic int8 peers stay
    close; every path is timed in every round."""
    ckpt = run_dir / "checkpoint"
    for step in ("ort-torch-fp32", "ort-torch-dyn-int8"):
        rec = peers.peer_step(run_dir, step, ckpt, SAMPLES)
        assert (run_dir / rec["file"]).stat().st_size == rec["bytes"] > 0 and rec["peak_rss_mb"] > 0
    result = peers.time_step(run_dir, list(peers.PEERS), ckpt, SAMPLES, threads=1, rounds=3)
    assert all(len(v) == 3 and min(v) > 0 for v in result["times_s"].values())
    agree = result["agreement"]
    assert agree["torch-fp32"]["mean_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert agree["ort-torch-fp32"]["rel_max_diff"] < 1e-4
    assert agree["torch-dyn-int8"]["mean_cosine"] > 0.99 and agree["ort-torch-dyn-int8"]["mean_cosine"] > 0.98


def test_the_goals_read_the_medians():
    def row(path, median, verified=None):
        return {"path": path, "median_s": median, "verified": verified}

    rows = [row("tflite-fp32", 1.2, True), row("tflite-fp16", 1.0, True), row("ort-torch-fp32", 1.1),
            row("tflite-dynamic-int8", 0.5, False), row("torch-dyn-int8", 0.6), row("onnx-dyn-int8", 0.55, True)]
    # three rounds; the machine twice as slow in the second, for every path alike
    times = {r["path"]: [r["median_s"], 2 * r["median_s"], r["median_s"]] for r in rows}
    times["ort-torch-fp32"][2] = 5.0  # one round the peer alone was preempted: the median of ratios ignores it
    g = {x["goal"].split(" vs ")[0]: x for x in peers.goals(rows, times)}
    # the best of our LiteRT float files counts: fp16 weights at 1.0 s against 1.1 s
    assert g["LiteRT fp32"]["ours"] == "tflite-fp16" and g["LiteRT fp32"]["met"]
    assert g["LiteRT fp32"]["ratio"] == pytest.approx(1.0 / 1.1, abs=1e-3)
    # a quantized file that does not verify does not count, however fast
    assert not g["quantized LiteRT that verifies"]["met"] and "verified" in g["quantized LiteRT that verifies"]["why"]
    assert g["ONNX dynamic int8"]["met"] and g["ONNX dynamic int8"]["ratio"] == pytest.approx(0.55 / 0.6, abs=1e-3)
    assert "NOT met (no such path of ours verified)" in peers.table({
        "threads": 1, "rounds": 1, "segment_s": 1, "ratio_to": "ort-torch-fp32", "rows": [],
        "goals": peers.goals(rows, times)})


def test_bad_arguments_are_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", peers.MODULE, str(tmp_path), "--size", "tiny", "--peers", "torch-fp64"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown path(s) torch-fp64" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_side_by_side_command(tmp_path):
    """`make bench-peers` at tiny size: one table, every path's row, ours verified and in
    agreement with PyTorch."""
    r = subprocess.run([sys.executable, "-m", peers.MODULE, str(tmp_path), "--size", "tiny", "--seconds", "1",
                        "--rounds", "3"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((tmp_path / "peers.json").read_text())
    rows = {x["path"]: x for x in report["rows"]}
    assert set(rows) == set(peers.OURS) | set(peers.PEERS)
    assert all(rows[f]["verified"] for f in peers.OURS if f != "keras")
    assert rows["tflite-fp32"]["cosine_to_torch_fp32"] > 0.9999 and rows["keras"]["cosine_to_torch_fp32"] > 0.9999
    assert "wav2vec 2.0 side by side" in r.stderr and "goal: LiteRT fp32" in r.stderr
    assert "Loading weights" not in r.stderr and "cuInit" not in r.stderr  # quiet by default
