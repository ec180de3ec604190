"""Measurement: latency, accuracy and budgets of exports, per recording and per pipeline; the
latency gate; profiles; the arithmetic cost of a model or file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgeaffect.cli._panels import MEASURE
from edgeaffect.errors import InputError

app = typer.Typer()


@app.command("bench", rich_help_panel=MEASURE)
def bench_exports_cmd(exports: Annotated[list[Path], typer.Argument(help="Export folders (manifest.json).")],
                      threads: Annotated[Optional[int], typer.Option(help="Threads (default 1 here; with --on, the device's export target's).")] = None,
                      budget: Annotated[float, typer.Option(help="Seconds of timed runs per row.")] = 2.0,
                      data: Annotated[Optional[Path], typer.Option(help="npz with one array per input and 'labels': measure accuracy.")] = None,
                      budgets: Annotated[Optional[Path], typer.Option(help="Budgets file (TOML): exit 1 when one is exceeded, or has no measurement and is not optional.")] = None,
                      json_out: Annotated[Optional[Path], typer.Option("--json", help="Write rows (and checks) as JSON.")] = None,
                      markdown: Annotated[Optional[Path], typer.Option(help="Write a Markdown table (CI step summary).")] = None,
                      junit: Annotated[Optional[Path], typer.Option(help="Write JUnit XML.")] = None,
                      baseline: Annotated[Optional[Path], typer.Option(help="Latency gate: a folder of saved exports (<model>/manifest.json); each file is timed interleaved with its baseline and fails when more than `regression` (budgets [defaults], 10 %) slower.")] = None,
                      save_baseline: Annotated[bool, typer.Option("--save-baseline", help="Save each export whose model has no baseline yet as its baseline (replace one by deleting its folder).")] = False,
                      on: Annotated[Optional[str], typer.Option("--on", help="Run it on this device (`edgeaffect device add`): the exports copied there, the figures brought back and kept; --threads defaults to the device's deploy threads.")] = None,
                      timeout: Annotated[Optional[float], typer.Option(help="--on: seconds the run there may take (default: the device's).")] = None,
                      device_kind: Annotated[Optional[str], typer.Option("--device-kind", help="This machine is a catalog device of this kind (a CI runner on a Raspberry Pi 5: rpi5): the budgets for that kind gate on what is measured here; --threads defaults to its deploy threads.")] = None):
    """Each model x format x runtime: status, size, accuracy, p50 / p99, throughput; budgets;
    the latency gate against a baseline."""
    import os
    from dataclasses import asdict

    from edgeaffect.machine import machine
    from edgeaffect.measure.bench import bench_exports, gate_rows, remeasure, to_junit, to_markdown, to_text
    from edgeaffect.measure.budgets import DEFAULT_KEYS, check_budgets, load_budgets, regression_checks
    from edgeaffect.io import atomic_write_text

    if save_baseline and baseline is None:
        raise InputError("--save-baseline needs --baseline DIR (where to save it)")
    spec = load_budgets(budgets) if budgets else None  # a bad budgets file fails before any timing
    if threads is not None and threads < 1:
        raise InputError(f"--threads {threads}: give 1 or more")
    if on is not None and device_kind is not None:
        raise InputError("--device-kind is for a run on this machine; with --on the device's registered kind counts")
    if on is not None:
        if data is not None:
            raise InputError("--data is not available with --on (the accuracy there is the export's verification)")
        from edgeaffect.export.targets import deploy_threads
        from edgeaffect.remote.ops import bench_on
        from edgeaffect.remote.registry import get_device
        from edgeaffect.remote.session import describe

        threads = threads or deploy_threads(get_device(on).kind)
        run = bench_on(on, exports, threads=threads, budget_s=budget, baseline=baseline, timeout_s=timeout)
        rows, again = run["rows"], run["remeasure"]
        measured_on = {**run["record"]["device"], "threads": threads}
        where = f"measured on {describe(run['device'], run['facts'])}, edgeaffect {run['facts'].get('edgeaffect')}"
    else:
        measured_on = None
        if device_kind is not None:
            from edgeaffect.export.targets import deploy_threads
            from edgeaffect.remote.ops import this_machine

            threads = threads or deploy_threads(device_kind)
            measured_on = this_machine(device_kind, threads)
        threads = threads or 1
        rows = bench_exports(exports, threads=threads, budget_s=budget, data=data)
        if baseline is not None:
            gate_rows(rows, baseline, threads=threads, budget_s=budget,
                      tolerance=spec.regression if spec else DEFAULT_KEYS["regression"])
        where = f"machine: {machine()}" + (f" (as {device_kind})" if device_kind else "")
        again = lambda r: remeasure(r, threads, budget)  # noqa: E731
    header = f"{where}; batch 1, {threads} thread(s), {budget:g} s of timed runs per row (measured)"
    if baseline is not None:
        header += (f"; vs baseline: ratio of latencies timed interleaved with {baseline} in this run "
                   f"(median of pairs, 99 % interval)")
    typer.echo(header)
    typer.echo(to_text(rows))
    reference = None if on is not None else _int8_reference(rows, threads, budget / 10)
    if reference is not None:
        typer.echo(reference["line"])
    for note in sorted({r["baseline_note"] for r in rows if r.get("baseline_note")}):
        typer.echo(f"latency gate: {note} (nothing compared)")
    checks = check_budgets(spec, rows, again, measured_on=measured_on) if spec else []
    checks += regression_checks(rows, measured_on["name"] if on else "host")
    for c in checks:
        typer.echo(c.line)
    if json_out:
        atomic_write_text(json_out, json.dumps({"machine": where if on else machine(), "measured_on": measured_on,
                                                "threads": threads, "rows": rows, "int8_reference": reference,
                                                "budgets": [asdict(c) for c in checks]}, indent=2))
    md = to_markdown(rows, checks, header) + (f"\n\n{reference['line']}.\n" if reference else "")
    if markdown:
        atomic_write_text(markdown, md)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as f:
            f.write(md)
    if junit:
        atomic_write_text(junit, to_junit(rows, checks))
    exceeded = [c for c in checks if c.checked and not c.passed]
    unchecked = [c for c in checks if not c.checked and not c.passed]
    if exceeded:
        typer.echo(f"budget exceeded: {'; '.join(f'{c.budget} {c.metric} {c.value:.4g} > {c.limit:g} ({c.kind})' for c in exceeded)}",
                   err=True)
    if unchecked:
        typer.echo(f"budget not checked (no measurement behind it): "
                   f"{'; '.join(f'{c.budget} {c.metric} {c.detail}' for c in unchecked)}", err=True)
    if exceeded or unchecked:
        raise typer.Exit(1)
    if save_baseline:
        from edgeaffect.measure.bench import export_folders
        from edgeaffect.measure.gate import has_baseline, save_baseline as save

        for d in export_folders(exports):
            if not has_baseline(baseline, d):
                typer.echo(f"latency gate: baseline saved to {save(d, baseline)} (compared from the next run on)")


def _int8_reference(rows: list[dict], threads: int, budget_s: float) -> dict | None:
    """What int8 gains on this CPU for a plain conv net, measured in this run, to read the
    LiteRT int8 rows' "vs fp32" against; None without such a row, a note without TensorFlow."""
    from edgeaffect.errors import MissingDependencyError
    from edgeaffect.machine import machine

    if not any(r.get("vs_float") and r["runtime"] == "litert" for r in rows):
        return None
    try:
        from edgeaffect.measure.int8_speed import cpu_reference, reference_line

        print("  this CPU's int8 reference: converting and timing", file=sys.stderr, flush=True)
        ref = cpu_reference(budget_s=budget_s, threads=threads)
    except MissingDependencyError as exc:  # the converter is on the training side
        return {"line": f"this CPU's int8 reference: not measured ({exc})"}
    return {**ref, "line": reference_line(ref, machine())}


