"""The paper-size spectrotemporal real-time factor tool (issue 29), on the tiny variant."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

MODULE = "edgeaffect.families.spectrotemporal.rtf"


def test_a_format_it_cannot_write_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", MODULE, str(tmp_path), "--formats", "tflite-int8"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "tflite-int8" in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-m", MODULE, str(tmp_path), "--model", "aver-ravdess"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "not a spectrotemporal model" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_both_stages_timed_and_the_live_factor_is_their_sum(tmp_path):
    r = subprocess.run([sys.executable, "-m", MODULE, str(tmp_path), "--model", "spectrotemporal-tiny",
                        "--rounds", "3"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((tmp_path / "rtf.json").read_text())
    assert set(rep["stages"]) == {"extractor", "sequence"}
    for fmt in ("tflite-fp32", "onnx-fp32"):
        ext, seq = rep["stages"]["extractor"][fmt], rep["stages"]["sequence"][fmt]
        assert 0 < ext["min_ms"] <= ext["median_ms"] and ext["gflops"] > seq["gflops"] > 0
        want = ext["median_ms"] / 1e3 / rep["segment_s"] + seq["median_ms"] / 1e3 / (rep["sequence_hop"] * rep["segment_s"])
        assert rep["live"][fmt]["rtf"] == pytest.approx(want, rel=1e-3, abs=1e-4)
    assert "live speech, tflite-fp32: real-time factor" in r.stderr and "cuInit" not in r.stderr
