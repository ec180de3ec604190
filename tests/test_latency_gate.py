"""The CI latency gate (candidate against a baseline timed in the same run, interleaved).

Its statistics are checked on a simulated machine (a clock only the simulated runners move,
each runner with its own placement offset): deterministic, so `make test` holds on any CPU
however loaded. On real timings `make test` checks only what no machine's noise can hide (a
model with twice the work fails); the A/A coverage and the 19 % slowdown on real timings are
`make test-slow` (a loaded CI machine once gave two runners of one file 8 % apart)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeaffect.measure.gate import Comparison, compare, compare_files, median_interval, segment_interval


def _conv_tflite(path, width: int, rows: int = 32) -> None:
    """One 3x3 Conv2D, rows x 32 x 32 -> width channels (float32): about 28 MFLOPs at width 48."""
    from edgeaffect.keras_backend import keras, tf

    k = keras()
    inp = k.Input((rows, 32, 32), batch_size=1, name="x")
    out = k.layers.Conv2D(width, 3, padding="same", kernel_initializer=k.initializers.RandomNormal(seed=0))(inp)
    path.write_bytes(tf().lite.TFLiteConverter.from_keras_model(k.Model(inp, out)).convert())


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("gate")
    _conv_tflite(d / "base.tflite", 48)
    # 42 / 32 rows: 31 % more arithmetic, in the dimension that scales the time linearly (more
    # output channels would not: XNNPACK pads 48 channels to its 64-wide tile, so 48 -> 64
    # channels costs nothing measurable, and 32 -> 42 costs 2x).
    _conv_tflite(d / "wide.tflite", 48, rows=42)
    _conv_tflite(d / "plus19.tflite", 48, rows=38)  # 19 % more: the size of slowdown the gate is for
    _conv_tflite(d / "double.tflite", 48, rows=64)  # 2x: fails on any machine, however noisy
    shutil.copy(d / "base.tflite", d / "same.tflite")
    return d


def _runs(models, candidate: str, n: int) -> list[Comparison]:
    return [compare_files(models / "base.tflite", models / candidate, "litert", budget_s=0.5) for _ in range(n)]


def test_a_model_with_twice_the_work_fails(models):
    double = _runs(models, "double.tflite", 2)
    assert all(c.regressed and c.ratio > 1.4 for c in double), [c.line for c in double]


@pytest.mark.slow
def test_widened_model_fails_and_identical_passes(models):
    wide = _runs(models, "wide.tflite", 3)
    assert all(c.regressed for c in wide), [c.line for c in wide]
    same = _runs(models, "same.tflite", 5)
    assert not any(c.regressed for c in same), [c.line for c in same]
    assert all(0.9 < c.ratio < 1.1 for c in same), [c.line for c in same]


@pytest.mark.slow
def test_gate_twenty_out_of_twenty(models):
    same = _runs(models, "same.tflite", 20)
    assert sum(not c.regressed for c in same) == 20, [c.line for c in same]
    wide = _runs(models, "wide.tflite", 20)
    assert sum(c.regressed for c in wide) == 20, [c.line for c in wide]
    plus19 = _runs(models, "plus19.tflite", 20)
    assert sum(c.regressed for c in plus19) == 20, [c.line for c in plus19]


@pytest.mark.slow
def test_a_file_against_its_copy_is_inside_the_interval(models):
    """Issue 27: two runners of the same file differ by a few % for as long as they live
    (13 % on this machine under load), so an interval over rounds of one pair excluded 1.0 in
    7 of 10 comparisons; with fresh runners every few rounds and whole segments resampled,
    1.0 is inside it (A/A check)."""
    same = _runs(models, "same.tflite", 6)
    assert sum(c.low <= 1.0 <= c.high for c in same) >= 5, [c.line for c in same]
    assert all(c.segments >= 2 for c in same), [c.line for c in same]


@pytest.mark.slow
def test_the_interval_covers_one_in_95_percent_of_a_a_comparisons(models):
    same = _runs(models, "same.tflite", 20)
    assert sum(c.low <= 1.0 <= c.high for c in same) >= 19, [c.line for c in same]


def test_resampling_segments_sees_what_rounds_share():
    """Rounds that share a pair of runners share its offset: resampling rounds calls a 3 %
    offset certain; resampling segments does not."""
    rng = np.random.default_rng(1)
    offsets = rng.normal(0, 0.03, 8)
    segments = [1 + o + rng.normal(0, 0.002, 5) for o in offsets]
    low, high = median_interval(np.concatenate(segments))
    s_low, s_high = segment_interval(segments)
    assert s_high - s_low > 3 * (high - low)
    assert s_low <= np.median(np.concatenate(segments)) <= s_high


def test_statistic_by_hand():
    # Ratios 1.2 with small spread: the interval of the median excludes 1.1, and is seeded.
    ratios = np.random.default_rng(0).normal(1.2, 0.02, 101)
    low, high = median_interval(ratios, 0.99)
    assert 1.15 < low < 1.2 < high < 1.25
    assert (low, high) == median_interval(ratios, 0.99)
    # A regression is decided on the interval's low end, not the median alone.
    c = Comparison(1.15, 1.08, 1.22, 50, 5, 1.0, 1.15, 0.10, 0.99)
    assert not c.regressed and Comparison(1.2, 1.11, 1.3, 50, 5, 1.0, 1.2, 0.10, 0.99).regressed


class SimulatedMachine:
    """A clock that only the simulated runners move. A runner of a file costs the file's time
    x its own placement offset (drawn when it is loaded, kept while it lives) x a little
    per-invoke noise, and 2 % of invokes are preempted (a few times longer). Offsets as
    measured here: most runners within ``offset_sd``, one in ``far`` about 10 % off."""

    def __init__(self, seed: int, offset_sd: float = 0.01, far: float = 0.2, noise_sd: float = 0.02):
        self.rng = np.random.default_rng(seed)
        self.now = 0.0
        self.offset_sd, self.far, self.noise_sd = offset_sd, far, noise_sd

    def clock(self) -> float:
        return self.now

    def runner(self, cost_s: float):
        offset = 1 + self.rng.normal(0, 0.1 if self.rng.random() < self.far else self.offset_sd)

        def run():
            t = cost_s * offset * (1 + abs(self.rng.normal(0, self.noise_sd)))
            if self.rng.random() < 0.02:
                t += self.rng.exponential(5 * cost_s)
            self.now += t
        return run

    def pair(self, base_s: float, cand_s: float):
        return lambda: (self.runner(base_s), self.runner(cand_s))

    def compare(self, base_s: float, cand_s: float, renew: bool = True) -> Comparison:
        fresh = self.pair(base_s, cand_s)
        return compare(*fresh(), budget_s=0.5, renew=fresh if renew else None, clock=self.clock)


def test_the_interval_covers_one_for_a_file_against_its_copy():
    """A/A on the simulated machine: the interval over fresh pairs of runners covers 1.0 in at
    least 97 % of 200 comparisons (99 % nominal); over rounds of one pair, as the gate once did,
    it covers 1.0 less than half the time."""
    machine = SimulatedMachine(seed=3)
    renewed = [machine.compare(4e-4, 4e-4) for _ in range(200)]
    covered = sum(c.low <= 1.0 <= c.high for c in renewed)
    assert covered >= 194, covered
    assert not any(c.regressed for c in renewed), [c.line for c in renewed if c.regressed]
    one_pair = [machine.compare(4e-4, 4e-4, renew=False) for _ in range(60)]
    assert sum(c.low <= 1.0 <= c.high for c in one_pair) < 30


def test_the_gate_catches_a_slowdown_on_the_simulated_machine():
    """25 % more time with one runner in 3 far off: every comparison fails the gate; 19 % with
    one in 5 (as measured here, `python -m edgeaffect.measure.gate`): at least 48 of 50 do (a
    19 % slowdown is near what a 10 % tolerance at 99 % can see through such a tail)."""
    noisy = SimulatedMachine(seed=5, far=0.33)
    slower = [noisy.compare(4e-4, 5e-4) for _ in range(50)]
    assert all(c.regressed for c in slower), [c.line for c in slower if not c.regressed]
    quiet = SimulatedMachine(seed=6)
    plus19 = [quiet.compare(4e-4, 4.76e-4) for _ in range(50)]
    assert sum(c.regressed for c in plus19) >= 48, [c.line for c in plus19 if not c.regressed]


def test_the_median_interval_by_binomial_arithmetic():
    """8 draws at 99 %: the extremes (P(all 8 on one side) = 2 / 256 < 1 %); 7 are too few
    (2 / 128 > 1 %: unbounded); 14 draws: the 2nd and 13th (P(Bin(14, 1/2) <= 1) = 15 / 16384,
    P(<= 2) = 106 / 16384 > 0.5 %)."""
    from edgeaffect.measure.gate import median_order_interval

    assert median_order_interval(np.arange(1.0, 9.0)) == (1.0, 8.0)
    assert median_order_interval(np.arange(1.0, 8.0)) == (0.0, float("inf"))
    assert median_order_interval(np.arange(1.0, 15.0)[::-1]) == (2.0, 13.0)
    assert median_order_interval(np.arange(1.0, 15.0), confidence=0.9) == (4.0, 11.0)  # P(<= 3) = 0.029


def test_interleaving_cancels_a_slow_phase():
    """A machine that slows down by 3x halfway through slows both models alike: two equal
    callables still compare equal, where timing them one after the other would not."""
    machine = SimulatedMachine(seed=0)
    state = {"n": 0}

    def work():
        state["n"] += 1
        machine.now += 0.0003 if state["n"] < 200 else 0.0009

    c = compare(work, work, pairs=60, block=5, warmup=0, clock=machine.clock)
    assert c.ratio == pytest.approx(1.0, abs=0.01) and not c.regressed, c.line
    assert c.baseline_ms == pytest.approx(0.9, abs=0.01)  # most rounds ran in the slow phase


def test_bench_gate_saves_a_baseline_then_compares(export_dir, tmp_path):
    """`make bench`'s gate: the first run saves the export as the baseline, the next one
    times each file interleaved with it (identical files: every ratio near 1, exit 0), and
    a baseline whose file is slower makes the candidate look faster, never failing."""
    import json

    from tests.test_cli import cli

    base = tmp_path / "baseline"
    r = cli("bench", export_dir, "--budget", "0.3", "--baseline", base, "--save-baseline")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no baseline of aver-ravdess tflite-int8" in r.stdout and "baseline saved" in r.stdout
    assert (base / "aver-ravdess" / "manifest.json").is_file()
    r = cli("bench", export_dir, "--budget", "0.3", "--baseline", base, "--json", tmp_path / "b.json")
    assert r.returncode == 0, r.stdout + r.stderr
    b = json.loads((tmp_path / "b.json").read_text())
    gate = [c for c in b["budgets"] if c["metric"] == "latency_vs_baseline"]
    assert {c["budget"] for c in gate} >= {"host.aver-ravdess.tflite-int8", "host.aver-ravdess.onnx-fp32"}
    assert all(c["passed"] and 0.75 < c["value"] < 1.33 for c in gate), gate
    assert "vs baseline (interleaved)" in r.stdout


def test_bench_gate_fails_on_a_slower_candidate(models, tmp_path):
    """The gate as `edgeaffect bench --baseline` runs it: a saved baseline folder holding the
    smaller model, a candidate file with twice the work: an EXCEEDED check (exit 1 there)."""
    import json

    from tests.test_cli import cli

    def export(folder, model_file):
        folder.mkdir(parents=True)
        shutil.copy(model_file, folder / "m.tflite")
        manifest = {"model": "aver-ravdess", "files": {"tflite-fp32": {"file": "m.tflite", "runtime": "litert",
                                                                        "bytes": model_file.stat().st_size}}}
        (folder / "manifest.json").write_text(json.dumps(manifest))

    export(tmp_path / "baseline" / "aver-ravdess", models / "base.tflite")
    from edgeaffect.measure.bench import gate_rows
    from edgeaffect.measure.budgets import regression_checks

    rows = [{"model": "aver-ravdess", "format": "tflite-fp32", "runtime": "litert", "status": "ok",
             "path": str(models / "double.tflite")}]
    gate_rows(rows, tmp_path / "baseline", budget_s=0.5)
    checks = regression_checks(rows)
    assert len(checks) == 1 and not checks[0].passed and checks[0].state == "EXCEEDED", checks[0].line
    assert rows[0]["baseline"]["ratio"] > 1.4


def test_save_baseline_needs_a_folder(export_dir):
    from tests.test_cli import cli

    r = cli("bench", export_dir, "--save-baseline")
    assert r.returncode == 2 and "--save-baseline needs --baseline" in r.stderr and "Traceback" not in r.stderr


def test_block_is_sized_from_the_warm_up():
    """Automatic block: as many invokes as fit in about 50 ms, 5 to 20 (a fast model gets
    the fastest of 20 per block, a slow one keeps 5 so a round stays short)."""
    import time

    from edgeaffect.measure.gate import auto_block

    assert auto_block(1e-4) == 20 and auto_block(2.9e-3) == 17 and auto_block(0.5) == 5

    def sleepy():
        time.sleep(0.012)

    c = compare(sleepy, sleepy, pairs=2, warmup=3)
    assert c.block == 5, c.block  # 50 ms / ~12 ms = 4, held at the lower end


def test_block_study_bad_format_is_one_line(export_dir, capsys):
    from edgeaffect.measure.gate import main

    assert main([str(export_dir), "no-such-format", "--runs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-format" in err
