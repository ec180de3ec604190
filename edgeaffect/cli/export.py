"""Export: QAT, every format verified against Keras, device bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgeaffect.cli._panels import EXPORT
from edgeaffect.errors import InputError

app = typer.Typer()


@app.command("export", rich_help_panel=EXPORT)
def export_cmd(run: Annotated[Path, typer.Argument(help="A training run folder.")],
               out: Annotated[Path, typer.Option(help="Export / bundle folder to write.")],
               target: Annotated[Optional[str], typer.Option(help="rpi4 | rpi5 | jetson-nano | jetson-orin-nano | jetson-orin-nano-super | host: a device bundle.")] = None,
               formats: Annotated[Optional[str], typer.Option(help="Comma-separated export formats (without --target; default: tflite-int8, tflite-fp16, tflite-fp32, onnx-fp32, onnx-qdq and the int8 formats the model's family adds, e.g. tflite-dynamic-int8).")] = None,
               qat_epochs: int = 20,
               threads: Annotated[Optional[int], typer.Option(help="Target option: inference threads (Raspberry Pi, host).")] = None,
               precision: Annotated[Optional[str], typer.Option(help="Target option (Jetson): fp16 | int8 | int8-calibrated.")] = None,
               workspace_mib: Annotated[Optional[int], typer.Option(help="Target option (Jetson): TensorRT workspace.")] = None,
               max_batch: Annotated[Optional[int], typer.Option(help="Target option (Jetson): largest batch of the engine profile.")] = None,
               strategy: Annotated[str, typer.Option(help="QAT fine-tune on: default (one device) | mirrored (this machine's GPUs).")] = "default",
               full_int8: Annotated[bool, typer.Option(help="Every op of the int8 files that choose their float layers (TFLite int8, post-training ONNX Q/DQ) int8: none left float for speed or accuracy.")] = False,
               max_float_layers: Annotated[Optional[int], typer.Option(help="At most this many layers of each int8 file left float for accuracy (default 8 or half of the int8 ops, whichever is more; those left float for speed are each timed and kept only when the file is faster).")] = None):
    """QAT, export and verify every format against the Keras model; with --target, a
    self-contained device bundle. All or nothing."""
    from edgeaffect.export import get_format
    from edgeaffect.export.exporter import DEFAULT_FORMATS, export_run
    from edgeaffect.export.targets import get_target, resolve_options
    from edgeaffect.train.runs import load_run, run_dataset

    given = {"threads": threads, "precision": precision, "workspace_mib": workspace_mib, "max_batch": max_batch}
    if target is None:
        if any(v is not None for v in given.values()):
            raise InputError("--threads, --precision, --workspace-mib and --max-batch are target options: add --target")
        # no --formats: the defaults with the family's int8 fallbacks (export_run adds them)
        names = [f.strip() for f in (formats or ",".join(DEFAULT_FORMATS)).split(",") if f.strip()]
        t, opts = None, {}
    else:
        if formats is not None:
            raise InputError(f"--formats and --target together: target '{target}' decides its formats")
        t = get_target(target)
        opts = resolve_options(t, given)
        names = list(t.formats)
    for name in names:
        get_format(name)  # fail on a typo before any work
    if max_float_layers is not None and max_float_layers < 0:
        raise InputError(f"--max-float-layers {max_float_layers}: give 0 or more (0: no layer float)")
    if strategy == "multi-worker":
        raise InputError("--strategy multi-worker is for training; export (a short QAT fine-tune, then conversion and "
                         "verification on one machine) takes default or mirrored")
    from edgeaffect.train import distribute

    with distribute.using(strategy):  # the QAT fine-tune's replicas (edgeaffect.train.qat)
        r = load_run(run)
        manifest = export_run(r, run_dataset(r), out, names if formats or t else None, qat_epochs=qat_epochs,
                              target=t, options=opts,
                              quantization={"full_int8": full_int8, "max_float_layers": max_float_layers},
                              predict=_device_prediction(r.spec.name, t))
    names = manifest.get("formats") or list(manifest["files"])  # what was written (a family may add formats)
    what = f"bundle for {t.key}" if t else "export"
    typer.echo(f"{what}: {', '.join(names)} in {out} (all verified, checksummed)")


def _device_prediction(model: str, target):
    """(precision) -> the calibrated latency estimate for ``model`` on the target's device from
    published figures of that very precision, or None (``edgeaffect.roofline.calibrate``): what
    a bundle's default is chosen by away from the host."""
    if target is None or target.key == "host":
        return None
    from edgeaffect.export.targets import deploy_threads
    from edgeaffect.roofline.calibrate import estimate, groups_cached, model_split_cost

    def predict(precision: str):
        est = estimate(groups_cached(), model_split_cost(model), target.device, precision,
                       threads=deploy_threads(target.device))
        return est if est is not None and est["group"].precision == precision else None
    return predict


@app.command("sensitivity", rich_help_panel=EXPORT)
def sensitivity_cmd(run: Annotated[Path, typer.Argument(help="A training run folder.")],
                    format: Annotated[str, typer.Option("--format", help="An int8 format with per-layer errors: tflite-int8 | onnx-int8-trt | onnx-qdq.")] = "tflite-int8",
                    top: Annotated[int, typer.Option(help="Layers shown, and measured with the metric, per stage.")] = 10,
                    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write every ranked layer as JSON here.")] = None):
    """Where int8 hurts: each stage's layers ranked by the error int8 adds there, with the task
    metric when that layer alone stays float (what mixed precision keeps float first)."""
    import json
    import sys

    from edgeaffect.export import get_format
    from edgeaffect.export.sensitivity import format_table, sensitivity
    from edgeaffect.io import atomic_write_text
    from edgeaffect.train.runs import load_run, run_dataset

    if top < 1:
        raise InputError(f"--top {top}: give 1 or more")
    get_format(format)  # a typo fails before any work
    r = load_run(run)
    result = sensitivity(r, run_dataset(r), format, top=top, log=sys.stderr)
    typer.echo(format_table(result, top))
    if json_out:
        atomic_write_text(json_out, json.dumps(result, indent=2))
