"""Will TensorRT's ONNX parser take this model? A static check against onnx-tensorrt's own
operator table for one TensorRT version (``tensorrt_onnx_ops.toml``, data) and its
restrictions (``RULES`` below, keyed by the names the data uses).

It walks every graph the parser reads (If / Loop / Scan bodies, local functions), checks the
opset range, Q/DQ types and zero points (TensorRT's explicit quantization takes int8 with zero
point 0), where uint8 may appear, and each op's checkable restrictions. What only a device
can tell (engine build, layer fusion, timing) stays out of reach here.

No TensorFlow: this runs on the device side too (``edgeaffect trt-check``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from edgeaffect._optional import lookup, require
from edgeaffect.errors import CORRUPT_MODEL, InputError, corrupt_model

VERSIONS_FILE = "tensorrt_onnx_ops.toml"


@dataclass(frozen=True)
class Violation:
    node: str  # path of the node: "If_3/then_branch/Det_0"
    op: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.node} ({self.op}): {self.rule}: {self.detail}"


def load_tables() -> dict:
    return tomllib.loads(resources.files("edgeaffect.export").joinpath(VERSIONS_FILE).read_text())


def versions() -> list[str]:
    return list(load_tables())


def table(version: str) -> dict:
    return lookup("TensorRT version", version, load_tables())


# --- what the walker knows about a graph ---------------------------------------------------

@dataclass
class Scope:
    """Constants (name -> value, None when constant but not folded here), element types, and
    the top-level network's inputs / outputs (the only place TensorRT takes uint8)."""

    constants: dict = field(default_factory=dict)
    types: dict = field(default_factory=dict)
    network_io: frozenset = frozenset()
    opset: int = 0
    table: dict = field(default_factory=dict)

    def child(self) -> "Scope":  # a subgraph sees its outer scope's constants
        return Scope(dict(self.constants), self.types, self.network_io, self.opset, self.table)

    def is_constant(self, name: str) -> bool:
        return name in self.constants

    def value(self, name: str):
        return self.constants.get(name)


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(v):
    return v.decode() if isinstance(v, bytes) else v


def _input(node, i: int) -> str:
    return node.input[i] if len(node.input) > i else ""


def _add_constants(initializers, nodes, scope: Scope) -> None:
    from onnx import numpy_helper

    for init in initializers:
        scope.constants[init.name] = numpy_helper.to_array(init)
        scope.types[init.name] = init.data_type
    for n in nodes:  # in order: a folded chain sees its producers
        if n.op_type == "Constant" and n.output:
            t = _attrs(n).get("value")
            scope.constants[n.output[0]] = numpy_helper.to_array(t) if t is not None else None
            if t is not None:
                scope.types[n.output[0]] = t.data_type
        elif n.op_type in ("Identity", "DequantizeLinear") and n.input and scope.is_constant(n.input[0]):
            # TensorRT takes a dequantized or forwarded initializer as weights
            scope.constants[n.output[0]] = scope.value(n.input[0]) if n.op_type == "Identity" else None


# --- rules: (node, scope) -> None when fine, else what is wrong ------------------------------

def _needs_constant(index: int, what: str):
    def rule(node, scope):
        name = _input(node, index)
        if name and not scope.is_constant(name):
            return f"{what} '{name}' must be an initializer (it is computed at run time)"
    return rule


def _axes_initializer(node, scope):
    index = {"Slice": 3, "Pad": 3}.get(node.op_type, 1)
    return _needs_constant(index, "axes")(node, scope)


def _pool_2d_3d(node, scope):
    k = _attrs(node).get("kernel_shape", [])
    if len(k) not in (2, 3):
        return f"{len(k)}D pooling (kernel_shape {list(k)}): only 2D or 3D pooling"


def _no_dilations(node, scope):
    d = list(_attrs(node).get("dilations", []))
    if any(x != 1 for x in d):
        return f"dilations {d}: must be empty or all ones"


def _no_indices_output(node, scope):
    if len(node.output) > 1 and node.output[1]:
        return f"the Indices output '{node.output[1]}' is used: unsupported"


