"""The wav2vec 2.0 depression detector (Zhang et al., Sci. Rep. 2024) as a family: an
interview -> the participant's speech (transcript times, then silences and noise removed
inside the turns: vad.py) -> non-overlapping 7 s segments
-> wav2vec 2.0 (backbone.py, weights from a local Hugging Face checkpoint) -> the sum of
the transformer layers' outputs per frame -> segment encoder and participant model
(model.py) -> p(depressed) for the participant, and each segment's weight."""

from __future__ import annotations

import sys
from pathlib import Path

from edgeaffect.schema import Any, Int, List, Nullable, Str, Table
from edgeaffect.contract import DetectionTask, Family, PipelinePreset, TrainOption, register_family
from edgeaffect.families.wav2vec2 import model  # noqa: F401  (registers the wav2vec2-* variants)
from edgeaffect.families.wav2vec2.daicwoz import LAYOUTS
from edgeaffect.families.wav2vec2.device import DetectorAdapter
from edgeaffect.families.wav2vec2.model import ABLATIONS, SETTING_ROWS, VAD_CHOICES


# Backbone formats whose verification is recorded, not gating (edgeaffect/families/wav2vec2/README.md,
# "Deployment"). Post-training full int8 (calibrated, per-tensor activations) of the
# backbone moves the detector's probability by more than the int8 bound even on the tiny
# random backbone (measured: p95 |diff| 0.40 on the tiny detector, decisions still
# agreeing); on a full-size base even dynamic-range int8 of the whole graph fails
# (backbone.md). Only ONNX dynamic int8 of the transformer's MatMuls holds there.
_PTQ = ("post-training full int8 of wav2vec 2.0 (calibrated per-tensor activations, the conv feature encoder "
        "included) moves the detector's probability beyond the int8 bound; use onnx-dyn-int8 (the transformer's "
        "MatMuls only) or a float backbone format")
BACKBONE_RECORDED_ONLY: dict[str, str] = {"tflite-int8": _PTQ, "onnx-qdq": _PTQ, "onnx-int8-trt": _PTQ}
# The int8 schemes that hold for the backbone: ONNX Runtime dynamic int8 of the transformer's
# MatMuls, the conv feature encoder float (edgeaffect/export/formats/onnx_dynamic.py); and, for
# a device that runs LiteRT alone, LiteRT's dynamic range with the ops that break it given their
# float weights back (edgeaffect/export/dynamic_range.py: on base, the seven encoder convs).
BACKBONE_INT8 = "onnx-dyn-int8"
LITERT_INT8 = "tflite-dynamic-int8"


