"""Calibrated device predictions: per device, runtime and precision, two factors fitted
to published latencies of public models (``roofline/published.toml``), rebuilt locally so
that the predictor sees the same graphs:

    latency = overhead_ms + conv3x3_ms / efficiency_conv3x3 + other_ms / efficiency_other

``conv3x3_ms`` and ``other_ms`` are the arithmetic of the model's dense 3x3 stride-1
convolutions and of everything else, at the device's roof scaled to the measurement's
threads (cores used / cores) and clock. The op kinds are split because runtimes run 3x3
convolutions with Winograd transforms (ncnn does), doing a fraction of the direct
arithmetic: their "efficiency" can exceed 1. Each efficiency is the fraction of the roof
that kind of op reaches on that runtime, ``overhead_ms`` a fixed cost per invoke; the
fit is least squares in relative error with every coefficient >= 0. Each group's error is
measured by leave-one-out: every figure predicted from a fit to the others.

An estimate is a prediction with a measured error, never a bound: the lower bound stays
the roofline's.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError

# The public architectures the published figures are for, rebuilt with tf_keras.applications
# (weights=None, 224x224x3, 1000 classes).
PUBLIC = {"mobilenet": "MobileNet", "mobilenet_v2": "MobileNetV2", "efficientnet_b0": "EfficientNetB0",
          "resnet50": "ResNet50", "vgg16": "VGG16"}
REQUIRED = ("device", "runtime", "precision", "threads", "model", "latency_ms", "source")


@dataclass(frozen=True)
class Measurement:
    device: str
    runtime: str
    precision: str
    threads: int
    model: str
    latency_ms: float
    source: str
    clock_ghz: float | None = None
    statistic: str = ""


def load_published(text: str | None = None) -> list[Measurement]:
    from edgeaffect.roofline.devices import catalog_text, load_catalog

    data = tomllib.loads(text if text is not None else catalog_text("published.toml"))
    devices = load_catalog()
    out = []
    for i, m in enumerate(data.get("measurement", [])):
        missing = [k for k in REQUIRED if k not in m]
        if missing:
            raise InputError(f"published measurements: entry {i + 1} lacks {', '.join(missing)}")
        if m["device"] not in devices:
            raise InputError(f"published measurements: entry {i + 1}: unknown device '{m['device']}'")
        if m["model"] not in PUBLIC:
            raise InputError(f"published measurements: entry {i + 1}: no local rebuild of '{m['model']}' "
                             f"(known: {', '.join(PUBLIC)})")
        out.append(Measurement(m["device"], m["runtime"], m["precision"], int(m["threads"]), m["model"],
                               float(m["latency_ms"]), m["source"], m.get("clock_ghz"), m.get("statistic", "")))
    return out


def public_costs(models, cache: Path | None = None) -> dict:
    """ModelCost-like dicts (flops, bytes) of the rebuilt public models; cached on disk
    (building VGG16 and ResNet50 takes seconds) by tf_keras version."""
    from edgeaffect.io import atomic_write_text
    from edgeaffect.keras_backend import keras
    from edgeaffect.roofline.devices import cache_path
    from edgeaffect.roofline.readers import analyse

    k = keras()
    path = cache or cache_path().with_name("public-model-costs.json")
    stored = json.loads(path.read_text()) if path.is_file() else {}
    key = f"tf_keras {k.__version__}"
    have = stored.get(key, {})
    for name in sorted(set(models) - set(have)):
        model = getattr(k.applications, PUBLIC[name])(weights=None, input_shape=(224, 224, 3))
        have[name] = split_cost(model, analyse(model))
        k.backend.clear_session()
    stored[key] = have
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(stored, indent=2))
    return have


def conv3x3_flops(model) -> int:
    """FLOPs (2 x MACs + bias adds) of a Keras model's dense 3x3 stride-1 Conv2D layers:
    the ones a runtime may run with Winograd transforms."""
    total = 0
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)  # QAT wrappers
        if type(inner).__name__ != "Conv2D":
            continue
        if tuple(inner.kernel_size) != (3, 3) or tuple(inner.strides) != (1, 1) or \
                tuple(inner.dilation_rate) != (1, 1) or getattr(inner, "groups", 1) != 1:
            continue
        out = int(np.prod(layer.output_shape[1:]))
        total += 2 * out * 9 * int(layer.input_shape[-1]) + (out if inner.use_bias else 0)
    return total


def split_cost(model, cost) -> dict:
    """What the predictor needs of a model: total FLOPs, bytes, and its 3x3-conv share."""
    c3 = conv3x3_flops(model)
    return {"flops": cost.flops, "bytes": cost.bytes, "params": cost.params, "conv3x3_flops": c3,
            "other_flops": max(cost.flops - c3, 0)}


def features(cost: dict, device, precision: str) -> np.ndarray:
    """[1, conv3x3 ms, other ms] at the (scaled) device's roof for ``precision``."""
    peak, _ = device.peak(precision)
    return np.array([1.0, cost["conv3x3_flops"] / peak.value / 1e6, cost["other_flops"] / peak.value / 1e6])


