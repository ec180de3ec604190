"""The ``edgeaffect`` command. Commands parse their arguments and delegate; any
``EdgeAffectError`` becomes one line on stderr and exit code 2."""

from __future__ import annotations

import json
import os
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
                                                          help="Print the version and exit.")] = None,
          verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show what TensorFlow, tf2onnx and the "
                                                "runtimes log (hidden by default).")] = False):
    from edgeaffect.logs import set_verbose

    set_verbose(verbose or os.environ.get("EDGEAFFECT_VERBOSE") == "1")


@app.command("models")
def models_cmd(as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False):
    """List the registered models: paper, task, inputs, parameters and FLOPs beside the paper's."""
    from edgeaffect.contract import get_model, list_models

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
    from edgeaffect.families.aver.synthetic import SyntheticConfig, generate, utterances
    from edgeaffect.progress import Progress

    if layout not in ("av", "split"):
        raise InputError(f"unknown layout '{layout}': use 'av' or 'split'")
    if actors < 1 or actors > 24:
        raise InputError(f"--actors must be 1..24 (RAVDESS has 24), given {actors}")
    cfg = SyntheticConfig(actors=actors, statements=statements, repetitions=repetitions, seed=seed,
                          sample_rate=sample_rate, duration_s=duration, layout=layout)
    files = generate(out, cfg, progress=Progress("clips", len(utterances(cfg))))
    typer.echo(f"{len(files)} files under {out} (synthetic; not RAVDESS)")


@app.command("synth-speech")
def synth_speech_cmd(out: Annotated[Path, typer.Argument(help="Folder to write wav/ into (EmoDB naming).")],
                     speakers: int = 4, texts: int = 4, seed: int = 0):
    """Write a synthetic speech-emotion corpus in EmoDB's naming (for tests and demos only)."""
    from edgeaffect.families.speechnet.synthetic import SpeechCorpusConfig, emodb_names, generate_emodb
    from edgeaffect.progress import Progress

    if not 1 <= speakers <= 10 or not 1 <= texts <= 10:
        raise InputError(f"--speakers and --texts must be 1..10 (EmoDB has 10 of each), given {speakers}, {texts}")
    cfg = SpeechCorpusConfig(speakers=speakers, texts=texts, seed=seed)
    files = generate_emodb(out, cfg, progress=Progress("utterances", len(emodb_names(cfg))))
    typer.echo(f"{len(files)} files under {out / 'wav'} (synthetic; not EmoDB)")


@app.command("reproduce")
def reproduce_cmd(paper: Annotated[str, typer.Argument(help="A paper id: lightweight-aver, speechnet-ser, spectrotemporal-depression, wav2vec2-depression.")],
                  data: Annotated[Path, typer.Option(help="Your copy of one of the paper's corpora (its own layout).")],
                  out: Annotated[Path, typer.Option(help="Folder for the runs and reproduce.json; run again to resume.")] = Path("build/reproduce"),
                  quick: Annotated[bool, typer.Option("--quick", help="A short version for smoke tests: few epochs, 2 runs, the first protocol only.")] = False,
                  corpus: Annotated[Optional[str], typer.Option(help="Which of the paper's corpora --data is (default: recognised from the files).")] = None,
                  model: Annotated[Optional[str], typer.Option(help="Another registered model of the paper's family than the recipe's.")] = None,
                  epochs: Annotated[Optional[int], typer.Option(help="Cap on epochs per run (default: the recipe's; --quick: its quick one).")] = None,
                  option: Annotated[Optional[list[str]], typer.Option("--set", help="A training option of the family, KEY=VALUE (repeat), e.g. backbone=CHECKPOINT_DIR.")] = None):
    """A paper's protocols on your copy of its corpus, ours beside the paper's figures (recipes: each family's reproduce.toml)."""
    from edgeaffect.reproduce.runner import reproduce, table_lines

    options = {}
    for item in option or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set takes KEY=VALUE, got '{item}'")
        options[key.strip().replace("-", "_")] = {"true": True, "false": False}.get(value.strip().lower(), value.strip())
    if epochs is not None and epochs < 1:
        raise InputError("--epochs must be at least 1")
    doc = reproduce(paper, data, out, quick=quick, corpus=corpus, model=model, epochs=epochs, options=options)
    for line in table_lines(doc):
        typer.echo(line)
    typer.echo(f"written: {out / 'reproduce.json'}")


@app.command("embed")
def embed_cmd(audio: Annotated[Path, typer.Argument(help="A 16 kHz recording, or a folder of them (recursive).")],
              backbone: Annotated[Path, typer.Option(help="A local Hugging Face wav2vec 2.0 checkpoint folder "
                                                     "(config.json + model.safetensors or pytorch_model.bin).")],
              out: Annotated[Path, typer.Option(help="The .npy to write; a folder when AUDIO is a folder.")],
              layers: Annotated[str, typer.Option(help="sum: the detector's feature (frames, hidden); all: the "
                                                  "L+1 hidden states (L+1, frames, hidden).")] = "sum",
              segment_s: Annotated[Optional[float], typer.Option(help="Embed non-overlapping segments of this "
                                                                 "many seconds (adds a leading segment axis).")] = None):
    """Write wav2vec 2.0 frame features (the Keras backbone with imported weights)."""
    from edgeaffect.families.wav2vec2.embed import embed

    s = embed(audio, backbone, out, layers=layers, segment_s=segment_s)
    shape = f", shape {tuple(s['shape'])}" if "shape" in s else ""
    typer.echo(f"{s['written']} written, {s['skipped']} already there, of {s['files']} -> {s['out']}{shape}")


