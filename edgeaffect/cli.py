"""The ``edgeaffect`` command. Commands parse their arguments and delegate; any
``EdgeAffectError`` becomes one line on stderr and exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgeaffect import __version__
from edgeaffect.errors import EdgeAffectError, InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Affective-computing models from the desktop to small devices.")


def _version(value: bool):
    if value:
        typer.echo(f"edgeaffect {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                          help="Print the version and exit.")] = None):
    pass


@app.command("models")
def models_cmd(as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False):
    """List the registered models: paper, task, inputs, parameters and FLOPs beside the paper's."""
    from edgeaffect.models import get_model, list_models

    rows = []
    for name in list_models():
        s = get_model(name)
        rows.append({"name": name, "paper": s.paper, "task": s.task,
                     "inputs": {k: list(v) for k, v in s.inputs.items()}, "params": s.params, "flops": s.flops,
                     "flops_convention": "paper Eq. 3: 2*Yh*Yw*Ci*Co*Kh*Kw + Yh*Yw*Co", "paper_figures": s.paper_figures})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        p = r["paper_figures"]
        typer.echo(f"{r['name']}\n  paper:  {r['paper']}\n  task:   {r['task']}\n"
                   f"  inputs: {', '.join(f'{k} {tuple(v)}' for k, v in r['inputs'].items())}\n"
                   f"  params: {r['params']:,} (ours, counted)   paper {p.get('source')}: {p.get('params_m')} M\n"
                   f"  FLOPs:  {r['flops'] / 1e6:.2f} M (ours, Eq. 3)   paper {p.get('source')}: {p.get('gflops')} G")


@app.command("synth")
def synth_cmd(out: Annotated[Path, typer.Argument(help="Folder to write Actor_XX/ into.")],
              actors: int = 4, statements: int = 2, repetitions: int = 2, seed: int = 0,
              sample_rate: int = 16000, duration: float = 2.0,
              layout: Annotated[str, typer.Option(help="av: 01 mp4 with audio; split: 02 mp4 + 03 wav")] = "av"):
    """Write a synthetic corpus in RAVDESS's naming and formats (for tests and demos only)."""
    from edgeaffect.data.synthetic import SyntheticConfig, generate, utterances
    from edgeaffect.progress import Progress

    if layout not in ("av", "split"):
        raise InputError(f"unknown layout '{layout}': use 'av' or 'split'")
    if actors < 1 or actors > 24:
        raise InputError(f"--actors must be 1..24 (RAVDESS has 24), given {actors}")
    cfg = SyntheticConfig(actors=actors, statements=statements, repetitions=repetitions, seed=seed,
                          sample_rate=sample_rate, duration_s=duration, layout=layout)
    files = generate(out, cfg, progress=Progress("clips", len(utterances(cfg))))
    typer.echo(f"{len(files)} files under {out} (synthetic; not RAVDESS)")


@app.command("train")
def train_cmd(model: Annotated[str, typer.Argument(help="A registered model, e.g. aver-ravdess.")],
              data: Annotated[Path, typer.Option(help="Corpus folder (RAVDESS layout).")],
              out: Annotated[Path, typer.Option(help="Run folder (checkpoints, metrics).")],
              split: Annotated[str, typer.Option(help="paper | clip | speaker")] = "paper",
              epochs: Annotated[Optional[int], typer.Option(help="Cap on epochs (default: the recipe's).")] = None,
              seed: int = 0):
    """Train a model; resumes from the last checkpoint if the run was interrupted."""
    from edgeaffect.data.dataset import build_aver_dataset
    from edgeaffect.models import get_model
    from edgeaffect.train.trainer import train_aver

    spec = get_model(model)
    stretch = spec.config.time_stretch_rate if spec.config.augment else None
    dataset = build_aver_dataset(data, stretch_rate=stretch, cache_dir=out / "cache")
    run = train_aver(model, dataset, out, split=split, seed=seed, max_epochs=epochs)
    typer.echo(f"{out}: test accuracy {run.info['test']['accuracy']:.4f} ({run.info['split']['kind']} split)")


