"""Calibrated device predictions: per device, runtime and precision, factors fitted to
published latencies of public models (``roofline/published.toml``), rebuilt locally so that
the predictor sees the same graphs (or, where we have no rebuild, with the FLOP count their
authors publish):

    latency = overhead_ms + conv3x3_ms / efficiency_conv3x3 + other_ms / efficiency_other

``conv3x3_ms`` and ``other_ms`` are the arithmetic of the model's dense 3x3 stride-1
convolutions and of everything else, at the device's roof scaled to the measurement's
threads (cores used / cores) and clock. The op kinds are split because runtimes run 3x3
convolutions with Winograd transforms (ncnn does), doing a fraction of the direct
arithmetic: their "efficiency" can exceed 1. Each efficiency is the fraction of the roof
that kind of op reaches on that runtime, ``overhead_ms`` a fixed cost per invoke; the
fit is least squares in relative error with every coefficient >= 0. Each group's error is
measured by leave-one-out: every figure predicted from a fit to the others.

Few figures fit fewer factors (``form``): 6 or more the three above (and the thread-scaling
exponent where the thread counts differ); 3 to 5 an overhead and one efficiency for all
arithmetic; 1 or 2 one efficiency alone. A model whose cost is only published (no 3x3 split)
counts as one op kind.

The user's own figures join the published ones: every run on a registered device
(``edgeaffect bench EXPORTS --on NAME``) is kept in the measurement store
(``edgeaffect.roofline.measured``) with the file's cost, and ``calibrate()`` fits each group to
both; an estimate's note says how many figures are the user's own.

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
# Measurement (a figure, published or the user's own) is defined with the store, which makes them
from edgeaffect.roofline.measured import Measurement, own_figures, store_key

# The public architectures the published figures are for, rebuilt with tf_keras.applications
# (weights=None, 224x224x3, 1000 classes).
PUBLIC = {"mobilenet": "MobileNet", "mobilenet_v2": "MobileNetV2", "efficientnet_b0": "EfficientNetB0",
          "resnet50": "ResNet50", "vgg16": "VGG16", "mobilenet_v3_large": "MobileNetV3Large",
          "mobilenet_v3_small": "MobileNetV3Small"}
REQUIRED = ("device", "runtime", "precision", "model", "latency_ms", "source")
MODEL_REQUIRED = ("flops", "source")


def _published_data(text: str | None):
    from edgeaffect.roofline.devices import catalog_text

    return tomllib.loads(text if text is not None else catalog_text("published.toml"))


def published_costs(text: str | None = None) -> dict:
    """The ``[model.NAME]`` tables: costs as their authors publish them (no local rebuild),
    as the predictor's cost dicts (the whole count one op kind)."""
    out = {}
    for name, m in _published_data(text).get("model", {}).items():
        missing = [k for k in MODEL_REQUIRED if k not in m]
        if missing:
            raise InputError(f"published measurements: [model.{name}] lacks {', '.join(missing)}")
        flops = float(m["flops"])
        if flops <= 0:
            raise InputError(f"published measurements: [model.{name}] flops must be positive, got {m['flops']!r}")
        out[name] = {"flops": flops, "bytes": None, "params": m.get("params"), "conv3x3_flops": 0.0,
                     "other_flops": flops, "cost_source": m["source"]}
    return out


def load_published(text: str | None = None) -> list[Measurement]:
    from edgeaffect.roofline.devices import load_catalog

    data = _published_data(text)
    known = set(PUBLIC) | set(published_costs(text))
    devices = load_catalog()
    out = []
    for i, m in enumerate(data.get("measurement", [])):
        missing = [k for k in REQUIRED if k not in m]
        if missing:
            raise InputError(f"published measurements: entry {i + 1} lacks {', '.join(missing)}")
        if m["device"] not in devices:
            raise InputError(f"published measurements: entry {i + 1}: unknown device '{m['device']}'")
        if m["model"] not in known:
            raise InputError(f"published measurements: entry {i + 1}: no local rebuild or published cost of "
                             f"'{m['model']}' (known: {', '.join(sorted(known))})")
        threads = m.get("threads")
        out.append(Measurement(m["device"], m["runtime"], m["precision"], None if threads is None else int(threads),
                               m["model"], float(m["latency_ms"]), m["source"], m.get("clock_ghz"),
                               m.get("statistic", "")))
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
    for name in sorted(set(models) & set(PUBLIC) - set(have)):
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


