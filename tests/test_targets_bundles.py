"""Export targets, device bundles, the device runtime's checks, and the TensorRT path up to
the TensorRT calls (TensorRT cannot be installed here: those tests skip and say so)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeaffect.errors import InputError, MissingDependencyError, UnknownNameError, VerificationError
from tests.test_cli import assert_one_line_error, cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def nano_bundle(trained_run, dataset, tmp_path_factory):
    from edgeaffect.export.exporter import export_run
    from edgeaffect.export.targets import get_target, resolve_options

    out = tmp_path_factory.mktemp("bundles") / "nano"
    nano = get_target("jetson-nano")
    export_run(trained_run, dataset, out, target=nano, options=resolve_options(nano, {}))  # as the CLI does
    return out


def test_targets_are_data_with_close_match_and_refused_options():
    from edgeaffect.export.targets import get_target, load_targets, resolve_options

    assert {"rpi4", "rpi5", "jetson-nano", "jetson-orin-nano", "jetson-orin-nano-super", "host"} <= set(load_targets())
    with pytest.raises(UnknownNameError, match="Did you mean 'jetson-orin-nano'"):
        get_target("jetson-orin-nan")
    with pytest.raises(InputError, match="does not support --precision"):
        resolve_options(get_target("rpi5"), {"precision": "fp16"})
    with pytest.raises(InputError, match="does not support --threads"):
        resolve_options(get_target("jetson-orin-nano"), {"threads": 2})
    assert resolve_options(get_target("jetson-orin-nano"), {"precision": None})["precision"] == "int8"


def test_rpi_bundle_is_self_contained(rpi_bundle):
    m = json.loads((rpi_bundle / "manifest.json").read_text())
    assert list(m["files"]) == ["tflite-int8", "tflite-fp32"]
    assert m["target"]["key"] == "rpi5" and m["target"]["install"] == "pip install 'edgeaffect[rpi]'"
    assert m["target"]["options"] == {"threads": 4}
    q = m["files"]["tflite-int8"]["quantization"]
    # float in and out, quantized inside the graph (XNNPACK runs the QUANTIZE op)
    assert q["inputs"]["face"] == {"dtype": "float32", "scale": 0.0, "zero_point": 0}
    assert q["output"]["dtype"] == "float32"
    # this machine's int8 timings say nothing of a Pi's CPU: no op is kept float for speed
    int8 = m["files"]["tflite-int8"]
    assert "another device" in int8["speed_choices"] and all(f["why"] != "speed" for f in int8["float_layers"])
    pre = m["preprocessing"]
    assert len(pre["mfcc_mean"]) == 40 and pre["features"]["mfcc"]["n_mfcc"] == 40 and pre["features"]["n_segments"] == 6 and pre["face_scale"] == 1 / 255
    on_disk = {p.name for p in rpi_bundle.iterdir()} - {"manifest.json"}
    assert set(m["checksums"]) == on_disk and "README.md" in on_disk and "qat-weights.h5" not in on_disk
    assert "edgeaffect verify" in (rpi_bundle / "README.md").read_text()
    assert oct((rpi_bundle / "manifest.json").stat().st_mode)[-3:] in ("644", "664")


def test_jetson_bundle_checks_ops_and_carries_the_trt_build(jetson_bundle):
    from edgeaffect.export.tensorrt import calibration_batches
    from edgeaffect.export.trt_check import check_file

    m = json.loads((jetson_bundle / "manifest.json").read_text())
    assert list(m["files"]) == ["onnx-fp32", "onnx-int8-trt"]
    t = m["target"]
    assert t["tensorrt"] == "10.3" and "trt-check --tensorrt 10.3" in t["tensorrt_ops_checked"]
    assert t["engine"]["built_here"] is False and t["engine"]["onnx"].endswith("onnx-int8-trt.onnx")
    for e in m["files"].values():
        assert check_file(jetson_bundle / e["file"], "10.3") == []
    sh = (jetson_bundle / "trtexec.sh").read_text()
    active = [line for line in sh.splitlines() if line.startswith("/usr/src/tensorrt/bin/trtexec")]
    assert len(active) == 1 and "--int8" in active[0] and "onnx-int8-trt.onnx" in active[0]
    assert "--maxShapes=face:8x64x64x1,mfcc:8x40x1" in active[0] and "--memPoolSize=workspace:256M" in active[0]
    batches = list(calibration_batches(jetson_bundle / "calibration.npz", 32))
    assert len(batches) == 3 and batches[0]["face"].shape == (32, 64, 64, 1)  # 100 samples -> 3 full batches
    assert batches[0]["face"].dtype == np.float32 and 0 <= batches[0]["face"].min() <= batches[0]["face"].max() <= 1


def test_jetson_nano_bundle_is_opset_13_and_passes_tensorrt_8_2(nano_bundle):
    import onnx

    from edgeaffect.export.onnx_graph import opset_of

    m = json.loads((nano_bundle / "manifest.json").read_text())
    t = m["target"]
    assert t["tensorrt"] == "8.2" and t["writer_options"]["onnx_opset"] == 13
    assert "trt-check --tensorrt 8.2" in t["tensorrt_ops_checked"]
    assert t["options"] == {"precision": "fp16"} and t["engine"]["onnx"] == m["files"]["onnx-fp32"]["file"]
    assert list(m["files"]) == ["onnx-fp32", "onnx-int8-trt"]
    for e in m["files"].values():
        assert e["onnx_opset"] == 13 == opset_of(onnx.load(str(nano_bundle / e["file"]))), e["file"]
        r = cli("trt-check", nano_bundle / e["file"], "--tensorrt", "8.2")
        assert r.returncode == 0, r.stdout + r.stderr
    assert all(v["passed"] for v in m["verification"])
    assert "opset 13" in (nano_bundle / "README.md").read_text()
    active = [x for x in (nano_bundle / "trtexec.sh").read_text().splitlines() if x.startswith("/usr/src/tensorrt")]
    # TensorRT 8.2's trtexec: --workspace (MiB); --memPoolSize came in 8.4
    assert len(active) == 1 and "--fp16" in active[0] and "--workspace=256" in active[0]
    assert "onnx-fp32.onnx" in active[0] and "memPoolSize" not in (nano_bundle / "trtexec.sh").read_text()


def test_writer_options_reach_only_the_formats_that_take_them():
    from edgeaffect.export.formats import writer_options
    from edgeaffect.export.formats import get_format
    from edgeaffect.export.targets import get_target, load_targets

    nano = get_target("jetson-nano")
    assert writer_options(get_format("onnx-int8-trt"), nano) == {"onnx_opset": 13, "onnx_replace_ops": ["Reciprocal"]}
    assert writer_options(get_format("tflite-int8"), nano) == {}
    assert writer_options(get_format("onnx-fp32"), None) == {}
    # only the Nano's TensorRT needs another opset: the others keep the writers' default
    assert [k for k, t in load_targets().items() if t.writer_options] == ["jetson-nano"]


def test_reciprocal_is_rewritten_as_an_exact_div(tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from edgeaffect.export.onnx_graph import replace_ops

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])
    g = helper.make_graph([helper.make_node("Sqrt", ["x"], ["s"], "sqrt"),
                           helper.make_node("Reciprocal", ["s"], ["y"], "rsqrt")], "g", [x], [y])
    before = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    before.ir_version = 8  # what this onnxruntime reads (newer onnx writes a newer IR by default)
    after = onnx.ModelProto()
    after.CopyFrom(before)
    assert replace_ops(after, ("Reciprocal",)) == {"Reciprocal": 1}
    assert [n.op_type for n in after.graph.node] == ["Sqrt", "Div"]
    onnx.checker.check_model(after, full_check=True)
    v = {"x": np.random.default_rng(0).uniform(1e-6, 1e6, (64, 3)).astype(np.float32)}
    run = lambda m: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, v)[0]  # noqa: E731
    assert np.array_equal(run(before), run(after))  # bit for bit: both are one IEEE division
    with pytest.raises(ValueError, match="no ONNX rewrite for Det"):
        replace_ops(after, ("Det",))


def test_the_orin_budget_is_checked_on_the_jetson_bundle(jetson_bundle, tmp_path):
    """roofline/budgets.toml keys the Orin budget on onnx-int8-trt, the format Jetson bundles carry."""
    # Only the Jetson tables: the host and Pi budgets have no measurement behind them here, and
    # an unmeasured, non-optional budget fails the gate by design.
    import tomllib

    tables = tomllib.loads((ROOT / "roofline" / "budgets.toml").read_text())
    orin = tables["jetson-orin-nano"]["aver-ravdess"]["onnx-int8-trt"]
    (tmp_path / "orin.toml").write_text("[jetson-orin-nano.aver-ravdess.onnx-int8-trt]\n"
                                        + "".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}\n"
                                                  for k, v in orin.items()))
    r = cli("bench", jetson_bundle, "--budget", "0.2", "--budgets", tmp_path / "orin.toml",
            "--json", tmp_path / "b.json")
    assert r.returncode == 0, r.stdout + r.stderr
    checks = {c["budget"]: c for c in json.loads((tmp_path / "b.json").read_text())["budgets"]}
    c = checks["jetson-orin-nano.aver-ravdess.onnx-int8-trt"]
    assert c["kind"] == "prediction (roofline lower bound)" and c["passed"] and c["value"] is not None


def test_an_unsupported_op_fails_the_export_check_by_name(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from edgeaffect.export.tensorrt import check_onnx_for_tensorrt

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Unique", ["r"], ["y"])],
                          "g", [x], [y])
    path = tmp_path / "u.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(VerificationError, match=r"1 violation\(s\): Unique_1 \(Unique\): operator: marked unsupported"):
        check_onnx_for_tensorrt(path, "10.3", "jetson-orin-nano")


def test_device_runtime_matches_the_desktop_within_the_verified_bound(rpi_bundle, trained_run, corpus):
    from edgeaffect.device.predict import ExportedModel
    from edgeaffect.export.formats import get_format

    clip = sorted(corpus.rglob("01-01-05-02-*.mp4"))[0]  # angry
    for fmt in ("tflite-int8", "tflite-fp32"):
        m = ExportedModel(rpi_bundle, fmt)
        x = m.inputs(clip)
        device = m.predict_inputs(x).per_segment
        desktop = trained_run.model.predict(x, verbose=0)
        b = m.task.bounds(get_format(fmt).precision)
        diff = np.abs(device - desktop)
        assert diff.max() <= b.max_abs if b.max_abs is not None else np.percentile(diff, 95) <= b.p95_abs, fmt
    # The bundle's default: the faster of the two formats that gate, timed at export, with the times
    target = json.loads((rpi_bundle / "manifest.json").read_text())["target"]
    assert ExportedModel(rpi_bundle).format == target["default_format"] in ("tflite-int8", "tflite-fp32")
    assert "fastest of the formats that gate" in target["default_reason"] and "tflite-int8" in target["default_reason"]
    assert "not on the device" in target["default_reason"]


def test_tampered_truncated_missing_and_newer_bundles_are_refused(rpi_bundle, tmp_path):
    def copy(name):
        d = tmp_path / name
        shutil.copytree(rpi_bundle, d)
        return d

    assert cli("verify", rpi_bundle).returncode == 0
    tampered = copy("tampered")
    f = tampered / "aver-ravdess-tflite-int8.tflite"
    blob = bytearray(f.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    f.write_bytes(bytes(blob))
    assert_one_line_error(cli("verify", tampered), "checksum mismatch for aver-ravdess-tflite-int8.tflite")
    truncated = copy("truncated")
    f = truncated / "aver-ravdess-tflite-fp32.tflite"
    f.write_bytes(f.read_bytes()[:1000])
    assert_one_line_error(cli("predict", "x.mp4", "--model", truncated), "checksum mismatch")
    missing = copy("missing")
    (missing / "README.md").unlink()
    assert_one_line_error(cli("verify", missing), "missing README.md")
    newer = copy("newer")
    m = json.loads((newer / "manifest.json").read_text())
    m["toolkit_version"] = "99.0.0"
    (newer / "manifest.json").write_text(json.dumps(m))
    assert_one_line_error(cli("verify", newer), "made by edgeaffect 99.0.0", "upgrade")


def test_export_target_bad_input_is_one_line(trained_run, tmp_path):
    assert_one_line_error(cli("export", trained_run.folder, "--out", tmp_path / "x", "--target", "rpi6"),
                          "unknown target 'rpi6'")
    assert_one_line_error(cli("export", trained_run.folder, "--out", tmp_path / "x", "--target", "rpi5",
                              "--precision", "fp16"), "does not support --precision")
    assert not (tmp_path / "x").exists()


def test_tensorrt_is_lazy_and_says_where_it_comes_from(jetson_bundle, tmp_path):
    from edgeaffect.runtime.tensorrt import import_tensorrt

    try:
        import_tensorrt()
        pytest.skip("TensorRT is importable here: the engine tests below cover it")
    except MissingDependencyError as exc:
        assert "JetPack" in str(exc) and "never pip install tensorrt" in str(exc)
    assert_one_line_error(cli("build-engine", jetson_bundle), "TensorRT is not importable")
    assert_one_line_error(cli("predict", "x.mp4", "--model", jetson_bundle, "--format", "engine"),
                          "no TensorRT engine", "build-engine")


def test_engine_build_and_run_on_a_device_with_tensorrt(jetson_bundle, tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT cannot be installed on this machine (no GPU, no JetPack): "
                        "this test runs on a Jetson")
    from edgeaffect.export.tensorrt import build_engine
    from edgeaffect.runtime.tensorrt import TensorRTRunner

    m = json.loads((jetson_bundle / "manifest.json").read_text())
    engine = build_engine(jetson_bundle / m["files"]["onnx-int8-trt"]["file"], tmp_path / "m.engine", "int8", m["inputs"])
    runner = TensorRTRunner(engine)
    out = runner.run({"face": np.zeros((1, 64, 64, 1), np.float32), "mfcc": np.zeros((1, 40, 1), np.float32)})
    assert out.shape == (1, 8) and abs(out.sum() - 1) < 0.05


def test_a_device_default_follows_the_calibrated_prediction_when_every_format_has_one(rpi_bundle):
    """Away from the host, the default is the format the device's calibrated prediction puts
    first (timed here only for comparison); where a format has no prediction of its own
    precision, the time here decides and the reason says the device was not measured."""
    from edgeaffect.export.bundle import choose_default
    from edgeaffect.export.targets import get_target

    files = {f: [next(rpi_bundle.glob(f"*{f}.tflite"))] for f in ("tflite-int8", "tflite-fp32")}
    runtimes = dict.fromkeys(files, "litert")
    target = get_target("rpi4")
    for fast in files:
        predicted = {f: {"estimate_ms": 1.0 if f == fast else 9.0, "note": "a test figure"} for f in files}
        fmt, why = choose_default(target, files, runtimes, predicted.get)
        assert fmt == fast and "calibrated prediction for rpi4" in why and "a test figure" in why
    fmt, why = choose_default(target, files, runtimes, {"tflite-fp32": {"estimate_ms": 1.0, "note": ""}}.get)
    assert "no calibrated prediction for tflite-int8 on rpi4" in why and "not on the device" in why
