"""Staged bundles of the two staged families (spectrotemporal, wav2vec2), made by hand: a top
manifest listing the stages and one folder per stage with its own manifest and a dummy model
file (nothing reaches a runtime). Issue 30: a stage folder where the whole model must run,
stages that are not the ones the family runs, and any preprocessing field the family reads
that is of the wrong kind, empty or out of range are each one line `error: ...` and exit 2
when the bundle is opened, never a KeyError or ValueError mid-predict."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.test_cli import assert_one_line_error, cli
from tests.test_manifest_schema import MODEL_BYTES, run_cli


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spectro_preprocessing() -> dict:
    from edgeaffect.families.spectrotemporal.features import SpectroConfig

    return {"kind": "spectrotemporal", "features": SpectroConfig().to_dict(), "vlnep_rule": "match",
            "normalisation": {"mel_mean": [-40.0, 0.0, 0.0], "mel_std": [14.0, 2.0, 0.5],
                              "vlnep_mean": [0.004] * 256, "vlnep_std": [0.01] * 256}}


def wav2vec2_preprocessing() -> dict:
    return {"kind": "wav2vec2-detector", "sample_rate": 16000, "segment_s": 2.0, "tail": "drop", "layers": "sum",
            "max_segments": 16, "frames": 99, "hidden": 32, "live_segments": 4, "backbone": {"hidden_size": 32}}


# family -> its model, task, labels, preprocessing and stages (name -> inputs, output shape), in order
STAGED = {
    "spectrotemporal": ("spectrotemporal-tiny", "regression", ["BDI-II"], spectro_preprocessing,
                        {"extractor": ({"segment": [None, 100, 80, 3]}, [None, 256]),
                         "sequence": ({"spectral": [None, 30, 256], "vlnep": [None, 30, 256]}, [None, 1])}),
    "wav2vec2": ("wav2vec2-tiny", "detection", ["not depressed", "depressed"], wav2vec2_preprocessing,
                 {"backbone": ({"audio": [None, 32000]}, [None, 99, 32]),
                  "head": ({"features": [None, 16, 99, 32], "segment_mask": [None, 16]}, [None, 17])}),
}


def staged_manifests(family: str) -> tuple[dict, dict[str, dict]]:
    """(the top manifest without its checksums, stage name -> that stage's manifest)."""
    model, kind, labels, preprocessing, stages = STAGED[family]
    common = {"manifest_version": 1, "toolkit_version": "0.1.0", "model": model, "family": family,
              "task": {"kind": kind}, "labels": labels, "verification": [], "trained": {}}
    sha = _sha(MODEL_BYTES)
    top = {**common, "preprocessing": preprocessing(), "formats": ["tflite-int8"],
           "stages": [{"name": n, "folder": n, "inputs": {k: {"shape": s} for k, s in ins.items()},
                       "output": {"shape": out}} for n, (ins, out) in stages.items()]}
    per_stage = {n: {**common, "stage": n, "preprocessing": preprocessing(),
                     "inputs": {k: {"shape": s, "dtype": "float32"} for k, s in ins.items()},
                     "output": {"name": n, "shape": out},
                     "files": {"tflite-int8": {"file": "m.tflite", "runtime": "litert", "sha256": sha, "bytes": 49}},
                     "checksums": {"m.tflite": sha}}
                 for n, (ins, out) in stages.items()}
    return top, per_stage


def write_staged(folder: Path, top: dict, per_stage: dict[str, dict]) -> Path:
    """The bundle on disk; the top manifest's checksums cover the stage manifests as written
    (as if whoever damaged a stage manifest had fixed its checksum too)."""
    sums = {}
    for name, m in per_stage.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "m.tflite").write_bytes(MODEL_BYTES)
        text = json.dumps(m).encode()
        (folder / name / "manifest.json").write_bytes(text)
        sums[f"{name}/manifest.json"] = _sha(text)
    (folder / "manifest.json").write_text(json.dumps({**top, "checksums": sums}))
    return folder


