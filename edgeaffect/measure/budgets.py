"""Latency / size / memory budgets per device, model and format, and their check.

A budgets file is TOML::

    [defaults]
    tolerance = 0.25   # measured latency may exceed its budget by this fraction (noisy shared machines)
    repeats = 3        # a latency over budget is re-measured this many times; the median decides
    regression = 0.10  # latency gate: fails when the candidate is slower than its baseline by more
                       # than this (low end of a 99 % interval; `edgeaffect bench --baseline DIR`)
    measurement_max_age_days = 30  # a stored run on your own device older than this does not
                                   # decide a device budget (0: never use stored runs)

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

Measured budgets: where the rows were measured on one of the user's own devices
(``edgeaffect bench EXPORTS --on NAME``), that device kind's budgets are decided by the
measured p50 / p99 (and memory, where the device reports it), re-measured there like the
host's; the ``host`` budgets are then not checked (the host ran nothing) except size.
Otherwise a device budget whose very file (by SHA-256) has a run in the measurement store
on a device of that kind, at the budget's threads, no older than
``measurement_max_age_days``, is decided by that stored run; else by the predictions.
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
DEFAULT_KEYS = {"tolerance": 0.25, "repeats": 3, "regression": 0.10, "measurement_max_age_days": 30}
DEFAULT_SPECS = {"tolerance": Num(min=0, max=10), "repeats": Int(min=1, max=100), "regression": Num(above=0, max=10),
                 "measurement_max_age_days": Num(min=0, max=3650)}
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
    measurement_max_age_days: float = DEFAULT_KEYS["measurement_max_age_days"]  # stored runs older do not decide


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
                  regression=float(defaults.get("regression", DEFAULT_KEYS["regression"])),
                  measurement_max_age_days=float(defaults.get("measurement_max_age_days",
                                                              DEFAULT_KEYS["measurement_max_age_days"])))
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
    kind: str  # "measured" | "measured on NAME (...)" | "prediction (roofline lower bound)" | ... | NOT_CHECKED
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


def check_budgets(budgets: Budgets, rows: list[dict], remeasure, measured_on: dict | None = None) -> list[Check]:
    """``rows``: bench rows; ``remeasure(row) -> p50/p99 dict`` repeats a measurement where the
    rows were taken. ``measured_on``: the device record (plus ``threads``) when the rows were
    measured on the user's device (``bench --on``), None when on this host."""
    checks: list[Check] = []
    hashes: dict[str, str | None] = {}
    for b in budgets.entries:
        row = next((r for r in rows if r["model"] == b.model and r["format"] == b.format and r["status"] == "ok"), None)
        if row is None and measured_on is not None and b.device != measured_on.get("kind"):
            # the device could not run it (a runtime it lacks), and it is not that device's budget
            why = f"(not run on {measured_on.get('name', 'the device')}: {_why_unmeasured(b, rows)}; not its budget)"
            checks += [Check(b.key, m, b.limits[m], None, NOT_CHECKED, True, why) for m in b.limits]
            continue
        if row is None:
            checks += [_not_checked(b, m, _why_unmeasured(b, rows)) for m in b.limits]
            continue
        if "size_kib" in b.limits:
            size = row["bytes"] / 1024
            checks.append(Check(b.key, "size_kib", b.limits["size_kib"], size, "measured (file size)",
                                size <= b.limits["size_kib"]))
        if b.device == "host" and measured_on is not None:
            checks += _not_this_host(b, measured_on)
        elif b.device == "host":
            checks += _host_latency(b, row, budgets, remeasure)
        elif measured_on is not None and _measured_there(b, measured_on):
            checks += _measured(b, row, budgets, remeasure, _measured_on_kind(measured_on),
                                _threads_text(measured_on.get("threads")))
        else:
            checks += _stored(b, row, budgets, hashes) or _predicted(b, row)
    return checks


def _measured_there(b: Budget, measured_on: dict) -> bool:
    """The budget is for the device kind the rows were measured on, at the threads it states
    (a budget without ``threads`` takes the threads the run used)."""
    threads = measured_on.get("threads")
    return b.device == measured_on.get("kind") and (b.threads is None or threads is None or b.threads == threads)


def _measured_on_kind(device: dict) -> str:
    from edgeaffect.roofline.measured import describe_device

    return f"measured on {describe_device(device)}"


def _threads_text(threads) -> str:
    return f", {threads} thread(s)" if threads else ""


def _not_this_host(b: Budget, measured_on: dict) -> list[Check]:
    """A host budget when the rows come from a device: nothing ran here to check it against."""
    why = f"(the rows were measured on {measured_on.get('name', 'a device')}, not this host)"
    return [Check(b.key, m, b.limits[m], None, NOT_CHECKED, True, why) for m in b.limits if m != "size_kib"]