class Wav2Vec2Family(Family):
    name = "wav2vec2"
    task = DetectionTask("depressed", "not depressed")
    # run.json keys this family reads (schema: edgeaffect.schema)
    run_keys = {"model_config": Table({}), "parts": Table({}), "corpus_cache": Str(), "features": Nullable(Str()),
                "participants": Table({"pids": List(Any()), "labels": List(Int(min=0, max=1)), "parts": List(Str()),
                                       "counts": List(Int(min=0))})}
    split_kinds = ("paper", "heldout")
    ablations = {name: ", ".join(f"{k}={v}" for k, v in change.items()) or "the full model"
                 for name, change in ABLATIONS.items()}
    train_options = {"backbone": TrainOption("a local Hugging Face wav2vec 2.0 checkpoint folder (config.json + "
                                             "model.safetensors or pytorch_model.bin); without it only "
                                             "wav2vec2-tiny trains, on a random backbone", Path),
                     "fine_tune": TrainOption("train the transformer too (lr 1e-5; the conv feature encoder stays "
                                              "frozen) instead of the frozen-feature mode: slow on a CPU", bool),
                     "setting": TrainOption("one of the paper's settings, by name: " + "; ".join(
                         f"{name}: {row}" for name, row in SETTING_ROWS.items()) + " (default: frozen-all-layers, or "
                         "fine-tuned all layers summed with --fine-tune)", str, tuple(SETTING_ROWS)),
                     "vad": TrainOption("remove silences and noise inside the participant's turns before cutting "
                                        "segments (an energy + spectral-flatness voice-activity step, the paper's "
                                        "preprocessing): on (the default of every wav2vec2 model) or off (whole "
                                        "turns); run.json and the bundle's manifest record it", str, VAD_CHOICES)}
    corpus_layouts = LAYOUTS
    adapter = DetectorAdapter

    @property
    def reproducibility(self) -> bool:
        return False

    def pipeline_preset(self, spec):
        """32 synthetic interviews: the tiny detector learns them in 30 epochs (dev F1 1.0 here)."""
        return PipelinePreset(scale=4, epochs=30, qat_epochs=3)

    def commands(self) -> list:
        from edgeaffect.families.wav2vec2.commands import embed

        return [embed]

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
                              fine_tune=bool(options.get("fine_tune")), setting=options.get("setting"),
                              vad=options.get("vad"), deterministic=deterministic, log=log)

    def load_run(self, folder, info):
        from edgeaffect.families.wav2vec2.train import load_detector_run

        return load_detector_run(Path(folder), info)

    def run_dataset(self, run):
        return run.data

    def split_inputs(self, run, dataset, part):
        return run.split_inputs(dataset, part)

    def qat_options(self, run) -> dict:
        from edgeaffect.families.wav2vec2.model import custom_objects, probability_loss

        return {"custom_objects": custom_objects(), "loss": probability_loss()}

    # ----------------------------------------------------------------- staged export
    def stage_models(self, spec) -> dict:
        """The backbone (one segment of normalised audio -> its summed feature; GELU through
        erf, the same function, which both TFLite and tf2onnx write) and the head stage."""
        from edgeaffect.families.wav2vec2.backbone import Wav2Vec2Config, build_feature_model
        from edgeaffect.families.wav2vec2.model import LAYER_CHOICES, build_head_stage

        c = spec.config
        backbone = build_feature_model(Wav2Vec2Config.from_dict(c.backbone), samples=c.samples, batch=1,
                                       definition=LAYER_CHOICES[c.layers], gelu="erf", name="wav2vec2_features")
        return {"backbone": (backbone, "segment"), "head": (build_head_stage(c), "participant")}

    def stages(self, run) -> list:
        """The backbone per segment (post-training int8: its features have no targets) and
        the head per participant (QAT; fed the backbone's float features)."""
        from edgeaffect.contract import Stage
        from edgeaffect.families.wav2vec2.checkpoint import assign

        c = run.config
        (backbone, _), (head, _) = self.stage_models(run.spec).values()
        assign(backbone, run.backbone_weights())
        for layer in head.layers:
            if layer.weights:
                layer.set_weights(run.model.get_layer(layer.name).get_weights())
        return [Stage("backbone", backbone, {"audio": (c.samples,)}, "segment",
                      recorded_only=BACKBONE_RECORDED_ONLY),
                Stage("head", head, {"features": (c.max_segments, c.frames, c.hidden),
                                     "segment_mask": (c.max_segments,)}, "participant", qat=True)]

    def target_formats(self, target) -> tuple[str, ...]:
        """The target's formats with an int8 backbone that holds added: ``BACKBONE_INT8`` before
        the first float format (the default if its chain gates) where the target already ships
        ONNX files (its install has ONNX Runtime: host); where it runs LiteRT alone (a Pi),
        ``LITERT_INT8`` before the first float format, which the Pi's install runs, and
        ``BACKBONE_INT8`` last (there for ``--format onnx-dyn-int8`` once onnxruntime is
        installed). Not for TensorRT targets: TensorRT's parser takes no dynamic quantization."""
        from edgeaffect.export.formats import get_format

        names = list(target.formats)
        if target.is_jetson or BACKBONE_INT8 in names:
            return tuple(names)
        first_float = next((i for i, n in enumerate(names) if get_format(n).precision != "int8"), len(names))
        if any(get_format(n).runtime == "onnxruntime" for n in names):
            names.insert(first_float, BACKBONE_INT8)
        else:
            names.insert(first_float, LITERT_INT8)
            names.append(BACKBONE_INT8)
        return tuple(names)

    def recording_inputs(self, run, dataset, part: str) -> list:
        return run.recording_inputs(dataset, part)

    def preprocessing(self, run) -> dict:
        return run.preprocessing()


FAMILY = register_family(Wav2Vec2Family())