def scaled_device(device, threads: int | None, clock_ghz: float | None, scaling: float = 1.0):
    """The device with its compute roof scaled to ``threads`` of its cores (``threads **
    scaling`` cores' worth: 1 is linear, 0 no gain from threads) and to a clock. ``threads``
    None (not stated) leaves the roof at all cores."""
    from edgeaffect.roofline.devices import Figure

    scale = 1.0
    if device.cores and threads:
        scale *= min(threads, device.cores) ** scaling / device.cores
    if clock_ghz and device.clock_ghz:
        scale *= clock_ghz / device.clock_ghz
    peaks = {p: Figure(f.value * scale, f.basis, f"{f.source}; x {scale:.3g} for {threads or 'default'} thread(s)"
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


FORMS = {3: "overhead + 2 efficiencies (3x3 conv, rest)", 2: "overhead + 1 efficiency", 1: "1 efficiency"}


def form_for(n: int, split_known: bool) -> int:
    """How many factors ``n`` figures fit (see the module's doc)."""
    if n >= 6:
        return 3 if split_known else 2
    return 2 if n >= 3 else 1


def reduce_x(x: np.ndarray, form: int) -> np.ndarray:
    """[1, conv3x3 ms, other ms] rows -> the columns ``form`` fits."""
    if form == 3:
        return x
    total = x[:, 1:2] + x[:, 2:3]
    return np.hstack([x[:, :1], total]) if form == 2 else total


def expand_coef(c: np.ndarray, form: int) -> np.ndarray:
    """Coefficients of ``form`` -> [overhead, 1 / eff 3x3, 1 / eff rest]."""
    if form == 3:
        return c
    return np.array([c[0], c[1], c[1]]) if form == 2 else np.array([0.0, c[0], c[0]])


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
    form: int = 3  # factors fitted (FORMS)
    threads: tuple = ()  # the distinct thread counts of its figures (None: not stated)
    own: int = 0  # how many of its figures are the user's own (the measurement store)

    @property
    def median_error(self) -> float:
        return float(np.median(np.abs(self.loo_errors))) if self.loo_errors else float("nan")

    @property
    def worst_error(self) -> float:
        return float(np.max(np.abs(self.loo_errors))) if self.loo_errors else float("nan")

    @property
    def overhead_ms(self) -> float:
        return self.coef[0]

    @property
    def form_label(self) -> str:
        return FORMS[self.form]

    @property
    def figures_label(self) -> str:
        """``16 published + 2 of your own``: where its figures come from."""
        published = self.n - self.own
        if not self.own:
            return f"{published} published"
        return f"{self.own} of your own" if not published else f"{published} published + {self.own} of your own"

    @property
    def threads_label(self) -> str:
        return ",".join("?" if t is None else str(t) for t in self.threads)

    def efficiency(self, kind: str) -> float:
        c = self.coef[1 if kind == "conv3x3" else 2]
        return 1 / c if c > 0 else float("inf")  # inf: that kind's time was not needed to fit

    def predict(self, x: np.ndarray) -> float:
        return float(x @ np.asarray(self.coef))

    def to_dict(self) -> dict:
        return {**self.__dict__, "overhead_ms": self.overhead_ms, "efficiency_conv3x3": self.efficiency("conv3x3"),
                "efficiency_other": self.efficiency("other"), "median_error": self.median_error,
                "worst_error": self.worst_error, "form_label": self.form_label}


def _fit_group(xs: dict, y: np.ndarray, form: int, rows=None) -> tuple[float, np.ndarray]:
    """(scaling exponent, [overhead, 1/eff3x3, 1/eff rest]) fitted with ``form``'s factors."""
    reduced = {a: reduce_x(x, form) for a, x in xs.items()}
    a, c = fit_scaled(reduced, y, rows)
    return a, expand_coef(c, form)


def calibrate(measurements: list[Measurement] | None = None, costs: dict | None = None) -> list[Group]:
    """Groups fitted to ``measurements`` (default: the published figures and the user's own in
    the measurement store) with ``costs`` (default: published, the store's, and the public
    models rebuilt)."""
    from edgeaffect.roofline.devices import get_device

    own, own_costs = own_figures() if measurements is None else ([], {})
    ms = measurements if measurements is not None else load_published() + own
    if costs is None:
        known = {**published_costs(), **own_costs} if measurements is None else {}
        costs = {**known, **public_costs({m.model for m in ms} - set(known))}
    groups: dict[tuple, list] = {}
    for m in ms:
        groups.setdefault((m.device, m.runtime, m.precision), []).append(m)
    out = []
    for (dev, rt, prec), items in groups.items():
        device = get_device(dev, measure_host=False)
        threads = tuple(sorted({m.threads for m in items}, key=lambda t: -1 if t is None else t))
        # the thread-scaling exponent is fitted only where the figures' thread counts differ
        scalings = SCALINGS if len(threads) > 1 and None not in threads and device.cores else (1.0,)
        xs = {a: np.stack([features(costs[m.model], scaled_device(device, m.threads, m.clock_ghz, a), prec)
                           for m in items]) for a in scalings}
        y = np.array([m.latency_ms for m in items])
        split = any(costs[m.model]["conv3x3_flops"] > 0 for m in items)
        form = form_for(len(items), split)
        loo_form = min(form, max(len(items) - 1, 1))  # the same factors, as far as n - 1 figures allow
        errors, rows = [], []
        x1 = xs[1.0]  # linear thread scaling: the arithmetic at the roof, for the rows
        for i, m in enumerate(items):
            keep = np.arange(len(items)) != i
            predicted = None
            if keep.sum() >= 1:
                a, c = _fit_group(xs, y, loo_form, keep)
                predicted = float(xs[a][i] @ c)
                errors.append(predicted / y[i] - 1)
            rows.append({"model": m.model, "threads": m.threads, "measured_ms": m.latency_ms,
                         "arithmetic_at_roof_ms": float(x1[i, 1] + x1[i, 2]), "loo_predicted_ms": predicted,
                         "source": m.source, "own": m.own})
        a, c = _fit_group(xs, y, form)
        flops = [costs[m.model]["flops"] for m in items]
        out.append(Group(dev, rt, prec, [float(v) for v in c], a, len(items), errors, rows,
                         (min(flops), max(flops)), form, threads, sum(m.own for m in items)))
    return out


def _pick_group(groups: list[Group], device, precision: str, runtime: str | None):
    """The group an estimate uses: ``runtime`` (default: the device's deployment runtime, the
    first of its catalog ``runtimes``), that precision, else that runtime's float32; else any
    runtime's (then not the runtime we deploy: the estimate does not gate)."""
    want = runtime or (device.runtimes[0] if device.runtimes else None)
    cands = [g for g in groups if g.device == device.key]
    for pool in ([g for g in cands if g.runtime == want], cands):
        g = next((g for g in pool if g.precision == precision), None) or \
            next((g for g in pool if g.precision == "float32"), None)
        if g is not None:
            return g
    return None


def estimate(groups: list[Group], cost: dict, device_key: str, precision: str, threads: int = 1,
             runtime: str | None = None) -> dict | None:
    """The device's own calibrated estimate (``own_estimate``), capped at the estimate of every
    device with a lower roof on the same runtime and precision: a device whose roof is at least
    another's is never predicted slower than it (a fit extrapolated far outside its models, or
    one from another precision, could say so). The cap is that device's own figure, not its
    fit carried to this device's roofs: kernels need not be as efficient on another core. An
    estimate that gates (inside what this device's figures cover) is not capped: measured
    figures of the device itself outrank an ordering of roofs."""
    from edgeaffect.roofline.devices import get_device

    base = get_device(device_key, measure_host=False)
    own = own_estimate(groups, cost, device_key, precision, threads, runtime)
    cap = _slower_device_cap(groups, cost, base, precision, threads, runtime)
    if cap is None or (own is not None and (own["gating"] or own["estimate_ms"] <= cap[0])):
        return own  # an estimate inside what this device's own figures cover stands as it is
    return _capped(cap, base, precision, own)


def _slower_device_cap(groups: list[Group], cost: dict, base, precision: str, threads: int,
                       runtime: str | None):
    """(estimate, group): the least estimate of the devices whose roof at these threads is not
    above this one's (same runtime, same precision, their own fits); None without one."""
    from edgeaffect.roofline.devices import get_device

    want = runtime or (base.runtimes[0] if base.runtimes else None)
    best = None
    for g in groups:
        if g.device == base.key or g.runtime != want or g.precision != precision:
            continue
        t = threads if None not in g.threads else None
        here = scaled_device(base, t, None, g.scaling)
        there = scaled_device(get_device(g.device, measure_host=False), t, None, g.scaling)
        if here.peak(precision)[0].value < there.peak(precision)[0].value:
            continue
        value = g.predict(features(cost, there, precision))
        if best is None or value < best[0]:
            best = (value, g)
    return best


def _capped(cap, base, precision: str, own: dict | None) -> dict:
    value, g = cap
    hi_err = max(g.loo_errors) if g.loo_errors else float("inf")
    lo_err = min(g.loo_errors) if g.loo_errors else -1.0
    low, high = value / (1 + hi_err), (value / (1 + lo_err) if lo_err > -1 else float("inf"))
    why = (f"{base.key}'s own fit says {own['estimate_ms']:.3g} ms ({own['note']})" if own is not None
           else f"{base.key} has no {g.runtime} figures")
    note = (f"CAPPED at {g.device}'s estimate ({g.figures_label} {g.runtime} {g.precision} figures, {g.form_label}, "
            f"band {low:.3g}-{high:.3g} ms): {base.key}'s {precision} roof is not below {g.device}'s, so it is not "
            f"predicted slower; {why}")
    return {"estimate_ms": value, "low_ms": low, "high_ms": high, "group": g, "extrapolated": True,
            "gating": False, "note": note, "capped_by": g.device}


def own_estimate(groups: list[Group], cost: dict, device_key: str, precision: str, threads: int = 1,
                 runtime: str | None = None) -> dict | None:
    """A calibrated estimate for a model on a catalog device, with the leave-one-out error
    band; None when the device has no figures (published or the user's own). ``gating`` is
    False (and the note says why) when the estimate lies outside what was fitted: the model's FLOPs outside the
    fitted models' range, a thread count the group has no figures for (its exponent unfitted),
    or another runtime than the one we deploy there (``runtime`` picks a group to show)."""
    from edgeaffect.roofline.devices import get_device

    base = get_device(device_key, measure_host=False)
    g = _pick_group(groups, base, precision, runtime)
    if g is None:
        return None
    device = scaled_device(base, threads if None not in g.threads else None, None, g.scaling)
    est = g.predict(features(cost, device, precision))
    worst = g.worst_error
    lo, hi = g.flops_range
    reasons = []
    if not lo <= cost["flops"] <= hi:
        reasons.append(f"{cost['flops'] / 1e9:.3g} GFLOP is outside the fitted models' {lo / 1e9:.2g}-{hi / 1e9:.2g} "
                       f"GFLOP (the fitted overhead is not a per-invoke cost there)")
    if base.cores and None in g.threads:
        reasons.append("the published figures do not state their thread count")
    elif base.cores and threads not in g.threads and len(g.threads) < 2:
        reasons.append(f"fitted at {g.threads_label} thread(s) only, not {threads} (roof scaled linearly)")
    deploy = base.runtimes[0] if base.runtimes else None
    if deploy and g.runtime != deploy:
        reasons.append(f"figures are {g.runtime}'s, not {deploy}'s (the runtime we deploy on {base.key})")
    if g.precision != precision:
        reasons.append(f"no {precision} figures: {g.precision} used")
    # measured = predicted / (1 + error): the band the leave-one-out errors span
    if g.loo_errors:
        hi_err, lo_err = max(g.loo_errors), min(g.loo_errors)
    else:
        hi_err, lo_err = float("inf"), -1.0
    low = est / (1 + hi_err)
    high = est / (1 + lo_err) if lo_err > -1 else float("inf")
    thr = "" if not base.cores else \
        ", default threads (not stated)" if None in g.threads else f", {threads} thread(s)"
    spread = (f"leave-one-out error median {g.median_error:.0%}, worst {worst:.0%}; band {low:.3g}-{high:.3g} ms"
              if g.loo_errors else "one figure: no leave-one-out error, no band")
    note = f"calibrated on {g.figures_label} {g.runtime} {g.precision} figures, {g.form_label} ({spread}){thr}"
    if reasons:
        note += "; EXTRAPOLATED: " + "; ".join(reasons)
    return {"estimate_ms": est, "low_ms": low, "high_ms": high, "group": g, "extrapolated": bool(reasons),
            "gating": not reasons, "note": note}


_GROUPS: tuple[tuple, list[Group]] | None = None  # (the store's state, its groups)


def groups_cached() -> list[Group]:
    """``calibrate()`` once per process and state of the measurement store: a run kept since
    (a new or changed file) refits (the public models' costs are cached on disk)."""
    global _GROUPS
    key = store_key()
    if _GROUPS is None or _GROUPS[0] != key:
        _GROUPS = (key, calibrate())
    return _GROUPS[1]


@lru_cache(maxsize=None)
def model_split_cost(model_name: str) -> dict:
    """The predictor's view of a registered model (its Keras graph: the 3x3-conv share)."""
    from edgeaffect.contract import get_model
    from edgeaffect.roofline.readers import analyse

    model = get_model(model_name).build_model()
    return split_cost(model, analyse(model))
