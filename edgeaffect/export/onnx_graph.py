"""A Keras model -> an ONNX file through tf2onnx, the writer every ONNX format starts from.

A target may ask for another opset (``onnx_opset``: TensorRT 8.2 parses up to 13) and for ops
written as exact equivalents (``onnx_replace_ops``: ops its parser table refuses); both come
from the target's data (``targets.toml``), never from the target's name.
"""

from __future__ import annotations

import numpy as np

from edgeaffect._optional import require
from edgeaffect.errors import VerificationError
from edgeaffect.io import atomic_path

OPSET = 17
WRITER_OPTIONS = ("onnx_opset", "onnx_replace_ops")


def _elem_types(proto) -> dict:
    """Element type of every named tensor (after shape inference)."""
    onnx = require("onnx", "train")
    g = onnx.shape_inference.infer_shapes(proto).graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.input, *g.output, *g.value_info]}
    types.update({i.name: i.data_type for i in g.initializer})
    return types


def _reciprocal_as_div(graph, node, types: dict) -> None:
    """Reciprocal(x) -> Div(1, x): the same IEEE division, and Div is in every parser table."""
    from onnx import helper, numpy_helper

    dtype = types.get(node.input[0])
    if not dtype:
        raise VerificationError(f"cannot rewrite {node.name} (Reciprocal) as Div: the type of its input is unknown")
    one = f"{node.name or node.output[0]}__one"
    graph.initializer.append(numpy_helper.from_array(np.array(1, helper.tensor_dtype_to_np_dtype(dtype)), one))
    node.op_type = "Div"
    node.input[:] = [one, node.input[0]]


# op -> a rewrite into ops with the same result (a target names the ops it needs rewritten)
REPLACEMENTS = {"Reciprocal": _reciprocal_as_div}


def replace_ops(proto, ops) -> dict[str, int]:
    """Rewrite every top-level node whose op is in ``ops``; returns how many of each. (tf2onnx
    writes no subgraphs for these models; one left in a subgraph fails the TensorRT check.)"""
    unknown = sorted(set(ops) - set(REPLACEMENTS))
    if unknown:  # targets.toml names an op no rewrite exists for: a packaging bug, not user input
        raise ValueError(f"no ONNX rewrite for {', '.join(unknown)} (known: {', '.join(REPLACEMENTS)})")
    counts: dict[str, int] = {}
    if not any(n.op_type in ops for n in proto.graph.node):
        return counts
    types = _elem_types(proto)
    for node in proto.graph.node:
        if node.op_type in ops:
            op = node.op_type
            REPLACEMENTS[op](proto.graph, node, types)
            counts[op] = counts.get(op, 0) + 1
    return counts


def opset_of(proto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def _convert(model, input_specs, opset: int):
    """tf2onnx, unless the model carries its own ONNX writer (``edgeaffect_onnx``: (model,
    input_specs, opset) -> proto, or None to fall back): a family whose graph tf2onnx cannot
    write within the machine's memory writes it directly (wav2vec 2.0's backbone)."""
    own = getattr(model, "edgeaffect_onnx", None)
    if own is not None:
        proto = own(model, input_specs, opset)
        if proto is not None:
            return proto
    from edgeaffect.keras_backend import tf

    t = tf()
    tf2onnx = require("tf2onnx", "train")
    inputs = getattr(model, "inputs", None) or []
    batch = inputs[0].shape[0] if inputs else None  # a model built for a fixed batch keeps it (static shapes)
    sig = [t.TensorSpec([batch, *shape], t.float32, name=name) for name, shape in input_specs.items()]
    names = list(input_specs)
    # tf2onnx takes positional inputs; the models take a dict keyed by input name.
    fn = t.function(lambda *xs: model(dict(zip(names, xs)), training=False), input_signature=sig)
    try:
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=sig, opset=opset)
    except Exception as exc:  # tf2onnx raises plain exceptions for ops it cannot write at this opset
        why = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise VerificationError(f"tf2onnx cannot write {model.name} at ONNX opset {opset}: {why}") from None
    return proto


def write_onnx(model, input_specs, calibration, path, *, onnx_opset: int = OPSET, onnx_replace_ops=()) -> dict:
    proto = _convert(model, input_specs, int(onnx_opset))
    replaced = replace_ops(proto, tuple(onnx_replace_ops))
    with atomic_path(path) as tmp:
        tmp.write_bytes(proto.SerializeToString())
    return {"onnx_opset": opset_of(proto), **({"replaced_ops": replaced} if replaced else {})}
