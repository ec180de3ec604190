"""A staged export through the generic code, on a test-only family (the toy tone regressor
split into a per-segment encoder and a head): each stage is its own verified export folder,
the chain of exported stages is verified against the chain of Keras models, and the device
side runs the stages in turn from the bundle. Fast: the stages are two Dense layers."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

import toy_family
from toy_family import SPEC, ToyAdapter, ToyFamily, register

from edgeaffect.errors import InputError


class StagedToyAdapter(ToyAdapter):
    stages = ("encoder", "head")

    def run_stages(self, run, x):
        return run("head", {"hidden": run("encoder", {"bands": x["bands"]})})


class StagedToyFamily(ToyFamily):
    name = "toy-staged"
    adapter = StagedToyAdapter

    def stages(self, run):
        from edgeaffect.contract import Stage
        from edgeaffect.keras_backend import keras

        k, hidden = keras(), run.spec.config.hidden
        x = k.layers.Input((toy_family.BANDS,), name="bands")
        encoder = k.Model(x, k.layers.Dense(hidden, activation="relu", name="hidden")(x), name="encoder")
        h = k.layers.Input((hidden,), name="hidden")
        head = k.Model(h, k.layers.Dense(1, name="score")(h), name="head")
        for part in (encoder, head):
            for layer in part.layers:
                if layer.weights:
                    layer.set_weights(run.model.get_layer(layer.name).get_weights())
        return [Stage("encoder", encoder, {"bands": (toy_family.BANDS,)}, "segment"),
                Stage("head", head, {"hidden": (hidden,)}, "segment", qat=True)]

    def load_run(self, folder, info):
        run = super().load_run(folder, info)
        run.spec = STAGED_SPEC
        return run

    def recording_inputs(self, run, dataset, part):
        x, y = self.split_inputs(run, dataset, part)
        return [({"bands": x["bands"][i : i + 1]}, float(y[i])) for i in range(len(y))]


STAGED_SPEC = replace(SPEC, name="toy-tones-staged", family="toy-staged")


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    from edgeaffect.export.exporter import export_run
    from edgeaffect.contract import register_family
    from edgeaffect.contract import list_models, register_model
    from edgeaffect.train.families import load_corpus, train
    from edgeaffect.train.runs import load_run, run_dataset

    register()
    family = StagedToyFamily()
    register_family(family)
    if STAGED_SPEC.name not in list_models():
        register_model(lambda: STAGED_SPEC)
    root = tmp_path_factory.mktemp("staged")
    family.synthesize(root / "corpus", scale=60, seed=0)
    data = load_corpus(STAGED_SPEC.name, root / "corpus", root / "cache")
    train(STAGED_SPEC.name, data, root / "run", seed=0, epochs=60)
    run = load_run(root / "run")
    manifest = export_run(run, run_dataset(run), root / "export", qat_epochs=3)
    return root, run, manifest


def test_each_stage_is_its_own_verified_export(staged):
    from edgeaffect.device.bundle import open_bundle
    from edgeaffect.export.exporter import DEFAULT_FORMATS

    root, _, manifest = staged
    assert [s["name"] for s in manifest["stages"]] == ["encoder", "head"]
    assert manifest["formats"] == list(DEFAULT_FORMATS) and "files" not in manifest
    for s in manifest["stages"]:
        stage = open_bundle(root / "export" / s["folder"]).manifest  # a complete export: schema and checksums
        assert stage["stage"] == s["name"] and set(stage["files"]) == set(DEFAULT_FORMATS)
        assert all(v["passed"] or not v["gating"] for v in stage["verification"])
    # The encoder has no targets of its own: its int8 files are post-training; the head takes QAT.
    enc = json.loads((root / "export" / "encoder" / "manifest.json").read_text())["files"]
    head = json.loads((root / "export" / "head" / "manifest.json").read_text())["files"]
    assert enc["tflite-int8"]["quantization"] == "post-training" and enc["onnx-qdq"]["quantization"] == "post-training"
    assert head["tflite-int8"]["quantization"] == "qat"
    # The chain of exported stages, judged as the regressor it is (MAE in score points).
    chain = {v["format"]: v for v in manifest["verification"]}
    assert set(chain) == set(DEFAULT_FORMATS)
    assert all(v["kernels"] == "chain" and v["passed"] and v["metric_name"] == "mae" for v in chain.values())
    assert chain["tflite-fp32"]["max_abs_diff"] < 1e-4  # float32 end to end: rounding only


def test_the_device_runs_the_stages_in_turn(staged):
    from edgeaffect.device.predict import ExportedModel

    root, run, _ = staged
    wav = sorted((root / "corpus").glob("tone-*.wav"))[0]
    fp32 = ExportedModel(root / "export", "tflite-fp32")
    x = fp32.inputs(wav)
    keras = run.model.predict(x, verbose=0)
    p = fp32.predict(wav)
    # float32 through two files against the Keras model in one piece: 1e-4 score points
    np.testing.assert_allclose(np.asarray(p.per_segment).reshape(-1), keras.reshape(-1), atol=1e-4)
    int8 = ExportedModel(root / "export", "tflite-int8").predict(wav)
    assert abs(int8.values["tone score"] - p.values["tone score"]) < 0.5  # the int8 regressor bound: 5 % of 0-10


def test_a_changed_stage_file_is_refused(staged, tmp_path):
    from typer.testing import CliRunner

    from edgeaffect.cli import app
    from edgeaffect.device.predict import ExportedModel

    root, _, _ = staged
    copy = tmp_path / "bundle"
    shutil.copytree(root / "export", copy)
    r = CliRunner().invoke(app, ["verify", str(copy)])
    assert r.exit_code == 0 and "12 files, all checksums match" in r.output, r.output  # 2 manifests + 2 x 5 files
    f = next((copy / "head").glob("*-tflite-fp32.tflite"))
    f.write_bytes(f.read_bytes()[:-8])
    with pytest.raises(InputError, match="checksum mismatch"):
        ExportedModel(copy, "tflite-fp32")
    r = CliRunner().invoke(app, ["verify", str(copy)])
    assert r.exit_code != 0


def test_a_stage_folder_outside_the_bundle_is_refused(staged, tmp_path):
    from edgeaffect.device.bundle import read_bundle

    root, _, _ = staged
    copy = tmp_path / "bundle"
    shutil.copytree(root / "export", copy)
    m = json.loads((copy / "manifest.json").read_text())
    m["stages"][0]["folder"] = "../encoder"
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(InputError, match="stages"):
        read_bundle(copy)


def test_bench_times_every_stage_file(staged):
    from edgeaffect.measure.bench import bench_exports

    root, _, _ = staged
    rows = bench_exports([root / "export"], budget_s=0.05)
    assert {r["model"] for r in rows} == {"toy-tones-staged/encoder", "toy-tones-staged/head"}
    assert all(r["status"] == "ok" and r["p50_ms"] > 0 for r in rows)


def test_a_stage_folder_runs_as_that_stage_where_that_makes_sense(staged):
    from typer.testing import CliRunner

    from edgeaffect.cli import app
    from edgeaffect.measure.bench import bench_exports
    from edgeaffect.measure.profile import profile

    root, _, _ = staged
    head = root / "export" / "head"
    r = CliRunner().invoke(app, ["verify", str(head)])
    assert r.exit_code == 0 and "5 files, all checksums match" in r.output, r.output  # one file per format
    rows = bench_exports([head], budget_s=0.05)
    assert {r["model"] for r in rows} == {"toy-tones-staged/head"} and all(r["status"] == "ok" for r in rows)
    assert profile(head, budget_s=0.05, warmup=1, op_profile=False)["p50_ms"] > 0


def _refused_line(*args) -> str:
    """The command run in this process (the toy family is registered only here): the one line
    ``main`` prints for it, after checking it is an input error (exit 2) of one line."""
    from edgeaffect.cli import app

    with pytest.raises(InputError) as exc:
        app([str(a) for a in args], standalone_mode=False)
    assert exc.value.exit_code == 2 and "\n" not in str(exc.value), str(exc.value)
    return f"error: {exc.value}"


def test_a_stage_folder_where_the_whole_model_must_run_is_one_line(staged, tmp_path):
    root, _, _ = staged
    wav = sorted((root / "corpus").glob("tone-*.wav"))[0]
    stage = root / "export" / "encoder"
    line = _refused_line("predict", wav, "--model", stage)
    assert line == f"error: {stage} is one stage of the bundle at {(root / 'export').resolve()}; give that folder"
    # A stage folder copied away from its bundle: the line says what to give instead.
    alone = shutil.copytree(stage, tmp_path / "encoder")
    assert "is one stage ('encoder') of a staged bundle" in _refused_line("predict", wav, "--model", alone)
    # The whole staged bundle where one model file is expected: which stage is for the caller to say.
    assert "is a staged bundle: profile one stage's folder" in _refused_line("profile", root / "export")
