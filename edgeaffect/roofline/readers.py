"""Readers: a Keras model, a TFLite file or an ONNX file -> ``Graph`` (see graph.py).

The TFLite reader needs only a LiteRT interpreter (device side); the ONNX reader needs
the ``onnx`` package; the Keras reader needs tf_keras. Each is imported where used.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from edgeaffect._optional import require
from edgeaffect.errors import CORRUPT_MODEL, EdgeAffectError, InputError, corrupt_model
from edgeaffect.roofline.graph import Graph, ModelCost, Op, lstm_cost, model_cost, prod

# --------------------------------------------------------------------------- Keras

_KERAS_VIEWS = {"InputLayer", "Flatten", "Dropout", "Reshape", "Permute", "SpatialDropout1D", "SpatialDropout2D",
                "GaussianNoise", "QuantizeLayer"}
_KERAS_ACT = {"Activation", "ReLU", "LeakyReLU", "Softmax", "ELU", "PReLU", "LayerNormalization",
              "BatchNormalization", "GroupNormalization", "Normalization", "Rescaling"}
# Copies with no arithmetic (their bytes still count, unlike a view's).
_KERAS_COPIES = {"Cropping1D", "Cropping2D", "Cropping3D", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"}
_KERAS_POOL = {"MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D",
               "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D"}


def _shape_elems(shape) -> int:
    if isinstance(shape, list):
        return sum(_shape_elems(s) for s in shape)
    return prod(shape[1:] if len(shape) > 1 else shape)


def _attention_cost(layer) -> tuple[int, int]:
    """(MACs, bias adds) of Keras MultiHeadAttention: q / k / v projections, scores,
    weighted sum, output projection."""
    (tq, dq), (tv, dv) = layer._query_shape[-2:], layer._value_shape[-2:]  # noqa: SLF001 - set when built
    dk = (layer._key_shape or layer._value_shape)[-1]  # noqa: SLF001
    h, kd, vd = layer._num_heads, layer._key_dim, layer._value_dim  # noqa: SLF001
    out = int(layer.output_shape[-1])
    macs = (tq * dq * h * kd + tv * dk * h * kd + tv * dv * h * vd + tq * tv * h * kd + tq * tv * h * vd
            + tq * h * vd * out)
    adds = (tq * h * kd + tv * h * kd + tv * h * vd + tq * out) if layer._use_bias else 0  # noqa: SLF001
    return int(macs), int(adds)


_QUANTIZE_WRAPPERS = {"QuantizeWrapper", "QuantizeWrapperV2"}


def _keras_op(layer) -> Op:
    cls = type(layer._layer if isinstance(layer, _Call) else layer).__name__  # noqa: SLF001
    if cls in _QUANTIZE_WRAPPERS:  # the wrapped layer's arithmetic at the wrapper's shapes
        inner = _keras_op(_Call(layer.layer, input_shape=layer.input_shape, output_shape=layer.output_shape))
        inner.name = layer.name
        return inner
    out_elems = _shape_elems(layer.output_shape)
    params = int(layer.count_params())
    if cls == "TimeDistributed":
        return _time_distributed_op(layer, params)
    if cls in ("Conv1D", "Conv2D", "Conv3D"):
        in_ch = int(layer.input_shape[-1])
        k = prod(layer.kernel_size)
        return Op(layer.name, "conv", [], [], params, out_elems * k * in_ch // layer.groups,
                  out_elems if layer.use_bias else 0)
    if cls in ("DepthwiseConv2D", "DepthwiseConv1D"):
        return Op(layer.name, "conv", [], [], params, out_elems * prod(layer.kernel_size),
                  out_elems if layer.use_bias else 0)
    if cls == "Dense":
        return Op(layer.name, "dense", [], [], params, out_elems * int(layer.input_shape[-1]),
                  out_elems if layer.use_bias else 0)
    if cls == "LSTM":
        steps = int(layer.input_shape[1])
        return Op(layer.name, "recurrent", [], [], params, *lstm_cost(steps, int(layer.input_shape[-1]), layer.units))
    if cls == "MultiHeadAttention":
        return Op(layer.name, "attention", [], [], params, *_attention_cost(layer))
    if hasattr(layer, "edgeaffect_cost"):  # a custom layer that states its own arithmetic
        kind = getattr(layer, "edgeaffect_kind", "other")
        return Op(layer.name, kind, [], [], params, *layer.edgeaffect_cost(layer.input_shape))
    if _is_model(layer):
        return _nested_op(layer.name, layer, params)
    if cls in ("Add", "Multiply", "Subtract"):
        return Op(layer.name, "add", [], [], params, 0, out_elems * (len(layer.input) - 1))
    if cls == "Average":  # the adds, then one scale
        return Op(layer.name, "add", [], [], params, 0, out_elems * len(layer.input))
    if cls in _KERAS_VIEWS:
        return Op(layer.name, "view", [], [], params)
    if cls in _KERAS_POOL:
        return Op(layer.name, "pool", [], [], params)
    if cls in _KERAS_ACT:
        return Op(layer.name, "act", [], [], params)
    if cls == "Concatenate":
        return Op(layer.name, "concat", [], [], params)
    if cls in _KERAS_COPIES:
        return Op(layer.name, "other", [], [], params)
    # Anything else (a Lambda, a custom layer without edgeaffect_cost) may compute, weights
    # or not (an attention's A V has none): not counted, and the totals say so.
    return Op(layer.name, "other", [], [], params, counted=False)


def _is_model(layer) -> bool:
    inner = layer._layer if isinstance(layer, _Call) else layer  # noqa: SLF001
    return hasattr(inner, "layers") and hasattr(inner, "outputs")


def _nested_op(name: str, model, params: int, times: int = 1) -> Op:
    """A Keras model used as a layer: the sum of its own layers' arithmetic, ``times``
    over; not counted where any of its layers is not."""
    ops = from_keras(model._layer if isinstance(model, _Call) else model).ops  # noqa: SLF001
    counted = all(op.counted for op in ops)
    return Op(name, "other", [], [], params, times * sum(op.macs for op in ops), times * sum(op.adds for op in ops),
              counted=counted)


def _time_distributed_op(layer, params: int) -> Op:
    """TimeDistributed runs its layer once per step of axis 1: that layer's cost on one
    step's shape, times the steps (Keras reports the wrapper's shapes only)."""
    steps = layer.input_shape[1]
    if steps is None:  # how often it runs is not known from the model
        return Op(layer.name, "other", [], [], params, counted=False)
    step = lambda s: (s[0], *s[2:])  # noqa: E731 - (batch, steps, ...) -> (batch, ...)
    if _is_model(layer.layer):
        return _nested_op(layer.name, layer.layer, params, int(steps))
    inner = _keras_op(_Call(layer.layer, input_shape=step(layer.input_shape), output_shape=step(layer.output_shape),
                            params=params))
    inner.name, inner.macs, inner.adds = layer.name, inner.macs * int(steps), inner.adds * int(steps)
    return inner


class _Call:
    """One call of a Keras layer (a layer shared by several views, like one backbone on five
    crops, has a node per call with its own shapes); weights are counted on the first call.
    Shapes can also be given, for a layer run inside another (TimeDistributed, a quantize
    wrapper), whose own nodes do not record them."""

    def __init__(self, layer, index: int = 0, input_shape=None, output_shape=None, params: int | None = None):
        self._layer, self._index = layer, index
        self._shapes, self._params = (input_shape, output_shape), params

    def __getattr__(self, name):
        return getattr(self._layer, name)

    @property
    def output_shape(self):
        return self._shapes[1] if self._shapes[1] is not None else self._layer.get_output_shape_at(self._index)

    @property
    def input_shape(self):
        return self._shapes[0] if self._shapes[0] is not None else self._layer.get_input_shape_at(self._index)

    @property
    def input(self):
        return self._layer.get_input_at(self._index)

    def count_params(self) -> int:
        if self._params is not None:
            return int(self._params)
        return int(self._layer.count_params()) if self._index == 0 else 0


def _call_name(layer, node) -> str:
    i = next(j for j, n in enumerate(layer._inbound_nodes) if n is node)  # noqa: SLF001
    return layer.name if i == 0 else f"{layer.name}#{i}"


def _fold_factor(call) -> Fraction | None:
    """Rows of this layer's output batch per row of its input batch: 1 for every Keras
    layer; a layer that folds steps into the batch (or unfolds them) states it through
    ``edgeaffect_fold(input_shape)``; None where that depends on a size the model leaves open."""
    inner = call.layer if type(call._layer if isinstance(call, _Call) else call).__name__ in _QUANTIZE_WRAPPERS else call  # noqa: SLF001
    fold = getattr(inner, "edgeaffect_fold", None)
    if fold is None:
        return Fraction(1)
    factor = fold(call.input_shape)
    return None if factor is None else Fraction(factor)


def _scale(op: Op, applications: Fraction) -> None:
    """A layer behind a folded batch runs once per folded row, ``applications`` times per
    model input (the Keras shapes say one)."""
    op.macs, op.adds = int(op.macs * applications), int(op.adds * applications)


def _folded_shift(layer) -> bool:
    """Whether a BatchNormalization shifts its input (beta - mean * gamma / sqrt(var + eps) not
    all zero): then a converter that folds it into the conv before it leaves that conv a bias
    add per output, which the exported files count; a fresh BatchNorm folds to a zero bias."""
    import numpy as np

    weights = {w.name.split("/")[-1].split(":")[0]: w.numpy() for w in layer.weights}
    gamma = weights.get("gamma", 1.0)
    shift = weights.get("beta", 0.0) - weights["moving_mean"] * gamma / np.sqrt(weights["moving_variance"] + layer.epsilon)
    return bool(np.any(shift))


def from_keras(model) -> Graph:
    """The model's ops; a layer that runs on rows folded into the batch is counted once per
    row (``_fold_factor``), its activations too. A BatchNormalization right after a conv counts
    as that conv's bias (``_folded_shift``), as every converter writes it; elsewhere it is a
    normalisation, zero."""
    ops, sizes, rows = [], {}, {}
    by_name: dict[str, Op] = {}
    inputs = [layer.name for layer in model.layers if type(layer).__name__ == "InputLayer"]
    for layer in model.layers:
        nodes = layer._inbound_nodes  # noqa: SLF001 - tf_keras keeps the graph here
        if len(nodes) <= 1:
            calls = [(layer.name, layer, nodes[0] if nodes else None)]
        else:
            calls = [(_call_name(layer, n), _Call(layer, i), n) for i, n in enumerate(nodes)]
        for name, call, node in calls:
            parents = [_call_name(n.layer, n) for n in node.parent_nodes] if node is not None else []
            applied = max((rows.get(p, Fraction(1)) for p in parents), default=Fraction(1))
            if type(layer).__name__ == "InputLayer":
                sizes[name] = _shape_elems(call.output_shape)
                continue
            op = _keras_op(call)
            op.name, op.inputs, op.outputs = name, parents, [name]
            conv = by_name.get(parents[0]) if len(parents) == 1 else None
            if (type(layer).__name__ == "BatchNormalization" and conv is not None and conv.kind == "conv"
                    and conv.adds == 0 and _folded_shift(layer)):
                op.kind, op.adds = "add", _shape_elems(call.output_shape)  # the folded bias
            _scale(op, applied)
            by_name[name] = op
            factor = _fold_factor(call)
            if factor is None:
                op.counted, factor = False, Fraction(1)
            rows[name] = applied * factor
            sizes[name] = int(_shape_elems(call.output_shape) * rows[name])
            ops.append(op)
    outputs = [t.name.split("/")[0] for t in model.outputs]
    return Graph(model.name, "keras", ops, sizes, inputs, outputs)


# --------------------------------------------------------------------------- TFLite

_TFLITE_VIEWS = {"RESHAPE", "EXPAND_DIMS", "SQUEEZE", "QUANTIZE", "DEQUANTIZE", "IDENTITY"}
_TFLITE_ACT = {"RELU", "RELU6", "LOGISTIC", "TANH", "SOFTMAX", "LEAKY_RELU", "HARD_SWISH", "GELU"}
_TFLITE_POOL = {"MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN", "REDUCE_MAX"}
_TFLITE_KINDS = {**dict.fromkeys(_TFLITE_VIEWS, "view"), **dict.fromkeys(_TFLITE_ACT, "act"),
                 **dict.fromkeys(_TFLITE_POOL, "pool"), "CONCATENATION": "concat"}


def from_tflite(path: str | Path) -> Graph:
    from edgeaffect.runtime.litert import interpreter_class

    Interpreter, _ = interpreter_class()
    try:
        # No default delegate: XNNPACK would replace the ops with opaque DELEGATE nodes.
        from ai_edge_litert.interpreter import OpResolverType

        interp = Interpreter(model_path=str(path),
                             experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    except ImportError:
        interp = Interpreter(model_path=str(path))
    except (ValueError, RuntimeError) as exc:
        raise InputError(f"not a valid TFLite model: {path} ({str(exc).splitlines()[0]})") from None
    interp.allocate_tensors()
    tensors = {d["index"]: d for d in interp.get_tensor_details()}
    if any(-1 in list(d.get("shape_signature", ())) for d in tensors.values()):
        # A dynamic batch: tensors behind a Reshape computed at run time (Keras's Tensordot)
        # keep a placeholder shape until the model runs, so run it once on zeros (batch 1).
        import numpy as np

        try:
            for d in interp.get_input_details():
                interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
            interp.invoke()
            tensors = {d["index"]: d for d in interp.get_tensor_details()}
        except (ValueError, RuntimeError):  # shapes stay as allocated: the counts may then be low
            pass
    details = [op for op in interp._get_ops_details() if op["op_name"] != "DELEGATE"]  # noqa: SLF001
    produced = {int(t) for op in details for t in op["outputs"]}
    model_inputs = {d["index"] for d in interp.get_input_details()}
    constant = {i for i in tensors if i not in produced and i not in model_inputs}
    # Ops whose every input is constant (fp16 weights through DEQUANTIZE) fold into constants.
    ops_left = []
    for op in details:
        ins = [int(t) for t in op["inputs"] if t >= 0]
        if ins and all(t in constant for t in ins):
            constant.update(int(t) for t in op["outputs"])
            for t in op["outputs"]:
                tensors[int(t)]["_folded_from"] = ins
            continue
        ops_left.append(op)

    def elems(i: int) -> int:
        return prod(tensors[i]["shape"])

    def const_elems(i: int) -> int:
        d = tensors[i]
        return elems(i) if "_folded_from" not in d else sum(const_elems(j) for j in d["_folded_from"]
                                                             if len(tensors[j]["shape"]) > 0 and elems(j) > 1) or elems(i)

    def zero_constant(i: int) -> bool:
        if i not in constant or "_folded_from" in tensors[i]:
            return False
        try:
            return not interp.get_tensor(i).any()
        except ValueError:  # a tensor the interpreter does not hand out
            return False

    producer = {int(t): o for o in ops_left for t in o["outputs"]}

    def swish(op) -> bool:
        """MUL(x, LOGISTIC(x)): swish / SiLU, an activation (zero in the cost convention)."""
        a, b = (int(t) for t in op["inputs"][:2])
        return any(producer.get(s, {}).get("op_name") == "LOGISTIC" and int(producer[s]["inputs"][0]) == x
                   for s, x in ((a, b), (b, a)))

    ops, sizes = [], {}
    for op in ops_left:
        kind_name = op["op_name"]
        ins = [int(t) for t in op["inputs"] if t >= 0]
        outs = [int(t) for t in op["outputs"]]
        acts = [t for t in ins if t not in constant]
        consts = [t for t in ins if t in constant]
        out_elems = sum(elems(t) for t in outs)
        for t in acts + outs:
            sizes[str(t)] = elems(t)
        name = tensors[outs[0]]["name"]
        o = Op(name, "other", [str(t) for t in acts], [str(t) for t in outs])
        weights = [t for t in consts if tensors[t]["dtype"].__name__ not in ("int32",) or kind_name in
                   ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
        if kind_name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "CONV_3D"):
            w = ins[1]
            wshape = tensors[w]["shape"]
            if kind_name == "CONV_2D":
                o.kind, o.macs = "conv", out_elems * prod(wshape[1:])
            elif kind_name == "DEPTHWISE_CONV_2D":
                o.kind, o.macs = "conv", out_elems * prod(wshape[1:3])
            elif kind_name == "FULLY_CONNECTED":
                o.kind, o.macs = "dense", out_elems * int(wshape[-1])
            else:
                o.kind, o.macs = "matmul", out_elems * int(tensors[ins[0]]["shape"][-1])
            # the converter gives every conv a bias input, zeros where the layer has none:
            # adding zeros is no arithmetic of the model's (Keras counts none there either)
            has_bias = len(ins) > 2 and kind_name != "BATCH_MATMUL" and not zero_constant(ins[2])
            o.adds = out_elems if has_bias else 0
            o.params = sum(const_elems(t) for t in weights)
        elif kind_name == "MUL" and len(op["inputs"]) >= 2 and swish(op):
            o.kind = "act"
        elif kind_name in ("ADD", "MUL", "SUB"):
            o.kind, o.adds = "add", out_elems
            o.params = sum(const_elems(t) for t in consts)
        elif kind_name == "UNIDIRECTIONAL_SEQUENCE_LSTM":
            shape = tensors[ins[0]]["shape"]
            steps, n_in = int(shape[1]), int(shape[-1])
            units = int(tensors[outs[0]]["shape"][-1])
            o.kind = "recurrent"
            o.macs, o.adds = lstm_cost(steps, n_in, units)
            o.params = sum(const_elems(t) for t in consts if len(tensors[t]["shape"]) > 0)
        else:
            o.kind = _TFLITE_KINDS.get(kind_name, "other")
        ops.append(o)
    inputs = [str(d["index"]) for d in interp.get_input_details()]
    outputs = [str(d["index"]) for d in interp.get_output_details()]
    for t in inputs + outputs:
        sizes[t] = elems(int(t))
    return Graph(Path(path).stem, "tflite", ops, sizes, inputs, outputs)


# --------------------------------------------------------------------------- ONNX

_ONNX_VIEWS = {"Reshape", "Unsqueeze", "Squeeze", "Flatten", "Identity", "Dropout", "QuantizeLinear",
               "DequantizeLinear", "Cast"}
_ONNX_ACT = {"Relu", "Sigmoid", "Tanh", "Softmax", "LeakyRelu", "Gelu", "HardSwish", "Clip",
             "LayerNormalization", "BatchNormalization"}
_ONNX_POOL = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax"}
# Transpose counts as a view: tf2onnx's NHWC<->NCHW layout changes, not the model's own arithmetic.
_ONNX_KINDS = {**dict.fromkeys(_ONNX_VIEWS | {"Transpose"}, "view"), **dict.fromkeys(_ONNX_ACT, "act"),
               **dict.fromkeys(_ONNX_POOL, "pool"), "Concat": "concat"}


# Integer forms of the same arithmetic (ONNX Runtime's dynamic and static quantization):
# op -> (index of the weight input, index of the bias input or None)
_ONNX_INTEGER = {"MatMulInteger": (1, None), "ConvInteger": (1, None), "QLinearMatMul": (3, None),
                 "QLinearConv": (3, 8)}
COUNTED_ONNX_OPS = {"Conv", "MatMul", "Gemm", "Add", "Mul", "Sub", "LSTM", *_ONNX_INTEGER}
# Arithmetic this reader does not count: marked uncounted (totals "at least"), never a silent zero.
_ONNX_NOT_COUNTED = {"ConvTranspose", "Einsum", "GRU", "RNN", "Attention", "MultiHeadAttention", "FusedMatMul",
                     "FusedConv", "QAttention", "DynamicQuantizeMatMul", "MatMulNBits", "DeformConv"}


def _static_batch(model) -> bool:
    """Batch 1 where an input's first dimension is symbolic (one inference, as everywhere in
    the cost model); True when every input dimension is then known."""
    known = True
    for vi in model.graph.input:
        for i, d in enumerate(vi.type.tensor_type.shape.dim):
            if not d.HasField("dim_value"):
                if i == 0:
                    d.dim_value = 1
                else:
                    known = False
    return known


def _onnx_shapes(g) -> dict[str, list]:
    """Tensor -> its dimensions, None where unknown."""
    return {vi.name: [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
            for vi in list(g.input) + list(g.value_info) + list(g.output)}


def _probe_shapes(model, names: list[str]) -> dict[str, list]:
    """Shapes shape inference cannot reach (a Reshape whose target is computed from Shape ops,
    as tf2onnx writes Keras's Tensordot): the model run once on zeros with those tensors as
    extra outputs. Only for models whose inputs are all static; {} when ONNX Runtime is absent."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {}
    import numpy as np
    from onnx import TensorProto, helper

    probe = type(model)()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    probe.graph.output.extend(helper.make_empty_tensor_value_info(n) for n in names if n not in have)
    feeds = {}
    for vi in probe.graph.input:
        dtype = helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type or TensorProto.FLOAT)
        feeds[vi.name] = np.zeros([d.dim_value for d in vi.type.tensor_type.shape.dim], dtype)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor by name
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        values = sess.run(names, {k: v for k, v in feeds.items() if k in {i.name for i in sess.get_inputs()}})
    except Exception:  # a model ONNX Runtime cannot run on zeros: those ops stay uncounted
        return {}
    return {n: list(v.shape) for n, v in zip(names, values)}


