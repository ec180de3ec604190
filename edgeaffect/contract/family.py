"""What shared code asks a model family. One folder per family subclasses these two:

- ``Family``: the desktop side (corpus -> dataset, training recipe and its options, the
  run folder, what the manifest carries) and its task kind. TensorFlow may be imported
  inside its methods, never at module level.
- ``DeviceAdapter``: the device side, rebuilt from a bundle's manifest: media -> model
  inputs, segment outputs -> one result, and what the live demo does with a frame and
  the newest audio. NumPy, OpenCV and one runtime only.

Shared code (training loop, QAT, export, verification, bundle, runtime, profile, demo,
CLI) calls these methods; it never compares a family's name.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError
from edgeaffect.contract.tasks import Task
from edgeaffect.schema import Spec

# The file in a family's folder that holds its paper's figures (see ``paper_figures``).
PAPER_FILE = "paper.toml"


@dataclass
class LiveInput:
    """One demo step's model input (None when there is nothing to run, with ``status``
    saying why: "no face", "silent", "collecting speech 12/30 s", ...) and the time each of
    the adapter's ``live_stages`` took (``stage_ms``)."""

    x: dict[str, np.ndarray] | None
    status: str
    audio_rms: float
    stage_ms: dict[str, float]


@dataclass(frozen=True)
class LiveSettings:
    """A family's live demo settings: a subclass adds its fields with their defaults (the
    demo changes them by name, ``--set key=value``) and refuses bad values with an
    InputError in ``__post_init__``. This base has none."""


def check_inputs(manifest: dict, expected: dict[str, list]) -> None:
    """The manifest's model inputs must be the ones the adapter makes: same names, and the
    same shape after the batch dimension (what a mismatched statistics file would break)."""
    inputs = manifest["inputs"]
    if sorted(inputs) != sorted(expected):
        raise InputError(f"'inputs' must name {', '.join(sorted(expected))}, got {', '.join(sorted(inputs))}")
    for name, tail in expected.items():
        shape = inputs[name]["shape"]
        if list(shape[1:]) != list(tail):
            raise InputError(f"'inputs.{name}.shape' must be [batch, {', '.join(map(str, tail))}] to match the "
                             f"preprocessing, got {shape}")


