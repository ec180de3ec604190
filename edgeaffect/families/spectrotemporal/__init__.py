"""The deep spectrotemporal depression network (Jabbar, Uddin et al., Sci. Rep. 2025) as a
family: speech -> 3-channel log-Mel segments (features.py) and VLNEP histograms
(vlnep.py) -> EfficientNet-B3 spectral stream + dual-stream transformer (model.py) -> the
BDI-II score per sequence; a recording's score is the mean over its sequences."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from edgeaffect.schema import List, Num, Table
from edgeaffect.contract import Family, PipelinePreset, RegressionTask, TrainOption, register_family
from edgeaffect.families.spectrotemporal import model  # noqa: F401  (registers the spectrotemporal-* variants)
from edgeaffect.families.spectrotemporal.avec import LAYOUTS
from edgeaffect.families.spectrotemporal.device import SpectroAdapter
from edgeaffect.families.spectrotemporal.model import ABLATIONS, BANDS


# TFLite full int8 of the transformer stage does not hold from one training run to the next
# (measured on two runs of `make demo-depression`, XNNPACK, against the Keras model it came
# from: p95 |diff| 0.77 BDI-II points on one, 7.6 on the next; post-training int8 from the
# float model 8.0 on the second), while ONNX Q/DQ of the same models holds (p95 0.17 / 1.76).
# Written and measured in every export, never the default: see edgeaffect/families/spectrotemporal/README.md.
SEQUENCE_RECORDED_ONLY = {"tflite-int8": "TFLite full int8 of the transformer stage is unstable across training "
                                        "runs (p95 |diff| 0.8 to 8 BDI-II points measured); ONNX Q/DQ holds"}


class SpectrotemporalFamily(Family):
    name = "spectrotemporal"
    task = RegressionTask("BDI-II", 0, 63, bands=BANDS)
    # LiteRT int8 that holds for the whole chain where full int8 does not (the sequence's TFLite
    # int8 above): dynamic range, int8 weights and float activations (p95 0.19 BDI-II points on
    # make demo-depression's run, on every kernel set, the reference kernels included)
    int8_fallbacks = ("tflite-dynamic-int8",)
    # run.json keys this family reads (schema: edgeaffect.schema)
    run_keys = {"model_config": Table({"features": Table({})}),
                "norm": Table({"mel_mean": List(Num(), min_len=3, max_len=3),
                               "mel_std": List(Num(above=0), min_len=3, max_len=3),
                               "vlnep_mean": List(Num(), min_len=256, max_len=256),
                               "vlnep_std": List(Num(above=0), min_len=256, max_len=256)})}
    corpus_layouts = tuple(LAYOUTS)
    adapter = SpectroAdapter
    demo_folder, demo_make = "build/depression", "make demo-depression"

    ablations = {name: ", ".join(f"{k}={v}" for k, v in change.items()) or "the whole network"
                 for name, change in ABLATIONS.items()}
    # "the development set is used for evaluating individual module effectiveness" (Sec.
    # "Datasets"): Tables 1-3 compare modules on Development, which train.py records.
    ablation_figures = "development"
    train_options = {"backbone_weights": TrainOption("a local efficientnetb3_notop.h5 (Keras' ImageNet weights; "
                                                     "nothing is downloaded)", Path),
                     "freeze_backbone": TrainOption("keep the backbone frozen and train the sequence model on its "
                                                    "cached per-segment features", bool)}

    def pipeline_preset(self, spec):
        """Sized for the tiny variant (a width-0.1 EfficientNet): the paper's B3 trains for days on a CPU."""
        return PipelinePreset(scale=16, epochs=40, qat_epochs=5)

    def load_corpus(self, spec, data, cache_dir, corpus=None, log=sys.stderr):
        from edgeaffect.families.spectrotemporal.dataset import build_dataset

        return build_dataset(data, spec.config.features, spec.config.vlnep_rule, corpus, cache_dir, log)

    def synthesize(self, folder, *, scale, seed, log=sys.stderr):
        from edgeaffect.families.spectrotemporal.synthetic import generate_avec2013

        print(f"synthetic AVEC2013-layout corpus: {3 * scale} recordings -> {folder}", file=log, flush=True)
        return generate_avec2013(folder, per_partition=scale, seconds=8.0, seed=seed)

    def recordings(self, folder):
        return sorted(Path(folder).rglob("*_audio.wav"))

    def train(self, spec, dataset, out, *, split, seed, split_seed, epochs, deterministic, ablation, options,
              log=sys.stderr):
        from edgeaffect.families.spectrotemporal.train import train_spectronet

        changes = {k: options[k] for k in ("backbone_weights", "freeze_backbone") if options.get(k) is not None}
        changes = {k: (str(v) if k == "backbone_weights" else bool(v)) for k, v in changes.items()}
        changes.update(ABLATIONS[ablation] if ablation else {})
        if changes:
            spec = replace(spec, config=replace(spec.config, **changes))
        return train_spectronet(spec, dataset, Path(out), seed=seed, epochs=epochs, task=self.task,
                                deterministic=deterministic, log=log)

    def load_run(self, folder, info):
        from edgeaffect.families.spectrotemporal.train import load_spectro_run

        return load_spectro_run(Path(folder), info)

    def run_dataset(self, run):
        from edgeaffect.families.spectrotemporal.train import spectro_run_dataset

        return spectro_run_dataset(run)

    def split_inputs(self, run, dataset, part):
        return run.split_inputs(dataset, part)

    def qat_options(self, run) -> dict:
        from edgeaffect.families.spectrotemporal.model import custom_objects

        return {"custom_objects": custom_objects()}

    def stage_models(self, spec) -> dict:
        from edgeaffect.families.spectrotemporal.model import build_extractor, build_sequence_model

        return {"extractor": (build_extractor(spec.config), "segment"),
                "sequence": (build_sequence_model(spec.config), "sequence")}

    def stages(self, run) -> list:
        """The per-segment spectral extractor (post-training int8: its outputs have no targets)
        and the per-sequence transformer (QAT on the extractor's float features)."""
        from edgeaffect.contract import Stage
        from edgeaffect.families.spectrotemporal.model import copy_weights

        c = run.config
        if (c.streams, c.spectral_views) != ("both", "both"):
            from edgeaffect.errors import InputError

            raise InputError(f"{run.folder} is an ablation run ({c.streams} streams, {c.spectral_views} views): "
                             "it is for the ablation table; export a run of the whole network")
        (extractor, _), (sequence, _) = self.stage_models(run.spec).values()
        copy_weights(run.model, extractor)
        copy_weights(run.model, sequence)
        (h, w), s = c.image, c.segments
        width = int(extractor.outputs[0].shape[-1])
        return [Stage("extractor", extractor, {"segment": (h, w, 3)}, "segment"),
                Stage("sequence", sequence, {"spectral": (s, width), "vlnep": (s, 256)}, "sequence", qat=True,
                      recorded_only=SEQUENCE_RECORDED_ONLY)]

    def recording_inputs(self, run, dataset, part: str) -> list:
        return run.recording_inputs(dataset, part)

    def preprocessing(self, run) -> dict:
        return run.preprocessing()


FAMILY = register_family(SpectrotemporalFamily())
