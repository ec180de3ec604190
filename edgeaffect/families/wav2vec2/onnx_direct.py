"""The wav2vec 2.0 feature model written straight to ONNX from its config and its Keras layers'
weights, without tf2onnx.

Why: tf2onnx traces the TensorFlow graph and holds about 60x the weights' bytes while it
does (14.6 GB for base; wav2vec2-large, the paper's model, could not be exported on a 24 GB
machine at all). This writer holds the weights about twice (the Keras arrays and the
protobuf), so large's 1.26 GB of float32 weights fit in a few GB. It also writes the graph
as ONNX Runtime's kernels want it: ``LayerNormalization`` (opset 17) as one op, the first
conv's per-channel GroupNorm as ``InstanceNormalization``, the positional convolution as one
grouped ``Conv``, and exact GELU in the erf form ONNX Runtime fuses.

The graph is the Keras model's (``backbone.build_feature_model``) op for op in meaning: the
same convolutions, norms, attention (scores scaled by head_dim^-0.5 after Q K^T), residual
order (post-LN or pre-LN, ``do_stable_layer_norm``) and the hidden-state sum; the export
verifies it against Keras like every file (``backbone_files.BOUNDS``).
"""

from __future__ import annotations

import numpy as np

from edgeaffect._optional import require

OUTPUT = "feature"


def keras_name(module: str) -> str:
    """The Keras layer of a reference module path: dots as "__", as ``backbone.keras_name``
    names them (not imported: ``backbone`` attaches this writer to the models it builds)."""
    return module.replace(".", "__")