class DeviceAdapter:
    """Device-side preprocessing of one family, built from ``manifest["preprocessing"]``."""

    needs_video = False
    needs_audio = True
    # The live demo (the loop in edgeaffect.demo asks these; it names no input kind):
    # its result rate (per second) when ``live_rate`` does not work it out from the settings,
    live_rate_hz = 4.0
    # the family's settings (a LiveSettings dataclass of defaults),
    live_settings: type[LiveSettings] = LiveSettings
    # the stages ``live_input`` times, in order (the keys of ``LiveInput.stage_ms``; the loop
    # adds capture before them and inference after),
    live_stages: tuple[str, ...] = ("features",)
    # the statuses the demo's closing line counts, each with how the line says it,
    live_reported: dict[str, str] = {}
    # and the setting ``bench-demo`` compares, with the value that does the live path the
    # slow, literal way (the default settings run against it); None: nothing to compare.
    live_reference: tuple[str, object] | None = None

    # Every field of ``manifest["preprocessing"]`` the adapter reads, with its kind, range or
    # choices (an ``edgeaffect.schema`` Table): checked when a bundle is opened, before
    # ``validate``, so a bad value is one line then, not an exception mid-predict. None: the
    # adapter reads none.
    preprocessing_spec: Spec | None = None

    def __init__(self, preprocessing: dict, task: Task, labels: list[str]):
        self.preprocessing, self.task, self.labels = preprocessing, task, labels

    @classmethod
    def validate(cls, preprocessing: dict, manifest: dict) -> None:
        """Refuse what ``preprocessing_spec`` cannot say with an InputError naming the field,
        before any adapter is built: relations between fields (statistics as long as the
        features they standardise, ranges that depend on each other) and the model inputs
        the adapter will make (``manifest["inputs"]``). Called when a bundle is opened, after
        ``preprocessing_spec`` has been checked; the default adds nothing."""

    def load(self, media: Path, audio: Path | None = None):
        """Decode a recording (a clip, a wav, ...) into what ``inputs`` takes."""
        raise NotImplementedError

    def inputs(self, decoded) -> dict[str, np.ndarray]:
        """Decoded media -> a batch of model inputs (segments, sequences or one utterance)."""
        raise NotImplementedError

    def describe_inputs(self) -> str:
        """What ``inputs`` does, for benchmark tables."""
        return "features"

    def reference(self) -> "DeviceAdapter | None":
        """The same preprocessing done the slow, literal way (the paper's), for benchmarks
        that report a speed-up as a ratio measured in one run; None when there is one way."""
        return None

    def duration_s(self, decoded) -> float:
        """Seconds of audio in a decoded recording (0 when it has none), for benchmark tables."""
        return 0.0

    # Names of the exported stages in the order they run (a bundle with ``stages``); empty:
    # one model, fed ``inputs`` directly.
    stages: tuple[str, ...] = ()

    def run_stages(self, run, x: dict[str, np.ndarray]) -> np.ndarray:
        """The model's outputs for ``inputs``' batch. ``run(stage, inputs)`` runs one stage
        (an exported file, or a Keras model when the exporter verifies); a staged family
        feeds each stage's outputs to the next here. One model: ``run(None, x)``."""
        return run(None, x)

    def combine(self, outputs: np.ndarray) -> np.ndarray:
        """The recording's output from its batch's outputs."""
        return self.task.combine(outputs)

    def prediction(self, outputs: np.ndarray, x: dict[str, np.ndarray]):
        """A recording's prediction from its outputs (and the inputs they came from); a family
        may attach more to ``extra`` (e.g. per-segment weights)."""
        return self.task.prediction(self.combine(outputs), outputs, self.labels)

    def describe(self, prediction) -> list[str]:
        """The lines ``predict`` prints."""
        return self.task.describe(prediction)

    def live_rate(self, settings: LiveSettings) -> float:
        """Results per second the demo aims at."""
        return self.live_rate_hz

    def live_input(self, frame, audio, settings: LiveSettings) -> LiveInput:
        """The newest frame (or None) and audio source (or None) -> one model input."""
        raise NotImplementedError

    def live_counters(self) -> dict[str, int]:
        """Counts of the live path's own work so far (e.g. full face searches), for
        ``bench-demo``'s table; empty when there is nothing to count."""
        return {}

    @classmethod
    def demo_video(cls, folder: Path, seconds: float, fps: int = 30) -> Path | None:
        """A generated video the live path works on, for the demo benchmarks (written into
        ``folder``); None: the family needs no camera."""
        return None

    def smooth(self, recent: list[np.ndarray]) -> np.ndarray:
        """The output shown from the last few results."""
        return np.mean(recent, axis=0)


@dataclass(frozen=True)
class TrainOption:
    """One extra training option of a family: ``edgeaffect train --NAME`` (a flag when
    ``kind`` is bool, else ``--NAME VALUE``) and ``reproduce --set NAME=VALUE``."""

    help: str
    kind: type = str  # str, Path (passed on as str) or bool
    choices: tuple[str, ...] = ()

    @property
    def is_flag(self) -> bool:
        return self.kind is bool

    def parse(self, name: str, text: str):
        """The value the family's ``train`` receives for the command line's ``text``."""
        flag = f"--{name.replace('_', '-')}"
        if self.choices and text not in self.choices:
            from edgeaffect._optional import lookup

            lookup(flag, text, dict.fromkeys(self.choices))
        return typed_value(text, bool if self.is_flag else str, flag)


_TRUTH = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number"}


def typed_value(text: str, kind: type, what: str):
    """``text`` from a command line read as ``kind`` (bool, int, float; anything else stays
    text): one reading for train options and live settings, one line when it does not fit."""
    try:
        if kind is bool:
            return _TRUTH[text.strip().lower()]
        return kind(text) if kind in (int, float) else str(text)
    except (KeyError, ValueError):
        raise InputError(f"{what} must be {_TYPE_WORDS[kind]}, given '{text}'") from None


