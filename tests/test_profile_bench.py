"""Profiler, benchmark table, budgets (the CI budget check for the host), bad input."""

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.test_cli import assert_one_line_error, cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("fmt", ["tflite-int8", "onnx-qdq"])
def test_profile_reports_timing_memory_and_ops(export_dir, fmt, tmp_path):
    out = tmp_path / "p.json"
    r = cli("profile", export_dir, "--format", fmt, "--budget", "0.3", "--json", out)
    assert r.returncode == 0, r.stderr
    p = json.loads(out.read_text())
    assert p["runs"] >= 20 and 0 < p["p50_ms"] <= p["p90_ms"] <= p["p99_ms"]
    assert p["init_ms"] > 0 and p["first_inference_ms"] > 0 and p["peak_rss_mib"] > 10
    assert p["inputs"] == {"face": [1, 64, 64, 1], "mfcc": [1, 40, 1]}
    if fmt == "onnx-qdq":
        types = {o["type"] for o in p["op_profile"]}
        assert {"QLinearConv"} & types or {"Conv"} & types, types
        assert sum(o["mean_us"] for o in p["op_profile"]) > 0
    else:  # LiteRT: every op cut out and timed alone, with whether XNNPACK takes it
        types = {o["type"] for o in p["op_profile"]}
        assert "CONV_2D" in types and "FULLY_CONNECTED" in types, types
        timed = [o for o in p["op_profile"] if o["mean_us"] is not None]
        assert len(timed) == len(p["op_profile"]) and all(o["mean_us"] > 0 for o in timed)
        assert all(o["delegated"] in (True, False) for o in timed)
        assert "timed alone" in p["op_profile_note"] and "delegate partition" in p["op_profile_note"]


def test_bench_table_outputs_and_the_host_budget_check(export_dir, tmp_path):
    """What CI runs: the repository's budgets, host rows measured on the exported AVER model."""
    r = cli("bench", export_dir, "--budget", "0.3", "--budgets", ROOT / "roofline" / "budgets.toml",
            "--json", tmp_path / "b.json", "--markdown", tmp_path / "b.md", "--junit", tmp_path / "b.xml")
    assert r.returncode == 0, r.stdout + r.stderr
    b = json.loads((tmp_path / "b.json").read_text())
    assert {row["format"] for row in b["rows"]} == {"tflite-int8", "tflite-fp16", "tflite-fp32", "onnx-fp32",
                                                   "onnx-qdq"}
    assert all(row["status"] == "ok" and row["accuracy"] > 0.8 for row in b["rows"])
    # each quantized file against its float32 file, timed interleaved, with the interval
    vs = {row["format"]: row["vs_float"] for row in b["rows"] if row.get("vs_float")}
    assert set(vs) == {"tflite-int8", "tflite-fp16", "onnx-qdq"}, set(vs)
    assert vs["onnx-qdq"]["format"] == "onnx-fp32" and vs["tflite-int8"]["format"] == "tflite-fp32"
    for v in vs.values():
        assert 0 < v["latency_low"] <= v["latency_ratio"] <= v["latency_high"], v
        assert v["timing"].startswith("interleaved with"), v
    assert "timed interleaved in this run" in r.stdout
    kinds = {c["kind"] for c in b["budgets"]}
    assert "measured" in kinds and "prediction (roofline lower bound)" in kinds
    md = (tmp_path / "b.md").read_text()
    assert "| aver-ravdess | tflite-int8 | litert | ok |" in md
    suite = ET.parse(tmp_path / "b.xml").getroot()
    assert suite.get("failures") == "0" and int(suite.get("tests")) >= 5


def test_budget_exceeded_exits_1_naming_it(export_dir, tmp_path):
    budgets = tmp_path / "tight.toml"
    budgets.write_text("[defaults]\nrepeats = 2\n\n[host.aver-ravdess.tflite-int8]\np50_ms = 0.0001\nsize_kib = 1\n\n"
                       "[rpi4.aver-ravdess.tflite-int8]\np50_ms = 0.001\n")
    single = tmp_path / "one"
    shutil.copytree(export_dir, single)
    r = cli("bench", single, "--budget", "0.2", "--budgets", budgets, "--junit", tmp_path / "j.xml")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "host.aver-ravdess.tflite-int8 p50_ms" in r.stderr and "size_kib" in r.stderr
    assert "rpi4.aver-ravdess.tflite-int8 p50_ms" in r.stderr and "prediction" in r.stderr
    assert "median of 2 measurements" in r.stdout
    assert int(ET.parse(tmp_path / "j.xml").getroot().get("failures")) == 3


@pytest.mark.parametrize("text, fragment", [
    ("[host.aver-ravdess.tflite-int8]\np50ms = 1\n", "did you mean 'p50_ms'"),
    ("[rpi-4.aver-ravdess.tflite-int8]\np50_ms = 1\n", "unknown device 'rpi-4'; did you mean 'rpi4'"),
    ("[host.aver-ravdes.tflite-int8]\np50_ms = 1\n", "unknown model 'aver-ravdes'"),
    ("[host.aver-ravdess.tflite-int9]\np50_ms = 1\n", "unknown format 'tflite-int9'"),
    ("[host.aver-ravdess.tflite-int8]\np50_ms = -1\n", "must be a positive number"),
    ("[defaults]\ntolerence = 0.1\n", "did you mean 'tolerance'"),
    ("[host\n", "not valid TOML"),
])
def test_bad_budgets_file_is_one_line(export_dir, tmp_path, text, fragment):
    f = tmp_path / "b.toml"
    f.write_text(text)
    assert_one_line_error(cli("bench", export_dir, "--budgets", f), fragment)


def test_profile_bad_input_is_one_line(export_dir, tmp_path):
    notes = tmp_path / "notes.tflite"
    notes.write_text("this is not a model\n" * 20)
    assert_one_line_error(cli("profile", notes), "not a valid TFLite model")
    real = (export_dir / "aver-ravdess-tflite-int8.tflite").read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(real[: len(real) // 2])
    assert_one_line_error(cli("profile", cut), "not a valid TFLite model")
    cut_onnx = tmp_path / "cut.onnx"
    cut_onnx.write_bytes((export_dir / "aver-ravdess-onnx-fp32.onnx").read_bytes()[:5000])
    assert_one_line_error(cli("profile", cut_onnx), "not a valid ONNX model")
    assert_one_line_error(cli("profile", tmp_path / "missing.onnx"), "not found")
    (tmp_path / "x.txt").write_text("hello")
    assert_one_line_error(cli("profile", tmp_path / "x.txt"), "no runtime for")
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0" * 64)
    assert_one_line_error(cli("profile", engine), "TensorRT is not importable", "JetPack")
    assert_one_line_error(cli("profile", export_dir, "--runtime", "litrt"), "Did you mean 'litert'")
    assert_one_line_error(cli("roofline", "--device", "orin-nano"), "unknown device 'orin-nano'")
    assert_one_line_error(cli("cost", notes), "not a valid TFLite model")