def _erf_gelu_nodes(g, const_elems: dict) -> set[int]:
    """Positions of the element-wise ops that make up an exact GELU written through Erf,
    0.5 x (1 + erf(x / sqrt 2)) in any of its orders: an activation, which the cost convention
    counts as zero (as Keras's GELU layer and TFLite's GELU op are), not as four multiplies
    and adds per element."""
    by_output = {o: i for i, n in enumerate(g.node) for o in n.output}
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(g.node):
        for t in n.input:
            consumers.setdefault(t, []).append(i)

    def scaled(i: int) -> bool:  # a Mul or Div with one constant operand
        n = g.node[i]
        return n.op_type in ("Mul", "Div") and any(t in const_elems for t in n.input)

    found: set[int] = set()
    for i, n in enumerate(g.node):
        if n.op_type != "Erf":
            continue
        part = {i}
        src = by_output.get(n.input[0])
        x = n.input[0]
        if src is not None and scaled(src):
            part.add(src)
            x = next(t for t in g.node[src].input if t not in const_elems)
        adds = [j for j in consumers.get(n.output[0], []) if g.node[j].op_type == "Add"]
        if len(adds) != 1:
            continue
        part.add(adds[0])
        for j in consumers.get(g.node[adds[0]].output[0], []):
            if g.node[j].op_type != "Mul":
                continue
            part.add(j)
            for t in g.node[j].input:  # the other factor: x, or x * 0.5
                k = by_output.get(t)
                if k is not None and scaled(k) and x in g.node[k].input:
                    part.add(k)
            for k in consumers.get(g.node[j].output[0], []):  # or the 0.5 applied last
                if scaled(k) and g.node[k].op_type == "Mul":
                    part.add(k)
        found |= part
    return found