@dataclass(frozen=True)
class PipelinePreset:
    """What ``edgeaffect pipeline --model M`` (``make demo MODEL=M``) runs when not told
    otherwise: speakers in the synthetic corpus, epochs on the paper's split (None: the
    recipe's) and on the speaker-independent one where the family has it, QAT epochs, and
    training options."""

    scale: int = 8
    epochs: int | None = None
    speaker_epochs: int | None = None
    qat_epochs: int = 10
    options: dict = field(default_factory=dict)


def paper_figures(package: str, model: str) -> dict:
    """What a registered variant's paper reports (``ModelSpec.paper_figures``), from its
    family's ``paper.toml``: the figures every variant shares (``[all_variants]``), then its
    own (``[variants.<model>]``); {} when the file says nothing of it."""
    data = _paper_data(package)
    return {**data.get("all_variants", {}), **data.get("variants", {}).get(model, {})}


@lru_cache(maxsize=None)
def _paper_data(package: str) -> dict:
    import tomllib
    from importlib import resources

    path = resources.files(package).joinpath(PAPER_FILE)
    return tomllib.loads(path.read_text()) if path.is_file() else {}


@dataclass
class Stage:
    """One separately exported part of a model (e.g. a per-segment extractor, then a
    per-sequence model). ``model``: its trained Keras model; ``inputs``: per-sample shapes;
    ``qat``: whether int8 formats fine-tune it with QAT (else post-training quantization of
    ``model``: a stage whose outputs have no targets of their own cannot be fine-tuned).
    ``recorded_only``: format name -> why its verification of this stage (and the chain's
    with this stage's file in it) is measured and written down but does not fail the export
    (a quantization scheme known not to hold for this stage); printed and in the manifests."""

    name: str
    model: object
    inputs: dict[str, tuple]
    per: str  # what one of its samples is ("segment", "sequence"), for people
    qat: bool = False
    recorded_only: dict = field(default_factory=dict)


