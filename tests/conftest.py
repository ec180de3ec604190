"""Shared fixtures: one small synthetic corpus, one trained run and one export per
session, so that the end-to-end tests share the expensive steps."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The user's own devices and measurements (their store calibrates the estimates) never reach
# the tests: every test process, and what it starts, sees an empty home of its own.
os.environ["EDGEAFFECT_HOME"] = tempfile.mkdtemp(prefix="edgeaffect-home-")

import pytest

from edgeaffect.families.aver.synthetic import SyntheticConfig, generate
from edgeaffect.demo.bench import speech_like  # noqa: F401  (tests import it from here)

# 4 actors x 30 utterances (1 statement, 2 repetitions) = 120 clips, 720 samples.
SMALL = SyntheticConfig(actors=4, statements=1, repetitions=2, seed=0)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    generate(root, SMALL)
    return root


@pytest.fixture(scope="session")
def dataset(corpus, tmp_path_factory):
    from edgeaffect.families.aver.dataset import build_aver_dataset

    return build_aver_dataset(corpus, stretch_rate=0.8, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def trained_run(dataset, tmp_path_factory):
    from edgeaffect.families.aver.train import train_aver

    return train_aver("aver-ravdess", dataset, tmp_path_factory.mktemp("run"), split="paper", max_epochs=60)


@pytest.fixture(scope="session")
def export_dir(trained_run, dataset, tmp_path_factory):
    from edgeaffect.export.exporter import export_run

    out = tmp_path_factory.mktemp("export") / "aver"
    export_run(trained_run, dataset, out, qat_epochs=5)
    return out


# --- SpeechNet: a synthetic EmoDB-format corpus (6 speakers x 6 texts x 7 emotions = 252
# utterances) and a small SpeechNet (same modules, narrower) trained on it. ---

def tiny_speechnet_config():
    from dataclasses import replace

    from edgeaffect.contract import get_model

    return replace(get_model("speechnet-emodb").config, max_frames=48, encoding_units=(64, 32), lstm_units=32,
                   pre_attention_units=32, heads=2, conv_filters=16, batch_size=32)


@pytest.fixture(scope="session")
def speech_corpus(tmp_path_factory):
    from edgeaffect.families.speechnet.synthetic import SpeechCorpusConfig, generate_emodb

    root = tmp_path_factory.mktemp("emodb")
    generate_emodb(root, SpeechCorpusConfig(speakers=6, texts=6))
    return root


@pytest.fixture(scope="session")
def speech_dataset(speech_corpus, tmp_path_factory):
    from edgeaffect.train.families import load_corpus

    return load_corpus("speechnet-emodb", speech_corpus, tmp_path_factory.mktemp("speech-cache"))


@pytest.fixture(scope="session")
def speech_run(speech_dataset, tmp_path_factory):
    from edgeaffect.families.speechnet.train import train_speechnet

    return train_speechnet("speechnet-emodb", speech_dataset, tmp_path_factory.mktemp("speech-run"), epochs=100,
                           config=tiny_speechnet_config())


@pytest.fixture(scope="session")
def speech_export(speech_run, speech_dataset, tmp_path_factory):
    from edgeaffect.export.exporter import export_run

    out = tmp_path_factory.mktemp("speech-export") / "speechnet"
    export_run(speech_run, speech_dataset, out, qat_epochs=5)
    return out


# --- the AVER device bundles (Raspberry Pi 5, Jetson Orin Nano): the target tests and the
# wheel's device installs run the same two. ---

@pytest.fixture(scope="session")
def rpi_bundle(trained_run, dataset, tmp_path_factory):
    from edgeaffect.export.exporter import export_run
    from edgeaffect.export.targets import get_target

    out = tmp_path_factory.mktemp("bundles") / "rpi5"
    export_run(trained_run, dataset, out, target=get_target("rpi5"), options={"threads": 4}, qat_epochs=3)
    return out


@pytest.fixture(scope="session")
def jetson_bundle(trained_run, dataset, tmp_path_factory):
    from edgeaffect.export.exporter import export_run
    from edgeaffect.export.targets import get_target

    out = tmp_path_factory.mktemp("bundles") / "orin"
    export_run(trained_run, dataset, out, target=get_target("jetson-orin-nano"), options={"precision": "int8"},
               qat_epochs=3)
    return out


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    """The wheel of this tree, built once (the wheel tests and the loopback device install it)."""
    from tests.test_wheel import build_wheel

    return build_wheel(tmp_path_factory.mktemp("wheel"))
