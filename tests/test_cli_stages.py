"""The command line split by stage: grouped help, commands families add, their typed training
options, and the generic corpus and pipeline commands (no family's name in the CLI)."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeaffect.cli import app
from edgeaffect.cli._options import family_options
from edgeaffect.contract import Family, TrainOption
from edgeaffect.errors import InputError


class Options(Family):
    name = "opts"
    train_options = {"weights": TrainOption("a file", Path), "frozen": TrainOption("a flag", bool),
                     "mode": TrainOption("a choice", choices=("a", "b"))}


def test_help_is_grouped_by_stage():
    from edgeaffect.cli import _panels

    out = CliRunner().invoke(app, ["--help"], terminal_width=160).output
    for panel in (_panels.TRAIN, _panels.EXPORT, _panels.DEVICE, _panels.MEASURE, _panels.ROOFLINE, _panels.DEMO,
                  _panels.PAPERS):
        assert panel in out
    assert out.index(_panels.TRAIN) < out.index(_panels.DEVICE) < out.index(_panels.PAPERS)


def test_family_options_take_values_flags_and_their_old_spellings():
    f = Options()
    assert family_options(f, ["--weights", "w.h5", "--frozen", "--mode=b"]) == {"weights": "w.h5", "frozen": True,
                                                                                "mode": "b"}
    assert family_options(f, ["--no-frozen"]) == {"frozen": False}
    assert family_options(f, ["--frozen=false"]) == {"frozen": False}
    with pytest.raises(InputError, match="--margins is not an option of the opts family"):
        family_options(f, ["--margins", "paper"])
    with pytest.raises(InputError, match="unknown --mode 'c'"):
        family_options(f, ["--mode", "c"])
    with pytest.raises(InputError, match="--weights needs a value"):
        family_options(f, ["--weights"])
    with pytest.raises(InputError, match="unexpected argument 'stray'"):
        family_options(f, ["stray"])


def test_train_help_lists_each_familys_options():
    out = CliRunner().invoke(app, ["train", "--help"], terminal_width=200).output
    assert "Options of a model's family" in out and "--fine-tune" in out and "--margins VALUE" in out


def test_a_family_command_is_found_through_the_registry():
    r = CliRunner().invoke(app, ["embed", "--help"])
    assert r.exit_code == 0 and "--backbone" in r.output
    r = CliRunner().invoke(app, ["models"])
    assert "family commands: embed" in r.output


def test_synth_writes_the_models_corpus(tmp_path):
    from toy_family import SPEC, register

    register()
    r = CliRunner().invoke(app, ["synth", str(tmp_path / "c"), "--model", SPEC.name, "--scale", "3"])
    assert r.exit_code == 0, r.output
    assert len(SPEC.family_plugin.recordings(tmp_path / "c")) == 3
    r = CliRunner().invoke(app, ["synth", str(tmp_path / "c"), "--model", SPEC.name, "--actors", "2", "--seed", "1"])
    assert r.exit_code == 0 and r.output.startswith("2 files")


def test_pipeline_presets_reproduce_the_old_make_targets():
    from edgeaffect.workflows.pipeline import default_out, preset_for

    aver, speech, depression = (preset_for(m) for m in ("aver-ravdess", "speechnet-emodb", "spectrotemporal-tiny"))
    assert (aver.scale, aver.epochs, aver.speaker_epochs, aver.qat_epochs) == (8, 60, 30, 10)
    assert (speech.scale, speech.epochs, speech.speaker_epochs, speech.qat_epochs) == (8, None, None, 10)
    assert (depression.scale, depression.epochs, depression.qat_epochs) == (16, 40, 5)
    assert preset_for("aver-ravdess", epochs=None).epochs is None  # None given: the recipe's
    assert default_out("wav2vec2-tiny") == Path("build/wav2vec2-tiny")


def test_ablation_table_follows_the_task():
    from edgeaffect.workflows.ablation import table_lines

    reg = {"model": "spectrotemporal-tiny", "split": "paper", "seed": 0,
           "rows": [{"row": "full", "params": 10, "mae": 1.5, "rmse": 2.0}]}
    assert "MAE" in table_lines(reg)[1] and "1.500" in table_lines(reg)[2]
    det = {"model": "wav2vec2-tiny", "split": "paper", "seed": 0,
           "rows": [{"row": "full", "params": 10, "accuracy": 0.5, "macro_precision": 0.75, "macro_recall": 0.5,
                     "macro_f1": 0.45, "precision": 1.0, "recall": 0.25, "f1": 0.4}]}
    # macro over the two classes, the convention of the papers' ablation tables
    assert table_lines(det)[2].split()[-4:] == ["50.00", "75.00", "50.00", "45.00"]