def staged_bundle(folder: Path, family: str, mutate_top=None, mutate_stages=None) -> Path:
    top, per_stage = staged_manifests(family)
    for mutate, target in ((mutate_top, [top]), (mutate_stages, per_stage.values())):
        for m in target if mutate else ():
            mutate(m)
    return write_staged(folder, top, per_stage)


def _refused(*args) -> str:
    code, line = run_cli(*args)
    assert code == 2 and line.startswith("error: ") and "\n" not in line, (code, line)
    return line


@pytest.mark.parametrize("family", STAGED)
def test_the_hand_made_staged_bundles_are_valid(tmp_path, family):
    folder = staged_bundle(tmp_path / "b", family)
    assert run_cli("verify", folder) == (0, "")
    # Past the manifests, predict stops at the missing recording.
    assert "file not found" in _refused("predict", tmp_path / "none.wav", "--model", folder)


# ------------------------------------------------------------ issue 30, 1: stage folders
@pytest.mark.parametrize("family", STAGED)
def test_a_stage_folder_given_to_predict_names_the_bundle(tmp_path, family):
    folder = staged_bundle(tmp_path / "b", family)
    first = next(iter(STAGED[family][4]))
    line = _refused("predict", tmp_path / "x.wav", "--model", folder / first)
    assert line == f"error: {folder / first} is one stage of the bundle at {folder.resolve()}; give that folder"


@pytest.mark.parametrize("family", STAGED)
def test_a_stage_folder_that_does_not_say_which_stage_names_the_bundle(tmp_path, family):
    """Was `KeyError: 'extractor'` (or 'backbone'): without 'stage' the folder ran as a whole
    model, and the family's first stage had no runner."""
    folder = staged_bundle(tmp_path / "b", family, mutate_stages=lambda m: m.pop("stage"))
    first = next(iter(STAGED[family][4]))
    for args in (("predict", tmp_path / "x.wav", "--model", folder / first), ("verify", folder / first)):
        line = _refused(*args)
        assert "missing 'stage'" in line and f"give the bundle's folder {folder.resolve()}" in line, line


def _rename_first_stage(m):
    m["stages"][0]["name"] = "renamed"


def _drop_first_stage(m):
    del m["stages"][0]


@pytest.mark.parametrize("mutate", [_rename_first_stage, _drop_first_stage])
@pytest.mark.parametrize("family", STAGED)
def test_stages_that_are_not_the_familys_are_one_line(tmp_path, family, mutate):
    """Was `KeyError: 'extractor'`: a stage renamed or left out of the top manifest had no
    runner when the adapter asked for it."""
    folder = staged_bundle(tmp_path / "b", family, mutate_top=mutate)
    names = ", ".join(STAGED[family][4])
    for args in (("predict", tmp_path / "x.wav", "--model", folder), ("verify", folder)):
        assert f"'stages' must be the model's stages in the order they run ({names})" in _refused(*args)


@pytest.mark.parametrize("family", STAGED)
def test_swapped_stage_folders_are_one_line(tmp_path, family):
    first, second = STAGED[family][4]

    def swap(m):
        m["stages"][0]["folder"], m["stages"][1]["folder"] = second, first

    folder = staged_bundle(tmp_path / "b", family, mutate_top=swap)
    line = _refused("predict", tmp_path / "x.wav", "--model", folder)
    assert f"holds stage '{second}'" in line and "copy the whole bundle folder again" in line, line


def test_the_real_command_line_prints_no_traceback_for_a_stage_folder(tmp_path):
    folder = staged_bundle(tmp_path / "b", "spectrotemporal", mutate_stages=lambda m: m.pop("stage"))
    assert_one_line_error(cli("predict", tmp_path / "x.wav", "--model", folder / "extractor"), "missing 'stage'")
    assert_one_line_error(cli("demo", folder / "extractor", "--mic", tmp_path / "x.wav"), "missing 'stage'")


# ------------------------------------------------------------ issue 30, 2: what a family reads
def _set(path: str, value):
    def mutate(m):
        *parents, last = path.split("/")
        node = m["preprocessing"]
        for p in parents:
            node = node[p]
        node[last] = copy.deepcopy(value)
    return mutate


