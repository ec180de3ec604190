"""Feature extraction over a corpus: one job per file, in order, on up to ``workers``
processes (spawned: TensorFlow and numba do not survive fork), with a progress line."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from edgeaffect.progress import Progress


def map_files(fn, jobs: list, what: str, *, workers: int | None = None, min_parallel: int = 16, chunksize: int = 4,
              log=sys.stderr) -> list:
    """``[fn(job) for job in jobs]``; ``fn`` must be a module-level function that returns
    its own errors rather than raising (one broken file must not stop a corpus)."""
    workers = workers or min(2, os.cpu_count() or 1)
    progress = Progress(what, len(jobs), stream=log)
    results = []
    if workers > 1 and len(jobs) >= min_parallel:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for r in pool.map(fn, jobs, chunksize=chunksize):
                results.append(r)
                progress(len(results))
    else:
        for job in jobs:
            results.append(fn(job))
            progress(len(results))
    return results
