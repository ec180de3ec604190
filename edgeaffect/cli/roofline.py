"""The roofline stage: bounds on latency per device, the host's measured roofs, and device
predictions fitted to published latencies."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgeaffect.cli._panels import ROOFLINE
from edgeaffect.errors import InputError

app = typer.Typer()


def bound_line(b: dict) -> str:
    """One bounds.json row as the table prints it; an incomplete FLOP count makes the bound
    ">=" and names what was not counted."""
    meas = ""
    if b.get("measured_p50_ms"):
        meas = f"  measured p50 {b['measured_p50_ms']:.3f} ms = {b['measured_p50_ms'] / b['latency_ms']:.2f}x the bound"
    least = "" if b.get("complete", True) else \
        f"  at least: {len(b['uncounted'])} op(s) of unknown arithmetic not counted ({', '.join(b['uncounted'][:3])})"
    bound = ("at least " if least else "") + format(b["latency_ms"], ".5f")
    return f"{b['model'][:34]:34s} {b['device']:24s} {b['intensity']:9.2f} {bound:>10s}  {b['limited_by']:8s}{meas}{least}"


@app.command("roofline", rich_help_panel=ROOFLINE)
def roofline_cmd(device: Annotated[Optional[list[str]], typer.Option("--device", help="Catalog device (repeat); default: all.")] = None,
                 model: Annotated[Optional[list[str]], typer.Option("--model", help="Registered model (repeat).")] = None,
                 artifact: Annotated[Optional[list[Path]], typer.Option("--artifact", help="A .tflite / .onnx file (repeat).")] = None,
                 bench: Annotated[Optional[Path], typer.Option(help="`edgeaffect bench --json` output: adds achieved points on the host.")] = None,
                 out: Annotated[Path, typer.Option(help="Folder for the plots and bounds.json.")] = Path("build/roofline"),
                 threads: Annotated[int, typer.Option(help="Threads for the host's measured roofs (as the bench was run).")] = 1,
                 measure_host: Annotated[bool, typer.Option("--measure-host", help="Re-measure the host (else cached).")] = False):
    """Roofline plots per device and a lower bound on latency per model per device."""
    from edgeaffect.workflows.roofline import roofline

    r = roofline(device, model or [], artifact or [], bench=bench, out=out, threads=threads, measure_host=measure_host)
    for note in r.notes:
        typer.echo(note, err=True)
    if r.host is not None:
        typer.echo(f"host roofs ({r.host.compute}; {threads} thread(s); measured with each runtime's own kernels):")
        for rt, peaks in r.host.runtime_peaks.items():
            typer.echo("  " + rt + ": " + ", ".join(f"{p} {f.value:.4g} GFLOP/s" for p, f in peaks.items()))
        for name, ref in r.host.references.items():
            typer.echo(f"  {name}: {ref.value:.4g} GFLOP/s ({ref.source})")
    typer.echo(f"{'model':34s} {'device':24s} {'AI FLOP/B':>9s} {'bound ms':>10s}  limited by   (roofline lower bounds: predictions)")
    for b in r.bounds:
        typer.echo(bound_line(b))
    typer.echo(f"plots and bounds.json in {out} ({len(r.written)} files)")


@app.command("host-roofs", rich_help_panel=ROOFLINE)
def host_roofs_cmd(threads: Annotated[Optional[list[int]], typer.Option("--threads", help="Thread counts (repeat); default: 1 and the core count.")] = None,
                   measure_host: Annotated[bool, typer.Option("--measure-host", help="Measure again (else cached).")] = False,
                   json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the table as JSON.")] = None):
    """This machine's compute roofs per runtime, precision and thread count, measured through
    the runtimes' own kernels, beside the ISA's theoretical peak (their ratio, one machine)."""
    from edgeaffect.io import atomic_write_text
    from edgeaffect.machine import machine
    from edgeaffect.roofline.devices import runtime_roofs
    from edgeaffect.roofline.isa import PIPES, clock_needed, isa_peak

    counts = threads or sorted({1, os.cpu_count() or 1})
    if any(t < 1 for t in counts):
        raise InputError("--threads must be >= 1")
    isa = isa_peak()
    typer.echo(f"machine: {machine()}; ISA {isa.isa}, clock {isa.ghz:.3g} GHz ({isa.clock_source})")
    typer.echo(f"{'runtime':12s} {'precision':9s} {'threads':>7s} {'measured GFLOP/s':>16s} {'ISA peak':>9s} "
               f"{'measured/ISA':>12s}  probe (fastest of its FullyConnected / Conv2D)")
    rows = []
    for t in counts:
        roofs = runtime_roofs(t, refresh=measure_host)
        for rt, per in roofs["runtimes"].items():
            for p, r in per.items():
                peak = isa.gflops(p, t)
                rows.append({"runtime": rt, "package": r["package"], "precision": p, "threads": t,
                             "measured_gflops": r["gflops"], "probes": r["all"], "isa_peak_gflops": peak,
                             "isa_source": isa.source(p, t), "probe": r["probe"]})
                ratio = f"{r['gflops'] / peak:12.2f}" if peak else f"{'-':>12s}"
                typer.echo(f"{rt:12s} {p:9s} {t:7d} {r['gflops']:16.4g} {peak:9.4g} {ratio}  {r['probe']}")
    typer.echo("measured: the fastest of 90 invokes of each probe (the roof a model's bound uses); ISA peak: "
               f"cores x clock x operations per cycle of the ISA, {PIPES} vector pipes assumed (an upper limit)")
    need = clock_needed(isa, [(r["runtime"], r["precision"], r["threads"], r["measured_gflops"]) for r in rows])
    if need is not None:
        typer.echo(f"measured above the ISA peak: the clock it was computed with ({isa.ghz:.3g} GHz, "
                   f"{isa.clock_source}) is below what the cores run at; the {need[1]} roof needs at least "
                   f"{need[0]:.3g} GHz (a boost clock, or a VM that shows its base clock); the plots draw the ISA "
                   "peak at that clock.")
    if json_out:
        atomic_write_text(json_out, json.dumps({"machine": machine(), "isa": isa.isa, "ghz": isa.ghz,
                                                "clock_source": isa.clock_source, "rows": rows}, indent=2))


@app.command("calibrate", rich_help_panel=ROOFLINE)
def calibrate_cmd(model: Annotated[Optional[list[str]], typer.Option("--model", help="Registered model to estimate (repeat).")] = None,
                  threads: Annotated[Optional[int], typer.Option(help="Threads the estimates are for (default: each "
                                                                       "device's export target's, 4 on the Pis, as the budgets use).")] = None,
                  json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the fit and errors as JSON.")] = None):
    """Device predictions fitted to published latencies of public models (rebuilt here) and
    to your own (`edgeaffect bench EXPORTS --on NAME` keeps them): per device, runtime and
    precision the factors and the leave-one-out error, then estimates for our models
    (predictions, with their error band)."""
    from edgeaffect.io import atomic_write_text
    from edgeaffect.export.targets import deploy_threads
    from edgeaffect.roofline.calibrate import estimate, groups_cached, model_split_cost, own_estimate

    if threads is not None and threads < 1:
        raise InputError(f"--threads must be >= 1, given {threads}")
    groups = groups_cached()
    typer.echo("fit: latency = overhead + 3x3-conv arithmetic at roof / eff3x3 + other arithmetic at roof / eff_other, "
               "roof scaled to threads ** scaling of the cores; fewer figures fit fewer factors (form); "
               "leave-one-out: each figure predicted from the others")
    typer.echo(f"{'device':22s} {'runtime':11s} {'precision':9s} {'n':>3s} {'own':>3s} {'threads':>7s} {'form':25s} "
               f"{'overhead ms':>11s} {'eff 3x3':>8s} {'eff other':>9s} {'scaling':>7s} {'LOO median':>10s} {'LOO worst':>9s}")
    for g in groups:
        typer.echo(f"{g.device:22s} {g.runtime:11s} {g.precision:9s} {g.n:3d} {g.own:3d} {g.threads_label:>7s} "
                   f"{g.form_label:25s} {g.overhead_ms:11.3g} {g.efficiency('conv3x3'):8.3g} {g.efficiency('other'):9.3g} "
                   f"{g.scaling:7.2f} {g.median_error:10.0%} {g.worst_error:9.0%}")
    _echo_own_figures(groups)
    estimates = []
    for m in model or []:
        cost = model_split_cost(m)
        for g in groups:
            t = threads or deploy_threads(g.device)
            e = own_estimate(groups, cost, g.device, g.precision, t, runtime=g.runtime)
            if e is None or e["group"] is not g:
                continue
            final = estimate(groups, cost, g.device, g.precision, t, runtime=g.runtime)
            capped = final.get("capped_by") is not None
            estimates.append({"model": m, "device": g.device, "runtime": g.runtime, "precision": g.precision,
                              **{k: v for k, v in e.items() if k != "group"},
                              "capped": {k: final[k] for k in ("estimate_ms", "low_ms", "high_ms", "note", "capped_by")}
                              if capped else None})
            typer.echo(f"{m} on {g.device} ({g.runtime} {g.precision}): estimate {e['estimate_ms']:.3g} ms "
                       f"(a prediction{'' if e['gating'] and not capped else ', not gating'}; {e['note']})"
                       + (f"; capped at {final['capped_by']}'s {final['estimate_ms']:.3g} ms ({g.device}'s roof is "
                          f"not below its: not predicted slower)" if capped else ""))
    if json_out:
        atomic_write_text(json_out, json.dumps({"groups": [g.to_dict() for g in groups], "estimates": estimates},
                                               indent=2))


def _echo_own_figures(groups) -> None:
    """The user's own figures (the measurement store), each with its leave-one-out prediction."""
    own = [(g, r) for g in groups for r in g.rows if r.get("own")]
    if not own:
        typer.echo("own: none of the figures are your own (`edgeaffect bench EXPORTS --on NAME` keeps them)")
        return
    typer.echo(f"own: {len(own)} of the figures are your own (the measurement store):")
    for g, r in own:
        loo = "-" if r["loo_predicted_ms"] is None else f"{r['loo_predicted_ms']:.3g}"
        typer.echo(f"  your own  {g.device:22s} {g.runtime:11s} {g.precision:9s} {r['model']:18s} "
                   f"{r['threads'] or '?'!s:>3s} thread(s) measured {r['measured_ms']:.3g} ms, leave-one-out "
                   f"{loo} ms ({r['source']})")
