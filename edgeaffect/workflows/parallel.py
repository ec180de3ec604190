"""Independent training runs (one seed each) as separate processes, a few at a time: the
reproducibility protocol's R seeds on N processes. Each is ``edgeaffect train`` on its own
run folder, sharing the corpus's feature cache (filled once by the caller first), so a run
is the same command a user would type, and its result is the sequential run's.

The processes share the machine's cores; TensorFlow's thread pools in each are left as they
are (changing their size could change a deterministic run's floating-point sums).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from edgeaffect.errors import EdgeAffectError
from edgeaffect.progress import Progress


def train_command(model: str, data: Path, out: Path, cache: Path, seed: int, *, split: str, split_seed: int,
                  epochs: int | None, corpus: str | None, deterministic: bool) -> list[str]:
    cmd = [sys.executable, "-m", "edgeaffect.cli", "train", model, "--data", str(data), "--out", str(out),
           "--cache", str(cache), "--split", split, "--seed", str(seed), "--split-seed", str(split_seed)]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    if corpus is not None:
        cmd += ["--corpus", corpus]
    if deterministic:
        cmd.append("--deterministic")
    return cmd


def train_seeds(model: str, data: Path, out: Path, seeds: list[int], *, parallel: int, split: str = "paper",
                split_seed: int = 0, epochs: int | None = None, corpus: str | None = None,
                deterministic: bool = False, log=sys.stderr) -> list[Path]:
    """Train ``out/run-<i>`` with ``seeds[i]``, ``parallel`` processes at a time; the run
    folders in order. A failed run stops the others and raises with its last lines."""
    out = Path(out)
    folders = [out / f"run-{i}" for i in range(len(seeds))]
    logs = [out / f".run-{i}.log" for i in range(len(seeds))]
    pending = list(range(len(seeds)))
    running: dict[int, tuple[subprocess.Popen, object]] = {}
    progress = Progress(f"training runs ({parallel} processes)", len(seeds), stream=log)
    done = 0
    out.mkdir(parents=True, exist_ok=True)
    try:
        while pending or running:
            while pending and len(running) < parallel:
                i = pending.pop(0)
                fh = open(logs[i], "w")
                cmd = train_command(model, data, folders[i], out / "cache", seeds[i], split=split,
                                    split_seed=split_seed, epochs=epochs, corpus=corpus, deterministic=deterministic)
                running[i] = (subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=os.environ.copy()), fh)
            for i, (proc, fh) in list(running.items()):
                if proc.poll() is None:
                    continue
                fh.close()
                del running[i]
                if proc.returncode != 0:
                    tail = logs[i].read_text(errors="replace").strip().splitlines()[-5:]
                    raise EdgeAffectError(f"run {i} (seed {seeds[i]}) failed (exit {proc.returncode}): "
                                          + " | ".join(tail))
                logs[i].unlink(missing_ok=True)
                done += 1
                progress(done)
            time.sleep(0.2)
    finally:
        for proc, fh in running.values():
            proc.kill()
            proc.wait()
            fh.close()
    return folders
