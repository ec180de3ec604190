"""The benchmarks that need more than an export folder: ``bench-pipeline`` (a pipeline
folder: its run, corpus and export) and the corpus ``bench-demo`` scores the live label on
(the pipeline folder's, given, or a small synthetic one)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from edgeaffect.errors import InputError


def bench_pipeline(work: Path, *, model: str | None = None, threads: int = 1, budget_s: float = 3.0,
                   rounds: int = 40, clips: int = 8, log=sys.stdout) -> Path:
    """p50 / p90 per format, Keras direct and one recording -> inputs, then clip -> label
    against the paper-literal preprocessing (interleaved); returns the JSON written."""
    from edgeaffect.io import atomic_write_text
    from edgeaffect.machine import machine
    from edgeaffect.measure.bench import bench_clip_to_label, bench_export, held_to_threads
    from edgeaffect.train.runs import load_run

    if not (work / "export" / "manifest.json").exists():
        if model is None:
            raise InputError(f"no export in {work}: give --model to run the pipeline there first, or run "
                             f"`edgeaffect pipeline --model MODEL --out {work}`")
        from edgeaffect.workflows.pipeline import run_pipeline

        print(f"no export in {work}: running the pipeline first", file=sys.stderr)
        run_pipeline(work, model=model)
    print(f"machine: {machine()}; batch 1, {threads} thread(s), {budget_s} s per row after warm-up", file=log)
    run = load_run(work / "runs" / "paper-split")
    found = run.family.recordings(work / "corpus")
    if not found:
        raise InputError(f"no recordings under {work / 'corpus'}: rerun `edgeaffect pipeline --out {work}`")
    with held_to_threads(threads):  # decoding, OpenCV and BLAS too: a one-thread row is one
        rows = bench_export(work / "export", found[0], keras_model=run.model, threads=threads, budget_s=budget_s,
                            log=log)
    # Clip -> label, today's preprocessing against the paper-literal one, interleaved in one
    # run (a ratio that holds on a busy machine), decoding and OpenCV on `threads` thread(s).
    chosen = found[:: max(1, len(found) // clips)][:clips]
    ab = bench_clip_to_label(work / "export", chosen, threads=threads, rounds=rounds, log=log)
    path = work / "bench-pipeline.json"
    atomic_write_text(path, json.dumps({"machine": machine(), "threads": threads, "rows": rows,
                                        "clip_to_label": ab}, indent=2))
    return path


def labelled_clips(family, bundle: Path, corpus: Path | None, count: int, scratch: Path) -> tuple[list[Path], str]:
    """``count`` labelled recordings spread over a corpus, and what that corpus is: ``corpus``;
    else the pipeline folder's (beside the bundle); else a small synthetic one in ``scratch``."""
    folder = corpus
    if folder is None:
        guess = Path(bundle).resolve().parent / "corpus"
        folder = guess if guess.is_dir() else scratch
    if folder == scratch:
        family.synthesize(folder, scale=1, seed=1, log=open(os.devnull, "w"))
    found = [f for f in family.recordings(folder) if family.recording_label(f) is not None]
    if not found:
        raise InputError(f"no labelled recordings under {folder}: give --corpus (a corpus in the model's layout)")
    files = found[:: max(1, len(found) // count)][:count]
    return files, str(folder if corpus or folder != scratch else "synthetic (seed 1, generated)")
