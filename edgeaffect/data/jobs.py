"""Feature extraction over a corpus: one job per file, in order, on up to ``workers``
processes (spawned: TensorFlow and numba do not survive fork), with a progress line.

Resumable: given a ``resume`` folder, each file's result is kept there as soon as it is
computed (atomically: a killed extraction leaves whole results only) and a later call
computes only the files still missing. Results come back in the jobs' order whatever the
number of workers, and each is computed by the same function in a fresh process or in this
one, so a cache assembled from them has the same bytes for 1, 2 or N workers
(tests/test_distribute_cache.py).

The number of workers: the ``workers`` argument, else ``set_workers`` (the command
line's ``--workers``), else ``EDGEAFFECT_WORKERS``, else min(2, CPUs).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from edgeaffect.progress import Progress

ENV = "EDGEAFFECT_WORKERS"
_workers: int | None = None


def set_workers(n: int | None) -> None:
    """The default number of extraction processes for this process's commands."""
    global _workers
    if n is not None and n < 1:
        from edgeaffect.errors import InputError

        raise InputError(f"--workers must be at least 1 (got {n})")
    _workers = n


def default_workers() -> int:
    if _workers is not None:
        return _workers
    env = os.environ.get(ENV, "")
    if env.isdigit() and int(env) >= 1:
        return int(env)
    return min(2, os.cpu_count() or 1)


def _job_file(folder: Path, i: int, job) -> Path:
    # The job's position and a digest of its description: a changed job list never reuses a result.
    digest = hashlib.sha1(repr(job).encode()).hexdigest()[:12]
    return folder / f"{i:06d}-{digest}.pkl"


def _store(path: Path, result) -> None:
    from edgeaffect.io import atomic_write_bytes

    atomic_write_bytes(path, pickle.dumps(result, protocol=4))


def map_files(fn, jobs: list, what: str, *, workers: int | None = None, min_parallel: int = 16, chunksize: int = 4,
              resume: str | Path | None = None, log=sys.stderr) -> list:
    """``[fn(job) for job in jobs]``; ``fn`` must be a module-level function that returns
    its own errors rather than raising (one broken file must not stop a corpus). With
    ``resume`` (a folder of this tool's own, next to the cache it feeds), results already
    there are read back instead of computed."""
    workers = workers or default_workers()
    results: list = [None] * len(jobs)
    todo = list(range(len(jobs)))
    folder = Path(resume) if resume is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        todo = []
        for i, job in enumerate(jobs):
            path = _job_file(folder, i, job)
            try:
                results[i] = pickle.loads(path.read_bytes())
            except (OSError, pickle.UnpicklingError, EOFError):
                todo.append(i)
        if len(todo) < len(jobs):
            print(f"  {what}: {len(jobs) - len(todo)} of {len(jobs)} files done before, resuming", file=log, flush=True)
    progress = Progress(what, len(todo), stream=log)

    def keep(i, r, n):
        results[i] = r
        if folder is not None:
            _store(_job_file(folder, i, jobs[i]), r)
        progress(n)

    if workers > 1 and len(todo) >= min_parallel:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for n, (i, r) in enumerate(zip(todo, pool.map(fn, [jobs[i] for i in todo], chunksize=chunksize)), 1):
                keep(i, r, n)
    else:
        for n, i in enumerate(todo, 1):
            keep(i, fn(jobs[i]), n)
    return results


def forget(resume: str | Path | None) -> None:
    """Remove a resume folder once the cache it fed is written."""
    if resume is not None:
        shutil.rmtree(resume, ignore_errors=True)