def _stored(b: Budget, row: dict, budgets: Budgets, hashes: dict) -> list[Check]:
    """The budget decided by a fresh stored run of this very file on a device of the budget's
    kind (``measurement_max_age_days``); [] when there is none."""
    from edgeaffect.export.targets import deploy_threads
    from edgeaffect.roofline.measured import describe_device, fresh_measurement

    sha = _row_sha256(row, hashes)
    if sha is None or budgets.measurement_max_age_days <= 0:
        return []
    threads = b.threads or deploy_threads(b.device)
    found = fresh_measurement(b.device, sha, threads, budgets.measurement_max_age_days)
    if found is None:
        return []
    stored, record = found
    kind = f"measured on {record['device']['name']} {record['when'][:10]} (stored measurement)"
    where = f", {threads} thread(s) on {describe_device(record['device'])}"
    return _measured(b, {**row, **{k: stored.get(k) for k in ("p50_ms", "p99_ms", "model_memory_mib")}}, budgets,
                     None, kind, where)


def _row_sha256(row: dict, hashes: dict) -> str | None:
    """The row's file hash (a device row carries it; a host row's file is hashed once)."""
    if row.get("sha256"):
        return row["sha256"]
    path = row.get("path")
    if not path or not Path(path).is_file():
        return None
    if path not in hashes:
        from edgeaffect.io import sha256

        hashes[path] = sha256(path)
    return hashes[path]


def _predicted(b: Budget, row: dict) -> list[Check]:
    """A device nothing measured: the roofline lower bound, the calibrated estimate, the
    analytic memory (predictions)."""
    from edgeaffect.export.targets import deploy_threads
    from edgeaffect.roofline.devices import get_device, precision_of_format, roofline_bound
    from edgeaffect.roofline.readers import analyse

    device = get_device(b.device)
    precision = precision_of_format(b.format)
    cost = analyse(row["path"])
    bound = roofline_bound(cost, device, precision)
    checks = []
    for m in ("p50_ms", "p99_ms"):
        if m in b.limits:
            checks.append(Check(b.key, m, b.limits[m], bound.latency_ms, "prediction (roofline lower bound)",
                                bound.latency_ms <= b.limits[m], f"({bound.limited_by}-bound; {bound.note})"))
    if "p50_ms" in b.limits:
        checks += _calibrated(b, precision, b.threads or deploy_threads(b.device))
    if "peak_memory_mib" in b.limits:
        checks.append(_analytic_memory(b, cost, precision))
    return checks


def _analytic_memory(b: Budget, cost, precision: str) -> Check:
    mem = (cost.weight_bytes[precision] + cost.peak_activation_bytes[precision]) / 2**20
    return Check(b.key, "peak_memory_mib", b.limits["peak_memory_mib"], mem,
                 "prediction (analytic: weights + peak activations)", mem <= b.limits["peak_memory_mib"],
                 "(runtime overhead not included)")


def _host_latency(b: Budget, row: dict, budgets: Budgets, remeasure) -> list[Check]:
    return _measured(b, row, budgets, remeasure, "measured")


def _measured(b: Budget, row: dict, budgets: Budgets, remeasure, kind: str, where: str = "") -> list[Check]:
    """Latency and memory against measured figures; a latency over budget is measured again
    (``remeasure``; None: a stored run, one measurement) and the median decides. A device row
    without memory falls back to the analytic prediction; the host's is unmeasurable here."""
    out = []
    tol = 1 + budgets.tolerance
    values = {m: row.get(m) for m in ("p50_ms", "p99_ms")}
    detail = "(1 measurement"
    over = [m for m in values if m in b.limits and values[m] is not None and values[m] > b.limits[m] * tol]
    if over and budgets.repeats > 1 and remeasure is not None:
        # Noise on a shared machine: measure again and let the median of all runs decide.
        runs = [values] + [remeasure(row) for _ in range(budgets.repeats - 1)]
        values = {m: statistics.median(r[m] for r in runs) for m in values}
        detail = f"(median of {len(runs)} measurements"
    detail += f"{where})"
    for m in ("p50_ms", "p99_ms"):
        if m not in b.limits:
            continue
        if values[m] is None:
            out.append(_not_checked(b, m, "the measurement has no such figure"))
        else:
            out.append(Check(b.key, m, b.limits[m], values[m], kind, values[m] <= b.limits[m] * tol,
                             f"{detail}, tolerance {budgets.tolerance:.0%}"))
    if "peak_memory_mib" in b.limits:
        mem = row.get("model_memory_mib")
        if mem is not None:
            out.append(Check(b.key, "peak_memory_mib", b.limits["peak_memory_mib"], mem, kind,
                             mem <= b.limits["peak_memory_mib"] * tol, f"tolerance {budgets.tolerance:.0%}"))
        elif b.device == "host":
            out.append(_not_checked(b, "peak_memory_mib", "not measurable on this OS"))
        else:
            out.append(_analytic_memory_of(b, row))
    return out


def _analytic_memory_of(b: Budget, row: dict) -> Check:
    from edgeaffect.roofline.devices import precision_of_format
    from edgeaffect.roofline.readers import analyse

    return _analytic_memory(b, analyse(row["path"]), precision_of_format(b.format))


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
