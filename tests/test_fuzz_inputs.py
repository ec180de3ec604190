"""Seeded fuzzing of the files a user hands over (a bundle's manifest, a staged bundle's top
and stage manifests, a budgets file, a wav2vec 2.0 checkpoint's config.json, an ONNX file
for trt-check): random values of random types put at random places, keys dropped, bytes
damaged. Invariant: `verify`, `predict`, the budgets loader, the checkpoint reader and
`trt-check` end in success or one line `error: ...` with exit 2 (no other exception), and
nothing in the bundle folder is written. The normal suite runs a few dozen cases of each
(seconds); `-m slow` runs a longer campaign. (Seeded rather than hypothesis: no new test
dependency, and every run sees the same cases.)"""

from __future__ import annotations

import copy
import json
import math
import random

import pytest

from edgeaffect.errors import InputError
from tests.test_corrupt_models import corrupt, tiny_models  # noqa: F401 (tiny_models: a fixture)
from tests.test_manifest_schema import aver_manifest, run_cli, speech_manifest, write_bundle
from tests.test_staged_bundles import STAGED, staged_manifests, write_staged

ODD_VALUES = [None, True, 0, -1, 1, 2**63, 1.5, -0.0, 1e308, "", "x", "../x", "/abs", "1", [], [1], {}, {"a": 1},
              [None], ["a", "a"], "0" * 64]


def _paths(node, prefix=()):
    """Every (path, container) in a JSON tree."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):  # the statistics lists are long; their first items stand for them
            yield from _paths(v, prefix + (i,))


def _mutate(m: dict, rng: random.Random) -> dict:
    m = copy.deepcopy(m)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(m) if p]
        path = rng.choice(paths)
        parent = m
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and rng.random() < 0.3:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
    return m


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _fuzz_manifests(tmp_path, n: int, seed: int):
    rng = random.Random(seed)
    codes = {0: 0, 2: 0}
    for i in range(n):
        base = aver_manifest() if i % 2 else speech_manifest()
        folder = write_bundle(tmp_path / f"b{i}", _mutate(base, rng))
        before = _snapshot(folder)
        for args in (("verify", folder), ("predict", tmp_path / "none.wav", "--model", folder)):
            code, line = run_cli(*args)  # any exception but EdgeAffectError fails the test here
            assert code in (0, 2), (args[0], code, line)
            assert "\n" not in line
            if args[0] == "verify":
                codes[code] += 1
        assert _snapshot(folder) == before, "a command wrote into the bundle"
    assert codes[2] > n // 2, codes  # the mutations do reach the checks


def test_fuzzed_manifests_end_in_exit_0_or_one_line(tmp_path):
    _fuzz_manifests(tmp_path, 40, seed=16)


@pytest.mark.slow
def test_fuzzed_manifests_longer_campaign(tmp_path):
    _fuzz_manifests(tmp_path, 1000, seed=1616)


def _tree(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fuzz_staged(tmp_path, n: int, seed: int):
    """The top manifest or one stage's mutated (its checksum in the top manifest then fixed,
    so that the mutation reaches the checks behind it)."""
    rng = random.Random(seed)
    codes = {0: 0, 2: 0}
    for i in range(n):
        top, per_stage = staged_manifests(rng.choice(sorted(STAGED)))
        name = rng.choice([None, *per_stage])
        if name is None:
            top = _mutate(top, rng)
        else:
            per_stage[name] = _mutate(per_stage[name], rng)
        folder = write_staged(tmp_path / f"s{i}", top, per_stage)
        before = _tree(folder)
        for args in (("verify", folder), ("predict", tmp_path / "none.wav", "--model", folder),
                     ("predict", tmp_path / "none.wav", "--model", folder / next(iter(per_stage)))):
            code, line = run_cli(*args)
            assert code in (0, 2) and "\n" not in line, (args, code, line)
            if args[0] == "verify":
                codes[code] += 1
            else:
                assert code == 2  # a missing recording at best; a stage folder never predicts
        assert _tree(folder) == before, "a command wrote into the bundle"
    assert codes[2] > n // 3, codes


def test_fuzzed_staged_bundles_end_in_exit_0_or_one_line(tmp_path):
    _fuzz_staged(tmp_path, 30, seed=30)


@pytest.mark.slow
def test_fuzzed_staged_bundles_longer_campaign(tmp_path):
    _fuzz_staged(tmp_path, 600, seed=3030)


def _fuzz_checkpoint_configs(tmp_path, n: int, seed: int):
    """config.json of a tiny checkpoint mutated; read as every entry point reads it."""
    from edgeaffect.families.wav2vec2.backbone import Wav2Vec2Config
    from edgeaffect.families.wav2vec2.checkpoint import read_checkpoint
    from tests.wav2vec2_helpers import numpy_checkpoint

    rng = random.Random(seed)
    folder = numpy_checkpoint(tmp_path / "ckpt", Wav2Vec2Config.tiny())
    base = json.loads((folder / "config.json").read_text())
    outcomes = {"read": 0, "refused": 0}
    for _ in range(n):
        (folder / "config.json").write_text(json.dumps(_mutate(base, rng)))
        try:
            read_checkpoint(folder)
            outcomes["read"] += 1
        except InputError as exc:
            assert "\n" not in str(exc), str(exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] > n // 2, outcomes


def test_fuzzed_checkpoint_configs_are_read_or_refused_in_one_line(tmp_path):
    _fuzz_checkpoint_configs(tmp_path, 150, seed=30)


@pytest.mark.slow
def test_fuzzed_checkpoint_configs_longer_campaign(tmp_path):
    _fuzz_checkpoint_configs(tmp_path, 3000, seed=3030)


def _fuzz_trt_check(tiny_models, tmp_path, n: int, seed: int):
    """Damaged ONNX files through trt-check's reader and walk: checked, or refused in one line."""
    from edgeaffect.export.trt_check import check_file

    pytest.importorskip("onnx")
    data, rng = tiny_models["onnx"].read_bytes(), random.Random(seed)
    outcomes = {"checked": 0, "refused": 0}
    for i in range(n):
        f = tmp_path / f"case{i}.onnx"
        f.write_bytes(corrupt(data, rng))
        try:
            check_file(f, "10.3")
            outcomes["checked"] += 1
        except InputError as exc:
            assert "\n" not in str(exc) and f.name in str(exc), str(exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] > n // 6, outcomes


