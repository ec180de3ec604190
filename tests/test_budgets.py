"""Budgets: the file is checked field by field; a budget with no measurement behind it is
"UNCHECKED" and fails the gate (exit 1) unless it is marked ``optional = true``. Hand-made
rows and bundles: no training, no timing worth the name."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from edgeaffect.measure.budgets import NOT_CHECKED, check_budgets, load_budgets
from tests.test_manifest_schema import aver_manifest, run_cli, write_bundle

ROOT = Path(__file__).resolve().parents[1]
TWO = ("[host.aver-ravdess.tflite-int8]\np50_ms = 2.0\npeak_memory_mib = 64\n\n"
       "[host.speechnet-emodb.tflite-int8]\np50_ms = 2.0\noptional = true\n")


def _budgets(tmp_path, text: str):
    f = tmp_path / "budgets.toml"
    f.write_text(text)
    return f


def _host_row(model="aver-ravdess", fmt="tflite-int8", memory=10.0, p50=1.0):
    return {"model": model, "format": fmt, "status": "ok", "bytes": 1000, "p50_ms": p50, "p99_ms": p50 * 2,
            "model_memory_mib": memory, "path": "unused"}


def _no_remeasure(row):
    raise AssertionError("nothing is over budget: nothing to measure again")


def test_the_repository_budgets_say_which_may_go_unmeasured():
    b = load_budgets(ROOT / "roofline" / "budgets.toml")
    optional = {e.key for e in b.entries if e.optional}
    # SpeechNet and the depression regressor's stages (the suite's gate benchmarks the AVER
    # export alone) and formats only a Jetson bundle carries (`make bench` benchmarks the
    # desktop exports).
    assert optional and all(".speechnet-emodb." in k or ".spectrotemporal-tiny/" in k or k.startswith("jetson-")
                            for k in optional)
    assert all(not e.optional for e in b.entries if e.model == "aver-ravdess" and not e.key.startswith("jetson-"))


def test_an_unmeasured_budget_fails_unless_optional(tmp_path):
    checks = check_budgets(load_budgets(_budgets(tmp_path, TWO)), [], _no_remeasure)
    state = {(c.budget.split(".")[1], c.metric): (c.state, c.passed) for c in checks}
    assert state == {("aver-ravdess", "p50_ms"): ("UNCHECKED", False),
                     ("aver-ravdess", "peak_memory_mib"): ("UNCHECKED", False),
                     ("speechnet-emodb", "p50_ms"): ("skipped", True)}
    assert all(c.kind == NOT_CHECKED and "no export of it was benchmarked" in c.detail for c in checks)


def test_a_measured_budget_is_ok_or_exceeded_and_unmeasurable_memory_is_unchecked(tmp_path):
    b = load_budgets(_budgets(tmp_path, TWO))
    checks = check_budgets(b, [_host_row()], _no_remeasure)
    aver = {c.metric: c.state for c in checks if "aver" in c.budget}
    assert aver == {"p50_ms": "ok", "peak_memory_mib": "ok"}
    checks = check_budgets(b, [_host_row(memory=None)], _no_remeasure)
    memory = next(c for c in checks if c.metric == "peak_memory_mib")
    assert (memory.state, memory.passed) == ("UNCHECKED", False) and "not measurable" in memory.detail
    checks = check_budgets(b, [_host_row(memory=500.0)], _no_remeasure)
    assert next(c for c in checks if c.metric == "peak_memory_mib").state == "EXCEEDED"


def test_the_gate_fails_on_an_unchecked_budget_and_says_so(tmp_path):
    """A bundle whose model cannot run: its row fails, so its budget has nothing behind it."""
    bundle = write_bundle(tmp_path / "b", aver_manifest())
    r = run_cli("bench", bundle, "--budget", "0.05", "--budgets", _budgets(tmp_path, TWO), "--junit", tmp_path / "j.xml")
    assert r[0] == 1
    suite = ET.parse(tmp_path / "j.xml").getroot()
    assert (suite.get("failures"), suite.get("skipped")) == ("3", "1")  # the row, 2 unchecked; 1 optional skipped
    optional_only = _budgets(tmp_path, "[host.aver-ravdess.tflite-int8]\np50_ms = 2.0\noptional = true\n")
    assert run_cli("bench", bundle, "--budget", "0.05", "--budgets", optional_only)[0] == 0


def test_the_gate_message_tells_unchecked_from_exceeded(tmp_path):
    from tests.test_cli import cli

    bundle = write_bundle(tmp_path / "b", aver_manifest())
    r = cli("bench", bundle, "--budget", "0.05", "--budgets", _budgets(tmp_path, TWO))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "budget not checked" in r.stderr and "host.aver-ravdess.tflite-int8 p50_ms" in r.stderr
    assert "budget exceeded" not in r.stderr
    assert "UNCHECKED host.aver-ravdess.tflite-int8" in r.stdout and "skipped   host.speechnet" in r.stdout


@pytest.mark.parametrize("text, fragment", [
    ("[defaults]\ntolerance = 'a'\n", "'defaults.tolerance' must be a finite number >= 0"),
    ("[defaults]\ntolerance = nan\n", "'defaults.tolerance'"),
    ("[defaults]\nrepeats = 0\n", "'defaults.repeats' must be an integer >= 1"),
    ("[defaults]\nrepeats = 1.5\n", "'defaults.repeats'"),
    ("defaults = 3\n", "[defaults] must be a table"),
    ("[host.aver-ravdess.tflite-int8]\np50_ms = nan\n", "p50_ms must be a positive number"),
    ("[host.aver-ravdess.tflite-int8]\np50_ms = inf\n", "p50_ms must be a positive number"),
    ("[host.aver-ravdess.tflite-int8]\np50_ms = [1]\n", "p50_ms must be a positive number"),
    ("[host.aver-ravdess.tflite-int8]\np50_ms = 1\noptional = 'yes'\n", "optional' must be true or false"),
    ("[host.aver-ravdess.tflite-int8]\noptional = true\n", "sets no budget"),
    ("[host.aver-ravdess.tflite-int8]\np50_ms = 1\noptinal = true\n", "did you mean 'optional'"),
    ("host = 1\n", "[host] must be a table"),
])
def test_bad_budgets_values_are_one_line(tmp_path, text, fragment):
    code, line = run_cli("bench", tmp_path, "--budgets", _budgets(tmp_path, text))
    assert code == 2 and "\n" not in line and fragment in line, line


def test_a_budget_may_name_a_stage_of_a_staged_model_and_nothing_else(tmp_path):
    from edgeaffect.errors import InputError

    path = tmp_path / "b.toml"
    path.write_text('[host."spectrotemporal-tiny/extractor".tflite-int8]\np50_ms = 3.0\n')
    assert [e.model for e in load_budgets(path).entries] == ["spectrotemporal-tiny/extractor"]
    path.write_text('[host."spectrotemporal-tiny/decoder".tflite-int8]\np50_ms = 3.0\n')
    with pytest.raises(InputError, match="unknown model"):
        load_budgets(path)