def _drop(path: str):
    def mutate(m):
        *parents, last = path.split("/")
        node = m["preprocessing"]
        for p in parents:
            node = node[p]
        del node[last]
    return mutate


F = "features"
N = "normalisation"
# (family, case id, mutation of every manifest's preprocessing, a fragment the line must hold)
CASES = [
    ("spectrotemporal", "rule-empty", _set("vlnep_rule", ""), "'preprocessing.vlnep_rule' must be one of 'match', 'xor'"),
    ("spectrotemporal", "rule-unknown", _set("vlnep_rule", "and"), "'preprocessing.vlnep_rule'"),
    ("spectrotemporal", "rule-number", _set("vlnep_rule", 1), "'preprocessing.vlnep_rule'"),
    ("spectrotemporal", "rule-missing", _drop("vlnep_rule"), "missing 'preprocessing.vlnep_rule'"),
    ("spectrotemporal", "features-list", _set(F, []), "'preprocessing.features' must be a table"),
    ("spectrotemporal", "features-unknown-key", _set(f"{F}/n_mel", 80), "'preprocessing.features.n_mel'"),
    ("spectrotemporal", "features-missing-key", _drop(f"{F}/hop_ms"), "missing 'preprocessing.features.hop_ms'"),
    ("spectrotemporal", "n_mels-string", _set(f"{F}/n_mels", "80"), "'preprocessing.features.n_mels' must be an integer"),
    ("spectrotemporal", "n_mels-zero", _set(f"{F}/n_mels", 0), "'preprocessing.features.n_mels'"),
    ("spectrotemporal", "n_fft-float", _set(f"{F}/n_fft", 512.5), "'preprocessing.features.n_fft'"),
    ("spectrotemporal", "hop-negative", _set(f"{F}/hop_ms", -10.0), "'preprocessing.features.hop_ms'"),
    ("spectrotemporal", "window-past-n_fft", _set(f"{F}/win_ms", 100.0), "'preprocessing.features.win_ms'"),
    ("spectrotemporal", "segment-too-short", _set(f"{F}/segment_s", 0.01), "'preprocessing.features.segment_s'"),
    ("spectrotemporal", "fmin-past-nyquist", _set(f"{F}/fmin", 5000.0), "'preprocessing.features.fmin'"),
    ("spectrotemporal", "sequence-zero", _set(f"{F}/segments_per_sequence", 0),
     "'preprocessing.features.segments_per_sequence'"),
    ("spectrotemporal", "hop-bool", _set(f"{F}/sequence_hop", True), "'preprocessing.features.sequence_hop'"),
    ("spectrotemporal", "amin-zero", _set(f"{F}/amin", 0.0), "'preprocessing.features.amin'"),
    ("spectrotemporal", "normalisation-missing", _drop(N), "missing 'preprocessing.normalisation'"),
    ("spectrotemporal", "mel_mean-2", _set(f"{N}/mel_mean", [0.0, 0.0]), "'preprocessing.normalisation.mel_mean'"),
    ("spectrotemporal", "mel_std-zero", _set(f"{N}/mel_std", [0.0] * 3), "'preprocessing.normalisation.mel_std[0]'"),
    ("spectrotemporal", "vlnep_mean-255", _set(f"{N}/vlnep_mean", [0.0] * 255),
     "'preprocessing.normalisation.vlnep_mean'"),
    ("spectrotemporal", "vlnep_std-strings", _set(f"{N}/vlnep_std", ["1"] * 256),
     "'preprocessing.normalisation.vlnep_std[0]'"),
    ("wav2vec2", "sample_rate-string", _set("sample_rate", "16000"), "'preprocessing.sample_rate' must be an integer"),
    ("wav2vec2", "sample_rate-float", _set("sample_rate", 16000.5), "'preprocessing.sample_rate'"),
    ("wav2vec2", "segment_s-zero", _set("segment_s", 0), "'preprocessing.segment_s' must be a finite number > 0"),
    ("wav2vec2", "segment_s-tiny", _set("segment_s", 1e-6), "'preprocessing.segment_s' must be at least one sample"),
    ("wav2vec2", "segment_s-missing", _drop("segment_s"), "missing 'preprocessing.segment_s'"),
    ("wav2vec2", "tail-empty", _set("tail", ""), "'preprocessing.tail' must be one of 'drop', 'pad'"),
    ("wav2vec2", "max_segments-negative", _set("max_segments", -1), "'preprocessing.max_segments'"),
    ("wav2vec2", "frames-list", _set("frames", [99]), "'preprocessing.frames'"),
    ("wav2vec2", "hidden-null", _set("hidden", None), "'preprocessing.hidden'"),
    ("wav2vec2", "live_segments-zero", _set("live_segments", 0), "'preprocessing.live_segments'"),
]


