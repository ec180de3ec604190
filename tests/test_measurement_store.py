"""The measurement store: each run on the user's own device kept as one JSON file, read back
(a damaged file skipped with a warning), turned into calibration figures that change the
device's estimates, and deciding that device's budgets. Synthetic records in a throwaway
EDGEAFFECT_HOME; one tiny real .tflite (and a hand-made .onnx) for the files' costs."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone

import pytest

from edgeaffect.errors import InputError
from edgeaffect.roofline import calibrate as cal
from edgeaffect.roofline.measured import (file_cost, file_sha256, fresh_measurement, load_measurements,
                                          save_measurement, to_calibration)

LAB = {"name": "lab", "kind": "rpi5", "ssh": "pi@lab", "cpu": "Cortex-A76", "machine": "aarch64",
       "governor": "performance", "throttled": "0x0", "temperature_c": 50.0, "python": "3.11.2",
       "edgeaffect": "0.1", "runtimes": {"ai-edge-litert": "1.2.0"}}
# Costs of the public models the published figures are for (no Keras rebuild in these tests).
PUBLIC_FLOPS = {"mobilenet": 1.14e9, "mobilenet_v2": 0.6e9, "efficientnet_b0": 0.8e9, "resnet50": 7.7e9,
                "vgg16": 31e9, "mobilenet_v3_large": 0.44e9, "mobilenet_v3_small": 0.12e9}


def _cost(flops: float, share: float = 0.3) -> dict:
    return {"flops": flops, "bytes": {"float32": flops / 10, "int8": flops / 40, "float16": flops / 20},
            "params": 1000, "conv3x3_flops": flops * share, "other_flops": flops * (1 - share)}


def _when(days_ago: float = 0.0) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(sha: str, p50: float | None, fmt: str = "tflite-int8", cost: dict | None = None, status: str = "ok",
         **extra):
    p90, p99 = (None, None) if p50 is None else (p50 * 1.2, p50 * 1.5)
    row = {"model": "aver-ravdess", "format": fmt, "runtime": "litert", "package": "ai-edge-litert", "sha256": sha,
           "bytes": 1000, "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "runs": 200,
           "model_memory_mib": 2.0, "status": status, "cost": cost or _cost(20e6)}
    return {**row, **extra}


def _record(rows: list[dict], when: str | None = None, threads: int = 4, device: dict | None = None) -> dict:
    return {"schema": 1, "when": when or _when(), "command": "bench", "device": device or LAB, "threads": threads,
            "rows": rows}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEAFFECT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cal, "_GROUPS", None)
    monkeypatch.setattr(cal, "public_costs", lambda models, cache=None: {m: _cost(PUBLIC_FLOPS[m], 0.2)
                                                                         for m in models if m in PUBLIC_FLOPS})
    return tmp_path / "home"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny float32 .tflite: a 3x3 stride-1 conv (counted as 3x3), a 3x3 stride-2 conv (not),
    a dense head; with the 3x3 FLOPs the Keras model's own count gives."""
    from edgeaffect.keras_backend import keras, tf

    k = keras()
    inp = k.Input((16, 16, 4), batch_size=1)
    x = k.layers.Conv2D(8, 3, padding="same")(inp)
    x = k.layers.Conv2D(8, 3, strides=2, padding="same")(x)
    out = k.layers.Dense(3)(k.layers.GlobalAveragePooling2D()(x))
    model = k.Model(inp, out)
    path = tmp_path_factory.mktemp("tiny") / "tiny.tflite"
    path.write_bytes(tf().lite.TFLiteConverter.from_keras_model(model).convert())
    return path, cal.conv3x3_flops(model)


# --------------------------------------------------------------------------- the store


def test_a_record_is_saved_as_one_file_per_run_and_read_back(home):
    record = _record([_row("a" * 64, 5.0)])
    first, second = save_measurement(record), save_measurement(record)
    assert first != second and first.parent == home / "measurements"
    assert re.fullmatch(r"\d{8}T\d{6}Z-lab-bench-[0-9a-f]{6}\.json", first.name), first.name
    assert load_measurements() == [record, record]
    assert json.loads(first.read_text()) == record


def test_the_remote_commands_use_the_same_store():
    from edgeaffect.remote import store
    from edgeaffect.roofline import measured

    assert (store.file_cost, store.save_measurement, store.load_measurements) == \
        (measured.file_cost, measured.save_measurement, measured.load_measurements)