class Family:
    """The desktop side of a model family. Subclass attributes say what applies."""

    name = "family"
    task: Task
    # How the data is split; the first is the paper's protocol.
    split_kinds: tuple[str, ...] = ("paper",)
    # Ablation name -> what it removes; empty when the family has none.
    ablations: dict[str, str] = {}
    # The run.json key whose figures the ablation table shows: the partition the paper
    # compares its modules on ("test" unless a family's training records another).
    ablation_figures: str = "test"
    # Extra training options (name -> TrainOption); anything else given is refused by name.
    train_options: dict[str, TrainOption] = {}
    # Corpus layouts the reader knows (for --corpus); empty: one layout, recognised.
    corpus_layouts: tuple[str, ...] = ()
    adapter: type[DeviceAdapter] = DeviceAdapter
    # Where the Makefile's demo target for this family writes its pipeline run, and that
    # target (the report page looks there when given no folders); None: it has none.
    demo_folder: str | None = None
    demo_make: str | None = None
    # The family's own run.json keys (name -> edgeaffect.schema spec), checked before
    # ``load_run`` reads them: a hand-edited or truncated record is one line, not a traceback.
    run_keys: dict = {}

    @property
    def reproducibility(self) -> bool:
        """GLR ... PCLR compare per-sample decisions of classifiers."""
        return self.task.kind == "classification"

    @property
    def reproduce_recipes(self) -> Path | None:
        """The family's ``reproduce.toml`` (the papers' protocols and rows for
        ``edgeaffect reproduce``), beside its module; None when it has none."""
        return self._data_file("reproduce.toml")

    @property
    def paper_file(self) -> Path | None:
        """The family's ``paper.toml``: every figure its paper states (the cost table
        ``edgeaffect report`` sets ours beside, each variant's ``paper_figures``); None when
        it has none."""
        return self._data_file(PAPER_FILE)

    def _data_file(self, name: str) -> Path | None:
        """A data file beside the module that defines the family, if there is one."""
        module = sys.modules.get(type(self).__module__)
        path = Path(module.__file__).parent / name if module and getattr(module, "__file__", None) else None
        return path if path is not None and path.is_file() else None

    # ----------------------------------------------------------------- data
    def load_corpus(self, spec, data: Path, cache_dir: Path, corpus: str | None = None, log=sys.stderr):
        raise NotImplementedError

    def synthesize(self, folder: Path, *, scale: int, seed: int, log=sys.stderr) -> list[Path]:
        """A small synthetic corpus in the real layout (demos, tests). ``scale``: speakers."""
        raise NotImplementedError

    def recordings(self, folder: Path) -> list[Path]:
        """The media files of a corpus folder that ``predict`` takes, in a stable order."""
        raise NotImplementedError

    def recording_label(self, path: Path) -> str | None:
        """The label a corpus names a recording with (from its file name), or None when the
        layout does not say (benchmarks that score the live path use it)."""
        return None

    def pipeline_preset(self, spec) -> PipelinePreset:
        """``edgeaffect pipeline``'s defaults for ``spec`` (a demo that runs on a CPU in minutes)."""
        return PipelinePreset()

    def commands(self) -> list:
        """Typer command functions this family adds to ``edgeaffect`` (named as typer names a
        function: ``embed_audio`` -> ``embed-audio``); imported only when the CLI asks."""
        return []

    # ----------------------------------------------------------------- training
    def check_options(self, options: dict) -> None:
        unknown = sorted(set(k for k, v in options.items() if v is not None) - set(self.train_options))
        if unknown:
            known = ", ".join(self.train_options) or "none"
            raise InputError(f"--{unknown[0].replace('_', '-')} is not an option of the {self.name} family "
                             f"(its options: {known})")
        for name, value in options.items():  # a named choice is checked before any training
            option = self.train_options.get(name)
            if option is not None and option.choices and value is not None:
                option.parse(name, str(value))

    def check_ablation(self, ablation: str | None) -> None:
        if ablation and not self.ablations:
            raise InputError(f"the {self.name} family defines no ablations")
        if ablation:
            from edgeaffect._optional import lookup

            lookup("ablation", ablation, self.ablations)

    def train(self, spec, dataset, out: Path, *, split: str, seed: int, split_seed: int | None, epochs: int | None,
              deterministic: bool, ablation: str | None, options: dict, log=sys.stderr):
        """Called through ``edgeaffect.train.families.train``, which has already checked the
        split, the ablation and the options against this family."""
        raise NotImplementedError

    def load_run(self, folder: Path, info: dict):
        raise NotImplementedError

    def run_dataset(self, run):
        raise NotImplementedError

    def split_inputs(self, run, dataset, part: str) -> tuple[dict, np.ndarray]:
        """The inputs and targets of a run's train / val / test part, rebuilt from its record."""
        raise NotImplementedError

    def qat_options(self, run) -> dict:
        """Keyword arguments for ``qat_finetune`` (the loss, custom layers)."""
        return {}

    # ----------------------------------------------------------------- staged export
    def stages(self, run) -> list[Stage]:
        """The parts exported separately, in the order the adapter's ``run_stages`` runs
        them; empty: the run's model is exported whole."""
        return []

    def stage_models(self, spec) -> dict:
        """Stage name -> (its Keras model with fresh weights, what one sample is), for cost and
        roofline figures per stage; empty when the model is exported whole."""
        return {}

    # Quantized formats that hold for this family where a target's own int8 scheme may not (a
    # stage records it only: ``Stage.recorded_only``), e.g. LiteRT's dynamic range with float
    # weights kept where it breaks: the exporter adds them to the targets whose install runs
    # them, before their float formats (``edgeaffect.export.targets.bundle_formats``).
    int8_fallbacks: tuple[str, ...] = ()

    def target_formats(self, target) -> tuple[str, ...]:
        """The formats a bundle for ``target`` holds, in the order its default is chosen (the
        first whose verification gates): the target's list, unless the family adds a format
        registered for models like it (e.g. one int8 scheme that holds where the target's
        does not); ``int8_fallbacks`` are added after this."""
        return tuple(target.formats)

    def recording_inputs(self, run, dataset, part: str) -> list[tuple[dict, float]]:
        """(the adapter's ``inputs`` for each recording of a part, its target): what the
        exporter runs through the stages to calibrate and verify them."""
        raise NotImplementedError

    # ----------------------------------------------------------------- the manifest
    def preprocessing(self, run) -> dict:
        """What the device needs to rebuild the inputs exactly (goes into the manifest)."""
        raise NotImplementedError

    def device(self, manifest: dict) -> DeviceAdapter:
        return self.adapter(manifest["preprocessing"], self.task, list(manifest["labels"]))
