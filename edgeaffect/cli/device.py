"""What runs on the device: bundle checks, prediction, the TensorRT engine and its ONNX check
(NumPy, OpenCV and one runtime: no TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgeaffect.cli._panels import DEVICE
from edgeaffect.errors import InputError

app = typer.Typer()


@app.command("verify", rich_help_panel=DEVICE)
def verify_cmd(bundle: Annotated[Path, typer.Argument(help="A bundle or export folder.")]):
    """Check a bundle on the device: manifest version and every file's SHA-256."""
    from edgeaffect.device.bundle import verify_bundle

    checked, n = verify_bundle(bundle)  # each stage's files too; a stage's folder verifies as that stage
    manifest = checked.manifest
    target = (manifest.get("target") or {}).get("key", "none")
    typer.echo(f"{bundle}: {manifest['model']} (edgeaffect {manifest['toolkit_version']}, target {target}): "
               f"{n} files, all checksums match")


@app.command("build-engine", rich_help_panel=DEVICE)
def build_engine_cmd(bundle: Annotated[Path, typer.Argument(help="A Jetson bundle.")],
                     precision: Annotated[Optional[str], typer.Option(help="fp16 | int8 | int8-calibrated (default: the bundle's).")] = None,
                     workspace_mib: Optional[int] = None, max_batch: Optional[int] = None):
    """Build the TensorRT engine on this Jetson from the bundle's ONNX (TensorRT from JetPack)."""
    from edgeaffect.device.bundle import open_bundle
    from edgeaffect.export.targets import PRECISIONS
    from edgeaffect.export.tensorrt import ONNX_FOR_PRECISION, build_engine

    manifest = open_bundle(bundle).manifest
    engine = (manifest.get("target") or {}).get("engine")
    if not engine:
        raise InputError(f"{bundle} is not a Jetson bundle: export it with --target jetson-orin-nano")
    p = precision or engine["precision"]
    if p not in PRECISIONS:
        raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, given '{p}'")
    onnx_file = manifest["files"][ONNX_FOR_PRECISION[p]]["file"]
    out = build_engine(bundle / onnx_file, bundle / f"model-{p}.engine", p, manifest["inputs"],
                       workspace_mib=workspace_mib or engine["workspace_mib"], max_batch=max_batch or engine["max_batch"],
                       calibration=bundle / "calibration.npz", calibration_cache=bundle / "calibration.cache")
    typer.echo(f"engine built on this device: {out}")


@app.command("trt-check", rich_help_panel=DEVICE)
def trt_check_cmd(model: Annotated[Path, typer.Argument(help="An ONNX model.")],
                  tensorrt: Annotated[str, typer.Option(help="TensorRT version whose ONNX parser rules apply: 8.2 | 8.5 | 10.3.")] = "10.3"):
    """Check an ONNX model against TensorRT's ONNX parser table (onnx-tensorrt's operators.md):
    ops, their restrictions, opset range, int8 Q/DQ, every subgraph. Exit 1 on any violation."""
    from edgeaffect.export.trt_check import check_file, table

    violations = check_file(model, tensorrt)
    for v in violations:
        typer.echo(str(v))
    if violations:
        raise typer.Exit(1)
    typer.echo(f"{model}: passes TensorRT {tensorrt}'s ONNX parser rules ({table(tensorrt)['source']})")


@app.command("predict", rich_help_panel=DEVICE)
def predict_cmd(clip: Annotated[Path, typer.Argument(help="An mp4 with audio, or a video with --audio; a wav for speech models.")],
                model: Annotated[Path, typer.Option(help="Export folder (manifest.json).")],
                audio: Annotated[Optional[Path], typer.Option(help="A wav with the clip's audio.")] = None,
                format: Annotated[Optional[str], typer.Option("--format", help="Which file to run (default: the bundle's; 'engine' for a built TensorRT engine).")] = None,
                as_json: Annotated[bool, typer.Option("--json")] = False,
                on: Annotated[Optional[str], typer.Option("--on", help="Predict on this device (`edgeaffect device add`): bundle and recording copied there.")] = None,
                timeout: Annotated[Optional[float], typer.Option(help="--on: seconds the run there may take (default: the device's).")] = None):
    """Print the recording's result as the model's task reads it: a label and class scores,
    a score and its band, or a decision and its probability."""
    from edgeaffect.device.predict import ExportedModel

    if on is not None:
        from edgeaffect.remote.ops import predict_on

        argv = (["--format", format] if format else []) + (["--json"] if as_json else [])
        typer.echo(predict_on(on, model, [clip] + ([audio] if audio else []), argv=argv, timeout_s=timeout).rstrip())
        return

    m = ExportedModel(model, format)
    pred = m.predict(clip, audio)
    if as_json:
        typer.echo(json.dumps(pred.to_dict()))
        return
    for line in m.adapter.describe(pred):
        typer.echo(line)
