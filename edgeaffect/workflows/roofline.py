"""``edgeaffect roofline`` and ``cost``: what to cost (a file, a registered model, or each
stage of a model its family exports in stages), and the lower bound on latency of each
point on each catalog device, with the host's measured latencies placed beside its bound."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edgeaffect.errors import InputError


def model_parts(target: str) -> list[tuple[str, object]]:
    """(label, model or file) to cost: a file; a registered model; or, for a model its
    family exports in stages, each stage (one segment, one sequence...), as it runs."""
    from edgeaffect.contract import get_model

    found = _model_or_file(target)
    if isinstance(found, Path):
        return [(found.stem, found)]
    spec = get_model(target)
    stages = spec.family_plugin.stage_models(spec)
    return [(f"{target}/{name} (per {per})", m) for name, (m, per) in stages.items()] or [(target, found)]


def _model_or_file(target: str):
    """A path stays a path; a registered model name becomes its Keras model (random weights:
    the cost does not depend on them)."""
    from edgeaffect.contract import get_model, list_models

    if Path(target).suffix or Path(target).exists():
        return Path(target)
    if target not in list_models():
        get_model(target)  # raises with a close match
    return get_model(target).build_model()


@dataclass
class Roofline:
    bounds: list[dict]
    host: object | None  # the host Device when it was among the devices
    written: list[Path]
    notes: list[str] = field(default_factory=list)  # what the caller should tell the user


def measured_latencies(bench: Path | None, notes: list[str]) -> dict[str, float]:
    """File name -> p50 ms from ``edgeaffect bench --json``, when measured on this machine
    (a ratio compares figures of one machine only)."""
    from edgeaffect.machine import machine

    if bench is None:
        return {}
    if not bench.is_file():
        raise InputError(f"--bench file not found: {bench}")
    data = json.loads(bench.read_text())
    if data.get("machine") != machine():
        notes.append(f"--bench {bench} was measured on another machine ({data.get('machine')}): "
                     f"its latencies are not placed against this machine's roofs")
        return {}
    return {Path(r["path"]).name: r["p50_ms"] for r in data.get("rows", []) if r.get("p50_ms")}


def _points(models: list[str], artifacts: list[Path], measured: dict[str, float]) -> list[dict]:
    from edgeaffect.contract import list_models
    from edgeaffect.roofline.devices import HOST_RUNTIME, precision_of_format, runtime_of_artifact
    from edgeaffect.roofline.readers import analyse

    points = [{"label": a.stem, "cost": analyse(a), "precision": precision_of_format(a.stem),
               "runtime": runtime_of_artifact(a.name), "p50_ms": measured.get(a.name)} for a in artifacts]
    for m in models or ([] if artifacts else list_models()):
        for label, part in model_parts(m):
            cost = analyse(part)
            # A registered model is bounded on the runtime a device runs it with (LiteRT).
            points += [{"label": f"{label} {p}", "cost": cost, "precision": p, "runtime": HOST_RUNTIME}
                       for p in ("float32", "int8")]
    return points


def _count_facts(cost) -> dict:
    """Whether the FLOP count behind a bound is whole: with an op of unknown arithmetic the
    count, and so the bound, is "at least" (the op would only add time)."""
    return {"flops": cost.flops, "complete": cost.complete, "uncounted": list(cost.uncounted)}


def roofline(device_keys: list[str] | None, models: list[str], artifacts: list[Path], *, bench: Path | None,
             out: Path, threads: int = 1, measure_host: bool = False) -> Roofline:
    """Plots per device and ``out/bounds.json``: each point's bound on each device."""
    from edgeaffect.io import atomic_write_text
    from edgeaffect.machine import machine
    from edgeaffect.roofline.devices import get_device, load_catalog, roofline_bound
    from edgeaffect.roofline.plot import plot_roofline

    keys = device_keys or list(load_catalog())
    devices = [get_device(k, measure_host=False) for k in keys]  # validates every name first
    if "host" in keys:
        devices = [get_device(d.key, threads=threads, refresh=measure_host) if d.key == "host" else d
                   for d in devices]
    notes: list[str] = []
    points = _points(models, artifacts, measured_latencies(bench, notes))
    bounds, written = [], []
    host_machine = machine()
    for d in devices:
        pts = [{**p, "achieved_gflops": (p["cost"].flops / (p["p50_ms"] / 1e3) / 1e9
                                         if d.key == "host" and p.get("p50_ms") else None)} for p in points]
        written += plot_roofline(d, pts, out)
        for p in points:
            b = roofline_bound(p["cost"], d, p["precision"], p.get("runtime"))
            on_host = d.key == "host"
            bounds.append({"model": p["label"], **b.to_dict(), "measured_p50_ms": p.get("p50_ms") if on_host else None,
                           "machine": host_machine if on_host else None, **_count_facts(p["cost"])})
    atomic_write_text(out / "bounds.json", json.dumps(bounds, indent=2))
    return Roofline(bounds, next((d for d in devices if d.key == "host"), None), written, notes)
