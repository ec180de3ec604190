"""Killed and run again: `edgeaffect train` SIGKILLed mid-epoch resumes from its last finished
epoch and ends where an uninterrupted run ends; `edgeaffect export` SIGKILLed while it writes
formats leaves nothing a later command trusts, and the same command then succeeds.

Tolerance: none. With ``--deterministic`` (TensorFlow op determinism) every input of an epoch
is restored or recomputed exactly (weights, Adam's step and moments, the dropout generators'
states, early stopping's best weights and wait, the sample order from (seed, epoch)), so the
resumed run's weights and test metrics must be bit-identical to the uninterrupted run's.
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

from tests.test_cli import cli

EPOCHS = 12


def _start(*args) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "edgeaffect.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _checkpoint_epoch(path: Path) -> int | None:
    try:
        with np.load(path) as z:
            return int(json.loads(str(z["meta"]))["epoch"])
    except (OSError, ValueError, KeyError):  # not there yet (it is replaced atomically, never torn)
        return None


def _weights(path: Path) -> dict[str, np.ndarray]:
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.fixture(scope="module")
def run_folders(corpus, dataset, tmp_path_factory):
    """Two run folders whose feature cache is already filled (the session's dataset)."""
    from edgeaffect.families.aver.corpora import find_av_clips
    from edgeaffect.families.aver.dataset import _cache_key, save_dataset
    from edgeaffect.families.aver.ravdess import EMOTIONS
    from edgeaffect.families.aver.features import AverFeatureConfig
    from edgeaffect.contract import get_model

    root = tmp_path_factory.mktemp("kill-resume")
    key = _cache_key(find_av_clips(corpus, EMOTIONS), AverFeatureConfig(), get_model("aver-ravdess").config.time_stretch_rate)
    for name in ("whole", "killed"):
        save_dataset(root / name / "cache" / f"aver-features-{key}.npz", dataset)
    return root


@pytest.mark.slow
def test_training_killed_mid_epoch_resumes_and_ends_as_an_uninterrupted_run(corpus, run_folders):
    whole, killed = run_folders / "whole", run_folders / "killed"
    args = ["train", "aver-ravdess", "--data", corpus, "--epochs", EPOCHS, "--deterministic"]
    reference = _start(*args, "--out", whole)  # the uninterrupted run, alongside
    victim = _start(*args, "--out", killed)
    ckpt, seen, deadline = killed / "checkpoint.npz", None, time.monotonic() + 300
    while time.monotonic() < deadline and victim.poll() is None:
        e = _checkpoint_epoch(ckpt)
        if e is not None and e >= 3:
            seen = e
            break
        time.sleep(0.02)
    assert seen is not None and seen < EPOCHS, "the run must be killed during a later epoch"
    time.sleep(0.2)  # into the next epoch (an epoch here takes about a second)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert not (killed / "run.json").exists()
    left = _checkpoint_epoch(ckpt)
    assert left in (seen, seen + 1), (seen, left)  # the last finished epoch, nothing older, nothing torn
    split_before = (killed / "split.json").read_text()

    r = cli(*args, "--out", killed, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resuming from the checkpoint after epoch {left}" in r.stderr
    out, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err[-3000:]

    a, b = (json.loads((d / "run.json").read_text()) for d in (whole, killed))
    assert b["resumed_from_epoch"] == left and a["resumed_from_epoch"] == 0
    assert a["epochs"] == b["epochs"] == EPOCHS
    # The same split: the indices written when the run started, and again at the end.
    assert (killed / "split.json").read_text() == split_before == (whole / "split.json").read_text()
    assert a["split_sha256"] == b["split_sha256"] and a["split"] == b["split"]
    # The same model: test metrics equal, weights bit-identical (deterministic ops; see the top).
    assert a["test"] == b["test"]
    wa, wb = _weights(whole / "weights.h5"), _weights(killed / "weights.h5")
    assert sorted(wa) == sorted(wb) and len(wa) >= 8
    assert max(float(np.abs(wa[k] - wb[k]).max()) for k in wa) == 0.0
    # Finished: the checkpoint is gone, run.json is the record; no temp file is left.
    assert not ckpt.exists() and not (whole / "checkpoint.npz").exists()
    assert not [p.name for p in killed.iterdir() if p.name.startswith(".")]


def test_a_checkpoint_of_another_request_is_refused(corpus, run_folders, tmp_path):
    from edgeaffect.train.resume import Checkpoint

    folder = run_folders / "killed"
    Checkpoint(folder, {"model": "aver-ravdess", "seed": 99}).save({"epoch": 1, "history": [], "early_stop": {}},
                                                                  {"weights": []})
    try:
        r = cli("train", "aver-ravdess", "--data", corpus, "--epochs", EPOCHS, "--out", folder, timeout=600)
    finally:
        (folder / "checkpoint.npz").unlink(missing_ok=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "interrupted run of another request" in r.stderr and "seed" in r.stderr


@pytest.mark.slow
def test_export_killed_while_writing_formats_leaves_nothing_trusted(trained_run, tmp_path):
    out = tmp_path / "export"
    args = ["export", trained_run.folder, "--out", out, "--formats", "tflite-fp32,onnx-fp32"]
    p = _start(*args)
    deadline, partial = time.monotonic() + 300, None
    while time.monotonic() < deadline and p.poll() is None:
        temps = [d for d in tmp_path.iterdir() if d.name.startswith(".export.") and d.is_dir()]
        if temps and any(f.suffix in (".tflite", ".onnx") for f in temps[0].rglob("*")):
            partial = temps[0]
            break
        time.sleep(0.02)
    assert partial is not None, "the export must be killed while it writes its formats"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    # Nothing under the final name; what is left is a hidden temp folder no command reads.
    assert not out.exists()
    r = cli("verify", out)
    assert r.returncode == 2 and "Traceback" not in r.stderr

    r = cli(*args, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r = cli("verify", out)
    assert r.returncode == 0 and "all checksums match" in r.stdout, r.stdout + r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["files"]) == ["onnx-fp32", "tflite-fp32"]
    assert all((out / f["file"]).is_file() for f in manifest["files"].values())
    assert not partial.exists(), "the killed writer's temp folder is swept by the next export"
    assert not [d.name for d in tmp_path.iterdir() if d.name.startswith(".")]

    # Killed again while replacing a good export: the good one stays whole and verifies.
    p = _start(*args)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and p.poll() is None:
        temps = [d for d in tmp_path.iterdir() if d.name.startswith(".export.") and d.is_dir()]
        if temps and any(f.suffix in (".tflite", ".onnx") for f in temps[0].rglob("*")):
            break
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    r = cli("verify", out)
    assert r.returncode == 0 and "all checksums match" in r.stdout, r.stdout + r.stderr


def _tiny(seed: int):
    from edgeaffect.keras_backend import keras

    k = keras()
    k.utils.set_random_seed(seed)
    x = k.layers.Input((6,))
    h = k.layers.Dropout(0.3)(k.layers.Dense(16, activation="relu")(x))
    m = k.Model(x, k.layers.Dense(3, activation="softmax")(h))
    m.compile(optimizer=k.optimizers.Adam(3e-2), loss="categorical_crossentropy")
    return m


def test_early_stopping_state_and_dropout_come_back_after_an_interruption(tmp_path):
    """In process: an exception after a few epochs stands in for the kill. The early-stopping
    wait, its best weights, Adam's moments and the dropout generators must come back, so the
    resumed run stops at the same epoch with the same weights as one never interrupted.
    Tolerance 1e-6: this small CPU model runs outside TensorFlow's determinism switch (which
    would stay on for the whole test session), and its float sums may be reordered."""
    from edgeaffect.train.resume import EarlyStop, fit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[(x[:, 0] > 0).astype(int) + (x[:, 1] > 1)]
    # Noisy validation targets: the validation loss soon stops improving, so early stopping fires.
    xv, yv = x[:32] + rng.normal(0, 1.5, (32, 6)).astype(np.float32), y[::-1][:32]
    kw = dict(validation=(xv, yv), epochs=60, batch_size=16, seed=3, request={"what": "tiny"}, split_sha256="s",
              early_stop=EarlyStop("val_loss", 0.0, patience=3))
    whole = _tiny(3)
    ref = fit(whole, x, y, run_dir=tmp_path / "whole", **kw)
    assert ref["stopped_early"] and len(ref["history"]) < 60

    model, calls = _tiny(3), {"n": 0}
    real_fit = model.fit

    def dies_at_epoch_3(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the process dies during its 3rd epoch
        return real_fit(*a, **k)

    model.fit = dies_at_epoch_3
    with pytest.raises(KeyboardInterrupt):
        fit(model, x, y, run_dir=tmp_path / "killed", **kw)
    resumed = _tiny(3)  # a new process: a fresh model, everything else from the checkpoint
    out = fit(resumed, x, y, run_dir=tmp_path / "killed", **kw)
    assert out["resumed_from"] == 2 and out["stopped_early"]
    assert len(out["history"]) == len(ref["history"])
    np.testing.assert_allclose([h["val_loss"] for h in out["history"]], [h["val_loss"] for h in ref["history"]],
                               atol=1e-6)
    for a, b in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
