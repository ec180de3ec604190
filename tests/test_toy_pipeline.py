"""The test-only family's demo mode: registered from EDGEAFFECT_PLUGINS by the command line,
and `edgeaffect pipeline` (make demo MODEL=toy-tones) run for it end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

from toy_family import SPEC, register

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, plugins: str):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "EDGEAFFECT_PLUGINS": plugins,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "edgeaffect.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def test_a_plugin_module_registers_its_family():
    r = cli("models", "--json", plugins="tests.toy_family")
    assert r.returncode == 0, r.stderr
    assert SPEC.name in [m["name"] for m in json.loads(r.stdout)]
    bad = cli("models", plugins="tests.no_such_family")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "EDGEAFFECT_PLUGINS names 'tests.no_such_family'" in bad.stderr


def test_the_pipeline_runs_for_the_toy_family(tmp_path):
    from edgeaffect.workflows.pipeline import preset_for, run_pipeline

    register()
    assert preset_for(SPEC.name).scale == 120 and preset_for(SPEC.name, qat_epochs=2).qat_epochs == 2
    s = run_pipeline(tmp_path, model=SPEC.name, qat_epochs=2, budget_s=0.02, recordings=2)
    assert s["task"] == "regression" and s["metric"] == "mae" and list(s["runs"]) == ["paper"]
    assert all(v["passed"] or not v["gating"] for v in s["verification"])
    table = (tmp_path / "summary.md").read_text()
    assert "| tflite-int8 |" in table and "| keras (float, model(x)) |" in table
    assert json.loads((tmp_path / "summary.json").read_text())["model"] == SPEC.name
