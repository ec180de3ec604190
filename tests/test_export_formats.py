"""The export-format registry: a new format is one file in edgeaffect/export/formats/ (found
without a list to edit), and the formats the wav2vec 2.0 backbone tools write are registered."""

import numpy as np
import pytest


def test_a_format_is_one_file_found_by_the_registry(tmp_path, monkeypatch):
    import sys

    from edgeaffect.export import formats

    formats.list_formats()  # the shipped formats registered before the registry is swapped
    (tmp_path / "copy_of_fp32.py").write_text(
        "from edgeaffect.export.formats import ExportFormat, get_format, register_format\n"
        "register_format(ExportFormat('tflite-fp32-copy', '.tflite', 'float', 'litert', 'float32',\n"
        "                             get_format('tflite-fp32').write, 'a copy', ('opset_of_nothing',)))\n")
    monkeypatch.setattr(formats, "__path__", [*formats.__path__, str(tmp_path)])
    monkeypatch.setattr(formats, "_FORMATS", dict(formats._FORMATS))
    assert "tflite-fp32-copy" in formats.list_formats()
    fmt = formats.get_format("tflite-fp32-copy")

    class Target:
        writer_options = {"opset_of_nothing": 1, "onnx_opset": 13}

    assert formats.writer_options(fmt, Target()) == {"opset_of_nothing": 1}
    sys.modules.pop(f"{formats.__name__}.copy_of_fp32", None)


def test_tflite_dynamic_int8_runs_close_to_keras(tmp_path):
    pytest.importorskip("ai_edge_litert")
    from edgeaffect.export.formats import get_format
    from edgeaffect.keras_backend import keras
    from edgeaffect.runtime import load_runner

    k = keras()
    k.utils.set_random_seed(0)
    x_in = k.Input((40,), name="x")
    model = k.Model(x_in, k.layers.Dense(3)(k.layers.Dense(32, activation="relu")(x_in)))
    fmt = get_format("tflite-dynamic-int8")
    assert (fmt.source, fmt.precision, fmt.runtime) == ("float", "int8", "litert")
    fmt.write(model, {"x": (40,)}, [], tmp_path / "m.tflite")
    assert (tmp_path / "m.tflite").stat().st_size < (32 * 40 + 3 * 32) * 4  # int8 weights
    x = np.random.default_rng(0).standard_normal((16, 40)).astype(np.float32)
    got = load_runner(tmp_path / "m.tflite", "litert").run({"x": x})
    want = model.predict(x, verbose=0)
    assert np.max(np.abs(got - want)) < 0.05 * np.max(np.abs(want)), (got, want)
