"""A bundle's manifest is checked once, field by field, when the bundle is opened: every
malformed manifest (a key missing, a wrong type, NaN, statistics that do not match the
features, a file outside the folder) ends in one line `error: ...` and exit 2, never a
traceback. The bundles here are made by hand (a dummy model file with its checksum):
nothing gets as far as a runtime."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

import pytest

from edgeaffect.errors import EdgeAffectError
from tests.test_cli import assert_one_line_error, cli

MODEL_BYTES = b"not a real model: nothing here reaches a runtime"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def aver_manifest() -> dict:
    from edgeaffect.families.aver.features import AverFeatureConfig

    sha = _sha(MODEL_BYTES)
    labels = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    return {
        "manifest_version": 1, "toolkit_version": "0.1.0", "model": "aver-ravdess", "family": "aver",
        "task": {"kind": "classification", "description": "emotion"}, "labels": labels,
        "inputs": {"face": {"shape": [None, 64, 64, 1], "dtype": "float32"},
                   "mfcc": {"shape": [None, 40, 1], "dtype": "float32"}},
        "output": {"name": "probabilities", "shape": [None, 8]},
        "preprocessing": {"features": AverFeatureConfig().to_dict(), "face_scale": 1 / 255,
                          "mfcc_mean": [0.5] * 40, "mfcc_std": [2.0] * 40},
        "files": {"tflite-int8": {"file": "m.tflite", "format": "tflite-int8", "runtime": "litert", "bytes": 49,
                                  "sha256": sha}},
        "verification": [], "trained": {"seed": 0},
        "target": {"key": "rpi5", "default_format": "tflite-int8", "options": {"threads": 4}},
        "checksums": {"m.tflite": sha},
    }


def speech_manifest() -> dict:
    from edgeaffect.families.speechnet.features import FusionConfig

    m = aver_manifest()
    m.update(model="speechnet-emodb", family="speechnet", labels=["a", "b", "c", "d", "e", "f", "g"],
             inputs={"features": {"shape": [None, 48, 107], "dtype": "float32"}},
             output={"name": "scores", "shape": [None, 7]},
             preprocessing={"features": FusionConfig().to_dict(), "max_frames": 48, "mean": [0.0] * 107,
                            "std": [1.0] * 107})
    return m


def write_bundle(folder: Path, manifest: dict | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "m.tflite").write_bytes(MODEL_BYTES)
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (folder / "manifest.json").write_text(text)
    return folder


def run_cli(*args) -> tuple[int, str]:
    """The command line in this process (as ``main`` does: an EdgeAffectError is one line
    and its exit code); anything else escapes and fails the test with its traceback."""
    from edgeaffect.cli import app

    try:
        code = app([str(a) for a in args], standalone_mode=False)  # typer.Exit(n) comes back as n
    except EdgeAffectError as exc:
        return exc.exit_code, f"error: {exc}"
    return code or 0, ""


def _set(path: str, value):
    def mutate(m, folder):
        *parents, last = path.split("/")
        node = m
        for p in parents:
            node = node[p]
        node[last] = value
    return mutate


def _drop(path: str):
    def mutate(m, folder):
        *parents, last = path.split("/")
        node = m
        for p in parents:
            node = node[p]
        del node[last]
    return mutate


def _file_outside(name_in_manifest: str | None = None, symlink: bool = False):
    """A model file outside the bundle with a matching checksum (what verify let through)."""
    def mutate(m, folder):
        outside = folder.parent / f"outside-{folder.name}"
        outside.mkdir(exist_ok=True)
        (outside / "m.tflite").write_bytes(MODEL_BYTES)
        if symlink:
            (folder / "link.tflite").symlink_to(outside / "m.tflite")
            rel = "link.tflite"
        else:
            rel = name_in_manifest.format(outside=outside)
        m["files"]["tflite-int8"]["file"] = rel
        m["checksums"] = {rel: _sha(MODEL_BYTES)}
    return mutate


PI = "preprocessing"
FEAT = "preprocessing/features"
# (case id, mutation, a fragment the error line must hold)
AVER_CASES = [
    *[(f"missing-{k}", _drop(k), f"missing '{k}'") for k in
      ("manifest_version", "toolkit_version", "model", "labels", "inputs", "preprocessing", "files")],
    *[(f"missing-{k}", _drop(f"{PI}/{k}"), f"missing 'preprocessing.{k}'") for k in ("features", "mfcc_mean", "mfcc_std")],
    ("missing-file-entry-sha", _drop("files/tflite-int8/sha256"), "files.tflite-int8.sha256"),
    ("missing-file-entry-file", _drop("files/tflite-int8/file"), "files.tflite-int8.file"),
    ("missing-file-entry-runtime", _drop("files/tflite-int8/runtime"), "files.tflite-int8.runtime"),
    ("version-as-string", _set("manifest_version", "1"), "'manifest_version' must be an integer"),
    ("version-as-float", _set("manifest_version", 1.5), "'manifest_version' must be an integer"),
    ("version-as-bool", _set("manifest_version", True), "'manifest_version' must be an integer"),
    ("version-zero", _set("manifest_version", 0), "'manifest_version' must be an integer >= 1"),
    ("newer-manifest", _set("manifest_version", 2), "upgrade"),
    ("toolkit-version-number", _set("toolkit_version", 1), "'toolkit_version' must be a version string"),
    ("toolkit-version-junk", _set("toolkit_version", "latest"), "'toolkit_version'"),
    ("model-number", _set("model", 3), "'model' must be a non-empty string"),
    ("model-empty", _set("model", ""), "'model'"),
    ("labels-string", _set("labels", "happy"), "'labels' must be a list"),
    ("labels-empty", _set("labels", []), "'labels'"),
    ("labels-numbers", _set("labels", [1, 2, 3, 4, 5, 6, 7, 8]), "'labels[0]'"),
    ("labels-repeated", _set("labels", ["a"] * 8), "'labels' must be a list without repeated items"),
    ("labels-vs-output", _set("labels", ["a", "b"]), "'output.shape' must be one score per label"),
    # No default family: a manifest from before manifests named one is refused, with the fix.
    ("missing-family", _drop("family"), "missing 'family'"),
    ("missing-family-says-re-export", _drop("family"), "re-export it with `edgeaffect export`"),
    ("family-unknown", _set("family", "avr"), "unknown model family 'avr'"),
    ("family-number", _set("family", 1), "'family'"),
    ("task-number", _set("task", 7), "'task'"),
    ("files-list", _set("files", []), "'files' must be a table"),
    ("files-empty", _set("files", {}), "'files'"),
    ("file-entry-number", _set("files/tflite-int8", 5), "'files.tflite-int8'"),
    ("sha-short", _set("files/tflite-int8/sha256", "abc"), "must be a SHA-256"),
    ("bytes-negative", _set("files/tflite-int8/bytes", -1), "'files.tflite-int8.bytes'"),
    ("checksums-list", _set("checksums", ["m.tflite"]), "'checksums'"),
    ("checksums-miss-a-file", _set("checksums", {"other.bin": "0" * 64}), "checksums"),
    ("inputs-empty", _set("inputs", {}), "'inputs'"),
    ("input-shape-string", _set("inputs/mfcc/shape", "40x1"), "'inputs.mfcc.shape'"),
    ("input-shape-zero", _set("inputs/mfcc/shape", [None, 0, 1]), "'inputs.mfcc.shape[1]'"),
    ("input-shape-vs-n_mfcc", _set("inputs/mfcc/shape", [None, 39, 1]), "'inputs.mfcc.shape' must be [batch, 40, 1]"),
    ("input-names", _set("inputs", {"mfcc": {"shape": [None, 40, 1]}}), "'inputs' must name face, mfcc"),
    ("output-shape-dict", _set("output/shape", {"n": 8}), "'output.shape'"),
    ("target-list", _set("target", ["rpi5"]), "'target'"),
    ("target-threads-zero", _set("target/options/threads", 0), "'target.options.threads'"),
    ("target-threads-dict", _set("target/options/threads", {}), "'target.options.threads'"),
    ("target-default-format", _set("target/default_format", "onnx-fp32"), "'target.default_format'"),
    ("engine-escapes", _set("target/engine", {"file": "../model.engine", "precision": "int8", "workspace_mib": 256,
                                               "max_batch": 8}), "'target.engine.file'"),
    ("preprocessing-list", _set(PI, []), "'preprocessing' must be a table"),
    ("features-number", _set(f"{FEAT}", 6), "'preprocessing.features'"),
    ("n_segments-string", _set(f"{FEAT}/n_segments", "6"), "'preprocessing.features.n_segments' must be an integer"),
    ("n_segments-zero", _set(f"{FEAT}/n_segments", 0), "'preprocessing.features.n_segments'"),
    ("frame-position", _set(f"{FEAT}/frame_position", "middle"), "'preprocessing.features.frame_position'"),
    ("features-unknown-key", _set(f"{FEAT}/n_segmnts", 6), "'preprocessing.features.n_segmnts'"),
    ("n_mfcc-dict", _set(f"{FEAT}/mfcc/n_mfcc", {}), "'preprocessing.features.mfcc.n_mfcc' must be an integer"),
    ("n_fft-list", _set(f"{FEAT}/mfcc/n_fft", [2048]), "'preprocessing.features.mfcc.n_fft'"),
    ("fmax-negative", _set(f"{FEAT}/mfcc/fmax", -1.0), "'preprocessing.features.mfcc.fmax'"),
    ("face-size-string", _set(f"{FEAT}/face/size", "64"), "'preprocessing.features.face.size'"),
    ("face-scale-factor-1", _set(f"{FEAT}/face/scale_factor", 1.0), "'preprocessing.features.face.scale_factor'"),
    ("track-ratio-1", _set(f"{FEAT}/face/track_ratio", 1.0), "'preprocessing.features.face.track_ratio'"),
    ("track-margin-negative", _set(f"{FEAT}/face/track_margin", -0.1), "'preprocessing.features.face.track_margin'"),
    ("cascade-path", _set(f"{FEAT}/face/cascade", "../../etc/passwd"), "'preprocessing.features.face.cascade'"),
    ("reuse-face-string", _set(f"{FEAT}/reuse_nearest_face", "yes"), "'preprocessing.features.reuse_nearest_face'"),
    ("mfcc_mean-39", _set(f"{PI}/mfcc_mean", [0.0] * 39), "'preprocessing.mfcc_mean' must be 40 numbers"),
    ("mfcc_mean-2d", _set(f"{PI}/mfcc_mean", [[0.0] * 40] * 6), "'preprocessing.mfcc_mean[0]' must be a finite number"),
    ("mfcc_mean-dict", _set(f"{PI}/mfcc_mean", {"a": 1}), "'preprocessing.mfcc_mean' must be a list"),
    ("mfcc_mean-strings", _set(f"{PI}/mfcc_mean", ["1"] * 40), "'preprocessing.mfcc_mean[0]'"),
    ("mfcc_std-zero", _set(f"{PI}/mfcc_std", [0.0] * 40), "'preprocessing.mfcc_std[0]' must be a finite number > 0"),
    ("mfcc_std-41", _set(f"{PI}/mfcc_std", [1.0] * 41), "'preprocessing.mfcc_std' must be 40 numbers"),
    ("mfcc_std-nan", _set(f"{PI}/mfcc_std", [float("nan")] * 40), "NaN"),
    ("mfcc_mean-infinity", _set(f"{PI}/mfcc_mean", [float("inf")] * 40), "Infinity"),
    ("file-dotdot", _file_outside("../{outside.name}/m.tflite"), "'files.tflite-int8.file' must be a relative file name"),
    ("file-absolute", _file_outside("{outside}/m.tflite"), "'files.tflite-int8.file' must be a relative file name"),
    ("file-backslash-dotdot", _file_outside("..\\{outside.name}\\m.tflite"), "'files.tflite-int8.file'"),
    ("file-symlink-escapes", _file_outside(symlink=True), "must be a file inside"),
    ("checksum-key-dotdot", _set("checksums", {"m.tflite": _sha(MODEL_BYTES), "../x": "0" * 64}), "'checksums"),
]
SPEECH_CASES = [
    ("speech-mean-106", _set(f"{PI}/mean", [0.0] * 106), "'preprocessing.mean' must be 107 numbers"),
    ("speech-std-negative", _set(f"{PI}/std", [-1.0] * 107), "'preprocessing.std[0]'"),
    ("speech-max_frames-string", _set(f"{PI}/max_frames", "48"), "'preprocessing.max_frames' must be an integer"),
    ("speech-missing-max_frames", _drop(f"{PI}/max_frames"), "missing 'preprocessing.max_frames'"),
    ("speech-inputs-vs-max_frames", _set("inputs/features/shape", [None, 40, 107]), "'inputs.features.shape'"),
    ("speech-composition-sum", _set(f"{FEAT}/composition", [["mfcc", 40]]), "'preprocessing.features.composition'"),
    ("speech-composition-item", _set(f"{FEAT}/composition", [["mfcc"]]), "'preprocessing.features.composition[0]'"),
    ("speech-composition-unknown", _set(f"{FEAT}/composition", [["mfc", 107]]), "'preprocessing.features.composition'"),
    ("speech-sample-rate-float", _set(f"{FEAT}/sample_rate", 16000.5), "'preprocessing.features.sample_rate'"),
    ("speech-pitch-range", _set(f"{FEAT}/pitch_fmin", 600.0), "'preprocessing.features.pitch_fmax'"),
    ("speech-rolloff-2", _set(f"{FEAT}/rolloff_percent", 2), "'preprocessing.features.rolloff_percent'"),
]
RAW_CASES = [  # manifest.json text that is not a manifest at all
    ("not-an-object", "[]", "must be a JSON object"),
    ("a-number", "7", "must be a JSON object"),
    ("not-json", "{", "not valid JSON"),
    ("deeply-nested", "[" * 100000 + "]" * 100000, "not valid JSON"),
]


def _case_bundle(tmp_path: Path, base: dict, mutate) -> Path:
    folder = tmp_path / "bundle"
    folder.mkdir()
    m = copy.deepcopy(base)
    mutate(m, folder)
    return write_bundle(folder, m)


def _assert_refused(folder: Path, fragment: str):
    for args in (("verify", folder), ("predict", "clip.mp4", "--model", folder)):
        code, line = run_cli(*args)
        assert code == 2, (args[0], code)
        assert line.startswith("error: ") and "\n" not in line, line
        assert fragment in line, (args[0], line)


def test_the_hand_made_bundles_are_valid(tmp_path):
    for name, m in (("aver", aver_manifest()), ("speech", speech_manifest())):
        folder = write_bundle(tmp_path / name, m)
        assert run_cli("verify", folder) == (0, "")
        # Past the manifest, predict stops at the missing recording, not at the manifest.
        code, line = run_cli("predict", tmp_path / "clip.mp4", "--model", folder)
        assert code == 2 and "file not found" in line, line


@pytest.mark.parametrize("mutate,fragment", [c[1:] for c in AVER_CASES], ids=[c[0] for c in AVER_CASES])
def test_malformed_aver_manifest_is_one_line_exit_2(tmp_path, mutate, fragment):
    _assert_refused(_case_bundle(tmp_path, aver_manifest(), mutate), fragment)


@pytest.mark.parametrize("mutate,fragment", [c[1:] for c in SPEECH_CASES], ids=[c[0] for c in SPEECH_CASES])
def test_malformed_speech_manifest_is_one_line_exit_2(tmp_path, mutate, fragment):
    _assert_refused(_case_bundle(tmp_path, speech_manifest(), mutate), fragment)


@pytest.mark.parametrize("text,fragment", [c[1:] for c in RAW_CASES], ids=[c[0] for c in RAW_CASES])
def test_manifest_that_is_not_an_object_is_one_line_exit_2(tmp_path, text, fragment):
    _assert_refused(write_bundle(tmp_path / "bundle", text), fragment)


def test_a_symlink_inside_the_folder_is_fine(tmp_path):
    m = aver_manifest()
    folder = write_bundle(tmp_path / "b", m)
    (folder / "models").mkdir()
    os.replace(folder / "m.tflite", folder / "models" / "m.tflite")
    (folder / "m.tflite").symlink_to(Path("models") / "m.tflite")
    assert run_cli("verify", folder) == (0, "")


@pytest.mark.parametrize("case", ["missing-files", "mfcc_mean-39", "file-dotdot", "file-symlink-escapes",
                                  "version-as-string"])
def test_the_real_command_line_prints_no_traceback(tmp_path, case):
    _, mutate, fragment = next(c for c in AVER_CASES if c[0] == case)
    folder = _case_bundle(tmp_path, aver_manifest(), mutate)
    assert_one_line_error(cli("verify", folder), fragment)
    assert_one_line_error(cli("predict", "clip.mp4", "--model", folder), fragment)


@pytest.mark.parametrize("info, fragment", [
    ({"model": "aver-ravdess", "seed": "0"}, "'seed' must be an integer"),
    ({"model": "aver-ravdess", "split": "paper"}, "'split' must be a table"),
    ({"model": "aver-ravdess", "split": {}}, "missing 'split.kind'"),
    ({"model": "aver-ravdess", "epochs": -1}, "'epochs' must be an integer >= 0"),
    ({"model": "aver-ravdess", "labels": []}, "'labels' must be a list of at least 1 items"),
    ({"model": ""}, "'model' must be a non-empty string"),
    ({"model": 3}, "names no model"),
])
def test_malformed_run_json_is_one_line(tmp_path, info, fragment):
    from edgeaffect.errors import InputError
    from edgeaffect.train.runs import read_run_info

    (tmp_path / "run.json").write_text(json.dumps(info))
    with pytest.raises(InputError) as exc:
        read_run_info(tmp_path)
    assert fragment in str(exc.value) and "\n" not in str(exc.value), str(exc.value)
