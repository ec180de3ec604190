"""Commands of the desktop's first stages: the models, synthetic corpora, training, and the
whole pipeline behind ``make demo``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand

from edgeaffect.cli._options import FAMILY_OPTIONS, family_options, options_help
from edgeaffect.cli._panels import TRAIN
from edgeaffect.errors import InputError

app = typer.Typer()


@app.command("models", rich_help_panel=TRAIN)
def models_cmd(as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False):
    """List the registered models: paper, task, inputs, parameters and FLOPs beside the paper's,
    and the commands their family adds."""
    from typer.main import get_command_name

    from edgeaffect.contract import get_model, list_models

    rows = []
    for name in list_models():
        s = get_model(name)
        commands = [get_command_name(fn.__name__) for fn in s.family_plugin.commands()]
        rows.append({"name": name, "paper": s.paper, "task": s.task, "commands": commands,
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
                   f"  FLOPs:  {r['flops'] / 1e6:.2f} M (ours, Eq. 3)   paper {p.get('source')}: {p.get('gflops')} G"
                   + (f"\n  family commands: {', '.join(r['commands'])}" if r["commands"] else ""))


@app.command("synth", rich_help_panel=TRAIN)
def synth_cmd(out: Annotated[Path, typer.Argument(help="Folder to write the corpus into.")],
              model: Annotated[str, typer.Option(help="A registered model: its family's corpus layout.")],
              scale: Annotated[int, typer.Option("--scale", "--actors", "--speakers",
                                                 help="Speakers (actors, participants) in the corpus.")] = 4,
              seed: int = 0):
    """Write a synthetic corpus in the real layout of the model's corpus (tests and demos only)."""
    from edgeaffect.contract import get_model

    if scale < 1:
        raise InputError(f"--scale must be at least 1, given {scale}")
    files = get_model(model).family_plugin.synthesize(out, scale=scale, seed=seed)
    typer.echo(f"{len(files)} files under {out} (synthetic; not the real corpus)")


class _TrainCommand(TyperCommand):
    """``train``: its help lists every family's own options (read when the help is asked for)."""

    def format_help(self, ctx, formatter):
        self.epilog = options_help()
        return super().format_help(ctx, formatter)


@app.command("train", rich_help_panel=TRAIN, cls=_TrainCommand, context_settings=FAMILY_OPTIONS)
def train_cmd(ctx: typer.Context,
              model: Annotated[str, typer.Argument(help="A registered model (`edgeaffect models`).")],
              data: Annotated[Path, typer.Option(help="Corpus folder, in one of the layouts the model's family reads.")],
              out: Annotated[Path, typer.Option(help="Run folder (checkpoints, metrics).")],
              split: Annotated[str, typer.Option(help="The family's split kinds; the first, paper, is the paper's protocol.")] = "paper",
              epochs: Annotated[Optional[int], typer.Option(help="Cap on epochs (default: the recipe's).")] = None,
              corpus: Annotated[Optional[str], typer.Option(help="Corpus layout (default: recognised from the files).")] = None,
              ablation: Annotated[Optional[str], typer.Option(help="A row of the family's ablation table (see `edgeaffect ablation --help`).")] = None,
              deterministic: Annotated[bool, typer.Option(help="TensorFlow op determinism (slower).")] = False,
              strategy: Annotated[str, typer.Option(help="default (one device) | mirrored (this machine's GPUs) | multi-worker (machines named by TF_CONFIG; run the same command on each). Global batch and learning rate stay the recipe's; only the chief (worker 0) writes --out. See the README.")] = "default",
              split_seed: Annotated[Optional[int], typer.Option(help="Seed of the data split (default: --seed).")] = None,
              cache: Annotated[Optional[Path], typer.Option(help="Feature cache folder (default: OUT/cache).")] = None,
              workers: Annotated[Optional[int], typer.Option(help="Processes extracting the corpus's features (default: EDGEAFFECT_WORKERS, else min(2, CPUs)); the cache is the same bytes for any number.")] = None,
              seed: int = 0):
    """Train a model with its paper's recipe (a killed run resumes from its last finished
    epoch; a family may say otherwise in its card). The model's family may take more options
    (listed below)."""
    from edgeaffect.contract import get_model
    from edgeaffect.data.jobs import set_workers
    from edgeaffect.train import distribute
    from edgeaffect.train.families import check_request, load_corpus, train

    options = family_options(get_model(model).family_plugin, ctx.args)
    check_request(model, split, ablation, options)  # a typo fails before the corpus is read
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


@app.command("pipeline", rich_help_panel=TRAIN)
def pipeline_cmd(model: Annotated[str, typer.Option(help="A registered model (`edgeaffect models`).")],
                 out: Annotated[Optional[Path], typer.Option(help="Working folder (default: build/MODEL).")] = None,
                 scale: Annotated[Optional[int], typer.Option("--scale", "--actors", "--speakers", help="Speakers (actors) in the synthetic corpus (default: the family's preset).")] = None,
                 epochs: Annotated[Optional[int], typer.Option(help="Epochs on the paper's split (default: the family's preset).")] = None,
                 speaker_epochs: Annotated[Optional[int], typer.Option(help="Epochs on the speaker-independent split, where the family has one (default: the preset).")] = None,
                 qat_epochs: Annotated[Optional[int], typer.Option(help="QAT fine-tune epochs (default: the preset).")] = None,
                 seed: int = 0):
    """The main job: synthetic corpus -> train -> QAT -> export -> verify -> latency -> one table
    (`make demo MODEL=...`)."""
    from edgeaffect.workflows.pipeline import PRESET, default_out, run_pipeline

    given = {"scale": scale, "epochs": epochs, "speaker_epochs": speaker_epochs, "qat_epochs": qat_epochs}
    run_pipeline(out or default_out(model), model=model, seed=seed,
                 **{k: PRESET if v is None else v for k, v in given.items()})
