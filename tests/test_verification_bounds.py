"""Verification judges what a user sees, per task kind: one near-tie on one CPU's kernels
cannot fail an export, a broken export always does. Synthetic outputs, no model needed."""

import numpy as np
import pytest

from edgeaffect.export.formats import ExportFormat
from edgeaffect.export.verify import judge
from edgeaffect.contract import ClassificationTask, RegressionTask

INT8 = ExportFormat("x-int8", ".x", "qat", "litert", "int8", None, "test")
FP32 = ExportFormat("x-fp32", ".x", "float", "litert", "float32", None, "test")


def probs(n=40, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(classes) * 0.3, n).astype(np.float32)
    return p, p.argmax(1)


def test_one_near_tie_flipped_by_int8_kernels_passes():
    task = ClassificationTask()
    ref, y = probs()
    out = ref + np.random.default_rng(1).normal(0, 0.004, ref.shape).astype(np.float32)  # int8 rounding
    out[0] = ref[0][::-1]  # one sample far off: the raw max |diff| is large, the user sees one flip
    v = judge(task, INT8, out, ref, ref, y, runtime="t")
    assert v.max_abs_diff > 0.3 and v.p95_abs_diff < 0.05
    assert v.passed, v.failures


def test_a_broken_int8_export_fails_on_decisions_and_the_metric():
    task = ClassificationTask()
    ref, y = probs()
    out = np.roll(ref, 1, axis=0)
    v = judge(task, INT8, out, ref, ref, y, runtime="t")
    assert not v.passed
    assert any("decisions agree" in f for f in v.failures) and any("accuracy" in f for f in v.failures)


def test_quantization_cost_is_bounded_against_the_float_model():
    task = ClassificationTask()
    float_out, y = probs(n=100)
    qat = float_out.copy()
    qat[:12] = np.roll(qat[:12], 1, axis=1)  # the QAT model lost 12 of 100 samples to float
    v = judge(task, INT8, qat, qat, float_out, y, runtime="t")  # the export matches its QAT source exactly
    assert v.agreement == 1.0 and any("worse than the float model" in f for f in v.failures)


def test_float_formats_are_held_element_wise():
    task = ClassificationTask()
    ref, y = probs()
    v = judge(task, FP32, ref + 2e-5, ref, ref, y, runtime="t")
    assert [f.split(" ")[0] for f in v.failures] == ["max"]
    assert judge(task, FP32, ref + 1e-7, ref, ref, y, runtime="t").passed


@pytest.mark.parametrize("offset, passes", [(0.5, True), (5.0, False)])
def test_regression_bounds_are_in_score_points(offset, passes):
    task = RegressionTask("BDI-II", 0, 63, bands=(("minimal", 0), ("mild", 14), ("moderate", 20), ("severe", 29)))
    y = np.linspace(2, 60, 50).astype(np.float32)[:, None]
    v = judge(task, INT8, y + offset, y, y, y[:, 0], runtime="t")
    assert v.passed is passes, v.failures
    assert v.metric_name == "mae" and v.metric == pytest.approx(offset)