def _conv_2d_3d(node, scope):
    k = _attrs(node).get("kernel_shape")
    w = scope.value(_input(node, 1))
    rank = len(k) if k is not None else (w.ndim - 2 if w is not None else None)
    if rank is not None and rank not in (2, 3):
        return f"{rank}D convolution: only 2D or 3D"


def _qdq_int8_zero_point(node, scope):
    zp_name = _input(node, 2)
    if node.op_type == "QuantizeLinear":
        # without a zero point the output type is uint8 (ONNX default)
        dtype = scope.types.get(zp_name) if zp_name else _uint8()
    else:
        dtype = scope.types.get(node.input[0]) or (scope.types.get(zp_name) if zp_name else None)
    name = _type_name(dtype)
    if dtype is not None and name not in scope.table["qdq_types"]:
        return (f"{name} quantization: TensorRT takes {'/'.join(scope.table['qdq_types'])} Q/DQ only "
                f"(uint8 only as a network input or output)")
    if zp_name:
        if not scope.is_constant(zp_name):
            return f"zero point '{zp_name}' must be an initializer equal to 0"
        zp = scope.value(zp_name)
        if zp is not None and np.any(zp != 0):
            vals = sorted({int(v) for v in np.ravel(zp)})
            return f"zero point {vals[:4]}{'...' if len(vals) > 4 else ''}: must be 0 (symmetric)"


def _same_activations_both_directions(node, scope):
    a = _attrs(node)
    acts = [_text(x) for x in a.get("activations", [])]
    if _text(a.get("direction", "forward")) == "bidirectional" and acts:
        half = len(acts) // 2
        if acts[:half] != acts[half:]:
            return f"activations {acts}: forward and reverse must be the same"


def _attr_is(attr: str, allowed, default):
    def rule(node, scope):
        v = _text(_attrs(node).get(attr, default))
        if v not in allowed:
            return f"{attr}={v!r}: must be {' or '.join(repr(x) for x in allowed)}"
    return rule


RESIZE_COORDINATES = ("half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners")
RESIZE_NEAREST = ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil")


def _resize_modes(node, scope):
    for rule in (_attr_is("coordinate_transformation_mode", RESIZE_COORDINATES, "half_pixel"),
                 _attr_is("mode", ("nearest", "linear"), "nearest"),
                 _attr_is("nearest_mode", RESIZE_NEAREST, "round_prefer_floor")):
        bad = rule(node, scope)
        if bad:
            return bad


def _first_output_only(node, scope):
    used = [o for o in node.output[1:] if o]
    if used:
        return f"outputs {used} are used: only the first output is supported"


def _inference_dropout(node, scope):
    name = _input(node, 2)
    if name and (not scope.is_constant(name) or bool(np.any(scope.value(name)))):
        return f"training_mode '{name}' must be an initializer equal to False"


def _dense_constant_only(node, scope):
    bad = [a.name for a in node.attribute if a.name in ("sparse_value", "value_string", "value_strings")]
    if bad:
        return f"attribute {bad[0]} unsupported"


def _no_reduction(node, scope):
    r = _text(_attrs(node).get("reduction", "none"))
    if r != "none":
        return f"reduction={r!r} unsupported"


def _branch_outputs_distinct_names(node, scope):
    a = _attrs(node)
    same = sorted({o.name for o in a["then_branch"].output} & {o.name for o in a["else_branch"].output})
    if same:
        return f"both branches output {same}: the branch outputs must have different names"


def _topk_sorted(node, scope):
    if _attrs(node).get("sorted", 1) != 1:
        return "sorted=0: must be 1"


def _k_below_3840(node, scope):
    k = scope.value(_input(node, 1))
    if k is not None and int(np.ravel(k)[0]) >= 3840:
        return f"K={int(np.ravel(k)[0])}: must be less than 3840"


