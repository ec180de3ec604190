"""`edgeaffect cost` (and everything that reads a model's graph) on a corrupted .tflite /
.onnx: one line `error: ...` and exit 2, whatever the corruption. The models are a tiny
conv net converted here (a few KB); corruptions are seeded, so every run sees the same."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from edgeaffect.errors import InputError
from tests.test_cli import assert_one_line_error, cli

NAME = b"conv_with_a_long_name"


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    import tensorflow as tf
    import tf2onnx

    from edgeaffect.keras_backend import keras

    k = keras()
    x = k.layers.Input((8, 8, 1), name="img")
    h = k.layers.Conv2D(4, 3, activation="relu", name=NAME.decode())(x)
    y = k.layers.Dense(3, name="dense_out")(k.layers.Flatten()(h))
    model = k.Model(x, y)
    out = tmp_path_factory.mktemp("tiny")
    paths = {"tflite": out / "tiny.tflite", "onnx": out / "tiny.onnx"}
    paths["tflite"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=(tf.TensorSpec((None, 8, 8, 1), tf.float32, "img"),),
                                          opset=17)
    paths["onnx"].write_bytes(proto.SerializeToString())
    return paths


def corrupt(data: bytes, rng: random.Random) -> bytes:
    """Flipped bits, a truncation, or a run of random bytes: what a bad copy or disk gives."""
    b = bytearray(data)
    mode = rng.choice(["flip", "truncate", "overwrite"])
    if mode == "flip":
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif mode == "truncate":
        b = b[: rng.randrange(len(b))]
    else:
        at = rng.randrange(len(b))
        b[at : at + 8] = bytes(rng.randrange(256) for _ in range(8))
    return bytes(b)


def test_a_tensor_name_that_is_not_utf8_is_one_line(tiny_models, tmp_path):
    """The case measured in issue 16: a UnicodeDecodeError from a tensor name."""
    blob = bytearray(tiny_models["tflite"].read_bytes())
    blob[blob.find(NAME) + 2] = 0xFF
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(bytes(blob))
    assert_one_line_error(cli("cost", bad), "bad.tflite is not a valid tflite model or is corrupted")


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_truncated_and_garbage_models_are_one_line(tiny_models, tmp_path, fmt):
    data = tiny_models[fmt].read_bytes()
    half = tmp_path / f"half.{fmt}"
    half.write_bytes(data[: len(data) // 2])
    assert_one_line_error(cli("cost", half), f"half.{fmt}")
    noise = tmp_path / f"noise.{fmt}"
    noise.write_bytes(random.Random(0).randbytes(2000))
    assert_one_line_error(cli("cost", noise), f"noise.{fmt}")


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_seeded_corruptions_never_escape_as_a_traceback(tiny_models, tmp_path, fmt):
    """60 corruptions each: the cost is computed (the damage missed the graph) or the file
    is refused in one line; no other exception."""
    from edgeaffect.roofline.readers import analyse

    data, rng = tiny_models[fmt].read_bytes(), random.Random(16)
    outcomes = {"analysed": 0, "refused": 0}
    for i in range(60):
        f = tmp_path / f"case{i}.{fmt}"
        f.write_bytes(corrupt(data, rng))
        try:
            analyse(f)
            outcomes["analysed"] += 1
        except InputError as exc:
            assert "\n" not in str(exc) and f.name in str(exc), str(exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 10, outcomes  # the corruptions do reach the readers


def test_trt_check_on_a_name_that_is_not_utf8_is_one_line(tiny_models, tmp_path):
    """Issue 30: a name that is not UTF-8 parses (protobuf hands it back as bytes) and the
    checker's walk raised `TypeError: can only concatenate str (not "bytes") to str`."""
    pytest.importorskip("onnx")
    blob = bytearray(tiny_models["onnx"].read_bytes())
    for at in range(len(blob)):  # every copy of the name: node, tensor and value names alike
        if blob.startswith(NAME, at):
            blob[at + 2] = 0xFF
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(bytes(blob))
    assert_one_line_error(cli("trt-check", bad), "bad.onnx is not a valid onnx model or is corrupted")
