"""Calibrated device predictions: published figures with sources, the non-negative fit,
leave-one-out errors, and estimates labelled as predictions (never gating when extrapolated)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeaffect.errors import InputError
from edgeaffect.roofline.calibrate import Measurement, calibrate, estimate, fit, load_published


def test_every_published_figure_has_a_source_and_a_rebuildable_graph():
    ms = load_published()
    assert len(ms) >= 20 and {m.device for m in ms} == {"rpi4", "rpi5"}
    assert all(m.source and m.latency_ms > 0 and m.threads >= 1 for m in ms)


def test_published_entry_without_source_is_rejected():
    with pytest.raises(InputError, match="lacks source"):
        load_published('[[measurement]]\ndevice = "rpi4"\nruntime = "ncnn"\nprecision = "float32"\nthreads = 1\n'
                       'model = "vgg16"\nlatency_ms = 1.0\n')
    with pytest.raises(InputError, match="no local rebuild"):
        load_published('[[measurement]]\ndevice = "rpi4"\nruntime = "ncnn"\nprecision = "float32"\nthreads = 1\n'
                       'model = "yolo11n"\nlatency_ms = 1.0\nsource = "x"\n')


def test_fit_recovers_known_factors_and_stays_non_negative():
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(8), rng.uniform(1, 50, 8), rng.uniform(1, 50, 8)])
    y = x @ np.array([2.0, 0.5, 1.25])
    assert fit(x, y) == pytest.approx([2.0, 0.5, 1.25], rel=1e-6)
    # data that wants a negative overhead gets none
    c = fit(x, x @ np.array([-3.0, 0.5, 1.25]) + 0)
    assert np.all(c >= 0)


def _synthetic(device="rpi4", noise=0.0):
    """Figures made by a known law on made-up costs: the calibration must find it again."""
    costs = {name: {"flops": f, "bytes": {"float32": f // 10, "int8": f // 40, "float16": f // 20},
                    "conv3x3_flops": int(f * share), "other_flops": int(f * (1 - share))}
             for name, f, share in [("mobilenet", 1.1e9, 0.05), ("mobilenet_v2", 0.6e9, 0.02),
                                    ("efficientnet_b0", 0.77e9, 0.0), ("resnet50", 7.7e9, 0.45),
                                    ("vgg16", 31e9, 0.99)]}
    peak = 48.0  # rpi4's catalog roof, 4 cores at 1.5 GHz
    rng = np.random.default_rng(1)
    ms = []
    for t in (1, 4):
        roof = peak * t ** 0.6 / 4
        for name, c in costs.items():
            ms_ = 3.0 + c["conv3x3_flops"] / roof / 1e6 / 2.0 + c["other_flops"] / roof / 1e6 / 0.8
            ms.append(Measurement(device, "ncnn", "float32", t, name, ms_ * (1 + noise * rng.standard_normal()),
                                  "synthetic", 1.5))
    return ms, costs


def test_calibration_finds_a_known_law_and_measures_its_error():
    ms, costs = _synthetic()
    (g,) = calibrate(ms, costs)
    assert g.scaling == pytest.approx(0.6) and g.overhead_ms == pytest.approx(3.0, rel=1e-3)
    assert g.efficiency("conv3x3") == pytest.approx(2.0, rel=1e-3) and g.efficiency("other") == pytest.approx(0.8, rel=1e-3)
    assert g.worst_error < 1e-3 and len(g.loo_errors) == 10
    noisy, _ = _synthetic(noise=0.1)
    (gn,) = calibrate(noisy, costs)
    assert 0.01 < gn.median_error < 0.5  # noise shows up in the leave-one-out error


def test_estimate_is_a_prediction_with_a_band_and_says_when_extrapolated():
    ms, costs = _synthetic(noise=0.05)
    groups = calibrate(ms, costs)
    inside = estimate(groups, costs["resnet50"], "rpi4", "float32", threads=1)
    assert inside["low_ms"] <= inside["estimate_ms"] <= inside["high_ms"] and not inside["extrapolated"]
    tiny = {**costs["mobilenet"], "flops": 14e6, "conv3x3_flops": 14e6, "other_flops": 0}
    out = estimate(groups, tiny, "rpi4", "float32")
    assert out["extrapolated"] and "EXTRAPOLATED" in out["note"]
    assert estimate(groups, tiny, "jetson-orin-nano", "float32") is None  # no published figures there


@pytest.mark.slow
def test_calibration_on_the_published_figures():
    """The real fit (public graphs rebuilt with tf_keras.applications): every group's median
    leave-one-out error under 30 %, and the worst under 100 % (`edgeaffect calibrate`)."""
    for g in calibrate():
        assert g.median_error < 0.3 and g.worst_error < 1.0, (g.device, g.precision, g.median_error, g.worst_error)