@app.command("bench-pipeline", rich_help_panel=MEASURE)
def bench_pipeline_cmd(work: Annotated[Path, typer.Option(help="Pipeline folder (`edgeaffect pipeline --out`).")] = Path("build/quickstart"),
                       model: Annotated[Optional[str], typer.Option(help="Run the pipeline for this model first when WORK has no export.")] = None,
                       threads: int = 1, budget: Annotated[float, typer.Option(help="Seconds per measurement.")] = 3.0,
                       rounds: Annotated[int, typer.Option(help="Clip -> label: interleaved runs of each way.")] = 40,
                       clips_ab: Annotated[int, typer.Option("--clips", help="Clip -> label: recordings cycled through.")] = 8):
    """p50 / p90 of one inference per format, Keras direct, one recording -> inputs (decode
    included), and clip -> label against the paper-literal preprocessing (interleaved, a ratio)."""
    from edgeaffect.workflows.bench import bench_pipeline

    path = bench_pipeline(work, model=model, threads=threads, budget_s=budget, rounds=rounds, clips=clips_ab)
    typer.echo(f"written {path}")


@app.command("bench-recordings", rich_help_panel=MEASURE)
def bench_recordings_cmd(bundle: Annotated[Path, typer.Argument(help="An export or bundle folder.")],
                         data: Annotated[Path, typer.Option(help="A folder of recordings the model takes (wav, mp4).")],
                         threads: int = 1, recordings: Annotated[int, typer.Option("--recordings", "--utterances")] = 20,
                         budget: Annotated[float, typer.Option(help="Seconds per measurement.")] = 3.0,
                         json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the rows as JSON.")] = None):
    """p50 / p90 per recording: device-side features, inference per format, and both together."""
    from edgeaffect.device.predict import ExportedModel
    from edgeaffect.io import atomic_write_text
    from edgeaffect.machine import machine
    from edgeaffect.measure.bench import bench_recordings

    found = ExportedModel(bundle).family.recordings(data)
    files = found[:: max(1, len(found) // recordings)][:recordings]
    if not files:
        raise InputError(f"no recordings this model takes under {data}")
    typer.echo(f"machine: {machine()}; batch 1, {threads} thread(s), {budget} s per row after warm-up, "
               f"{len(files)} recordings (measured)")
    rows = bench_recordings(bundle, files, threads=threads, budget_s=budget, log=sys.stdout)
    if json_out:
        atomic_write_text(json_out, json.dumps({"machine": machine(), "threads": threads, "rows": rows}, indent=2))


@app.command("profile", rich_help_panel=MEASURE)
def profile_cmd(artifact: Annotated[Path, typer.Argument(help="A .tflite / .onnx / .engine file, an export folder, or a run folder (Keras).")],
                runtime: Annotated[Optional[str], typer.Option(help="litert | onnxruntime | tensorrt | keras (default: by file type).")] = None,
                format: Annotated[Optional[str], typer.Option("--format", help="Which file of an export folder.")] = None,
                threads: int = 1,
                budget: Annotated[float, typer.Option(help="Seconds of timed runs after warm-up.")] = 2.0,
                warmup: int = 10,
                json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the result as JSON here.")] = None,
                on: Annotated[Optional[str], typer.Option("--on", help="Profile it on this device (`edgeaffect device add`); the figures come back and are kept.")] = None,
                timeout: Annotated[Optional[float], typer.Option(help="--on: seconds the run there may take (default: the device's).")] = None):
    """Latency percentiles, init and first-inference time, memory, per-operator times."""
    from edgeaffect.io import atomic_write_text
    from edgeaffect.measure.profile import format_profile, profile

    if threads < 1 or budget <= 0 or warmup < 0:
        raise InputError("--threads must be >= 1, --budget > 0 and --warmup >= 0")
    if on is not None:
        from edgeaffect.remote.ops import profile_on
        from edgeaffect.remote.session import describe

        argv = ["--threads", str(threads), "--budget", f"{budget:g}", "--warmup", str(warmup)]
        argv += (["--runtime", runtime] if runtime else []) + (["--format", format] if format else [])
        got = profile_on(on, artifact, argv=argv, timeout_s=timeout)
        r = dict(got["result"], machine=f"measured on {describe(got['device'], got['facts'])}")
    else:
        r = profile(artifact, runtime=runtime, threads=threads, budget_s=budget, warmup=warmup, fmt=format)
    typer.echo(format_profile(r))
    if json_out:
        atomic_write_text(json_out, json.dumps(r, indent=2))


@app.command("cost", rich_help_panel=MEASURE)
def cost_cmd(target: Annotated[str, typer.Argument(help="A .tflite / .onnx file, or a registered model name.")],
             layers: Annotated[bool, typer.Option(help="Print every layer.")] = False,
             as_json: Annotated[bool, typer.Option("--json")] = False):
    """Parameters, MACs, FLOPs, bytes moved, arithmetic intensity and peak activation memory."""
    from edgeaffect.roofline.readers import analyse
    from edgeaffect.workflows.roofline import model_parts

    parts = model_parts(target)
    if as_json:
        costs = {label: analyse(m).to_dict(layers) for label, m in parts}
        typer.echo(json.dumps(costs[parts[0][0]] if len(parts) == 1 else costs, indent=2))
        return
    for label, m in parts:
        if len(parts) > 1:
            typer.echo(f"\n== {label}")
        _print_cost(analyse(m), layers)


def _print_cost(cost, layers: bool) -> None:
    typer.echo(f"{cost.name} (from {cost.source}); {cost.convention}")
    least = "" if cost.complete else "at least "  # an uncounted op leaves a lower bound, said so
    typer.echo(f"params {cost.params:,}   MACs {least}{cost.macs:,}   FLOPs {least}{cost.flops:,}")
    for p in ("float32", "float16", "int8"):
        typer.echo(f"{p:8s} bytes moved {cost.bytes[p]:>10,}  intensity {cost.intensity[p]:6.2f} FLOP/B  "
                   f"weights {cost.weight_bytes[p]:>9,} B  peak activations {cost.peak_activation_bytes[p]:>9,} B")
    if not cost.complete:
        typer.echo(f"incomplete: FLOPs at least {cost.flops:,}; not counted (unknown arithmetic): "
                   f"{', '.join(cost.uncounted)}")
    if layers:
        typer.echo(f"\n{'layer':34s} {'kind':7s} {'params':>8s} {'FLOPs':>11s} {'bytes fp32':>11s} {'FLOP/B':>7s}")
        for r in cost.layers:
            typer.echo(f"{r.name[:34]:34s} {r.kind:7s} {r.params:8,} {r.flops:11,} {r.bytes['float32']:11,} "
                       f"{r.intensity['float32']:7.2f}")


@app.command("bench-int8", rich_help_panel=MEASURE)
def bench_int8_cmd(models: Annotated[list[str], typer.Argument(help="Registered model names (any size: paper-size ones included).")],
                   budget: Annotated[float, typer.Option(help="Seconds of timed runs per file.")] = 0.5,
                   json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the rows as JSON.")] = None):
    """int8 against float32 on LiteRT per model and stage, weights untrained: float32, every op
    int8, and int8 as the export writes it (speed only, one thread, this machine), after what
    int8 gains on this CPU for a plain conv net (the reference the rows are read against)."""
    from edgeaffect.contract.registry import get_model
    from edgeaffect.io import atomic_write_text
    from edgeaffect.machine import machine
    from edgeaffect.measure.int8_speed import cpu_reference, format_rows, int8_speed, reference_line

    if budget <= 0:
        raise InputError(f"--budget {budget}: give seconds > 0")
    specs = [get_model(m) for m in models]  # a typo fails before any work
    print("  this CPU's int8 reference: converting and timing", file=sys.stderr, flush=True)
    reference = cpu_reference(budget_s=budget)
    rows = [r for s in specs for r in int8_speed(s, budget_s=budget, log=sys.stderr)]
    typer.echo(format_rows([reference, *rows], machine()))
    typer.echo(reference_line(reference, machine()))
    if json_out:
        atomic_write_text(json_out, json.dumps({"machine": machine(), "threads": 1, "reference": reference,
                                                "rows": rows}, indent=2))
