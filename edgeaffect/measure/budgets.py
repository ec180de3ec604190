"""Latency / size / memory budgets per device, model and format, and their check.

A budgets file is TOML::

    [defaults]
    tolerance = 0.25   # measured latency may exceed its budget by this fraction (noisy shared machines)
    repeats = 3        # a latency over budget is re-measured this many times; the median decides
    regression = 0.10  # latency gate: fails when the candidate is slower than its baseline by more
                       # than this (low end of a 99 % interval; `edgeaffect bench --baseline DIR`)

    [host.aver-ravdess.tflite-int8]
    p50_ms = 2.0
    p99_ms = 6.0
    size_kib = 100
    peak_memory_mib = 64
    optional = true    # may go unmeasured (its export not benchmarked) without failing the check
    threads = 4        # devices other than the host: the thread count the estimate is made for
                       # (default: what the export target for that device deploys with)

Absolute latency budgets on the host only catch a model many times too slow (a shared CI
machine needs room). The latency regression check is the gate (``edgeaffect.measure.gate``):
each file against a baseline timed interleaved in the same run; size and memory stay
absolute budgets.

For ``host`` every figure is measured. For any other catalog device the latency and memory
figures are checked against the roofline lower bound and the analytic memory, and are
reported as predictions: a bound above the budget proves it cannot be met; a bound below
it proves nothing about the real device. Size is a property of the file and is checked as
a fact everywhere.
"""

from __future__ import annotations

import difflib
import statistics
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from edgeaffect.errors import InputError
from edgeaffect.schema import Bool, Int, Num, check

METRICS = {"p50_ms": "p50 latency (ms)", "p99_ms": "p99 latency (ms)", "size_kib": "file size (KiB)",
           "peak_memory_mib": "peak memory added by the model (MiB)"}
FLAGS = {"optional": "true: the budget may go unmeasured without failing the check",
         "threads": "threads the device runs the model with (default: its export target's)"}
DEFAULT_KEYS = {"tolerance": 0.25, "repeats": 3, "regression": 0.10}
DEFAULT_SPECS = {"tolerance": Num(min=0, max=10), "repeats": Int(min=1, max=100), "regression": Num(above=0, max=10)}
LIMIT = Num(above=0)


@dataclass
class Budget:
    device: str
    model: str
    format: str
    limits: dict[str, float]
    optional: bool = False
    threads: int | None = None  # None: the device's export target's thread count

    @property
    def key(self) -> str:
        return f"{self.device}.{self.model}.{self.format}"


@dataclass
class Budgets:
    path: str
    tolerance: float
    repeats: int
    entries: list[Budget] = field(default_factory=list)
    regression: float = DEFAULT_KEYS["regression"]


def _unknown(path, what: str, name: str, choices, where: str = "") -> InputError:
    close = difflib.get_close_matches(name, list(choices), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; expected one of {', '.join(sorted(choices))}"
    return InputError(f"budgets file {path}: unknown {what} '{name}'{where}{hint}")


def load_budgets(path: str | Path) -> Budgets:
    from edgeaffect.export.formats import list_formats
    from edgeaffect.contract import list_models
    from edgeaffect.roofline.devices import load_catalog

    path = Path(path)
    if not path.is_file():
        raise InputError(f"budgets file not found: {path}")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"budgets file {path} is not valid TOML ({exc})") from None
    defaults = _table(path, data.pop("defaults", {}), "defaults")
    for k, v in defaults.items():
        if k not in DEFAULT_KEYS:
            raise _unknown(path, "key", k, DEFAULT_KEYS, " in [defaults]")
        check(DEFAULT_SPECS[k], v, f"budgets file {path}", f"defaults.{k}")
    out = Budgets(str(path), float(defaults.get("tolerance", DEFAULT_KEYS["tolerance"])),
                  int(defaults.get("repeats", DEFAULT_KEYS["repeats"])),
                  regression=float(defaults.get("regression", DEFAULT_KEYS["regression"])))
    devices, models, formats = load_catalog(), list_models(), list_formats()
    for dev, per_model in data.items():
        if dev not in devices:
            raise _unknown(path, "device", dev, devices)
        for model, per_format in _table(path, per_model, dev).items():
            if not _known_model(model, models):
                raise _unknown(path, "model", model, models, f" in [{dev}]")
            for fmt, limits in _table(path, per_format, f"{dev}.{model}").items():
                if fmt not in formats:
                    raise _unknown(path, "format", fmt, formats, f" in [{dev}.{model}]")
                out.entries.append(_budget(path, dev, model, fmt, _table(path, limits, f"{dev}.{model}.{fmt}")))
    return out