def test_a_write_cut_off_leaves_no_file_and_a_bad_record_is_refused(home):
    def cut(*_):
        raise OSError("disk gone")

    with pytest.MonkeyPatch.context() as mp:  # the rename that would publish the file fails
        mp.setattr(os, "replace", cut)
        with pytest.raises(OSError):
            save_measurement(_record([_row("a" * 64, 5.0)]))
    assert list((home / "measurements").iterdir()) == [] and load_measurements() == []
    with pytest.raises(InputError, match="device"):
        save_measurement({**_record([]), "device": "lab"})
    with pytest.raises(InputError, match="when"):
        save_measurement(_record([], when="yesterday"))
    assert list((home / "measurements").iterdir()) == []


def test_a_damaged_file_is_skipped_with_one_warning(home, capsys):
    good = save_measurement(_record([_row("a" * 64, 5.0)]))
    folder = good.parent
    (folder / "cut.json").write_text(good.read_text()[:40])
    (folder / "odd.json").write_text(json.dumps({"schema": 1, "rows": "x"}))
    (folder / "bytes.json").write_bytes(b"\xff\xfe\x00")
    (folder / ".tmp-writer.json").write_text("{")  # an atomic writer's temp name: not a record
    assert [r["device"]["name"] for r in load_measurements()] == ["lab"]
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x]
    assert len(lines) == 3 and all(x.startswith("warning:") for x in lines) and "Traceback" not in err
    assert {n for n in ("cut.json", "odd.json", "bytes.json") if n in err} == {"cut.json", "odd.json", "bytes.json"}


def test_a_files_cost_is_the_predictors_cost(tiny, tmp_path):
    path, keras_3x3 = tiny
    cost = file_cost(path)
    json.dumps(cost)  # kept in the record as it is
    assert cost["conv3x3_flops"] == keras_3x3 > 0  # the stride-2 3x3 conv is not counted
    assert cost["flops"] == cost["conv3x3_flops"] + cost["other_flops"] and cost["other_flops"] > 0
    assert set(cost["bytes"]) >= {"float32", "int8"}
    assert cal.features(cost, cal.scaled_device(_rpi5(), 4, None), "float32").shape == (3,)


def test_an_onnx_files_3x3_share_is_read_from_its_attributes(tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((8, 4, 3, 3), np.float32), "w")
    b = numpy_helper.from_array(np.zeros(8, np.float32), "b")
    w2 = numpy_helper.from_array(np.zeros((8, 8, 3, 3), np.float32), "w2")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1]),
         helper.make_node("Conv", ["y", "w2"], ["z"], pads=[1, 1, 1, 1], strides=[2, 2])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 16, 16])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 8, 8, 8])], [w, b, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "m.onnx")
    out = 16 * 16 * 8
    assert file_cost(tmp_path / "m.onnx")["conv3x3_flops"] == 2 * out * 9 * 4 + out  # the first conv only


def _rpi5():
    from edgeaffect.roofline.devices import get_device

    return get_device("rpi5", measure_host=False)


# --------------------------------------------------------------------------- calibration


def test_rows_become_own_calibration_figures():
    ok = _row("a" * 64, 5.0, "tflite-fp32")
    onnx = _row("b" * 64, 7.0, "onnx-qdq", runtime="onnxruntime", package="onnxruntime 1.19.2")
    failed = _row("c" * 64, None, status="failed: no runtime")
    no_cost = {**_row("d" * 64, 4.0), "cost": None}
    older = _record([_row("a" * 64, 9.0, "tflite-fp32")], when=_when(3))
    ms, costs = to_calibration([_record([ok, onnx, failed, no_cost]), older])
    by_model = {m.model: m for m in ms}
    assert set(by_model) == {"own:" + "a" * 12, "own:" + "b" * 12} and set(costs) == set(by_model)
    a, b = by_model["own:" + "a" * 12], by_model["own:" + "b" * 12]
    assert (a.device, a.runtime, a.precision, a.threads, a.latency_ms, a.own) == ("rpi5", "litert", "float32", 4, 5.0,
                                                                                   True)  # the newest run of the file
    assert (b.runtime, b.precision) == ("onnxruntime", "int8")
    assert a.source.startswith("your own: measured on lab (Cortex-A76) 20")
    assert costs[a.model] == ok["cost"]