@app.command("export")
def export_cmd(run: Annotated[Path, typer.Argument(help="A training run folder.")],
               out: Annotated[Path, typer.Option(help="Export folder to write.")],
               formats: Annotated[str, typer.Option(help="Comma-separated export formats.")] =
               "tflite-int8,tflite-fp16,tflite-fp32,onnx-fp32,onnx-qdq",
               qat_epochs: int = 20):
    """QAT, export and verify every format against the Keras model; all or nothing."""
    from edgeaffect.export import get_format
    from edgeaffect.export.exporter import export_run
    from edgeaffect.train.trainer import load_run, run_dataset

    names = [f.strip() for f in formats.split(",") if f.strip()]
    for name in names:
        get_format(name)  # fail on a typo before any work
    r = load_run(run)
    export_run(r, run_dataset(r), out, names, qat_epochs=qat_epochs)
    typer.echo(f"exported {', '.join(names)} to {out} (all verified)")


@app.command("predict")
def predict_cmd(clip: Annotated[Path, typer.Argument(help="An mp4 with audio, or a video with --audio.")],
                model: Annotated[Path, typer.Option(help="Export folder (manifest.json).")],
                audio: Annotated[Optional[Path], typer.Option(help="A wav with the clip's audio.")] = None,
                format: Annotated[str, typer.Option("--format", help="Which export to run.")] = "tflite-int8",
                as_json: Annotated[bool, typer.Option("--json")] = False):
    """Print the clip's emotion and the class probabilities."""
    from edgeaffect.predict import ExportedModel

    pred = ExportedModel(model, format).predict_clip(clip, audio)
    if as_json:
        typer.echo(json.dumps({"label": pred.label, "probabilities": pred.probabilities}))
        return
    typer.echo(f"{pred.label}")
    for lab, p in sorted(pred.probabilities.items(), key=lambda kv: -kv[1]):
        typer.echo(f"  {lab:10s} {p:.3f} {'#' * int(round(p * 40))}")


@app.command("pipeline")
def pipeline_cmd(out: Annotated[Path, typer.Option(help="Working folder.")] = Path("build/quickstart"),
                 actors: int = 8, epochs: int = 60, speaker_epochs: int = 30, qat_epochs: int = 10, seed: int = 0):
    """The main job: synthetic corpus -> train AVER -> QAT -> export -> verify -> table."""
    from edgeaffect.pipeline import run_pipeline

    run_pipeline(out, actors=actors, epochs=epochs, speaker_epochs=speaker_epochs, qat_epochs=qat_epochs, seed=seed)


@app.command("bench-aver")
def bench_cmd(work: Annotated[Path, typer.Option(help="Pipeline folder (made if missing).")] = Path("build/quickstart"),
              threads: int = 1, budget: Annotated[float, typer.Option(help="Seconds per measurement.")] = 3.0):
    """p50 / p90 latency of one AVER inference per format, Keras direct, and clip -> features."""
    from edgeaffect.bench import bench_export, machine
    from edgeaffect.io import atomic_write_text
    from edgeaffect.pipeline import run_pipeline
    from edgeaffect.train.trainer import load_run

    if not (work / "export" / "manifest.json").exists():
        typer.echo(f"no export in {work}: running the pipeline first", err=True)
        run_pipeline(work)
    typer.echo(f"machine: {machine()}; batch 1, {threads} thread(s), {budget} s per row after warm-up")
    run = load_run(work / "runs" / "paper-split")
    clip = sorted((work / "corpus").rglob("*.mp4"))[0]
    rows = bench_export(work / "export", clip, keras_model=run.model, threads=threads, budget_s=budget,
                        log=sys.stdout)
    atomic_write_text(work / "bench.json", json.dumps({"machine": machine(), "threads": threads, "rows": rows}, indent=2))
    typer.echo(f"written {work / 'bench.json'}")


def main() -> None:
    try:
        app()
    except EdgeAffectError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