def _known_model(name: str, models) -> bool:
    """A registered model, or ``model/stage`` for a stage its family exports separately."""
    base, _, stage = name.partition("/")
    if base not in models:
        return False
    if not stage:
        return True
    from edgeaffect.contract import get_model

    return stage in get_model(base).family_plugin.adapter.stages


def _budget(path, dev: str, model: str, fmt: str, table: dict) -> Budget:
    where = f"{dev}.{model}.{fmt}"
    for k, v in table.items():
        if k not in METRICS and k not in FLAGS:
            raise _unknown(path, "key", k, {**METRICS, **FLAGS}, f" in [{where}]")
        if k in METRICS and not _positive(v):
            raise InputError(f"budgets file {path}: [{where}] {k} must be a positive number, got {v!r}")
    optional = check(Bool(), table.get("optional", False), f"budgets file {path}", f"{where}.optional")
    threads = None
    if "threads" in table:
        if dev == "host":
            raise InputError(f"budgets file {path}: [{where}] threads: the host is measured with the threads "
                             "`edgeaffect bench --threads` runs; threads is for the other devices' estimates")
        threads = check(Int(min=1, max=1024), table["threads"], f"budgets file {path}", f"{where}.threads")
    limits = {k: float(v) for k, v in table.items() if k in METRICS}
    if not limits:
        raise InputError(f"budgets file {path}: [{where}] sets no budget; give at least one of {', '.join(METRICS)}")
    return Budget(dev, model, fmt, limits, optional, threads)



def _positive(v) -> bool:
    try:
        LIMIT.check(v, "")
    except ValueError:
        return False
    return True


def _table(path, value, where: str) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"budgets file {path}: [{where}] must be a table, got {value!r}")
    return value


NOT_CHECKED = "not checked"


@dataclass
class Check:
    budget: str  # device.model.format
    metric: str
    limit: float
    value: float | None
    kind: str  # "measured" | "prediction (roofline lower bound)" | "prediction (analytic)" | NOT_CHECKED
    passed: bool
    detail: str = ""

    @property
    def checked(self) -> bool:
        return self.kind != NOT_CHECKED

    @property
    def state(self) -> str:
        """ok | EXCEEDED | UNCHECKED (no measurement: fails) | skipped (no measurement, optional)."""
        if self.checked:
            return "ok" if self.passed else "EXCEEDED"
        return "skipped" if self.passed else "UNCHECKED"

    @property
    def line(self) -> str:
        val = "-" if self.value is None else f"{self.value:.4g}"
        return f"{self.state:9s} {self.budget} {self.metric}: {val} vs budget {self.limit:g} [{self.kind}] {self.detail}".rstrip()


def _not_checked(b: Budget, metric: str, why: str) -> Check:
    """No measurement behind a budget: a CI gate must fail on it unless it is optional."""
    detail = f"({why}; optional)" if b.optional else f"({why}; mark it optional = true if that is expected)"
    return Check(b.key, metric, b.limits[metric], None, NOT_CHECKED, b.optional, detail)


def _why_unmeasured(b: Budget, rows: list[dict]) -> str:
    failed = [r for r in rows if r["model"] == b.model and r["format"] == b.format]
    return f"its benchmark did not run: {failed[0]['status']}" if failed else "no export of it was benchmarked"


def check_budgets(budgets: Budgets, rows: list[dict], remeasure) -> list[Check]:
    """``rows``: bench rows; ``remeasure(row) -> p50/p99 dict`` repeats a host measurement."""
    from edgeaffect.export.targets import deploy_threads
    from edgeaffect.roofline.devices import get_device, precision_of_format, roofline_bound
    from edgeaffect.roofline.readers import analyse

    checks: list[Check] = []
    for b in budgets.entries:
        row = next((r for r in rows if r["model"] == b.model and r["format"] == b.format and r["status"] == "ok"), None)
        if row is None:
            checks += [_not_checked(b, m, _why_unmeasured(b, rows)) for m in b.limits]
            continue
        if "size_kib" in b.limits:
            size = row["bytes"] / 1024
            checks.append(Check(b.key, "size_kib", b.limits["size_kib"], size, "measured (file size)",
                                size <= b.limits["size_kib"]))
        if b.device == "host":
            checks += _host_latency(b, row, budgets, remeasure)
            continue
        device = get_device(b.device)
        precision = precision_of_format(b.format)
        cost = analyse(row["path"])
        bound = roofline_bound(cost, device, precision)
        for m in ("p50_ms", "p99_ms"):
            if m in b.limits:
                checks.append(Check(b.key, m, b.limits[m], bound.latency_ms, "prediction (roofline lower bound)",
                                    bound.latency_ms <= b.limits[m],
                                    f"({bound.limited_by}-bound; {bound.note})"))
        if "p50_ms" in b.limits:
            checks += _calibrated(b, precision, b.threads or deploy_threads(b.device))
        if "peak_memory_mib" in b.limits:
            mem = (cost.weight_bytes[precision] + cost.peak_activation_bytes[precision]) / 2**20
            checks.append(Check(b.key, "peak_memory_mib", b.limits["peak_memory_mib"], mem,
                                "prediction (analytic: weights + peak activations)", mem <= b.limits["peak_memory_mib"],
                                "(runtime overhead not included)"))
    return checks