def scaled_device(device, threads: int, clock_ghz: float | None, scaling: float = 1.0):
    """The device with its compute roof scaled to ``threads`` of its cores (``threads **
    scaling`` cores' worth: 1 is linear, 0 no gain from threads) and to a clock."""
    from edgeaffect.roofline.devices import Figure

    scale = 1.0
    if device.cores:
        scale *= min(threads, device.cores) ** scaling / device.cores
    if clock_ghz and device.clock_ghz:
        scale *= clock_ghz / device.clock_ghz
    peaks = {p: Figure(f.value * scale, f.basis, f"{f.source}; x {scale:.3g} for {threads} thread(s)"
                       + (f" at {clock_ghz} GHz" if clock_ghz else "")) for p, f in device.peaks.items()}
    return replace(device, peaks=peaks)


SCALINGS = np.round(np.linspace(0.0, 1.0, 21), 2)  # thread-scaling exponents tried


def _residual(x, y, c) -> float:
    return float(np.sum((x @ c / y - 1) ** 2))


def fit_scaled(xs: dict, y: np.ndarray, rows=None) -> tuple[float, np.ndarray]:
    """(thread-scaling exponent, coefficients): the exponent whose fit has the least
    relative error. ``xs``: exponent -> feature matrix; ``rows`` selects figures."""
    sel = slice(None) if rows is None else rows
    fits = {a: fit(x[sel], y[sel]) for a, x in xs.items()}
    a = min(fits, key=lambda a: _residual(xs[a][sel], y[sel], fits[a]))
    return float(a), fits[a]


def fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Coefficients c >= 0 of y = x @ c, least squares in relative error (each figure weighs
    alike, MobileNet and VGG16): the best over every subset of columns whose unconstrained
    solution is non-negative (three columns: eight subsets). Fewer figures than columns
    keep only the columns they can determine."""
    from itertools import combinations

    a, b = x / y[:, None], np.ones_like(y)
    best, best_res = np.zeros(x.shape[1]), float("inf")
    for r in range(1, min(x.shape[1], len(y)) + 1):
        for cols in combinations(range(x.shape[1]), r):
            cols = list(cols)
            if not np.any(x[:, cols[-1]]):
                continue
            c, *_ = np.linalg.lstsq(a[:, cols], b, rcond=None)
            if np.any(c < 0):
                continue
            res = float(np.sum((a[:, cols] @ c - b) ** 2))
            if res < best_res:
                best, best_res = np.zeros(x.shape[1]), res
                best[cols] = c
    return best


@dataclass
class Group:
    device: str
    runtime: str
    precision: str
    coef: list[float]  # [overhead ms, 1 / efficiency of 3x3 convs, 1 / efficiency of the rest]
    scaling: float  # threads count as threads ** scaling cores
    n: int
    loo_errors: list[float]  # signed relative errors (predicted / measured - 1), one per figure
    rows: list[dict]
    flops_range: tuple[float, float] = (0.0, float("inf"))  # of the models fitted

    @property
    def median_error(self) -> float:
        return float(np.median(np.abs(self.loo_errors))) if self.loo_errors else float("nan")

    @property
    def worst_error(self) -> float:
        return float(np.max(np.abs(self.loo_errors))) if self.loo_errors else float("nan")

    @property
    def overhead_ms(self) -> float:
        return self.coef[0]

    def efficiency(self, kind: str) -> float:
        c = self.coef[1 if kind == "conv3x3" else 2]
        return 1 / c if c > 0 else float("inf")  # inf: that kind's time was not needed to fit

    def predict(self, x: np.ndarray) -> float:
        return float(x @ np.asarray(self.coef))

    def to_dict(self) -> dict:
        return {**self.__dict__, "overhead_ms": self.overhead_ms, "efficiency_conv3x3": self.efficiency("conv3x3"),
                "efficiency_other": self.efficiency("other"), "median_error": self.median_error,
                "worst_error": self.worst_error}


def calibrate(measurements: list[Measurement] | None = None, costs: dict | None = None) -> list[Group]:
    from edgeaffect.roofline.devices import get_device

    ms = measurements if measurements is not None else load_published()
    costs = costs if costs is not None else public_costs({m.model for m in ms})
    groups: dict[tuple, list] = {}
    for m in ms:
        groups.setdefault((m.device, m.runtime, m.precision), []).append(m)
    out = []
    for (dev, rt, prec), items in groups.items():
        device = get_device(dev, measure_host=False)
        xs = {a: np.stack([features(costs[m.model], scaled_device(device, m.threads, m.clock_ghz, a), prec)
                           for m in items]) for a in SCALINGS}
        y = np.array([m.latency_ms for m in items])
        errors, rows = [], []
        for i, m in enumerate(items):
            keep = np.arange(len(items)) != i
            predicted = None
            if keep.sum() >= 2:
                a, c = fit_scaled(xs, y, keep)
                predicted = float(xs[a][i] @ c)
                errors.append(predicted / y[i] - 1)
            rows.append({"model": m.model, "threads": m.threads, "measured_ms": m.latency_ms,
                         "arithmetic_at_roof_ms": float(xs[1.0][i, 1] + xs[1.0][i, 2]), "loo_predicted_ms": predicted,
                         "source": m.source})
        a, c = fit_scaled(xs, y)
        flops = [costs[m.model]["flops"] for m in items]
        out.append(Group(dev, rt, prec, [float(v) for v in c], a, len(items), errors, rows, (min(flops), max(flops))))
    return out


def estimate(groups: list[Group], cost: dict, device_key: str, precision: str, threads: int = 1) -> dict | None:
    """A calibrated estimate for a model on a catalog device (the group of that device and
    precision, else its float32 group), with the leave-one-out error band; None when the
    device has no published figures."""
    from edgeaffect.roofline.devices import get_device

    cands = [g for g in groups if g.device == device_key]
    g = next((g for g in cands if g.precision == precision), None) or \
        next((g for g in cands if g.precision == "float32"), None)
    if g is None:
        return None
    device = scaled_device(get_device(device_key, measure_host=False), threads, None, g.scaling)
    est = g.predict(features(cost, device, precision))
    worst = g.worst_error
    lo, hi = g.flops_range
    extrapolated = not lo <= cost["flops"] <= hi
    # measured = predicted / (1 + error): the band the leave-one-out errors span
    hi_err, lo_err = max(g.loo_errors), min(g.loo_errors)
    high = est / (1 + lo_err) if lo_err > -1 else float("inf")
    note = (f"calibrated on {g.n} published {g.runtime} {g.precision} figures (leave-one-out error median "
            f"{g.median_error:.0%}, worst {worst:.0%}; band {est / (1 + hi_err):.3g}-{high:.3g} ms), {threads} thread(s)")
    if extrapolated:
        note += (f"; EXTRAPOLATED: {cost['flops'] / 1e9:.3g} GFLOP is outside the fitted models' "
                 f"{lo / 1e9:.2g}-{hi / 1e9:.2g} GFLOP (the fitted overhead is not a per-invoke cost there)")
    return {"estimate_ms": est, "low_ms": est / (1 + hi_err), "high_ms": high, "group": g, "extrapolated": extrapolated,
            "note": note}


_GROUPS: list[Group] | None = None


def groups_cached() -> list[Group]:
    """``calibrate()`` once per process (the public models' costs are cached on disk)."""
    global _GROUPS
    if _GROUPS is None:
        _GROUPS = calibrate()
    return _GROUPS


@lru_cache(maxsize=None)
def model_split_cost(model_name: str) -> dict:
    """The predictor's view of a registered model (its Keras graph: the 3x3-conv share)."""
    from edgeaffect.models import get_model
    from edgeaffect.roofline.readers import analyse

    model = get_model(model_name).build_model()
    return split_cost(model, analyse(model))
