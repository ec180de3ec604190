"""A training run folder, whatever the family: ``run.json`` names the model (and so the
family), which rebuilds the run from it. Desktop side."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from edgeaffect.errors import InputError
from edgeaffect.io import read_json
from edgeaffect.contract import ModelSpec, get_model
from edgeaffect.schema import Int, List, Nullable, Str, Table, check


@dataclass
class Run:
    """A trained model and its record; families subclass it with what their inputs need
    (normalisation statistics, feature configs)."""

    folder: Path
    spec: ModelSpec
    model: object  # tf_keras.Model
    info: dict

    @property
    def family(self):
        return self.spec.family_plugin


# The fields shared code reads; each family reads (and checks) its own when it loads the run.
RUN_INFO = Table({"model": Str(), "family": Str(), "toolkit_version": Str(), "split": Table({"kind": Str()}),
                  "seed": Int(), "split_seed": Nullable(Int()), "epochs": Int(min=0),
                  "labels": List(Str(), min_len=1), "test": Table({})},
                 optional={"family", "toolkit_version", "split", "seed", "split_seed", "epochs", "labels", "test"},
                 what="a JSON object")


def read_run_info(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "run.json"
    info = read_json(path, f"not a training run folder (no run.json): {run_dir}; train one with `edgeaffect train`",
                     "retrain the run with `edgeaffect train`")
    if not isinstance(info, dict) or not isinstance(info.get("model"), str):
        raise InputError(f"{path} names no model; retrain the run with `edgeaffect train`")
    check(RUN_INFO, info, f"{path} (retrain the run with `edgeaffect train`)")
    return info


def load_run(run_dir: str | Path) -> Run:
    info = read_run_info(run_dir)
    spec = get_model(info["model"])
    family = spec.family_plugin
    source = f"{Path(run_dir) / 'run.json'} (retrain the run with `edgeaffect train`)"
    if family.run_keys:
        check(Table(family.run_keys, what="a JSON object"), info, source)
    try:
        return family.load_run(Path(run_dir), info)
    except (TypeError, ValueError) as exc:  # a config the model cannot be rebuilt from
        raise InputError(f"{source}: the model cannot be rebuilt from its record ({exc})") from None


def run_dataset(run: Run):
    """The feature dataset a run was trained on (saved in its folder for export)."""
    return run.family.run_dataset(run)


def split_inputs(run: Run, data, part: str = "test"):
    """The inputs and targets of a run's split part, rebuilt from its recorded seed and kind."""
    return run.family.split_inputs(run, data, part)


def test_outputs(run: Run, data):
    """(model outputs on the run's test part, targets)."""
    x, y = split_inputs(run, data, "test")
    return run.model.predict(x, batch_size=256, verbose=0), y


def epoch_logger(keras, log, every: int = 10):
    """A Keras callback printing one line every ``every`` epochs (and the first)."""

    class EpochLog(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.t0 = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            if (epoch + 1) % every == 0 or epoch == 0:
                shown = "  ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items())
                print(f"  epoch {epoch + 1}: {shown} ({time.monotonic() - self.t0:.0f} s)", file=log, flush=True)

    return EpochLog()