def test_own_figures_change_an_estimate_and_the_note_says_so(home):
    other = _cost(30e6)
    before = cal.estimate(cal.calibrate(), other, "rpi5", "int8", threads=4)
    # no rpi5 int8 figures yet: its float32 fit, capped at the Pi 4's int8 estimate
    assert "of your own" not in before["note"] and before["capped_by"] == "rpi4"
    save_measurement(_record([_row("a" * 64, 3.0, cost=_cost(20e6)), _row("b" * 64, 6.0, cost=_cost(45e6)),
                              _row("c" * 64, 400.0, "tflite-fp32", cost=_cost(6e9))]))
    groups = cal.calibrate()
    after = cal.estimate(groups, other, "rpi5", "int8", threads=4)
    assert after["group"].own == 2 and after["group"].n == 2
    assert "calibrated on 2 of your own litert int8 figures" in after["note"]
    assert after["estimate_ms"] != pytest.approx(before["estimate_ms"]) and 3.0 < after["estimate_ms"] < 6.0
    f32 = next(g for g in groups if (g.device, g.runtime, g.precision) == ("rpi5", "litert", "float32"))
    assert f32.own == 1 and f"{f32.n - 1} published + 1 of your own" in f32.figures_label
    assert [r["own"] for r in f32.rows].count(True) == 1


def test_groups_are_refitted_when_the_store_changes(home):
    first = cal.groups_cached()
    assert cal.groups_cached() is first  # nothing new: the fit is kept
    save_measurement(_record([_row("a" * 64, 3.0), _row("b" * 64, 6.0, cost=_cost(45e6))]))
    second = cal.groups_cached()
    assert second is not first and any(g.own for g in second)
    assert not any(g.own for g in first)


def test_the_calibrate_command_counts_and_labels_own_figures(home, monkeypatch):
    from typer.testing import CliRunner

    from edgeaffect.cli.roofline import app

    save_measurement(_record([_row("a" * 64, 3.0), _row("b" * 64, 6.0, cost=_cost(45e6))]))
    r = CliRunner().invoke(app, ["calibrate"])
    assert r.exit_code == 0, r.output
    header = next(x for x in r.output.splitlines() if x.startswith("device"))
    assert " own " in header
    own_rows = [x for x in r.output.splitlines() if x.strip().startswith("your own")]
    assert len(own_rows) == 2 and all("rpi5" in x and "measured on lab" in x for x in own_rows)


# --------------------------------------------------------------------------- budgets

ON_LAB = {**LAB, "threads": 4}


def _budgets(tmp_path, text: str):
    from edgeaffect.measure.budgets import load_budgets

    f = tmp_path / "budgets.toml"
    f.write_text(text)
    return load_budgets(f)


def _bench_row(path, p50=3.0, sha=True):
    row = {"model": "aver-ravdess", "format": "tflite-fp32", "runtime": "litert", "status": "ok",
           "bytes": path.stat().st_size, "p50_ms": p50, "p99_ms": p50 * 1.5, "model_memory_mib": None,
           "path": str(path)}
    return {**row, "sha256": file_sha256(path)} if sha else row


@pytest.fixture
def no_estimate(monkeypatch):
    """No calibrated estimate (it would rebuild the registered model's graph): the roofline
    bound alone stands for the predictions."""
    monkeypatch.setattr(cal, "groups_cached", lambda: [])
    monkeypatch.setattr(cal, "model_split_cost", lambda name: _cost(20e6))


