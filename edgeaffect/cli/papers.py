"""The papers: their protocols on a corpus, ablation tables, run-to-run reproducibility, and
the reports beside their figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgeaffect.cli._options import FAMILY_OPTIONS, family_options
from edgeaffect.cli._panels import PAPERS
from edgeaffect.errors import InputError

app = typer.Typer()


@app.command("reproduce", rich_help_panel=PAPERS)
def reproduce_cmd(paper: Annotated[str, typer.Argument(help="A paper id (the tables of the families' reproduce.toml; a wrong one lists them).")],
                  data: Annotated[Path, typer.Option(help="Your copy of one of the paper's corpora (its own layout).")],
                  out: Annotated[Path, typer.Option(help="Folder for the runs and reproduce.json; run again to resume.")] = Path("build/reproduce"),
                  quick: Annotated[bool, typer.Option("--quick", help="A short version for smoke tests: few epochs, 2 runs, the first protocol only.")] = False,
                  corpus: Annotated[Optional[str], typer.Option(help="Which of the paper's corpora --data is (default: recognised from the files).")] = None,
                  model: Annotated[Optional[str], typer.Option(help="Another registered model of the paper's family than the recipe's.")] = None,
                  epochs: Annotated[Optional[int], typer.Option(help="Cap on epochs per run (default: the recipe's; --quick: its quick one).")] = None,
                  option: Annotated[Optional[list[str]], typer.Option("--set", help="A training option of the family, KEY=VALUE (repeat), e.g. backbone=CHECKPOINT_DIR.")] = None):
    """A paper's protocols on your copy of its corpus, ours beside the paper's figures (recipes: each family's reproduce.toml)."""
    from edgeaffect.workflows.reproduce import parse_set_options, reproduce, table_lines

    if epochs is not None and epochs < 1:
        raise InputError("--epochs must be at least 1")
    doc = reproduce(paper, data, out, quick=quick, corpus=corpus, model=model, epochs=epochs,
                    options=parse_set_options(option or []))
    for line in table_lines(doc):
        typer.echo(line)
    typer.echo(f"written: {out / 'reproduce.json'}")


@app.command("ablation", rich_help_panel=PAPERS, context_settings=FAMILY_OPTIONS)
def ablation_cmd(ctx: typer.Context,
                 model: Annotated[str, typer.Argument(help="A model whose family has an ablation table.")],
                 data: Annotated[Path, typer.Option(help="Corpus folder.")],
                 out: Annotated[Path, typer.Option(help="Folder for one run per row and ablation.json.")],
                 rows: Annotated[Optional[str], typer.Option(help="Comma-separated rows (default: all of the table).")] = None,
                 split: str = "paper", epochs: Optional[int] = None, seed: int = 0,
                 corpus: Optional[str] = None):
    """Rerun the paper's ablation table: one training run per removed module, same split and
    seed, figures on the partition the paper compares modules on (test, or the family's).
    Takes the family's training options as `train` does (e.g. a backbone folder)."""
    from edgeaffect.contract import get_model
    from edgeaffect.workflows.ablation import row_names, run_ablation, table_lines

    row_names(model, rows)  # a typo fails before the options are read
    options = family_options(get_model(model).family_plugin, ctx.args) or None
    doc = run_ablation(model, data, out, rows=rows, split=split, epochs=epochs, seed=seed, corpus=corpus,
                       options=options)
    for line in table_lines(doc):
        typer.echo(line)


@app.command("reproducibility", rich_help_panel=PAPERS)
def reproducibility_cmd(model: Annotated[str, typer.Argument(help="A registered classifier (`edgeaffect models`).")],
                        data: Annotated[Path, typer.Option(help="Corpus folder.")],
                        out: Annotated[Path, typer.Option(help="Folder for the runs and reproducibility.json.")],
                        runs: Annotated[int, typer.Option(help="Training runs (seeds 0..R-1), same split.")] = 5,
                        split: str = "paper", epochs: Optional[int] = None, corpus: Optional[str] = None,
                        deterministic: Annotated[bool, typer.Option(help="TensorFlow op determinism in every run.")] = False,
                        same_seed: Annotated[bool, typer.Option(help="Every run with seed 0: measures what is left when only the run differs (thread scheduling, op order).")] = False,
                        parallel: Annotated[int, typer.Option(help="Train the R runs as this many processes at a time (`edgeaffect train` each); the table is the sequential one's.")] = 1):
    """GLR, FLR, PLR, CLR, FCLR, PCLR over R training runs (SpeechNet paper, Eqs. 1-6)."""
    from edgeaffect.workflows.reproducibility import run_reproducibility, table_lines

    doc = run_reproducibility(model, data, out, runs=runs, split=split, epochs=epochs, corpus=corpus,
                              deterministic=deterministic, same_seed=same_seed, parallel=parallel)
    for line in table_lines(doc):
        typer.echo(line)


@app.command("report", rich_help_panel=PAPERS)
def report_cmd(sources: Annotated[Optional[list[Path]], typer.Argument(help="With --html: folders (or JSON files) to gather; default: the make targets' folders under build/.", show_default=False)] = None,
               bench: Annotated[Optional[Path], typer.Option(help="`edgeaffect bench --json` output: adds our measured times.")] = None,
               out: Annotated[Optional[Path], typer.Option(help="Also write the Markdown here.")] = None,
               html: Annotated[Optional[Path], typer.Option("--html", help="Write a static page (OUT/index.html + OUT/img/): the models beside the papers, every export's verification, benchmarks, budgets, the latency gate, roofline plots, confusion matrices / error plots, reproduce tables.")] = None):
    """Our parameters, FLOPs, memory and time beside every figure in the four papers; with
    --html, one page of everything the toolkit wrote about its models."""
    from edgeaffect.io import atomic_write_text, read_json
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
        data = read_json(bench, f"--bench file not found: {bench}", "give what `edgeaffect bench --json` writes")
        measured = measured_from_bench(data, str(bench))
    # A hand-edited bench file may hold a lone surrogate ("\ud800"), which no UTF-8 output can: escaped.
    text = report(measured).encode("utf-8", "backslashreplace").decode("utf-8")
    typer.echo(text)
    if out:
        atomic_write_text(out, text)
