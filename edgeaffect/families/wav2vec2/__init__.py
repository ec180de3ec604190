"""The wav2vec 2.0 depression detector (Zhang et al., Sci. Rep. 2024) as a family: an
interview -> the participant's speech (transcript times) -> non-overlapping 7 s segments
-> wav2vec 2.0 (backbone.py, weights from a local Hugging Face checkpoint) -> the sum of
the transformer layers' outputs per frame -> segment encoder and participant model
(model.py) -> p(depressed) for the participant, and each segment's weight."""

from __future__ import annotations

import sys
from pathlib import Path

from edgeaffect.families import DetectionTask, Family, register_family
from edgeaffect.families.wav2vec2 import model  # noqa: F401  (registers the wav2vec2-* variants)
from edgeaffect.families.wav2vec2.daicwoz import LAYOUTS
from edgeaffect.families.wav2vec2.device import DetectorAdapter
from edgeaffect.families.wav2vec2.model import ABLATIONS


class Wav2Vec2Family(Family):
    name = "wav2vec2"
    task = DetectionTask("depressed", "not depressed")
    split_kinds = ("paper", "heldout")
    ablations = {name: ", ".join(f"{k}={v}" for k, v in change.items()) or "the full model"
                 for name, change in ABLATIONS.items()}
    train_options = {"backbone": "a local Hugging Face wav2vec 2.0 checkpoint folder (config.json + "
                                 "model.safetensors or pytorch_model.bin); without it only wav2vec2-tiny trains, "
                                 "on a random backbone",
                     "fine_tune": "train the transformer too (lr 1e-5; the conv feature encoder stays frozen) "
                                  "instead of the frozen-feature mode: slow on a CPU"}
    corpus_layouts = LAYOUTS
    adapter = DetectorAdapter

    @property
    def reproducibility(self) -> bool:
        return False

    def load_corpus(self, spec, data, cache_dir, corpus=None, log=sys.stderr):
        from edgeaffect.families.wav2vec2.dataset import build_corpus

        return build_corpus(data, spec.config, corpus, cache_dir, log)

    def synthesize(self, folder, *, scale, seed, log=sys.stderr):
        from edgeaffect.families.wav2vec2.synthetic import SPLIT_SIZES, generate_daicwoz

        n = sum(SPLIT_SIZES.values()) * scale
        print(f"synthetic DAIC-WOZ-layout corpus: {n} interviews -> {folder}", file=log, flush=True)
        return generate_daicwoz(folder, scale=scale, speech_s=16.0, seed=seed)

    def recordings(self, folder):
        return sorted(Path(folder).glob("*_P/*_AUDIO.wav"))

    def train(self, spec, dataset, out, *, split, seed, split_seed, epochs, deterministic, ablation, options,
              log=sys.stderr):
        from edgeaffect.families.wav2vec2.train import train_detector

        return train_detector(spec, dataset, Path(out), split=split, seed=seed, split_seed=split_seed, epochs=epochs,
                              task=self.task, ablation=ablation, backbone=options.get("backbone"),
                              fine_tune=bool(options.get("fine_tune")),
                              deterministic=deterministic, log=log)

    def load_run(self, folder, info):
        from edgeaffect.families.wav2vec2.train import load_detector_run

        return load_detector_run(Path(folder), info)

    def run_dataset(self, run):
        return run.data

    def split_inputs(self, run, dataset, part):
        return run.split_inputs(dataset, part)

    def qat_options(self, run) -> dict:
        from edgeaffect.families.wav2vec2.model import custom_objects

        return {"custom_objects": custom_objects()}

    def preprocessing(self, run) -> dict:
        return run.preprocessing()


FAMILY = register_family(Wav2Vec2Family())