def test_measured_on_a_device_its_budgets_are_decided_by_the_measurement(home, tiny, tmp_path, no_estimate):
    from edgeaffect.measure.budgets import NOT_CHECKED, check_budgets

    path, _ = tiny
    spec = _budgets(tmp_path, "[rpi5.aver-ravdess.tflite-fp32]\np50_ms = 10.0\npeak_memory_mib = 64\n"
                              "[host.aver-ravdess.tflite-fp32]\np50_ms = 0.001\nsize_kib = 1000\n")
    again = []
    checks = check_budgets(spec, [_bench_row(path)], lambda r: again.append(r) or {"p50_ms": 3, "p99_ms": 4.5},
                           measured_on=ON_LAB)
    by = {(c.budget.split(".")[0], c.metric): c for c in checks}
    p50 = by[("rpi5", "p50_ms")]
    assert p50.kind == "measured on lab (Cortex-A76, governor performance, not throttled)"
    assert p50.value == 3.0 and p50.passed and p50.checked and not again
    assert by[("rpi5", "peak_memory_mib")].kind.startswith("prediction (analytic")  # the device reported none
    host = by[("host", "p50_ms")]
    assert host.kind == NOT_CHECKED and host.passed and "measured on lab, not this host" in host.detail
    assert by[("host", "size_kib")].checked and by[("host", "size_kib")].passed  # a file fact
    # a p50 limit the device misses: measured again there, the median decides, it fails
    tight = _budgets(tmp_path, "[rpi5.aver-ravdess.tflite-fp32]\np50_ms = 0.01\n")
    (c,) = check_budgets(tight, [_bench_row(path)], lambda r: again.append(r) or {"p50_ms": 3, "p99_ms": 4.5},
                         measured_on=ON_LAB)
    assert c.state == "EXCEEDED" and c.kind.startswith("measured on lab") and len(again) == 2
    assert "median of 3 measurements" in c.detail and "4 thread(s)" in c.detail


def test_a_fresh_stored_run_decides_a_device_budget_a_stale_one_does_not(home, tiny, tmp_path, no_estimate):
    from edgeaffect.measure.budgets import check_budgets

    path, _ = tiny
    sha = file_sha256(path)
    host_row = _bench_row(path, p50=0.2, sha=False)  # measured here: its file hashed to find a stored run

    def check(text, days_ago):
        save_measurement(_record([_row(sha, 7.5, "tflite-fp32", model_memory_mib=3.0)], when=_when(days_ago)))
        out = check_budgets(_budgets(tmp_path, text), [host_row], lambda r: pytest.fail("nothing to re-measure here"))
        for f in (home / "measurements").iterdir():
            f.unlink()
        return {c.metric: c for c in out}

    fresh = check("[rpi5.aver-ravdess.tflite-fp32]\np50_ms = 10.0\npeak_memory_mib = 2.0\n", days_ago=2)
    day = _when(2)[:10]
    assert fresh["p50_ms"].kind == f"measured on lab {day} (stored measurement)"
    assert fresh["p50_ms"].value == 7.5 and fresh["p50_ms"].passed
    assert fresh["peak_memory_mib"].value == 3.0 and fresh["peak_memory_mib"].state == "EXCEEDED"
    failing = check("[rpi5.aver-ravdess.tflite-fp32]\np50_ms = 1.0\n", days_ago=2)
    assert failing["p50_ms"].state == "EXCEEDED" and "stored measurement" in failing["p50_ms"].kind
    stale = check("[rpi5.aver-ravdess.tflite-fp32]\np50_ms = 1.0\n", days_ago=40)
    assert stale["p50_ms"].kind.startswith("prediction") and "stored" not in stale["p50_ms"].kind
    longer = check("[defaults]\nmeasurement_max_age_days = 60\n[rpi5.aver-ravdess.tflite-fp32]\np50_ms = 1.0\n",
                   days_ago=40)
    assert "stored measurement" in longer["p50_ms"].kind
    other_threads = check("[rpi5.aver-ravdess.tflite-fp32]\np50_ms = 1.0\nthreads = 2\n", days_ago=2)
    assert other_threads["p50_ms"].kind.startswith("prediction")  # the stored run was at 4 threads


def test_fresh_measurement_picks_the_newest_run_of_that_file_on_that_kind():
    sha = "e" * 64
    records = [_record([_row(sha, 5.0)], when=_when(5)), _record([_row(sha, 4.0)], when=_when(1)),
               _record([_row(sha, 1.0)], when=_when(0), threads=1),
               _record([_row(sha, 2.0)], device={**LAB, "kind": "rpi4"})]
    row, record = fresh_measurement("rpi5", sha, 4, 30, records)
    assert row["p50_ms"] == 4.0 and record["threads"] == 4
    assert fresh_measurement("rpi5", sha, 4, 0.5, records) is None
    assert fresh_measurement("rpi5", "f" * 64, 4, 30, records) is None


@pytest.mark.parametrize("value", ["-1", "'a'", "nan"])
def test_a_bad_max_age_is_one_line(tmp_path, value):
    with pytest.raises(InputError, match="defaults.measurement_max_age_days"):
        _budgets(tmp_path, f"[defaults]\nmeasurement_max_age_days = {value}\n")
