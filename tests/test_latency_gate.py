"""The CI latency gate (candidate against a baseline timed in the same run, interleaved):
a model with about 30 % more work fails it, an identical copy passes every time."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeaffect.measure.gate import Comparison, compare, compare_files, median_interval


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
    shutil.copy(d / "base.tflite", d / "same.tflite")
    return d


def _runs(models, candidate: str, n: int) -> list[Comparison]:
    return [compare_files(models / "base.tflite", models / candidate, "litert", budget_s=0.5) for _ in range(n)]


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


def test_statistic_by_hand():
    # Ratios 1.2 with small spread: the interval of the median excludes 1.1, and is seeded.
    ratios = np.random.default_rng(0).normal(1.2, 0.02, 101)
    low, high = median_interval(ratios, 0.99)
    assert 1.15 < low < 1.2 < high < 1.25
    assert (low, high) == median_interval(ratios, 0.99)
    # A regression is decided on the interval's low end, not the median alone.
    c = Comparison(1.15, 1.08, 1.22, 50, 5, 1.0, 1.15, 0.10, 0.99)
    assert not c.regressed and Comparison(1.2, 1.11, 1.3, 50, 5, 1.0, 1.2, 0.10, 0.99).regressed


def test_interleaving_cancels_a_slow_phase():
    """A machine that slows down by 3x halfway through slows both models alike: two equal
    callables still compare equal, where timing them one after the other would not."""
    import time

    state = {"n": 0}

    def work():
        state["n"] += 1
        end = time.perf_counter() + (0.0003 if state["n"] < 400 else 0.0009)
        while time.perf_counter() < end:
            pass

    c = compare(work, work, pairs=60, block=5, warmup=0)
    assert 0.9 < c.ratio < 1.1 and not c.regressed, c.line
