"""A model family that lives only in the tests: proof that a family is one self-contained
unit the shared code drives without knowing it.

Task: regress a "tone score" in [0, 10] from a short recording. Each synthetic recording is a
sum of two tones whose mix and loudness follow the score, plus noise; the features are
log band energies of its spectrum (NumPy); the model is a small MLP. Nothing outside this
folder knows the family's name (its card: README.md beside this file).

A plug-in, not installed: ``EDGEAFFECT_PLUGINS=tests.toy_family`` (from the repository root)
makes the command line register it, e.g. ``make demo MODEL=toy-tones PLUGINS=tests.toy_family``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from edgeaffect.contract import DeviceAdapter, Family, LiveInput, PipelinePreset, RegressionTask
from edgeaffect.io import atomic_write_text
from edgeaffect.contract.cost import dense
from edgeaffect.contract.registry import ModelSpec
from edgeaffect.train.runs import Run

SR = 8000
BANDS = 12
TASK = RegressionTask("tone score", 0.0, 10.0, bands=(("low", 0.0), ("middle", 4.0), ("high", 7.0)))


@dataclass(frozen=True)
class ToyConfig:
    hidden: int = 24
    epochs: int = 150
    batch_size: int = 32
    learning_rate: float = 3e-3
    # A layer made to break int8 (``breaks_int8``): the export must find it and keep it float.
    int8_breaker: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def tone(score: float, seed: int, seconds: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    mix = score / 10.0
    y = (1 - mix) * np.sin(2 * np.pi * 300 * t) + mix * np.sin(2 * np.pi * 1800 * t)
    return (0.3 * y + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def band_energies(y: np.ndarray) -> np.ndarray:
    """Log energy in ``BANDS`` equal bands of the magnitude spectrum: (BANDS,)."""
    mag = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return np.log(np.stack([b.sum() for b in np.array_split(mag ** 2, BANDS)]) + 1e-6).astype(np.float32)


@dataclass
class ToyData:
    x: np.ndarray
    y: np.ndarray
    files: list[str]


@dataclass
class ToyRun(Run):
    mean: np.ndarray | None = None
    std: np.ndarray | None = None


def _split(n: int, seed: int) -> dict[str, np.ndarray]:
    idx = np.random.default_rng(seed).permutation(n)
    n_test, n_val = n // 5, n // 5
    return {"test": idx[:n_test], "val": idx[n_test : n_test + n_val], "train": idx[n_test + n_val :]}


def build(c: ToyConfig):
    from edgeaffect.keras_backend import keras

    k = keras()
    x = k.layers.Input((BANDS,), name="bands")
    h = k.layers.Dense(c.hidden, activation="relu", name="hidden")(x)
    if c.int8_breaker:
        h = breaks_int8(k, h, x, c.hidden)
    return k.Model(x, k.layers.Dense(1, name="score")(h), name="toy")


def breaks_int8(k, h, x, width: int):
    """A frozen layer that passes ``h`` through in float and zeroes it in int8.

    ``outlier`` computes h + 1000 * dead, where ``dead`` is a unit that is always 0 (a ReLU of
    -1). Float: exactly h. Int8 weights are per output channel: each channel's scale is set by
    its weight 1000 (a step of 7.9), so its weight 1 rounds to 0 and every output is 0.
    """
    dead = k.layers.Dense(1, activation="relu", name="dead", trainable=False, kernel_initializer="zeros",
                          bias_initializer=k.initializers.Constant(-1.0))(x)
    kernel = np.concatenate([np.eye(width), np.full((1, width), 1000.0)]).astype(np.float32)
    return k.layers.Dense(width, name="outlier", trainable=False, kernel_initializer=k.initializers.Constant(kernel),
                          bias_initializer="zeros")(k.layers.Concatenate(name="with_dead")([h, dead]))


def cost(c: ToyConfig) -> list:
    return [dense("hidden", BANDS, c.hidden), dense("score", c.hidden, 1)]


SPEC = ModelSpec(name="toy-tones", family="toy", paper="none (a test-only family)",
                 task="tone score regression (0-10)", labels=("tone score",), inputs={"bands": (BANDS,)},
                 config=ToyConfig(), build=build, cost=cost, paper_figures={"source": "none"})
# The same model with a layer made to break int8 (``breaks_int8``): mixed precision's test case.
BREAKER_SPEC = replace(SPEC, name="toy-tones-int8-breaker", config=ToyConfig(int8_breaker=True),
                       task="tone score regression (0-10), with a layer int8 cannot hold")


class ToyAdapter(DeviceAdapter):
    def __init__(self, preprocessing, task, labels):
        super().__init__(preprocessing, task, labels)
        self.mean = np.asarray(preprocessing["mean"], np.float32)
        self.std = np.asarray(preprocessing["std"], np.float32)

    def load(self, media, audio=None):
        from edgeaffect.media import read_audio

        return read_audio(audio or media)

    def inputs(self, decoded):
        y, _ = decoded
        # Two halves of the recording: two segments, whose scores the task averages.
        halves = np.array_split(y, 2)
        return {"bands": np.stack([(band_energies(h) - self.mean) / self.std for h in halves]).astype(np.float32)}

    def live_rate(self, config):
        return 2.0

    def live_input(self, frame, audio, config):
        y = audio.ring.latest(SR // 2)
        rms = float(np.sqrt(np.mean(y ** 2))) if y.size else 0.0
        if y.size < SR // 2:
            return LiveInput(None, "collecting audio", rms, {})
        return LiveInput(self.inputs((y, SR)), "ok", rms, {})


class ToyFamily(Family):
    name = "toy"
    task = TASK
    adapter = ToyAdapter

    def pipeline_preset(self, spec):
        """The demo: 120 recordings (240 samples), the recipe's epochs, a short QAT."""
        return PipelinePreset(scale=120, epochs=None, qat_epochs=5)

    def synthesize(self, folder, *, scale, seed, log=sys.stderr):
        from edgeaffect.media.audio import write_wav

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        files = []
        for i in range(scale):
            score = float(rng.uniform(0, 10))
            path = folder / f"tone-{i:03d}-{score:.3f}.wav"
            write_wav(path, tone(score, seed * 1000 + i), SR)
            files.append(path)
        return files

    def recordings(self, folder):
        return sorted(Path(folder).glob("tone-*.wav"))

    def load_corpus(self, spec, data, cache_dir, corpus=None, log=sys.stderr):
        from edgeaffect.media import read_audio

        files = self.recordings(data)
        xs, ys = [], []
        for f in files:
            y, _ = read_audio(f)
            for half in np.array_split(y, 2):
                xs.append(band_energies(half))
                ys.append(float(f.stem.split("-")[-1]))
        return ToyData(np.stack(xs), np.asarray(ys, np.float32), [str(f) for f in files])

    def train(self, spec, dataset, out, *, split, seed, split_seed, epochs, deterministic, ablation, options,
              log=sys.stderr):
        from edgeaffect.keras_backend import keras

        k, c = keras(), spec.config
        k.utils.set_random_seed(seed)
        out.mkdir(parents=True, exist_ok=True)
        parts = _split(len(dataset.y), seed if split_seed is None else split_seed)
        mean, std = dataset.x[parts["train"]].mean(0), dataset.x[parts["train"]].std(0) + 1e-6
        info = {"model": spec.name, "family": self.name, "seed": seed, "split_seed": seed if split_seed is None
                else split_seed, "split": {"kind": split, **{p: int(v.size) for p, v in parts.items()}},
                "mean": mean.tolist(), "std": std.tolist()}
        run = ToyRun(out, spec, spec.build_model(), info, mean, std)
        (x_tr, y_tr), (x_va, y_va) = (self.split_inputs(run, dataset, p) for p in ("train", "val"))
        run.model.compile(optimizer=k.optimizers.Adam(c.learning_rate), loss=self.task.loss)
        run.model.fit(x_tr, y_tr, batch_size=c.batch_size, epochs=epochs or c.epochs, verbose=0,
                      validation_data=(x_va, y_va))
        x_te, y_te = self.split_inputs(run, dataset, "test")
        report = self.task.report(y_te, run.model.predict(x_te, verbose=0), spec.labels)
        info["test"] = {key: report[key] for key in self.task.summary_keys()}
        info["baseline_mae"] = report["mae_of_predicting_the_test_mean"]
        run.model.save_weights(str(out / "weights.h5"))
        np.savez(out / "features.npz", x=dataset.x, y=dataset.y)
        atomic_write_text(out / "run.json", json.dumps(info, indent=2))
        return run

    def load_run(self, folder, info):
        spec = BREAKER_SPEC if info.get("model") == BREAKER_SPEC.name else SPEC
        model = spec.build_model()
        model.load_weights(str(Path(folder) / "weights.h5"))
        return ToyRun(Path(folder), spec, model, info, np.asarray(info["mean"], np.float32),
                      np.asarray(info["std"], np.float32))

    def run_dataset(self, run):
        with np.load(run.folder / "features.npz") as z:
            return ToyData(z["x"], z["y"], [])

    def split_inputs(self, run, dataset, part):
        idx = _split(len(dataset.y), run.info["split_seed"])[part]
        return {"bands": ((dataset.x[idx] - run.mean) / run.std).astype(np.float32)}, dataset.y[idx]

    def qat_options(self, run) -> dict:
        # tfmot's per-channel fake quantization breaks the outlier layer as int8 does: QAT keeps it
        # float so the QAT model is a reference worth matching; the TFLite export has to find it alone.
        return {"keep_float": ("outlier",)} if run.spec.config.int8_breaker else {}

    def preprocessing(self, run):
        return {"kind": "toy band energies", "mean": run.mean.tolist(), "std": run.std.tolist()}


FAMILY = ToyFamily()


def register() -> None:
    """Register the family and its one model (idempotent within a test session)."""
    from edgeaffect.contract import register_family
    from edgeaffect.contract import list_models, register_model

    register_family(FAMILY)
    for spec in (SPEC, BREAKER_SPEC):
        if spec.name not in list_models():
            register_model(lambda spec=spec: spec)
