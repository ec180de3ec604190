"""The lightweight audio-visual emotion CNN (Ding, Tang, Lu, IEEE TAC 2025) as a family:
RAVDESS-layout corpora -> six (face, MFCC) samples per clip -> the CNN -> the clip's label
from the mean of its samples' probabilities."""

from __future__ import annotations

import sys
from pathlib import Path

from edgeaffect.schema import List, Num, Table
from edgeaffect.contract import ClassificationTask, Family, PipelinePreset, register_family
from edgeaffect.families.aver import model  # noqa: F401  (registers the aver-* variants)
from edgeaffect.families.aver.corpora import LAYOUTS
from edgeaffect.families.aver.device import AverAdapter


class AverFamily(Family):
    name = "aver"
    task = ClassificationTask("probabilities")
    # run.json keys this family reads (schema: edgeaffect.schema)
    run_keys = {"feature_config": Table({}), "mfcc_mean": List(Num(), min_len=1), "mfcc_std": List(Num(), min_len=1)}
    split_kinds = ("paper", "clip", "speaker", "actor")
    corpus_layouts = tuple(LAYOUTS)
    adapter = AverAdapter
    demo_folder, demo_make = "build/quickstart", "make demo"

    def pipeline_preset(self, spec):
        return PipelinePreset(scale=8, epochs=60, speaker_epochs=30, qat_epochs=10)

    def load_corpus(self, spec, data, cache_dir, corpus=None, log=sys.stderr):
        from edgeaffect.families.aver.dataset import build_aver_dataset

        stretch = spec.config.time_stretch_rate if spec.config.augment else None
        return build_aver_dataset(data, stretch_rate=stretch, cache_dir=cache_dir, corpus=corpus,
                                  labels=tuple(spec.labels), log=log)

    def synthesize(self, folder, *, scale, seed, log=sys.stderr):
        from edgeaffect.families.aver.synthetic import SyntheticConfig, generate, utterances
        from edgeaffect.progress import Progress

        cfg = SyntheticConfig(actors=scale, statements=1, repetitions=2, seed=seed)
        print(f"synthetic RAVDESS-format corpus: {len(utterances(cfg))} clips, {scale} actors -> {folder}",
              file=log, flush=True)
        return generate(folder, cfg, progress=Progress("clips", len(utterances(cfg)), stream=log))

    def recordings(self, folder):
        return sorted(Path(folder).rglob("*.mp4"))

    def recording_label(self, path):
        from edgeaffect.families.aver.ravdess import EMOTIONS, parse_name

        name = parse_name(Path(path).name)
        return None if name is None else EMOTIONS[name.emotion]

    def train(self, spec, dataset, out, *, split, seed, split_seed, epochs, deterministic, ablation, options,
              log=sys.stderr):
        from edgeaffect.families.aver.train import train_aver

        return train_aver(spec.name, dataset, out, split=split, seed=seed, split_seed=split_seed, max_epochs=epochs,
                          deterministic=deterministic, log=log)

    def load_run(self, folder, info):
        from edgeaffect.families.aver.train import load_aver_run

        return load_aver_run(Path(folder), info)

    def run_dataset(self, run):
        from edgeaffect.families.aver.train import aver_run_dataset

        return aver_run_dataset(run)

    def split_inputs(self, run, dataset, part):
        from edgeaffect.families.aver.train import aver_split_inputs

        return aver_split_inputs(run, dataset, part)

    def preprocessing(self, run) -> dict:
        return {"kind": "aver", "features": run.feature_config.to_dict(), "face_scale": 1.0 / 255.0,
                "mfcc_mean": run.mfcc_mean.tolist(), "mfcc_std": run.mfcc_std.tolist(),
                "clip_prediction": "mean of the per-segment probabilities"}


FAMILY = register_family(AverFamily())
