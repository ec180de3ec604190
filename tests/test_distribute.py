"""Training past one device: MultiWorkerMirroredStrategy with two worker processes on this
machine (CPU, loopback ports), MirroredStrategy over two logical CPU devices, each against
one process training the same tiny model (tests/distribute_worker.py: the test-only tone
family, no dropout) with the same global batch, seed and sample order.

Tolerance on the final weights: 1e-4 absolute (the weights are of order 1). A distributed
step sums two per-replica gradients, each a sum over half the batch divided by the global
batch size; the single process sums over the whole batch at once: the same function, in
another float32 summation order (a few ulp per step; measured: 6e-8 after 30 steps). A
wrong global batch (each replica taking the recipe's batch), a scaled learning rate or
replicas on different samples move the weights by 1e-2 or more.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgeaffect.train.bench_distribute import free_local_ports

WORKER = Path(__file__).resolve().parent / "distribute_worker.py"
EPOCHS = 5
TOLERANCE = 1e-4


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    root = str(Path(__file__).resolve().parents[1])
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.pathsep.join([root, env.get("PYTHONPATH", "")]),
                "CUDA_VISIBLE_DEVICES": "-1", **extra})
    return env


def _start(corpus, out, strategy, epochs=EPOCHS, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), str(corpus), str(out), strategy, str(epochs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(**env))


def _finish(procs: list[subprocess.Popen], timeout: float = 240) -> list[dict]:
    """Wait for every process (all killed if one fails or time runs out); their JSON lines."""
    deadline, results = time.monotonic() + timeout, []
    try:
        for p in procs:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert p.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results


def _cluster(corpus, out, epochs=EPOCHS) -> list[subprocess.Popen]:
    ports = free_local_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    return [_start(corpus, out, "multi-worker", epochs,
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
            for i in range(2)]


def _weights(path: Path) -> dict[str, np.ndarray]:
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def _max_diff(a: Path, b: Path) -> float:
    wa, wb = _weights(a / "weights.h5"), _weights(b / "weights.h5")
    assert sorted(wa) == sorted(wb) and len(wa) == 4
    return max(float(np.abs(wa[k] - wb[k]).max()) for k in wa)


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    sys.path.insert(0, str(WORKER.parent))
    import toy_family

    root = tmp_path_factory.mktemp("tones")
    toy_family.FAMILY.synthesize(root, scale=80, seed=0)  # 160 samples: 96 train, 6 steps of 16 an epoch
    return root


@pytest.fixture(scope="module")
def single(tones, tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "run"
    (r,) = _finish([_start(tones, out, "default")])
    assert r["chief"] and r["replicas"] == 1
    return out


def test_two_worker_processes_train_as_one_and_only_the_chief_writes(tones, single, tmp_path):
    out = tmp_path / "run"
    chief, other = _finish(_cluster(tones, out))
    assert chief["chief"] and not other["chief"] and chief["replicas"] == other["replicas"] == 2
    assert chief["folder"] == str(out) and other["folder"] != str(out)
    assert not Path(other["folder"]).exists()  # the non-chief's private folder is gone
    # The run folder is the chief's alone: its files, written once, the checkpoint removed at the end.
    assert sorted(p.name for p in out.iterdir()) == ["run.json", "split.json", "weights.h5"]
    info = json.loads((out / "run.json").read_text())
    assert info["distribution"] == {"strategy": "multi-worker", "replicas": 2, "workers": 2}
    assert info["epochs"] == EPOCHS
    assert (out / "split.json").read_text() == (single / "split.json").read_text()
    # Both workers ended with the same model.
    assert abs(chief["weights_sum"] - other["weights_sum"]) == 0.0
    assert _max_diff(single, out) <= TOLERANCE


def test_mirrored_over_two_logical_cpus_trains_as_one_process(tones, single, tmp_path):
    out = tmp_path / "run"
    (r,) = _finish([_start(tones, out, "mirrored", EDGEAFFECT_CPU_DEVICES="2")])
    assert r["chief"] and r["replicas"] == 2
    assert json.loads((out / "run.json").read_text())["distribution"]["replicas"] == 2
    assert _max_diff(single, out) <= TOLERANCE


def test_bad_strategy_or_cluster_is_one_clear_error(monkeypatch):
    from edgeaffect.errors import InputError
    from edgeaffect.train.distribute import Distribution

    with pytest.raises(InputError, match="unknown --strategy 'many'"):
        Distribution("many")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(InputError, match="needs TF_CONFIG"):
        Distribution("multi-worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(InputError, match="TF_CONFIG is not"):
        Distribution("multi-worker")


@pytest.mark.slow
def test_a_killed_worker_resumes_from_the_chiefs_checkpoint(tones, single, tmp_path):
    """Worker 1 is killed during training; the chief then cannot go on and is stopped too.
    The same two commands again: the chief resumes from its last checkpoint, worker 1 receives
    the chief's state, and the run ends as the uninterrupted one (same tolerance)."""
    out, epochs = tmp_path / "run", 40
    ref = tmp_path / "ref"
    _finish([_start(tones, ref, "default", epochs)])
    procs = _cluster(tones, out, epochs)
    ckpt, deadline, seen = out / "checkpoint.npz", time.monotonic() + 240, None
    try:
        while time.monotonic() < deadline and procs[0].poll() is None:
            try:
                with np.load(ckpt) as z:
                    seen = int(json.loads(str(z["meta"]))["epoch"])
            except (OSError, ValueError, KeyError):
                seen = None
            if seen is not None and seen >= 3:
                break
            time.sleep(0.05)
        assert seen is not None and seen < epochs
        procs[1].send_signal(signal.SIGKILL)
        procs[1].wait(timeout=30)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
    assert not (out / "run.json").exists() and ckpt.exists()
    chief, _ = _finish(_cluster(tones, out, epochs))
    info = json.loads((out / "run.json").read_text())
    assert info["resumed_from_epoch"] >= 3 and info["epochs"] == epochs
    assert _max_diff(ref, out) <= TOLERANCE


def test_cli_refuses_a_bad_strategy_in_one_line(tmp_path):
    from tests.test_cli import assert_one_line_error, cli

    assert_one_line_error(cli("train", "aver-ravdess", "--data", tmp_path, "--out", tmp_path / "r", "--strategy", "many"),
                          "unknown --strategy 'many'")
    assert not (tmp_path / "r").exists()
    assert_one_line_error(cli("export", tmp_path, "--out", tmp_path / "e", "--strategy", "multi-worker"),
                          "--strategy multi-worker is for training")


@pytest.mark.slow
def test_wav2vec2s_own_loop_under_mirrored_is_the_single_device_step(tmp_path):
    """fit_head's custom step: rows of each batch per replica, the loss a share of the global
    mean, weight decay added once in all (measured: 5e-7 after 12 steps)."""
    runs = {}
    for strategy in ("default", "mirrored"):
        p = subprocess.Popen([sys.executable, str(WORKER), "--wav2vec2", strategy, str(tmp_path / f"{strategy}.npy")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_env(EDGEAFFECT_CPU_DEVICES="2"))
        runs[strategy] = _finish([p])[0]
    assert runs["default"]["replicas"] == 1 and runs["mirrored"]["replicas"] == 2
    a, b = (np.load(tmp_path / f"{s}.npy") for s in ("default", "mirrored"))
    assert a.shape == b.shape and float(np.abs(a - b).max()) <= TOLERANCE