class _Graph:
    """Nodes and initializers, with fresh tensor names."""

    def __init__(self, model):
        self.onnx = require("onnx", "train")
        self.model = model
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def const(self, array, hint: str) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list, hint: str, **attrs) -> str:
        out = self.name(hint)
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def weights(self, module: str) -> list:
        return self.model.get_layer(keras_name(module)).get_weights()

    # --------------------------------------------------------------- layers
    def dense(self, x: str, module: str) -> str:
        kernel, bias = self.weights(module)
        y = self.op("MatMul", [x, self.const(kernel.astype(np.float32), f"{module}.weight")], module)
        return self.op("Add", [y, self.const(bias.astype(np.float32), f"{module}.bias")], module)

    def layer_norm(self, x: str, module: str, eps: float) -> str:
        gamma, beta = self.weights(module)
        return self.op("LayerNormalization", [x, self.const(gamma, f"{module}.weight"),
                                              self.const(beta, f"{module}.bias")], module, axis=-1, epsilon=eps)

    def gelu(self, x: str, hint: str) -> str:
        """0.5 x (1 + erf(x / sqrt 2)): exact GELU, the pattern ONNX Runtime fuses into one op."""
        scaled = self.op("Mul", [x, self.const(np.array(2.0 ** -0.5, np.float32), "inv_sqrt2")], hint)
        erf = self.op("Erf", [scaled], hint)
        one_plus = self.op("Add", [erf, self.const(np.array(1.0, np.float32), "one")], hint)
        half_x = self.op("Mul", [x, self.const(np.array(0.5, np.float32), "half")], hint)
        return self.op("Mul", [half_x, one_plus], hint)

    def activation(self, x: str, kind: str, hint: str) -> str:
        if kind == "gelu":
            return self.gelu(x, hint)
        return self.op({"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}[kind], [x], hint)

    def transpose(self, x: str, perm: list, hint: str) -> str:
        return self.op("Transpose", [x], hint, perm=perm)

    def reshape(self, x: str, shape: list, hint: str) -> str:
        return self.op("Reshape", [x, self.const(np.array(shape, np.int64), "shape")], hint)


def _feature_encoder(g: _Graph, audio: str, c) -> str:
    """(batch, samples) -> (batch, frames, conv_dim[-1]), convolutions in N C T."""
    x = g.op("Unsqueeze", [audio, g.const(np.array([1], np.int64), "axis")], "audio_channels")
    for i, (k, s) in enumerate(zip(c.conv_kernel, c.conv_stride)):
        p = f"feature_extractor.conv_layers.{i}"
        w = g.weights(f"{p}.conv")
        inputs = [x, g.const(np.transpose(w[0], (2, 1, 0)).astype(np.float32), f"{p}.conv.weight")]
        if c.conv_bias:
            inputs.append(g.const(w[1].astype(np.float32), f"{p}.conv.bias"))
        x = g.op("Conv", inputs, f"{p}.conv", kernel_shape=[k], strides=[s])
        if c.feat_extract_norm == "layer":
            t = g.layer_norm(g.transpose(x, [0, 2, 1], p), f"{p}.layer_norm", 1e-5)
            x = g.transpose(g.activation(t, c.feat_extract_activation, f"{p}.activation"), [0, 2, 1], p)
            continue
        if i == 0:  # GroupNorm with one group per channel: each channel over time
            gamma, beta = g.weights(f"{p}.layer_norm")
            x = g.op("InstanceNormalization", [x, g.const(gamma, f"{p}.layer_norm.weight"),
                                               g.const(beta, f"{p}.layer_norm.bias")], p, epsilon=1e-5)
        x = g.activation(x, c.feat_extract_activation, f"{p}.activation")
    return g.transpose(x, [0, 2, 1], "feature_extractor.out")


def _positional(g: _Graph, h: str, c) -> str:
    """The grouped positional convolution (one Conv, ``group``), same-length output."""
    kpos, groups = c.num_conv_pos_embeddings, c.num_conv_pos_embedding_groups
    kernels, biases = [], []
    for i in range(groups):  # Keras holds one Conv1D per group
        w, b = g.weights(f"encoder.pos_conv_embed.conv_{i}")
        kernels.append(np.transpose(w, (2, 1, 0)))
        biases.append(b)
    x = g.transpose(h, [0, 2, 1], "encoder.pos_conv_embed.in")
    pos = g.op("Conv", [x, g.const(np.concatenate(kernels).astype(np.float32), "encoder.pos_conv_embed.weight"),
                        g.const(np.concatenate(biases).astype(np.float32), "encoder.pos_conv_embed.bias")],
               "encoder.pos_conv_embed", kernel_shape=[kpos], group=groups, pads=[kpos // 2, kpos // 2])
    if kpos % 2 == 0:  # the reference drops the last frame of an even kernel's output
        pos = g.op("Slice", [pos, g.const(np.array([0], np.int64), "start"),
                             g.const(np.array([-1], np.int64), "end"), g.const(np.array([2], np.int64), "axis")],
                   "encoder.pos_conv_embed.same_pad")
    pos = g.activation(pos, c.feat_extract_activation, "encoder.pos_conv_embed.activation")
    return g.transpose(pos, [0, 2, 1], "encoder.pos_conv_embed.out")


def _attention(g: _Graph, x: str, p: str, c, batch: int, frames: int) -> str:
    heads, d = c.num_attention_heads, c.head_dim

    def split(t, hint):  # (b, T, hidden) -> (b, heads, T, d)
        return g.transpose(g.reshape(t, [batch, frames, heads, d], hint), [0, 2, 1, 3], hint)

    q, k, v = (split(g.dense(x, f"{p}.attention.{n}_proj"), f"{p}.attention.{n}") for n in ("q", "k", "v"))
    scores = g.op("MatMul", [q, g.transpose(k, [0, 1, 3, 2], f"{p}.attention.kT")], f"{p}.attention.scores")
    scores = g.op("Mul", [scores, g.const(np.array(d ** -0.5, np.float32), "scale")], f"{p}.attention.scaled")
    weights = g.op("Softmax", [scores], f"{p}.attention.softmax", axis=-1)
    out = g.op("MatMul", [weights, v], f"{p}.attention.context")
    out = g.reshape(g.transpose(out, [0, 2, 1, 3], f"{p}.attention.merge"), [batch, frames, c.hidden_size],
                    f"{p}.attention.merge")
    return g.dense(out, f"{p}.attention.out_proj")


def _feed_forward(g: _Graph, x: str, p: str, c) -> str:
    t = g.dense(x, f"{p}.feed_forward.intermediate_dense")
    t = g.activation(t, c.hidden_act, f"{p}.feed_forward.activation")
    return g.dense(t, f"{p}.feed_forward.output_dense")


def feature_model_proto(model, config, definition: str, opset: int = 17):
    """The ONNX ModelProto of ``build_feature_model(config, definition=...)``'s graph with
    ``model``'s weights; input ``audio`` (batch, samples) as the Keras model's, output
    ``feature`` (batch, frames, hidden)."""
    onnx = require("onnx", "train")
    from onnx import TensorProto, helper

    if opset < 17:  # LayerNormalization
        raise ValueError(f"the direct wav2vec 2.0 writer needs ONNX opset 17 or later, not {opset}")
    c = config
    batch, samples = (int(d) for d in model.inputs[0].shape)  # built with static shapes for export
    frames = int(model.outputs[0].shape[1])
    g = _Graph(model)
    eps = c.layer_norm_eps
    x = _feature_encoder(g, "audio", c)
    x = g.layer_norm(x, "feature_projection.layer_norm", eps)
    h = g.dense(x, "feature_projection.projection")
    h = g.op("Add", [h, _positional(g, h, c)], "encoder.pos_add")
    if not c.do_stable_layer_norm:
        h = g.layer_norm(h, "encoder.layer_norm", eps)
    states = [h]
    for i in range(c.num_hidden_layers):
        p = f"encoder.layers.{i}"
        if c.do_stable_layer_norm:
            h = g.op("Add", [h, _attention(g, g.layer_norm(h, f"{p}.layer_norm", eps), p, c, batch, frames)],
                     f"{p}.attention_add")
            h = g.op("Add", [h, _feed_forward(g, g.layer_norm(h, f"{p}.final_layer_norm", eps), p, c)],
                     f"{p}.feed_forward_add")
        else:
            h = g.layer_norm(g.op("Add", [h, _attention(g, h, p, c, batch, frames)], f"{p}.attention_add"),
                             f"{p}.layer_norm", eps)
            h = g.layer_norm(g.op("Add", [h, _feed_forward(g, h, p, c)], f"{p}.feed_forward_add"),
                             f"{p}.final_layer_norm", eps)
        states.append(h)
    chosen = {"layers": states[1:], "all": states, "last": states[-1:]}[definition]
    total = chosen[0] if len(chosen) == 1 else g.op("Sum", chosen, f"hidden_state_sum_{definition}")
    g.nodes.append(helper.make_node("Identity", [total], [OUTPUT], name=OUTPUT))
    graph = helper.make_graph(
        g.nodes, model.name, [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [batch, samples])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [batch, frames, c.hidden_size])], g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="edgeaffect (wav2vec 2.0 direct writer)")
    proto.ir_version = min(proto.ir_version, 8)  # readable by the ONNX Runtime versions the devices carry
    onnx.checker.check_model(proto)
    return proto


def onnx_writer(config, definition: str):
    """The hook ``build_feature_model`` leaves on its model for ``export.onnx_graph``:
    (model, input_specs, opset) -> the proto, or None below opset 17 (tf2onnx writes it then)."""
    def write(model, input_specs, opset: int):
        if opset < 17:
            return None
        return feature_model_proto(model, config, definition, opset)
    return write