@app.command("train")
def train_cmd(model: Annotated[str, typer.Argument(help="A registered model, e.g. aver-ravdess or speechnet-emodb.")],
              data: Annotated[Path, typer.Option(help="Corpus folder (RAVDESS layout; speech models: EmoDB, SAVEE, RAVDESS, CREMA-D, IEMOCAP).")],
              out: Annotated[Path, typer.Option(help="Run folder (checkpoints, metrics).")],
              split: Annotated[str, typer.Option(help="AVER: paper | clip | speaker. SpeechNet: paper (random 90/10) | speaker")] = "paper",
              epochs: Annotated[Optional[int], typer.Option(help="Cap on epochs (default: the recipe's).")] = None,
              corpus: Annotated[Optional[str], typer.Option(help="Speech corpus layout (default: recognised from the files).")] = None,
              ablation: Annotated[Optional[str], typer.Option(help="SpeechNet: a Table 2 row, e.g. no-pre-attention (see `edgeaffect ablation --help`).")] = None,
              deterministic: Annotated[bool, typer.Option(help="TensorFlow op determinism (slower).")] = False,
              margins: Annotated[Optional[str], typer.Option(help="SpeechNet loss margins: 'sabour' (0.9, 0.5, 0.1; default) or 'paper' (0.5, 0.5, 0.5 as printed; see the model card).")] = None,
              backbone_weights: Annotated[Optional[Path], typer.Option(help="Spectrotemporal: a local efficientnetb3_notop.h5 (Keras' ImageNet weights; nothing is downloaded).")] = None,
              freeze_backbone: Annotated[Optional[bool], typer.Option("--freeze-backbone", help="Spectrotemporal: keep the backbone frozen and train on its cached per-segment features.")] = None,
              backbone: Annotated[Optional[Path], typer.Option(help="wav2vec2 detector: a local Hugging Face wav2vec 2.0 checkpoint folder (config.json + weights).")] = None,
              fine_tune: Annotated[bool, typer.Option("--fine-tune", help="wav2vec2 detector: train the transformer too (slow on a CPU) instead of frozen features.")] = False,
              strategy: Annotated[str, typer.Option(help="default (one device) | mirrored (this machine's GPUs) | multi-worker (machines named by TF_CONFIG; run the same command on each). Global batch and learning rate stay the recipe's; only the chief (worker 0) writes --out. See the README.")] = "default",
              split_seed: Annotated[Optional[int], typer.Option(help="Seed of the data split (default: --seed).")] = None,
              cache: Annotated[Optional[Path], typer.Option(help="Feature cache folder (default: OUT/cache).")] = None,
              workers: Annotated[Optional[int], typer.Option(help="Processes extracting the corpus's features (default: EDGEAFFECT_WORKERS, else min(2, CPUs)); the cache is the same bytes for any number.")] = None,
              seed: int = 0):
    """Train a model with its paper's recipe (a killed run resumes from its last finished epoch; wav2vec2 heads start again)."""
    from edgeaffect.train import distribute
    from edgeaffect.train.families import check_request, load_corpus, train

    options = {"margins": margins, "backbone_weights": backbone_weights, "freeze_backbone": freeze_backbone,
               "backbone": str(backbone) if backbone is not None else None, "fine_tune": True if fine_tune else None}
    check_request(model, split, ablation, options)  # a typo fails before the corpus is read
    from edgeaffect.data.jobs import set_workers

    set_workers(workers)
    with distribute.using(strategy) as dist:  # first: MultiWorkerMirroredStrategy must precede any TF work
        dataset = load_corpus(model, data, cache or out / "cache", corpus)
        run = train(model, dataset, out, split=split, seed=seed, split_seed=split_seed, epochs=epochs,
                    ablation=ablation, deterministic=deterministic, options=options)
        if not dist.is_chief:
            typer.echo(f"worker {dist.task_index}: done (the chief writes {out})")
            return
    metric = run.family.task.metric_name
    typer.echo(f"{out}: {run.info.get('reported_on', 'test')} {metric} {run.info['test'][metric]:.4f} "
               f"({run.info['split']['kind']} split)")


@app.command("ablation")
def ablation_cmd(model: Annotated[str, typer.Argument(help="A model with an ablation table: speechnet-*, spectrotemporal-*, wav2vec2-*.")],
                 data: Annotated[Path, typer.Option(help="Corpus folder.")],
                 out: Annotated[Path, typer.Option(help="Folder for one run per row and ablation.json.")],
                 rows: Annotated[Optional[str], typer.Option(help="Comma-separated rows (default: all of Table 2).")] = None,
                 split: str = "paper", epochs: Optional[int] = None, seed: int = 0,
                 corpus: Optional[str] = None,
                 backbone: Annotated[Optional[Path], typer.Option(help="wav2vec2 detector: a local Hugging Face wav2vec 2.0 checkpoint folder.")] = None):
    """Rerun the paper's ablation table: one training run per removed module, same split and seed."""
    from edgeaffect.io import atomic_write_text
    from edgeaffect.contract import get_model
    from edgeaffect.train.families import load_corpus, train

    family = get_model(model).family_plugin
    if not family.ablations:
        raise InputError(f"ablations are not defined for {model} (the {family.name} family has none)")
    names = [r.strip() for r in (rows or ",".join(family.ablations)).split(",") if r.strip()]
    for name in names:
        family.check_ablation(name)  # a typo fails before any training
    options = {"backbone": str(backbone)} if backbone is not None else None
    family.check_options(options or {})
    dataset = load_corpus(model, data, out / "cache", corpus)
    results = []
    for name in names:
        run = train(model, dataset, out / name, split=split, seed=seed, epochs=epochs, ablation=name, options=options)
        # Keras' count: the analytic cost covers the paper's backbones, not every ablation's.
        params = run.model.count_params() if run.model is not None else run.spec.params
        results.append({"row": name, "params": int(params), **run.info["test"]})
    atomic_write_text(out / "ablation.json", json.dumps({"model": model, "split": split, "seed": seed,
                                                         "rows": results}, indent=2))
    typer.echo(f"{model}, {split} split, seed {seed} (this machine's data, not the paper's figures)")
    # The task's figures: macro means for a classifier, the positive class's for a detector.
    if "mae" in results[0]:  # a regressor: errors in the score's own units
        typer.echo("row                    params        MAE     RMSE")
        for r in results:
            typer.echo(f"{r['row']:20s} {r['params']:9,d}   {r['mae']:8.3f} {r['rmse']:8.3f}")
        return
    keys = (["accuracy", "macro_precision", "macro_recall", "macro_f1"] if "macro_precision" in results[0]
            else ["accuracy", "precision", "recall", "f1"])
    typer.echo("row                    params   accuracy  precision  recall    F1")
    for r in results:
        typer.echo(f"{r['row']:20s} {r['params']:9,d}   " + "    ".join(f"{100 * r[k]:6.2f}" for k in keys))


