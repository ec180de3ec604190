"""Training on several devices or machines with TensorFlow's own engine (``tf.distribute``):
one choice per process, shared by every family.

``edgeaffect train ... --strategy NAME``:

- ``default``: no distribution (one device, as before).
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over the GPUs of this machine (the CPU
  when there is none; ``EDGEAFFECT_CPU_DEVICES=N`` splits the CPU into N logical devices,
  for tests and benchmarks on a machine without GPUs).
- ``multi-worker``: ``tf.distribute.MultiWorkerMirroredStrategy`` across processes or
  machines, configured by the ``TF_CONFIG`` environment variable (README, "Training on
  several GPUs or machines"). Every worker runs the same command; worker 0 is the chief.

What stays the recipe's: the global batch (Keras splits each batch over the replicas:
per-replica batch = global batch / replicas; gradients are summed over the replicas of a
loss averaged over the global batch, so one step is the single-device step) and the
learning rate (unchanged: the step is the same, so no linear scaling rule is applied).
Two differences by construction: dropout draws its masks per replica (another random
stream than one device's), and a loss that is not a mean over samples (spectrotemporal's
RMSE over the batch) becomes the mean of the replicas' losses.

Only the chief writes: the run folder (checkpoints, split, metrics, weights, run.json) and
anything exported. Other workers write into a private temporary folder (TensorFlow's
advice for non-chief writers), removed when they finish. A run whose chief (or any worker)
was killed resumes when the same command runs again on every worker: the chief reads its
checkpoint and every worker receives the chief's state (``broadcast``), so no shared file
system is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError

STRATEGIES = ("default", "mirrored", "multi-worker")
CPU_DEVICES_ENV = "EDGEAFFECT_CPU_DEVICES"


def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise InputError("--strategy multi-worker needs TF_CONFIG (the cluster and this worker's task); see the README "
                         "section 'Training on several GPUs or machines'")
    try:
        cfg = json.loads(raw)
        workers = cfg["cluster"]["worker"]
        task = cfg["task"]
        if task["type"] not in ("worker", "chief") or not isinstance(task["index"], int) or not workers:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise InputError('TF_CONFIG is not {"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", '
                         '"index": N}}; see the README section \'Training on several GPUs or machines\'') from None
    return cfg


def _split_cpu(tf, n: int) -> None:
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:  # TensorFlow already started in this process: keep what it has
        pass


class Distribution:
    """The process's strategy and its place in the cluster."""

    def __init__(self, name: str = "default"):
        if name not in STRATEGIES:
            raise InputError(f"unknown --strategy '{name}'; choose one of: {', '.join(STRATEGIES)}")
        self.name = name
        self.task_type, self.task_index, self.workers = "worker", 0, 1
        self._tmp: list[Path] = []
        if name == "default":
            self.strategy = None
            return
        cfg = _tf_config() if name == "multi-worker" else None  # a bad TF_CONFIG fails before TensorFlow starts
        from edgeaffect.keras_backend import tf

        t = tf()
        cpus = int(os.environ.get(CPU_DEVICES_ENV, "0") or 0)
        if cpus > 1:
            _split_cpu(t, cpus)
        if name == "mirrored":
            gpus = t.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or t.config.list_logical_devices("CPU"))]
            self.strategy = t.distribute.MirroredStrategy(devices)
        else:
            self.task_type, self.task_index = cfg["task"]["type"], int(cfg["task"]["index"])
            self.workers = len(cfg["cluster"]["worker"]) + len(cfg["cluster"].get("chief", []))
            # Ring all-reduce over gRPC: works on CPUs and GPUs alike (NCCL is picked with AUTO on GPUs).
            options = t.distribute.experimental.CommunicationOptions(
                implementation=t.distribute.experimental.CommunicationImplementation.AUTO)
            self.strategy = t.distribute.MultiWorkerMirroredStrategy(communication_options=options)

    @property
    def replicas(self) -> int:
        return 1 if self.strategy is None else int(self.strategy.num_replicas_in_sync)

    @property
    def is_chief(self) -> bool:
        """Worker 0 (or the task named ``chief``) writes; every other worker only computes."""
        if self.name != "multi-worker":
            return True
        return self.task_type == "chief" or (self.task_type == "worker" and self.task_index == 0
                                              and "chief" not in json.loads(os.environ["TF_CONFIG"])["cluster"])

    def scope(self):
        """Where models, optimizers and their variables are made (build and compile)."""
        return nullcontext() if self.strategy is None else self.strategy.scope()

    def output_dir(self, out: Path) -> Path:
        """``out`` for the chief; a private temporary folder for any other worker."""
        if self.is_chief:
            return Path(out)
        tmp = Path(tempfile.mkdtemp(prefix=f"edgeaffect-worker{self.task_index}-"))
        self._tmp.append(tmp)
        return tmp

    def cleanup(self) -> None:
        for tmp in self._tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        self._tmp.clear()

    def broadcast(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """The chief's ``arrays`` on every worker (every worker passes arrays of the same
        shapes and dtypes; only the chief's values matter). An all-gather, so exact for any
        dtype. Within one process (default, mirrored) it returns ``arrays`` unchanged."""
        if self.name != "multi-worker" or not arrays:
            return [np.asarray(a) for a in arrays]
        from edgeaffect.keras_backend import tf

        t = tf()
        tensors = [t.constant(np.asarray(a)[None]) for a in arrays]

        def gather(*xs):
            ctx = t.distribute.get_replica_context()
            return [ctx.all_gather(x, axis=0) for x in xs]

        out = self.strategy.run(gather, args=tuple(tensors))
        # Replica 0 is the chief's first device (workers are ordered by task index).
        return [self.strategy.experimental_local_results(o)[0].numpy()[0] for o in out]

    def describe(self) -> dict:
        """For run.json: how the run was distributed."""
        return {"strategy": self.name, "replicas": self.replicas, "workers": self.workers}


_current = Distribution("default")


def current() -> Distribution:
    return _current


@contextmanager
def using(name: str = "default"):
    """Make ``name`` the process's strategy for the block (built once, at the start of the
    command, before TensorFlow runs anything: MultiWorkerMirroredStrategy must come first)."""
    global _current
    previous = _current
    _current = previous if previous.name == name else Distribution(name)
    try:
        yield _current
    finally:
        _current.cleanup()
        _current = previous


def scope():
    """``with scope(): model = build(); model.compile(...)`` in every family's training."""
    return _current.scope()


def per_replica_note(global_batch: int, log=sys.stderr) -> None:
    d = _current
    if d.replicas > 1:
        print(f"  {d.name}: {d.replicas} replicas, global batch {global_batch} (per replica "
              f"{global_batch / d.replicas:g}), learning rate unchanged", file=log, flush=True)