@pytest.mark.parametrize("family,mutate,fragment", [(c[0], *c[2:]) for c in CASES], ids=[c[1] for c in CASES])
def test_a_bad_field_the_family_reads_is_one_line_when_the_bundle_opens(tmp_path, family, mutate, fragment):
    """Each case damages the top manifest and, separately, every stage manifest (whose
    checksums the top manifest then carries): both are refused before anything runs."""
    for where in ("top", "stages"):
        folder = staged_bundle(tmp_path / where, family, **{f"mutate_{where}": mutate})
        for args in (("verify", folder), ("predict", tmp_path / "x.wav", "--model", folder)):
            line = _refused(*args)
            assert fragment in line, (where, args[0], line)
        shutil.rmtree(folder)


# (family, case id, a mutation that keeps each field valid on its own, the fragment of the line)
INPUT_CASES = [
    ("spectrotemporal", "extractor-inputs-vs-n_mels", _set(f"{F}/n_mels", 40), "'inputs.segment.shape'"),
    ("wav2vec2", "backbone-inputs-vs-segment", _set("segment_s", 3.0), "'inputs.audio.shape' must be [batch, 48000]"),
    ("wav2vec2", "head-inputs-vs-hidden", _set("hidden", 64), "'inputs.features.shape'"),
]


@pytest.mark.parametrize("family,mutate,fragment", [(c[0], *c[2:]) for c in INPUT_CASES],
                         ids=[c[1] for c in INPUT_CASES])
def test_preprocessing_that_does_not_make_a_stages_inputs_is_one_line(tmp_path, family, mutate, fragment):
    """A stage's inputs follow from the preprocessing; the top manifest's preprocessing must be
    the one its stages were checked against."""
    every = staged_bundle(tmp_path / "every", family, mutate_top=mutate, mutate_stages=mutate)
    assert fragment in _refused("predict", tmp_path / "x.wav", "--model", every)
    top = staged_bundle(tmp_path / "top", family, mutate_top=mutate)
    assert "'preprocessing' differs from the bundle's" in _refused("predict", tmp_path / "x.wav", "--model", top)


def test_an_empty_vlnep_rule_prints_no_traceback(tmp_path):
    """Issue 30: was `ValueError: VLNEP rule must be one of ('match', 'xor'), not ''` mid-predict."""
    folder = staged_bundle(tmp_path / "b", "spectrotemporal", mutate_top=_set("vlnep_rule", ""))
    assert_one_line_error(cli("predict", tmp_path / "x.wav", "--model", folder), "'preprocessing.vlnep_rule'")


def test_every_family_declares_what_its_adapter_reads():
    """The hook the bundle reader asks (shared code names no family): each of the package's
    families declares the preprocessing fields its adapter reads."""
    from edgeaffect.contract import get_family, list_families

    own = [get_family(n) for n in list_families() if type(get_family(n)).__module__.startswith("edgeaffect.")]
    assert own and all(f.adapter.preprocessing_spec is not None for f in own), [f.name for f in own]


def test_an_export_of_other_formats_than_int8_runs_its_first():
    """Was "unknown format in this export 'tflite-int8'" from `demo`, which takes no --format."""
    from edgeaffect.device.predict import default_format

    assert default_format({"formats": ["tflite-fp32", "onnx-fp32"]}) == "tflite-fp32"
    assert default_format({"formats": ["onnx-fp32", "tflite-int8"]}) == "tflite-int8"
    assert default_format({"formats": ["tflite-int8"], "target": {"default_format": "onnx-fp32"}}) == "onnx-fp32"