def test_fuzzed_onnx_files_are_checked_or_refused_in_one_line(tiny_models, tmp_path):
    _fuzz_trt_check(tiny_models, tmp_path, 60, seed=30)


@pytest.mark.slow
def test_fuzzed_onnx_files_longer_campaign(tiny_models, tmp_path):
    _fuzz_trt_check(tiny_models, tmp_path, 2000, seed=3030)


BUDGET_KEYS = ["p50_ms", "p99_ms", "size_kib", "peak_memory_mib", "optional", "tolerance", "repeats", "p50ms"]
TOML_VALUES = ["1", "0", "-1", "2.5", "nan", "inf", "-inf", "true", "'x'", "[1]", "{ a = 1 }", "1979-05-27", "0x10"]
SECTIONS = ["defaults", "host.aver-ravdess.tflite-int8", "rpi5.aver-ravdess.tflite-int8", "host.aver-ravdess",
            "host", "rpi9.aver-ravdess.tflite-int8", "host.speechnet-emodb.onnx-fp32"]


def _random_budgets(rng: random.Random) -> str:
    lines = []
    for section in rng.sample(SECTIONS, rng.randint(1, 3)):
        lines.append(f"[{section}]")
        lines += [f"{k} = {rng.choice(TOML_VALUES)}" for k in rng.sample(BUDGET_KEYS, rng.randint(0, 3))]
    return "\n".join(lines) + "\n"


def _fuzz_budgets(tmp_path, n: int, seed: int):
    from edgeaffect.measure.budgets import load_budgets

    rng = random.Random(seed)
    outcomes = {"loaded": 0, "refused": 0}
    for i in range(n):
        f = tmp_path / f"b{i}.toml"
        f.write_text(_random_budgets(rng))
        try:
            b = load_budgets(f)
        except InputError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        for e in b.entries:  # what loads is usable: positive, finite limits and a real flag
            assert e.limits and all(math.isfinite(v) and v > 0 for v in e.limits.values())
            assert isinstance(e.optional, bool)
        assert b.tolerance >= 0 and b.repeats >= 1
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0, outcomes


def test_fuzzed_budgets_files_load_or_are_refused_in_one_line(tmp_path):
    _fuzz_budgets(tmp_path, 400, seed=16)


@pytest.mark.slow
def test_fuzzed_budgets_files_longer_campaign(tmp_path):
    _fuzz_budgets(tmp_path, 20000, seed=1616)