@app.command("export")
def export_cmd(run: Annotated[Path, typer.Argument(help="A training run folder.")],
               out: Annotated[Path, typer.Option(help="Export / bundle folder to write.")],
               target: Annotated[Optional[str], typer.Option(help="rpi4 | rpi5 | jetson-nano | jetson-orin-nano | jetson-orin-nano-super | host: a device bundle.")] = None,
               formats: Annotated[Optional[str], typer.Option(help="Comma-separated export formats (without --target).")] = None,
               qat_epochs: int = 20,
               threads: Annotated[Optional[int], typer.Option(help="Target option: inference threads (Raspberry Pi, host).")] = None,
               precision: Annotated[Optional[str], typer.Option(help="Target option (Jetson): fp16 | int8 | int8-calibrated.")] = None,
               workspace_mib: Annotated[Optional[int], typer.Option(help="Target option (Jetson): TensorRT workspace.")] = None,
               max_batch: Annotated[Optional[int], typer.Option(help="Target option (Jetson): largest batch of the engine profile.")] = None,
               strategy: Annotated[str, typer.Option(help="QAT fine-tune on: default (one device) | mirrored (this machine's GPUs).")] = "default"):
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
    if strategy == "multi-worker":
        raise InputError("--strategy multi-worker is for training; export (a short QAT fine-tune, then conversion and "
                         "verification on one machine) takes default or mirrored")
    from edgeaffect.train import distribute

    with distribute.using(strategy):  # the QAT fine-tune's replicas (edgeaffect.train.qat)
        r = load_run(run)
        manifest = export_run(r, run_dataset(r), out, names, qat_epochs=qat_epochs, target=t, options=opts)
    names = manifest.get("formats") or list(manifest["files"])  # what was written (a family may add formats)
    what = f"bundle for {t.key}" if t else "export"
    typer.echo(f"{what}: {', '.join(names)} in {out} (all verified, checksummed)")


@app.command("verify")
def verify_cmd(bundle: Annotated[Path, typer.Argument(help="A bundle or export folder.")]):
    """Check a bundle on the device: manifest version and every file's SHA-256."""
    from edgeaffect.device.bundle import verify_bundle

    checked, n = verify_bundle(bundle)  # each stage's files too; a stage's folder verifies as that stage
    manifest = checked.manifest
    target = (manifest.get("target") or {}).get("key", "none")
    typer.echo(f"{bundle}: {manifest['model']} (edgeaffect {manifest['toolkit_version']}, target {target}): "
               f"{n} files, all checksums match")


@app.command("build-engine")
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


@app.command("trt-check")
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


@app.command("predict")
def predict_cmd(clip: Annotated[Path, typer.Argument(help="An mp4 with audio, or a video with --audio; a wav for speech models.")],
                model: Annotated[Path, typer.Option(help="Export folder (manifest.json).")],
                audio: Annotated[Optional[Path], typer.Option(help="A wav with the clip's audio.")] = None,
                format: Annotated[Optional[str], typer.Option("--format", help="Which file to run (default: the bundle's; 'engine' for a built TensorRT engine).")] = None,
                as_json: Annotated[bool, typer.Option("--json")] = False):
    """Print the recording's result as the model's task reads it: a label and class scores,
    a score and its band, or a decision and its probability."""
    from edgeaffect.device.predict import ExportedModel

    m = ExportedModel(model, format)
    pred = m.predict(clip, audio)
    if as_json:
        typer.echo(json.dumps(pred.to_dict()))
        return
    for line in m.adapter.describe(pred):
        typer.echo(line)


@app.command("pipeline")
def pipeline_cmd(out: Annotated[Path, typer.Option(help="Working folder.")] = Path("build/quickstart"),
                 model: Annotated[str, typer.Option(help="A registered model.")] = "aver-ravdess",
                 scale: Annotated[int, typer.Option("--scale", "--actors", "--speakers", help="Speakers (actors) in the synthetic corpus.")] = 8,
                 epochs: Annotated[Optional[int], typer.Option(help="Epochs on the paper's split (default: the recipe's).")] = 60,
                 speaker_epochs: Annotated[Optional[int], typer.Option(help="Epochs on the speaker-independent split.")] = 30,
                 qat_epochs: int = 10, seed: int = 0):
    """The main job: synthetic corpus -> train -> QAT -> export -> verify -> latency -> one table."""
    from edgeaffect.train.pipeline import run_pipeline

    run_pipeline(out, model=model, scale=scale, epochs=epochs, speaker_epochs=speaker_epochs, qat_epochs=qat_epochs,
                 seed=seed)


@app.command("pipeline-speech")
def pipeline_speech_cmd(out: Annotated[Path, typer.Option(help="Working folder.")] = Path("build/speechnet"),
                        speakers: int = 8,
                        epochs: Annotated[Optional[int], typer.Option(help="Training epochs (default: the paper's 200).")] = None,
                        qat_epochs: int = 10, seed: int = 0):
    """`pipeline` for SpeechNet: synthetic EmoDB-format corpus, the paper's 200-epoch recipe."""
    from edgeaffect.train.pipeline import run_pipeline

    run_pipeline(out, model="speechnet-emodb", scale=speakers, epochs=epochs, speaker_epochs=epochs,
                 qat_epochs=qat_epochs, seed=seed)


