"""Per-tensor weights for a convolution whose per-channel parameters outweigh it
(edgeaffect/export/per_tensor.py), on a small grouped 1x1 convolution converted here."""

import numpy as np
import pytest

GROUPS, IN_PER_GROUP, OUT_PER_GROUP = 64, 4, 32


@pytest.fixture(scope="module")
def grouped_int8():
    from edgeaffect.keras_backend import tf as _tf

    tf = _tf()
    rng = np.random.default_rng(0)
    # per-group weight magnitudes 10x apart, so one scale is coarser than the channels' own
    w = (rng.normal(size=(1, 1, IN_PER_GROUP, GROUPS * OUT_PER_GROUP))
         * np.repeat(np.geomspace(0.05, 0.5, GROUPS), OUT_PER_GROUP)).astype(np.float32)
    bias = rng.normal(0, 0.1, GROUPS * OUT_PER_GROUP).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec((1, 1, 1, GROUPS * IN_PER_GROUP), tf.float32)])
    def grouped(x):
        return tf.nn.conv2d(x, w, 1, "VALID") + bias

    conv = tf.lite.TFLiteConverter.from_concrete_functions([grouped.get_concrete_function()])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    samples = [rng.normal(size=(1, 1, 1, GROUPS * IN_PER_GROUP)).astype(np.float32) for _ in range(32)]
    conv.representative_dataset = lambda: ([s] for s in samples)
    return conv.convert(), samples


def _run(blob, x, kernels="xnnpack"):
    from edgeaffect.runtime.litert import _resolver_options, interpreter_class

    Interpreter, _ = interpreter_class()
    it = Interpreter(model_content=blob, num_threads=1, **_resolver_options(kernels))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


def _conv(blob):
    from edgeaffect.runtime.litert_ops import op_type, read_model

    model = read_model(blob)
    graph = model.subgraphs[0]
    op = next(op for op in graph.operators if op_type(model, op) == "CONV_2D")
    return model, graph.tensors[op.inputs[1]], graph.tensors[op.inputs[2]], graph.tensors[op.outputs[0]]


def test_a_convolution_whose_parameters_outweigh_it_is_found_and_gets_one_scale(grouped_int8):
    from edgeaffect.export import per_tensor as pt

    blob, samples = grouped_int8
    ops = pt.heavy_ops(blob)
    assert len(ops) == 1
    smaller, names = pt.per_tensor(blob, ops)
    channels = GROUPS * OUT_PER_GROUP
    # 24 bytes of parameters per channel go, less the one scale left (flatbuffer padding aside)
    assert len(blob) - len(smaller) >= 0.9 * channels * pt.BYTES_PER_CHANNEL
    model, w, b, _ = _conv(smaller)
    assert len(w.quantization.scale) == 1 and len(b.quantization.scale) == 1 and names
    # each weight moves by at most half of the new step from its per-channel value
    old_model, old_w, _, out = _conv(blob)
    old = np.frombuffer(bytes(old_model.buffers[old_w.buffer].data), np.int8).reshape(channels, -1) \
        * np.asarray(old_w.quantization.scale)[:, None]
    new = np.frombuffer(bytes(model.buffers[w.buffer].data), np.int8).reshape(channels, -1) * w.quantization.scale[0]
    assert np.abs(new - old).max() <= w.quantization.scale[0] / 2 + 1e-9
    # the outputs stay within a few of the output's steps (4 int8 inputs per output, each
    # weight off by half a step: the bound is 4 x max|x| x step / 2 in the worst case)
    step = out.quantization.scale[0]
    for x in samples[:8]:
        got, want = _run(smaller, x), _run(blob, x)
        assert np.abs(got - want).max() <= 4 * step
        # the built-in kernels take it too (their rounding may differ by one step)
        assert np.abs(_run(smaller, x, "builtin") - got).max() <= step * 1.01


def test_a_plain_convolution_is_left_as_it_is():
    from edgeaffect.export import per_tensor as pt
    from edgeaffect.keras_backend import tf as _tf

    tf = _tf()
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 3, 64, 64)).astype(np.float32)  # 576 weights per channel

    @tf.function(input_signature=[tf.TensorSpec((1, 8, 8, 64), tf.float32)])
    def plain(x):
        return tf.nn.conv2d(x, w, 1, "SAME")

    conv = tf.lite.TFLiteConverter.from_concrete_functions([plain.get_concrete_function()])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.normal(size=(1, 8, 8, 64)).astype(np.float32)] for _ in range(8))
    assert pt.heavy_ops(conv.convert()) == []