def _swish_nodes(g) -> set[int]:
    """Positions of Mul(x, Sigmoid(x)): swish / SiLU, an activation (zero in the convention)."""
    by_output = {o: n for n in g.node for o in n.output}
    found = set()
    for i, n in enumerate(g.node):
        if n.op_type == "Mul" and len(n.input) == 2:
            for s, x in ((n.input[0], n.input[1]), (n.input[1], n.input[0])):
                src = by_output.get(s)
                if src is not None and src.op_type == "Sigmoid" and src.input[0] == x:
                    found.add(i)
    return found


def from_onnx(path: str | Path) -> Graph:
    """The ONNX graph's ops for one inference (batch 1). A counted op whose tensor shapes no
    inference and no probe run can tell is marked uncounted (the totals are then "at least"),
    never counted as if its unknown dimensions were 1."""
    onnx = require("onnx", "train")
    try:
        model = onnx.load(str(path))
        static = _static_batch(model)
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # onnx raises DecodeError / ValidationError / its own types
        raise InputError(f"not a valid ONNX model: {path} ({str(exc).splitlines()[0][:200]})") from None
    g = model.graph
    const_elems: dict[str, int] = {}
    for init in g.initializer:
        const_elems[init.name] = prod(init.dims) if init.dims else 1
    shapes = _onnx_shapes(g)
    counted_tensors = {t for n in g.node if n.op_type in COUNTED_ONNX_OPS for t in [*n.input, *n.output] if t}
    unknown = sorted(t for t in counted_tensors if t not in const_elems and None in shapes.get(t, [None]))
    if unknown and static:
        shapes.update(_probe_shapes(model, unknown))

    def known(name: str) -> bool:
        return name in const_elems or None not in shapes.get(name, [None])

    def elems(name: str) -> int:
        return prod(d or 1 for d in shapes.get(name, [1]))

    initializers = {init.name: init for init in g.initializer}

    def has_bias(ins: list[str], at: int) -> bool:
        """A bias input that adds something: tf2onnx, as TFLite's converter, gives a conv whose
        BatchNorm it folded a bias, zeros where the BatchNorm's shift is zero (fresh weights);
        adding zeros is no arithmetic of the model's, in either reader."""
        if len(ins) <= at:
            return False
        init = initializers.get(ins[at])
        return init is None or bool(onnx.numpy_helper.to_array(init).any())

    gelu = _erf_gelu_nodes(g, const_elems) | _swish_nodes(g)
    ops, sizes = [], {}
    for position, node in enumerate(g.node):
        ins = [t for t in node.input if t]
        if node.op_type == "Constant" or (ins and all(t in const_elems for t in ins)):
            for t in node.output:  # folds DequantizeLinear(weights) and friends into a constant
                const_elems[t] = max((const_elems[i] for i in ins), default=1)
            continue
        acts = [t for t in ins if t not in const_elems]
        consts = [t for t in ins if t in const_elems]
        out_elems = sum(elems(t) for t in node.output)
        for t in acts + list(node.output):
            sizes[t] = elems(t)
        o = Op(node.name or node.output[0], "other", acts, list(node.output))
        t = node.op_type
        if position in gelu:
            o.kind = "act"
        elif t in COUNTED_ONNX_OPS and not all(known(x) for x in [*acts, *node.output]):
            o.kind, o.counted = ("add" if t in ("Add", "Mul", "Sub") else "dense"), False
        elif t == "Conv":
            wshape = next((list(i.dims) for i in g.initializer if i.name == ins[1]), None)
            if wshape is None:  # weights produced by a folded DequantizeLinear: follow it
                wshape = _onnx_const_shape(g, ins[1])
            o.kind, o.macs = "conv", out_elems * prod(wshape[1:])
            o.adds = out_elems if has_bias(ins, 2) else 0
            o.params = sum(const_elems[c] for c in consts)
        elif t in ("MatMul", "Gemm"):
            k = (shapes.get(acts[0]) or [1])[-1] if acts else 1
            o.kind, o.macs = ("dense" if consts else "matmul"), out_elems * int(k)
            o.adds = out_elems if (t == "Gemm" and has_bias(ins, 2)) else 0
            o.params = sum(const_elems[c] for c in consts)
        elif t in ("Add", "Mul", "Sub"):
            o.kind, o.adds = "add", out_elems
            o.params = sum(const_elems[c] for c in consts if const_elems[c] > 1)
        elif t in _ONNX_INTEGER:
            w_at, b_at = _ONNX_INTEGER[t]
            w = ins[w_at]
            wshape = next((list(i.dims) for i in g.initializer if i.name == w), None) or _onnx_const_shape(g, w)
            if t.endswith("Conv"):
                o.kind, o.macs = "conv", out_elems * prod(wshape[1:])
            else:
                o.kind, o.macs = ("dense" if w in const_elems else "matmul"), out_elems * int(shapes[ins[0]][-1])
            o.adds = out_elems if b_at is not None and len(ins) > b_at else 0
            o.params = const_elems.get(w, 0) + (const_elems.get(ins[b_at], 0) if o.adds else 0)
        elif t in _ONNX_NOT_COUNTED:
            o.kind, o.counted = "dense", False
        elif t == "LSTM":
            x = shapes.get(ins[0], [1, 1, 1])
            units = int(next(a.i for a in node.attribute if a.name == "hidden_size"))
            o.kind = "recurrent"
            o.macs, o.adds = lstm_cost(int(x[0]), int(x[-1]), units)
            o.params = sum(const_elems[c] for c in consts if const_elems[c] > 1)
        else:
            o.kind = _ONNX_KINDS.get(t, "other")
        ops.append(o)
    inputs = [i.name for i in g.input if i.name not in const_elems]
    outputs = [o.name for o in g.output]
    for t in inputs + outputs:
        sizes[t] = elems(t)
    return Graph(Path(path).stem, "onnx", ops, sizes, inputs, outputs)


def _onnx_const_shape(g, name: str) -> list:
    by_output = {o: n for n in g.node for o in n.output}
    inits = {i.name: list(i.dims) for i in g.initializer}
    while name not in inits:
        name = by_output[name].input[0]
    return inits[name]


# --------------------------------------------------------------------------- any

READERS = {".tflite": from_tflite, ".onnx": from_onnx}


def analyse(artifact) -> ModelCost:
    """Cost of a Keras model, or of a .tflite / .onnx file."""
    if not isinstance(artifact, (str, Path)):
        return model_cost(from_keras(artifact))
    path = Path(artifact)
    if not path.is_file():
        raise InputError(f"model file not found: {path}")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(f"cannot analyse '{path.name}': expected a {' or '.join(READERS)} file")
    try:
        return model_cost(reader(path))
    except EdgeAffectError:
        raise
    except CORRUPT_MODEL as exc:
        raise corrupt_model(path, exc) from None