def _symmetric_pads(node, scope):
    p = list(_attrs(node).get("pads", []))
    if p and p[: len(p) // 2] != p[len(p) // 2:]:
        return f"pads {p}: begin and end must be the same on each axis"


def _einsum_no_ellipsis_or_diagonal(node, scope):
    eq = _text(_attrs(node).get("equation", "")).replace(" ", "")
    operands = eq.split("->")[0].split(",")
    if "..." in eq or any(len(set(o)) != len(o) for o in operands):
        return f"equation {eq!r}: ellipsis and diagonal operations are not supported"


def _nms_thresholds_initializers(node, scope):
    for i, what in ((2, "max_output_boxes_per_class"), (3, "iou_threshold"), (4, "score_threshold")):
        bad = _needs_constant(i, what)(node, scope)
        if bad:
            return bad


def _scale_bias_initializers(node, scope):
    return _needs_constant(1, "scale")(node, scope) or _needs_constant(2, "B")(node, scope)


RULES = {
    "pool_2d_3d": _pool_2d_3d,
    "no_dilations": _no_dilations,
    "no_indices_output": _no_indices_output,
    "conv_2d_3d": _conv_2d_3d,
    "weights_initializer": _needs_constant(1, "weights W"),
    "axes_initializer": _axes_initializer,
    "axis_initializer": _needs_constant(1, "axis"),
    "k_initializer": _needs_constant(1, "K"),
    "depth_initializer": _needs_constant(1, "depth"),
    "qdq_int8_zero_point": _qdq_int8_zero_point,
    "same_activations_both_directions": _same_activations_both_directions,
    "input_forget_zero": _attr_is("input_forget", (0,), 0),
    "layout_zero": _attr_is("layout", (0,), 0),
    "resize_modes": _resize_modes,
    "resize_stretch_only": _attr_is("keep_aspect_ratio_policy", ("stretch",), "stretch"),
    "resize_no_antialias": _attr_is("antialias", (0,), 0),
    "first_output_only": _first_output_only,
    "inference_dropout": _inference_dropout,
    "dense_constant_only": _dense_constant_only,
    "no_reduction": _no_reduction,
    "branch_outputs_distinct_names": _branch_outputs_distinct_names,
    "topk_sorted": _topk_sorted,
    "k_below_3840": _k_below_3840,
    "symmetric_pads": _symmetric_pads,
    "einsum_no_ellipsis_or_diagonal": _einsum_no_ellipsis_or_diagonal,
    "nms_thresholds_initializers": _nms_thresholds_initializers,
    "scale_bias_initializers": _scale_bias_initializers,
}


def _uint8() -> int:
    from onnx import TensorProto

    return TensorProto.UINT8


def _type_name(dtype) -> str:
    from onnx import TensorProto

    return TensorProto.DataType.Name(dtype) if dtype is not None else "unknown"


# --- the walk -----------------------------------------------------------------------------

def _node_path(prefix: str, node, index: int) -> str:
    return prefix + (node.name or f"{node.op_type}_{index}")


def _collect_types(graph, types: dict) -> None:
    """Element types of every named tensor, subgraphs included (after shape inference)."""
    for vi in [*graph.input, *graph.output, *graph.value_info]:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            types[vi.name] = vi.type.tensor_type.elem_type
    for n in graph.node:
        for _, g in _subgraphs(n):
            _collect_types(g, types)


def _check_node(node, path: str, scope: Scope, functions: dict, out: list) -> None:
    key = (node.domain or "", node.op_type)
    if key in functions:  # a local function: the parser inlines its body
        body = scope.child()
        _add_constants([], functions[key].node, body)
        _walk(functions[key].node, path + "/", body, functions, out)
        return
    t = scope.table
    if node.domain not in ("", "ai.onnx"):
        out.append(Violation(path, node.op_type, "operator", f"custom domain '{node.domain}': not in the parser "
                                                              "table (needs a TensorRT plugin)"))
        return
    if node.op_type not in t["supported"]:
        said = "marked unsupported" if node.op_type in t.get("unsupported", []) else "not listed"
        out.append(Violation(path, node.op_type, "operator", f"{said} in the TensorRT parser table"))
        return
    for rule in t.get("rules", {}).get(node.op_type, []):
        bad = RULES[rule](node, scope)
        if bad:
            out.append(Violation(path, node.op_type, rule, bad))


def _check_uint8(node, path: str, scope: Scope, out: list) -> None:
    """TensorRT 10 takes uint8 only as a network input or output; 8.x not at all."""
    if node.op_type not in ("Cast", "CastLike"):
        return
    to = _attrs(node).get("to") if node.op_type == "Cast" else scope.types.get(_input(node, 1))
    if to == _uint8() and not (scope.table["uint8"] == "io" and node.output[0] in scope.network_io):
        where = "only as a network input or output" if scope.table["uint8"] == "io" else "not at all"
        out.append(Violation(path, node.op_type, "uint8_io_only", f"casts to uint8 inside the network: "
                                                                   f"TensorRT takes uint8 {where}"))


def _subgraphs(node):
    for a in node.attribute:
        for j, g in enumerate([a.g] if a.HasField("g") else list(a.graphs)):
            yield (a.name if a.HasField("g") else f"{a.name}{j}"), g


def _walk(nodes, prefix: str, scope: Scope, functions: dict, out: list) -> None:
    """Check ``nodes`` (their scope's constants already added) and every subgraph under them."""
    for i, node in enumerate(nodes):
        path = _node_path(prefix, node, i)
        _check_node(node, path, scope, functions, out)
        _check_uint8(node, path, scope, out)
        for name, g in _subgraphs(node):
            sub = scope.child()
            _add_constants(g.initializer, g.node, sub)
            _walk(g.node, f"{path}/{name}/", sub, functions, out)


def _check_opset(model, t: dict) -> tuple[int, list[Violation]]:
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    lo, hi = t.get("opset_min"), t["opset_max"]
    if opset > hi or (lo is not None and opset < lo):
        rng = f"{lo} to {hi}" if lo is not None else f"up to {hi}"
        return opset, [Violation("model", "opset", "opset_range", f"ONNX opset {opset}: this parser takes opset {rng}")]
    return opset, []


def _check_network_io(model, scope: Scope) -> list[Violation]:
    if scope.table["uint8"] != "none":
        return []
    return [Violation(f"input {vi.name}" if vi in model.graph.input else f"output {vi.name}", "network I/O",
                      "uint8_io_only", "uint8 tensor: this TensorRT takes no uint8 at all")
            for vi in [*model.graph.input, *model.graph.output] if vi.type.tensor_type.elem_type == _uint8()]


def check_model(model, version: str) -> list[Violation]:
    """Every violation of TensorRT ``version``'s parser rules in ``model`` (an onnx.ModelProto)."""
    onnx = require("onnx", "jetson")
    t = table(version)
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference is a help for types, not a requirement
        inferred = model
    opset, out = _check_opset(model, t)
    scope = Scope(types={}, network_io=frozenset(v.name for v in [*model.graph.input, *model.graph.output]),
                  opset=opset, table=t)
    _collect_types(inferred.graph, scope.types)
    _add_constants(model.graph.initializer, model.graph.node, scope)
    out += _check_network_io(model, scope)
    functions = {(f.domain or "", f.name): f for f in model.functions}
    _walk(model.graph.node, "", scope, functions, out)
    return out


def load_onnx(path: str | Path):
    """The model at ``path``, or InputError (missing file, not ONNX) with one line."""
    onnx = require("onnx", "jetson")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"ONNX file not found: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError, missing external data, ...
        why = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise InputError(f"not an ONNX model: {path} ({why})") from None
    if model.ir_version == 0 or not model.HasField("graph") or not model.graph.node:
        raise InputError(f"not an ONNX model: {path} (no graph)")
    return model


def check_file(path: str | Path, version: str) -> list[Violation]:
    table(version)  # an unknown version fails before the file is read
    model = load_onnx(path)
    try:
        return check_model(model, version)
    except CORRUPT_MODEL as exc:  # parsed, but junk inside (a node name that is not UTF-8 comes back as bytes)
        raise corrupt_model(path, exc) from None
