"""SpeechNet (Zhang, Pang et al., BSPC 2026) as a family: speech corpora (EmoDB, SAVEE,
RAVDESS, CREMA-D, IEMOCAP) -> 107 fusion features per frame -> SpeechNet with capsule
routing -> the utterance's label from its capsule lengths."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from edgeaffect.schema import List, Num, Table
from edgeaffect.contract import ClassificationTask, Family, PipelinePreset, TrainOption, register_family
from edgeaffect.families.speechnet import model  # noqa: F401  (registers the speechnet-* variants)
from edgeaffect.families.speechnet.corpora import CORPORA
from edgeaffect.families.speechnet.device import SpeechAdapter
from edgeaffect.families.speechnet.model import ABLATIONS, MARGINS, VOTES_OPS


class SpeechNetFamily(Family):
    name = "speechnet"
    task = ClassificationTask("scores")
    # run.json keys this family reads (schema: edgeaffect.schema)
    run_keys = {"model_config": Table({}), "mean": List(Num(), min_len=1), "std": List(Num(), min_len=1)}
    split_kinds = ("paper", "speaker")
    ablations = ABLATIONS
    train_options = {"margins": TrainOption(f"loss margins: {' | '.join(MARGINS)} (see the model card)",
                                            choices=tuple(MARGINS)),
                     "votes_op": TrainOption(f"how the routing's votes are computed: {' | '.join(VOTES_OPS)} "
                                             "(grouped_conv: faster int8, batch_matmul: a smaller int8 file)",
                                             choices=VOTES_OPS)}
    corpus_layouts = tuple(CORPORA)
    adapter = SpeechAdapter
    demo_folder, demo_make = "build/speechnet", "make demo-speech"

    def check_options(self, options: dict) -> None:
        from edgeaffect._optional import lookup

        super().check_options(options)
        if options.get("margins") is not None:
            lookup("--margins", options["margins"], MARGINS)

    def pipeline_preset(self, spec):
        """The paper's 200-epoch recipe on both splits."""
        return PipelinePreset(scale=8, epochs=None, speaker_epochs=None, qat_epochs=10)

    def load_corpus(self, spec, data, cache_dir, corpus=None, log=sys.stderr):
        from edgeaffect.families.speechnet.dataset import build_speech_dataset

        return build_speech_dataset(data, corpus, spec.config.features, labels=spec.labels, cache_dir=cache_dir,
                                    log=log)

    def synthesize(self, folder, *, scale, seed, log=sys.stderr):
        from edgeaffect.families.speechnet.synthetic import SpeechCorpusConfig, emodb_names, generate_emodb
        from edgeaffect.progress import Progress

        cfg = SpeechCorpusConfig(speakers=scale, texts=scale, seed=seed)
        print(f"synthetic EmoDB-format corpus: {len(emodb_names(cfg))} utterances -> {folder}", file=log, flush=True)
        return generate_emodb(folder, cfg, progress=Progress("utterances", len(emodb_names(cfg)), stream=log))

    def recordings(self, folder):
        return sorted(Path(folder).rglob("*.wav"))

    def train(self, spec, dataset, out, *, split, seed, split_seed, epochs, deterministic, ablation, options,
              log=sys.stderr):
        from edgeaffect._optional import lookup
        from edgeaffect.families.speechnet.train import train_speechnet

        config = None
        if options.get("margins") is not None:
            config = replace(spec.config, margin_alphas=lookup("--margins", options["margins"], MARGINS))
        if options.get("votes_op") is not None:
            config = replace(config or spec.config, votes_op=options["votes_op"])
        return train_speechnet(spec.name, dataset, out, split=split, seed=seed, split_seed=split_seed, epochs=epochs,
                               deterministic=deterministic, ablation=ablation, config=config, log=log)

    def load_run(self, folder, info):
        from edgeaffect.families.speechnet.train import load_speech_run

        return load_speech_run(Path(folder), info)

    def run_dataset(self, run):
        from edgeaffect.families.speechnet.train import speech_run_dataset

        return speech_run_dataset(run)

    def split_inputs(self, run, dataset, part):
        return run.split_inputs(dataset, part)

    def qat_options(self, run) -> dict:
        from edgeaffect.families.speechnet.model import custom_objects

        return {"loss": run.loss(), "custom_objects": custom_objects()}

    def preprocessing(self, run) -> dict:
        return run.preprocessing()


FAMILY = register_family(SpeechNetFamily())