@app.command("bench-pipeline")
def bench_pipeline_cmd(work: Annotated[Path, typer.Option(help="Pipeline folder (made with `edgeaffect pipeline` if missing).")] = Path("build/quickstart"),
                       threads: int = 1, budget: Annotated[float, typer.Option(help="Seconds per measurement.")] = 3.0,
                       rounds: Annotated[int, typer.Option(help="Clip -> label: interleaved runs of each way.")] = 40,
                       clips_ab: Annotated[int, typer.Option("--clips", help="Clip -> label: recordings cycled through.")] = 8):
    """p50 / p90 of one inference per format, Keras direct, one recording -> inputs (decode
    included), and clip -> label against the paper-literal preprocessing (interleaved, a ratio)."""
    from edgeaffect.io import atomic_write_text
    from edgeaffect.measure.bench import bench_clip_to_label, bench_export, held_to_threads, machine
    from edgeaffect.train.pipeline import run_pipeline
    from edgeaffect.train.runs import load_run

    if not (work / "export" / "manifest.json").exists():
        typer.echo(f"no export in {work}: running the pipeline first", err=True)
        run_pipeline(work)
    typer.echo(f"machine: {machine()}; batch 1, {threads} thread(s), {budget} s per row after warm-up")
    run = load_run(work / "runs" / "paper-split")
    found = run.family.recordings(work / "corpus")
    if not found:
        raise InputError(f"no recordings under {work / 'corpus'}: rerun `edgeaffect pipeline --out {work}`")
    with held_to_threads(threads):  # decoding, OpenCV and BLAS too: a one-thread row is one
        rows = bench_export(work / "export", found[0], keras_model=run.model, threads=threads, budget_s=budget,
                            log=sys.stdout)
    # Clip -> label, today's preprocessing against the paper-literal one, interleaved in one
    # run (a ratio that holds on a busy machine), decoding and OpenCV on `threads` thread(s).
    clips = found[:: max(1, len(found) // clips_ab)][:clips_ab]
    ab = bench_clip_to_label(work / "export", clips, threads=threads, rounds=rounds, log=sys.stdout)
    atomic_write_text(work / "bench-pipeline.json", json.dumps({"machine": machine(), "threads": threads, "rows": rows,
                                                                "clip_to_label": ab}, indent=2))
    typer.echo(f"written {work / 'bench-pipeline.json'}")


@app.command("bench-recordings")
def bench_recordings_cmd(bundle: Annotated[Path, typer.Argument(help="An export or bundle folder.")],
                         data: Annotated[Path, typer.Option(help="A folder of recordings the model takes (wav, mp4).")],
                         threads: int = 1, recordings: Annotated[int, typer.Option("--recordings", "--utterances")] = 20,
                         budget: Annotated[float, typer.Option(help="Seconds per measurement.")] = 3.0,
                         json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the rows as JSON.")] = None):
    """p50 / p90 per recording: device-side features, inference per format, and both together."""
    from edgeaffect.device.predict import ExportedModel
    from edgeaffect.io import atomic_write_text
    from edgeaffect.measure.bench import bench_recordings, machine

    found = ExportedModel(bundle).family.recordings(data)
    files = found[:: max(1, len(found) // recordings)][:recordings]
    if not files:
        raise InputError(f"no recordings this model takes under {data}")
    typer.echo(f"machine: {machine()}; batch 1, {threads} thread(s), {budget} s per row after warm-up, "
               f"{len(files)} recordings (measured)")
    rows = bench_recordings(bundle, files, threads=threads, budget_s=budget, log=sys.stdout)
    if json_out:
        atomic_write_text(json_out, json.dumps({"machine": machine(), "threads": threads, "rows": rows}, indent=2))


# The names these commands had before they served every family.
app.command("bench-aver", hidden=True)(bench_pipeline_cmd)
app.command("bench-speech", hidden=True)(bench_recordings_cmd)


@app.command("profile")
def profile_cmd(artifact: Annotated[Path, typer.Argument(help="A .tflite / .onnx / .engine file, an export folder, or a run folder (Keras).")],
                runtime: Annotated[Optional[str], typer.Option(help="litert | onnxruntime | tensorrt | keras (default: by file type).")] = None,
                format: Annotated[Optional[str], typer.Option("--format", help="Which file of an export folder.")] = None,
                threads: int = 1,
                budget: Annotated[float, typer.Option(help="Seconds of timed runs after warm-up.")] = 2.0,
                warmup: int = 10,
                json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the result as JSON here.")] = None):
    """Latency percentiles, init and first-inference time, memory, per-operator times."""
    from edgeaffect.io import atomic_write_text
    from edgeaffect.measure.profile import format_profile, profile

    if threads < 1 or budget <= 0:
        raise InputError("--threads must be >= 1 and --budget > 0")
    r = profile(artifact, runtime=runtime, threads=threads, budget_s=budget, warmup=warmup, fmt=format)
    typer.echo(format_profile(r))
    if json_out:
        atomic_write_text(json_out, json.dumps(r, indent=2))


@app.command("cost")
def cost_cmd(target: Annotated[str, typer.Argument(help="A .tflite / .onnx file, or a registered model name.")],
             layers: Annotated[bool, typer.Option(help="Print every layer.")] = False,
             as_json: Annotated[bool, typer.Option("--json")] = False):
    """Parameters, MACs, FLOPs, bytes moved, arithmetic intensity and peak activation memory."""
    from edgeaffect.roofline.readers import analyse

    parts = _model_parts(target)
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
    typer.echo(f"params {cost.params:,}   MACs {cost.macs:,}   FLOPs {cost.flops:,}")
    for p in ("float32", "float16", "int8"):
        typer.echo(f"{p:8s} bytes moved {cost.bytes[p]:>10,}  intensity {cost.intensity[p]:6.2f} FLOP/B  "
                   f"weights {cost.weight_bytes[p]:>9,} B  peak activations {cost.peak_activation_bytes[p]:>9,} B")
    if cost.uncounted:
        typer.echo(f"not counted (unknown arithmetic): {', '.join(cost.uncounted)}")
    if layers:
        typer.echo(f"\n{'layer':34s} {'kind':7s} {'params':>8s} {'FLOPs':>11s} {'bytes fp32':>11s} {'FLOP/B':>7s}")
        for r in cost.layers:
            typer.echo(f"{r.name[:34]:34s} {r.kind:7s} {r.params:8,} {r.flops:11,} {r.bytes['float32']:11,} "
                       f"{r.intensity['float32']:7.2f}")


def _model_parts(target: str) -> list[tuple[str, object]]:
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


@app.command("roofline")
def roofline_cmd(device: Annotated[Optional[list[str]], typer.Option("--device", help="Catalog device (repeat); default: all.")] = None,
                 model: Annotated[Optional[list[str]], typer.Option("--model", help="Registered model (repeat).")] = None,
                 artifact: Annotated[Optional[list[Path]], typer.Option("--artifact", help="A .tflite / .onnx file (repeat).")] = None,
                 bench: Annotated[Optional[Path], typer.Option(help="`edgeaffect bench --json` output: adds achieved points on the host.")] = None,
                 out: Annotated[Path, typer.Option(help="Folder for the plots and bounds.json.")] = Path("build/roofline"),
                 threads: Annotated[int, typer.Option(help="Threads for the host's measured roofs (as the bench was run).")] = 1,
                 measure_host: Annotated[bool, typer.Option("--measure-host", help="Re-measure the host (else cached).")] = False):
    """Roofline plots per device and a lower bound on latency per model per device."""
    from edgeaffect.io import atomic_write_text
    from edgeaffect.machine import machine as this_machine
    from edgeaffect.contract import list_models
    from edgeaffect.roofline.devices import (HOST_RUNTIME, get_device, load_catalog, precision_of_format,
                                             roofline_bound, runtime_of_artifact)
    from edgeaffect.roofline.plot import plot_roofline
    from edgeaffect.roofline.readers import analyse

    keys = device or list(load_catalog())
    devices = [get_device(k, measure_host=False) for k in keys]  # validates every name first
    if "host" in keys:
        devices = [get_device(d.key, threads=threads, refresh=measure_host) if d.key == "host" else d
                   for d in devices]
    measured = {}
    if bench:
        if not bench.is_file():
            raise InputError(f"--bench file not found: {bench}")
        from edgeaffect.machine import machine

        data = json.loads(bench.read_text())
        if data.get("machine") != machine():  # a ratio compares figures of one machine only
            typer.echo(f"--bench {bench} was measured on another machine ({data.get('machine')}): "
                       f"its latencies are not placed against this machine's roofs", err=True)
            data = {}
        for r in data.get("rows", []):
            if r.get("p50_ms"):
                measured[Path(r["path"]).name] = r["p50_ms"]
    points = []
    for a in artifact or []:
        points.append({"label": a.stem, "cost": analyse(a), "precision": precision_of_format(a.stem),
                       "runtime": runtime_of_artifact(a.name), "p50_ms": measured.get(a.name)})
    for m in model or ([] if artifact else list_models()):
        for label, part in _model_parts(m):
            cost = analyse(part)
            # A registered model is bounded on the runtime a device runs it with (LiteRT).
            points += [{"label": f"{label} {p}", "cost": cost, "precision": p, "runtime": HOST_RUNTIME}
                       for p in ("float32", "int8")]
    bounds, written = [], []
    host_machine = this_machine()
    for d in devices:
        pts = [{**p, "achieved_gflops": (p["cost"].flops / (p["p50_ms"] / 1e3) / 1e9
                                         if d.key == "host" and p.get("p50_ms") else None)} for p in points]
        written += plot_roofline(d, pts, out)
        for p in points:
            b = roofline_bound(p["cost"], d, p["precision"], p.get("runtime"))
            bounds.append({"model": p["label"], **b.to_dict(), "measured_p50_ms": p.get("p50_ms") if d.key == "host" else None,
                           "machine": host_machine if d.key == "host" else None})
    atomic_write_text(out / "bounds.json", json.dumps(bounds, indent=2))
    host = next((d for d in devices if d.key == "host"), None)
    if host is not None:
        typer.echo(f"host roofs ({host.compute}; {threads} thread(s); measured with each runtime's own kernels):")
        for rt, peaks in host.runtime_peaks.items():
            typer.echo("  " + rt + ": " + ", ".join(f"{p} {f.value:.4g} GFLOP/s" for p, f in peaks.items()))
        for name, ref in host.references.items():
            typer.echo(f"  {name}: {ref.value:.4g} GFLOP/s ({ref.source})")
    typer.echo(f"{'model':34s} {'device':24s} {'AI FLOP/B':>9s} {'bound ms':>10s}  limited by   (roofline lower bounds: predictions)")
    for b in bounds:
        meas = ""
        if b["measured_p50_ms"]:
            meas = f"  measured p50 {b['measured_p50_ms']:.3f} ms = {b['measured_p50_ms'] / b['latency_ms']:.2f}x the bound"
        typer.echo(f"{b['model'][:34]:34s} {b['device']:24s} {b['intensity']:9.2f} {b['latency_ms']:10.5f}  "
                   f"{b['limited_by']:8s}{meas}")
    typer.echo(f"plots and bounds.json in {out} ({len(written)} files)")


@app.command("host-roofs")
def host_roofs_cmd(threads: Annotated[Optional[list[int]], typer.Option("--threads", help="Thread counts (repeat); default: 1 and the core count.")] = None,
                   measure_host: Annotated[bool, typer.Option("--measure-host", help="Measure again (else cached).")] = False,
                   json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the table as JSON.")] = None):
    """This machine's compute roofs per runtime, precision and thread count, measured through
    the runtimes' own kernels, beside the ISA's theoretical peak (their ratio, one machine)."""
    import os

    from edgeaffect.io import atomic_write_text
    from edgeaffect.machine import machine
    from edgeaffect.roofline.devices import runtime_roofs
    from edgeaffect.roofline.isa import PIPES, isa_peak

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
    if json_out:
        atomic_write_text(json_out, json.dumps({"machine": machine(), "isa": isa.isa, "ghz": isa.ghz,
                                                "clock_source": isa.clock_source, "rows": rows}, indent=2))


@app.command("calibrate")
def calibrate_cmd(model: Annotated[Optional[list[str]], typer.Option("--model", help="Registered model to estimate (repeat).")] = None,
                  threads: Annotated[Optional[int], typer.Option(help="Threads the estimates are for (default: each "
                                                                       "device's export target's, 4 on the Pis, as the budgets use).")] = None,
                  json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the fit and errors as JSON.")] = None):
    """Device predictions fitted to published latencies of public models (rebuilt here):
    per device, runtime and precision the factors and the leave-one-out error, then
    estimates for our models (predictions, with their error band)."""
    from edgeaffect.io import atomic_write_text
    from edgeaffect.export.targets import deploy_threads
    from edgeaffect.roofline.calibrate import estimate, groups_cached, model_split_cost

    if threads is not None and threads < 1:
        raise InputError(f"--threads must be >= 1, given {threads}")
    groups = groups_cached()
    typer.echo("fit: latency = overhead + 3x3-conv arithmetic at roof / eff3x3 + other arithmetic at roof / eff_other, "
               "roof scaled to threads ** scaling of the cores; fewer figures fit fewer factors (form); "
               "leave-one-out: each figure predicted from the others")
    typer.echo(f"{'device':22s} {'runtime':8s} {'precision':9s} {'n':>3s} {'threads':>7s} {'form':25s} {'overhead ms':>11s} "
               f"{'eff 3x3':>8s} {'eff other':>9s} {'scaling':>7s} {'LOO median':>10s} {'LOO worst':>9s}")
    for g in groups:
        typer.echo(f"{g.device:22s} {g.runtime:8s} {g.precision:9s} {g.n:3d} {g.threads_label:>7s} {g.form_label:25s} "
                   f"{g.overhead_ms:11.3g} {g.efficiency('conv3x3'):8.3g} {g.efficiency('other'):9.3g} {g.scaling:7.2f} "
                   f"{g.median_error:10.0%} {g.worst_error:9.0%}")
    estimates = []
    for m in model or []:
        cost = model_split_cost(m)
        for g in groups:
            e = estimate(groups, cost, g.device, g.precision, threads or deploy_threads(g.device), runtime=g.runtime)
            if e["group"] is not g:
                continue
            estimates.append({"model": m, "device": g.device, "runtime": g.runtime, "precision": g.precision,
                              **{k: v for k, v in e.items() if k != "group"}})
            typer.echo(f"{m} on {g.device} ({g.runtime} {g.precision}): estimate {e['estimate_ms']:.3g} ms "
                       f"(a prediction{'' if e['gating'] else ', not gating'}; {e['note']})")
    if json_out:
        atomic_write_text(json_out, json.dumps({"groups": [g.to_dict() for g in groups], "estimates": estimates},
                                               indent=2))


@app.command("report")
def report_cmd(sources: Annotated[Optional[list[Path]], typer.Argument(help="With --html: folders (or JSON files) to gather; default: build/quickstart build/speechnet build/depression build/reproduce.", show_default=False)] = None,
               bench: Annotated[Optional[Path], typer.Option(help="`edgeaffect bench --json` output: adds our measured times.")] = None,
               out: Annotated[Optional[Path], typer.Option(help="Also write the Markdown here.")] = None,
               html: Annotated[Optional[Path], typer.Option("--html", help="Write a static page (OUT/index.html + OUT/img/): the models beside the papers, every export's verification, benchmarks, budgets, the latency gate, roofline plots, confusion matrices / error plots, reproduce tables.")] = None):
    """Our parameters, FLOPs, memory and time beside every figure in the four papers; with
    --html, one page of everything the toolkit wrote about its models."""
    from edgeaffect.io import atomic_write_text
    from edgeaffect.roofline.papers import measured_from_bench, report

    if sources and html is None:
        raise InputError("folders are read by --html only: add --html OUT/ (or drop the folders)")
    if html is not None:
        from edgeaffect.report.html import write_report

        page = write_report(list(sources or []), html, bench=bench)
        typer.echo(f"report page: {page} (open it in a browser; no server needed)")
        return
    measured = {}
    if bench:
        if not bench.is_file():
            raise InputError(f"--bench file not found: {bench}")
        measured = measured_from_bench(json.loads(bench.read_text()))
    text = report(measured)
    typer.echo(text)
    if out:
        atomic_write_text(out, text)


@app.command("bench")
def bench_exports_cmd(exports: Annotated[list[Path], typer.Argument(help="Export folders (manifest.json).")],
                      threads: int = 1,
                      budget: Annotated[float, typer.Option(help="Seconds of timed runs per row.")] = 2.0,
                      data: Annotated[Optional[Path], typer.Option(help="npz with one array per input and 'labels': measure accuracy.")] = None,
                      budgets: Annotated[Optional[Path], typer.Option(help="Budgets file (TOML): exit 1 when one is exceeded, or has no measurement and is not optional.")] = None,
                      json_out: Annotated[Optional[Path], typer.Option("--json", help="Write rows (and checks) as JSON.")] = None,
                      markdown: Annotated[Optional[Path], typer.Option(help="Write a Markdown table (CI step summary).")] = None,
                      junit: Annotated[Optional[Path], typer.Option(help="Write JUnit XML.")] = None,
                      baseline: Annotated[Optional[Path], typer.Option(help="Latency gate: a folder of saved exports (<model>/manifest.json); each file is timed interleaved with its baseline and fails when more than `regression` (budgets [defaults], 10 %) slower.")] = None,
                      save_baseline: Annotated[bool, typer.Option("--save-baseline", help="Save each export whose model has no baseline yet as its baseline (replace one by deleting its folder).")] = False):
    """Each model x format x runtime: status, size, accuracy, p50 / p99, throughput; budgets;
    the latency gate against a baseline."""
    from dataclasses import asdict
    import os

    from edgeaffect.measure.bench import bench_exports, gate_rows, machine, remeasure, to_junit, to_markdown, to_text
    from edgeaffect.measure.budgets import DEFAULT_KEYS, check_budgets, load_budgets, regression_checks
    from edgeaffect.io import atomic_write_text

    if save_baseline and baseline is None:
        raise InputError("--save-baseline needs --baseline DIR (where to save it)")
    spec = load_budgets(budgets) if budgets else None  # a bad budgets file fails before any timing
    rows = bench_exports(exports, threads=threads, budget_s=budget, data=data)
    if baseline is not None:
        gate_rows(rows, baseline, threads=threads, budget_s=budget,
                  tolerance=spec.regression if spec else DEFAULT_KEYS["regression"])
    header = f"machine: {machine()}; batch 1, {threads} thread(s), {budget:g} s of timed runs per row (measured)"
    if baseline is not None:
        header += (f"; vs baseline: ratio of latencies timed interleaved with {baseline} in this run "
                   f"(median of pairs, 99 % interval)")
    typer.echo(header)
    typer.echo(to_text(rows))
    for note in sorted({r["baseline_note"] for r in rows if r.get("baseline_note")}):
        typer.echo(f"latency gate: {note} (nothing compared)")
    checks = check_budgets(spec, rows, lambda r: remeasure(r, threads, budget)) if spec else []
    checks += regression_checks(rows)
    for c in checks:
        typer.echo(c.line)
    if json_out:
        atomic_write_text(json_out, json.dumps({"machine": machine(), "threads": threads, "rows": rows,
                                                "budgets": [asdict(c) for c in checks]}, indent=2))
    md = to_markdown(rows, checks, header)
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


@app.command("demo")
def demo_cmd(bundle: Annotated[Path, typer.Argument(help="A bundle or export folder.")],
             camera: Annotated[str, typer.Option(help="Camera index, device path, or a video file.")] = "0",
             mic: Annotated[Optional[str], typer.Option(help="sounddevice input (index or name) or a wav file; default input if omitted.")] = None,
             show: Annotated[bool, typer.Option("--show/--headless", help="A window with the overlay (default: headless).")] = False,
             events: Annotated[Optional[Path], typer.Option(help="Write JSON lines: time, label, probabilities, per-stage latency.")] = None,
             duration: Annotated[Optional[float], typer.Option(help="Stop after this many seconds.")] = None,
             threads: Optional[int] = None):
    """Live microphone + camera demo: label, probabilities, FPS and latency; Ctrl-C stops it."""
    from edgeaffect.demo.live import Demo

    demo = Demo(bundle, camera, mic, show=show, events=events, duration=duration, threads=threads)
    try:
        s = demo.run()
    except KeyboardInterrupt:  # run() has already stopped and joined its threads
        typer.echo("demo: interrupted (Ctrl-C), stopped cleanly", err=True)
        raise typer.Exit(130) from None
    video = "" if not demo.needs_video else f"{s['no_face']} without a face, {s['dropped_frames']} frames dropped; "
    typer.echo(f"{s['events']} results in {s['seconds']:.1f} s ({s['processed_per_s']:.1f}/s), {s['labels']} labelled, "
               f"{video}capture-to-label p50 {_ms(s['latency_p50_ms'])} p95 {_ms(s['latency_p95_ms'])}")
    if s["faults"]:
        back = [f for f in s["faults"] if f["recovery_s"] is not None]
        typer.echo(f"devices lost {len(s['faults'])} times, {len(back)} back and used again"
                   + (f" (longest outage {max(f['recovery_s'] for f in back):.1f} s)" if back else ""), err=True)


def _ms(v) -> str:
    return "-" if v is None else f"{v:.1f} ms"


@app.command("bench-demo")
def bench_demo_cmd(bundle: Annotated[Path, typer.Argument(help="A bundle or export folder.")],
                   seconds: Annotated[float, typer.Option(help="Length of the generated 640x480 30 fps clip.")] = 10.0,
                   detect_every: Annotated[Optional[int], typer.Option(help="Full face search every N frames, tracking "
                                                                            "between (default: DemoConfig's).")] = None,
                   compare: Annotated[bool, typer.Option(help="Also run the demo with the full search on every frame "
                                                              "(detect every 1), right after, for a ratio.")] = True,
                   accuracy_clips: Annotated[int, typer.Option(help="Labelled corpus clips the live label is scored "
                                                                    "on, tracking vs every frame (0: skip).")] = 16,
                   corpus: Annotated[Optional[Path], typer.Option(help="Corpus for the accuracy figure (default: the "
                                                                      "pipeline folder's, else a small synthetic one).")] = None,
                   json_out: Annotated[Optional[Path], typer.Option("--json")] = None):
    """The demo on a generated 640x480 30 fps video of a real face (skimage's astronaut) and
    16 kHz speech-like audio: results per second, capture-to-label p50 / p95 and each stage's
    share; with tracking against the full search on every frame, and the live label's
    accuracy on labelled corpus clips both ways (same run)."""
    import tempfile
    from dataclasses import replace

    from edgeaffect.demo.bench import live_accuracy, make_demo_media
    from edgeaffect.demo.live import Demo, DemoConfig
    from edgeaffect.device.predict import ExportedModel
    from edgeaffect.io import atomic_write_text
    from edgeaffect.measure.bench import machine
    from edgeaffect.progress import Progress

    cfg = DemoConfig() if detect_every is None else replace(DemoConfig(), detect_every=max(1, detect_every))
    runs = {f"detect every {cfg.detect_every}": cfg}
    if compare and cfg.detect_every != 1:
        runs["detect every 1"] = replace(cfg, detect_every=1)
    typer.echo(f"machine: {machine()} (measured); 640x480 30 fps video file + 16 kHz wav, paced in real time, "
               f"{seconds:g} s per run")
    out = {"machine": machine(), "seconds": seconds, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="ea-demo-") as tmp:
        video, wav = make_demo_media(Path(tmp), seconds)
        for name, c in runs.items():
            s = Demo(bundle, str(video), str(wav), events=Path(tmp) / "events.jsonl", threads=1, config=c,
                     log=open(os.devnull, "w")).run()
            out["runs"][name] = s
            typer.echo(f"{name}: {s['events']} results / {s['captured_frames']} frames captured, "
                       f"{s['dropped_frames']} dropped ({s['processed_per_s']:.1f} results/s); capture-to-label "
                       f"p50 {_ms(s['latency_p50_ms'])}, p95 {_ms(s['latency_p95_ms'])}")
            typer.echo("  stage shares: " + ", ".join(f"{k} {v:.0%} ({s['stage_mean_ms'][k]:.1f} ms)"
                                                      for k, v in s["stage_share"].items()))
    if len(runs) == 2:
        a, b = (out["runs"][k] for k in runs)
        if a["latency_p50_ms"] and b["latency_p50_ms"]:
            typer.echo(f"tracking vs every frame (consecutive runs): results/s x{a['processed_per_s'] / max(b['processed_per_s'], 1e-9):.2f}, "
                       f"p50 latency x{a['latency_p50_ms'] / b['latency_p50_ms']:.2f}, face stage "
                       f"x{a['stage_mean_ms']['face'] / max(b['stage_mean_ms']['face'], 1e-9):.2f}")
    if accuracy_clips > 0:
        model = ExportedModel(bundle, threads=1)
        family = model.family
        with tempfile.TemporaryDirectory(prefix="ea-demo-corpus-") as tmp:
            folder = corpus
            if folder is None:
                guess = Path(bundle).resolve().parent / "corpus"
                folder = guess if guess.is_dir() else Path(tmp)
            if folder == Path(tmp):
                family.synthesize(folder, scale=1, seed=1, log=open(os.devnull, "w"))
            found = [f for f in family.recordings(folder) if family.recording_label(f) is not None]
            if not found:
                raise InputError(f"no labelled recordings under {folder}: give --corpus (a corpus in the model's layout)")
            files = found[:: max(1, len(found) // accuracy_clips)][:accuracy_clips]
            every = (1, cfg.detect_every) if cfg.detect_every != 1 else (1,)
            acc = live_accuracy(model, files, family.recording_label, cfg, every,
                                progress=Progress("clips", len(files), stream=sys.stderr))
        acc["corpus"] = str(folder if corpus or folder != Path(tmp) else "synthetic (seed 1, generated)")
        out["live_accuracy"] = acc
        by = acc["by_detect_every"]
        typer.echo(f"live label accuracy on {acc['clips']} labelled clips ({acc['frames']} frames, {acc['corpus']}; "
                   "a frame without a face counts as wrong): "
                   + ", ".join(f"detect every {e}: {v['accuracy']:.1%} (face {v['face_mean_ms']:.1f} ms/frame, "
                               f"{v['searches']} searches)" for e, v in by.items())
                   + (f"; labels agree on {acc['agreement']:.1%} of frames" if len(by) == 2 else ""))
        d = acc.get("difference")
        if d:
            typer.echo(f"tracking minus every frame: {d['pp']:+.1f} points, 95 % interval "
                       f"[{d['ci95_pp'][0]:+.1f}, {d['ci95_pp'][1]:+.1f}] ({d['method']})")
    if json_out:
        atomic_write_text(json_out, json.dumps(out, indent=2))


@app.command("soak-demo")
def soak_demo_cmd(bundle: Annotated[Path, typer.Argument(help="An audio-visual bundle or export folder (make demo's).")],
                  minutes: Annotated[float, typer.Option(help="How long the demo runs.")] = 30.0,
                  audio: Annotated[str, typer.Option(help="pulse: a PulseAudio null sink as the microphone (unplugged "
                                                          "and plugged in again); file: the wav looped, no mic faults.")] = "pulse",
                  fault_every: Annotated[Optional[float], typer.Option(help="Seconds per fault cycle (mic out, then "
                                                                            "camera out); default: one cycle.")] = None,
                  outage: Annotated[float, typer.Option(help="Seconds each device stays away.")] = 5.0,
                  bucket: Annotated[float, typer.Option(help="Seconds per row of the results/s table.")] = 60.0,
                  max_growth_mib: Annotated[float, typer.Option(help="Fail (exit 1) when RSS grows more than this "
                                                                     "after the warm-up.")] = 64.0,
                  json_out: Annotated[Optional[Path], typer.Option("--json")] = None,
                  markdown: Optional[Path] = None):
    """The demo headless for a long time from looped files, its microphone and camera taken
    away mid-run and given back: RSS growth, results per second over time, every recovery."""
    from edgeaffect.demo.soak import soak, table
    from edgeaffect.io import atomic_write_text

    r = soak(bundle, minutes * 60.0, audio=audio, fault_every_s=fault_every, outage_s=outage, bucket_s=bucket)
    text = table(r)
    typer.echo(text)
    if json_out:
        atomic_write_text(json_out, json.dumps(r, indent=2))
    if markdown:
        atomic_write_text(markdown, text + "\n")
    lost = [x for x in r["recoveries"] if not x["recovered"]]
    if lost or r["rss_growth_mib"] > max_growth_mib:
        why = [f"{x['device']} unplugged at {x['unplugged_s']:.0f} s was not used again" for x in lost]
        if r["rss_growth_mib"] > max_growth_mib:
            why.append(f"RSS grew {r['rss_growth_mib']:.1f} MiB (> {max_growth_mib:g})")
        typer.echo("soak failed: " + "; ".join(why), err=True)
        raise typer.Exit(1)


@app.command("reproducibility")
def reproducibility_cmd(model: Annotated[str, typer.Argument(help="A registered classifier, e.g. aver-ravdess or speechnet-emodb.")],
                        data: Annotated[Path, typer.Option(help="Corpus folder.")],
                        out: Annotated[Path, typer.Option(help="Folder for the runs and reproducibility.json.")],
                        runs: Annotated[int, typer.Option(help="Training runs (seeds 0..R-1), same split.")] = 5,
                        split: str = "paper", epochs: Optional[int] = None, corpus: Optional[str] = None,
                        deterministic: Annotated[bool, typer.Option(help="TensorFlow op determinism in every run.")] = False,
                        same_seed: Annotated[bool, typer.Option(help="Every run with seed 0: measures what is left when only the run differs (thread scheduling, op order).")] = False,
                        parallel: Annotated[int, typer.Option(help="Train the R runs as this many processes at a time (`edgeaffect train` each); the table is the sequential one's.")] = 1):
    """GLR, FLR, PLR, CLR, FCLR, PCLR over R training runs (SpeechNet paper, Eqs. 1-6)."""
    import numpy as np

    from edgeaffect.io import atomic_write_text
    from edgeaffect.train.families import load_corpus, test_predictions, train
    from edgeaffect.train.reproducibility import reproducibility

    from edgeaffect.contract import get_model

    if runs < 2:
        raise InputError("--runs must be at least 2")
    if parallel < 1:
        raise InputError("--parallel must be at least 1")
    if not get_model(model).family_plugin.reproducibility:
        raise InputError(f"reproducibility metrics compare class decisions; {model} is not a classifier")
    dataset = load_corpus(model, data, out / "cache", corpus)
    preds, y_test = [], None
    if parallel > 1:
        from edgeaffect.train.parallel import train_seeds
        from edgeaffect.train.runs import load_run

        seeds = [0 if same_seed else r for r in range(runs)]
        folders = train_seeds(model, data, out, seeds, parallel=parallel, split=split, epochs=epochs,
                              corpus=corpus, deterministic=deterministic)
        for folder in folders:
            pred, y_test = test_predictions(load_run(folder), dataset)
            preds.append(pred)
    for r in range(runs if parallel == 1 else 0):
        run = train(model, dataset, out / f"run-{r}", split=split, seed=0 if same_seed else r, split_seed=0,
                    epochs=epochs, deterministic=deterministic)
        pred, y_test = test_predictions(run, dataset)
        preds.append(pred)
    rep = reproducibility(np.stack(preds), y_test)
    seeds = "all seed 0" if same_seed else f"seeds 0..{runs - 1}"
    atomic_write_text(out / "reproducibility.json", json.dumps({"model": model, "split": split, "seeds": seeds,
                                                                "epochs": epochs, "deterministic": deterministic,
                                                                **rep.to_dict()}, indent=2))
    typer.echo(f"{model}: {runs} runs ({seeds}, one {split} split), {rep.samples} test samples"
               f"{', deterministic ops' if deterministic else ''}")
    typer.echo("   GLR    FLR    PLR    CLR   FCLR   PCLR   mean acc  (%)")
    typer.echo(" ".join(f"{100 * v:6.2f}" for v in (rep.glr, rep.flr, rep.plr, rep.clr, rep.fclr, rep.pclr))
               + f"   {100 * rep.mean_accuracy:6.2f}")
    typer.echo("FLR read as R/2 <= C_i < R (Eq. 2 as printed equals GLR); see edgeaffect/train/reproducibility.py")


def main() -> None:
    from edgeaffect.logs import filter_native_stderr, quiet_python

    # Before anything imports TensorFlow: its C++ start-up lines come first.
    if "--verbose" in sys.argv[1:2] or "-v" in sys.argv[1:2]:
        os.environ["EDGEAFFECT_VERBOSE"] = "1"
    filter_native_stderr()
    quiet_python()
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