def _host_latency(b: Budget, row: dict, budgets: Budgets, remeasure) -> list[Check]:
    out = []
    tol = 1 + budgets.tolerance
    values = {m: row[m] for m in ("p50_ms", "p99_ms")}
    detail = "(1 measurement)"
    over = [m for m in values if m in b.limits and values[m] > b.limits[m] * tol]
    if over and budgets.repeats > 1:
        # Noise on a shared machine: measure again and let the median of all runs decide.
        runs = [values] + [remeasure(row) for _ in range(budgets.repeats - 1)]
        values = {m: statistics.median(r[m] for r in runs) for m in values}
        detail = f"(median of {len(runs)} measurements)"
    for m in ("p50_ms", "p99_ms"):
        if m in b.limits:
            out.append(Check(b.key, m, b.limits[m], values[m], "measured", values[m] <= b.limits[m] * tol,
                             f"{detail}, tolerance {budgets.tolerance:.0%}"))
    if "peak_memory_mib" in b.limits:
        mem = row.get("model_memory_mib")
        if mem is None:
            out.append(_not_checked(b, "peak_memory_mib", "not measurable on this OS"))
        else:
            out.append(Check(b.key, "peak_memory_mib", b.limits["peak_memory_mib"], mem, "measured",
                             mem <= b.limits["peak_memory_mib"] * tol, f"tolerance {budgets.tolerance:.0%}"))
    return out


GATE_KIND = "measured (interleaved with the baseline, same run)"


def regression_checks(rows: list[dict], where: str = "host") -> list[Check]:
    """One check per file compared with its baseline (``bench.gate_rows``): the ratio of
    candidate to baseline latency; it fails when the interval's low end is over the limit.
    ``where``: the machine both were timed on (a device's name for ``bench --on``)."""
    out = []
    for r in rows:
        b = r.get("baseline")
        if b:
            out.append(Check(f"{where}.{r['model']}.{r['format']}", "latency_vs_baseline", 1 + b["tolerance"], b["ratio"],
                             GATE_KIND, not b["regressed"], f"({b['line']})"))
    return out


CALIBRATED = "prediction (calibrated estimate)"


def _calibrated(b: Budget, precision: str, threads: int) -> list[Check]:
    """The budget against the calibrated estimate (``edgeaffect.roofline.calibrate``) for
    a device with published figures, on the runtime we deploy there: it gates only inside
    what was fitted (the model's FLOPs within the fitted models', a fitted thread count, that
    runtime's figures); otherwise it is shown, not gating. The estimate decides; the note says
    when its leave-one-out band straddles the budget."""
    from edgeaffect.errors import EdgeAffectError
    from edgeaffect.roofline.calibrate import estimate, groups_cached, model_split_cost

    try:
        est = estimate(groups_cached(), model_split_cost(b.model), b.device, precision, threads=threads)
    except EdgeAffectError as exc:  # no TensorFlow to rebuild the graphs: say so, do not fail
        return [Check(b.key, "p50_ms", b.limits["p50_ms"], None, NOT_CHECKED, True,
                      f"(calibrated estimate unavailable: {exc})")]
    if est is None:
        return []
    limit = b.limits["p50_ms"]
    if not est["gating"]:  # outside what was fitted (model size, threads, runtime): shown, not gating
        return [Check(b.key, "p50_ms", limit, est["estimate_ms"], NOT_CHECKED, True,
                      f"({CALIBRATED}, not gating: {est['note']})")]
    straddles = est["low_ms"] <= limit < est["high_ms"]
    return [Check(b.key, "p50_ms", limit, est["estimate_ms"], CALIBRATED, est["estimate_ms"] <= limit,
                  f"({est['note']}{'; the band straddles the budget' if straddles else ''})")]
