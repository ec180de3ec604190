"""TFLite dynamic-range int8 (int8 weights, activations quantized at run time) with chosen ops
left float: the fewest that make a failing file hold its bounds.

The converter cannot leave an op float in dynamic range, and TensorFlow's deny-list
(``mlir_quantize``'s ``denylisted_nodes``) is for calibrated, full-integer files. But the two
conversions of one model, float32 and dynamic range, name their tensors alike: a hybrid op
(float activations, int8 weights) becomes a float op again when its int8 weight tensor is
given back the float32 file's buffer (``with_float_weights``). LiteRT then runs the float
kernel for that op and the hybrid kernels elsewhere.

Before that, a hybrid op XNNPACK does not take (a hybrid DEPTHWISE_CONV_2D: the built-in kernel
runs it, and the delegate's graph is cut there) gets its float weights back, where XNNPACK
then takes it (``outside_the_delegate``): small weights, one partition.

Ranking (``added_errors``): each hybrid op int8 alone, every other op given its float
weights, and how far that moves the model's output from the float file's (relative RMSE on
the ranking samples): one whole-model run per hybrid op.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Callable

from edgeaffect.export.mixed_precision import (FloatLayer, float_layer_cap, keep_float_until_held, outputs_of,
                                               relative_rmse)


def hybrid_ops(model) -> list[int]:
    """Main-graph ops with an int8 constant input (a weight) and a float output."""
    from edgeaffect.runtime.litert_ops import _is_constant, _schema

    int8, float32 = _schema().TensorType.INT8, _schema().TensorType.FLOAT32
    graph = model.subgraphs[0]
    out = []
    for i, op in enumerate(graph.operators):
        ins = [graph.tensors[t] for t in op.inputs if t >= 0]
        if (any(t.type == int8 and _is_constant(model, t) for t in ins) and op.outputs
                and graph.tensors[op.outputs[0]].type == float32):
            out.append(i)
    return out


class FloatWeights:
    """The dynamic-range file and its float32 twin, parsed once; ``blob(nodes)`` writes the
    dynamic-range file with the ops whose output is named in ``nodes`` given their float32
    weights back (the float file's buffer of the same tensor name). The search writes one file
    per candidate: parsing a base-size pair each time cost about half a second."""

    def __init__(self, dynamic_blob: bytes, float_blob: bytes):
        from edgeaffect.runtime.litert_ops import read_model

        self.dynamic_blob = dynamic_blob
        self.dyn, self.flt = read_model(dynamic_blob), read_model(float_blob)
        fgraph = self.flt.subgraphs[0]
        self.float_tensors = {t.name.decode(): t for t in fgraph.tensors}
        # by the op's output name, for a weight the converter named apart ("tfl.pseudo_qconst3",
        # a depthwise conv's): the float op's input in the same place
        self.float_ops = {fgraph.tensors[op.outputs[0]].name.decode(): op for op in fgraph.operators if op.outputs}

    def _weights_of(self, nodes: set[str]) -> list:
        """(the int8 weight tensor, the float tensor of the same name) of each op in ``nodes``."""
        from edgeaffect.runtime.litert_ops import _is_constant, _schema

        int8 = _schema().TensorType.INT8
        graph = self.dyn.subgraphs[0]
        pairs = []
        fgraph = self.flt.subgraphs[0]
        for op in graph.operators:
            name = graph.tensors[op.outputs[0]].name.decode()
            if name not in nodes:
                continue
            for k, i in enumerate(op.inputs):
                t = graph.tensors[i] if i >= 0 else None
                if t is None or t.type != int8 or not _is_constant(self.dyn, t):
                    continue
                twin = self.float_tensors.get(t.name.decode())
                fop = self.float_ops.get(name)
                if twin is None and fop is not None and k < len(fop.inputs) and fop.inputs[k] >= 0:
                    twin = fgraph.tensors[fop.inputs[k]]
                    twin = twin if tuple(twin.shape) == tuple(t.shape) and _is_constant(self.flt, twin) else None
                if twin is None:
                    raise ValueError(f"no float tensor named {t.name.decode()!r}")
                pairs.append((t, twin))
        return pairs

    def blob(self, nodes) -> bytes:
        from edgeaffect.runtime.litert_ops import write_model

        pairs = self._weights_of(set(nodes))
        if not pairs:
            return self.dynamic_blob
        saved = [(t, t.type, t.quantization, t.shape, self.dyn.buffers[t.buffer].data) for t, _ in pairs]
        try:
            for t, twin in pairs:
                self.dyn.buffers[t.buffer].data = self.flt.buffers[twin.buffer].data
                t.type, t.quantization, t.shape = twin.type, None, twin.shape
            return write_model(self.dyn)
        finally:  # the parsed dynamic-range file stays as converted, for the next candidate
            for t, kind, quantization, shape, data in saved:
                t.type, t.quantization, t.shape = kind, quantization, shape
                self.dyn.buffers[t.buffer].data = data


def with_float_weights(dynamic_blob: bytes, float_blob: bytes, nodes: list[str]) -> bytes:
    """The dynamic-range file with the ops named in ``nodes`` given their float32 weights back."""
    return FloatWeights(dynamic_blob, float_blob).blob(nodes)


def added_errors(dynamic_blob: bytes, float_blob: bytes, input_specs: dict, samples: list[dict]) -> list[FloatLayer]:
    """The hybrid ops, the one whose int8 alone (every other op float) moves the model's output
    most first: relative RMSE against the float file. Judged at the output, not at the op: in
    wav2vec 2.0 the first conv's int8 adds 0.9 % where it is, less than five other convs, and
    20 % after the GroupNorm and layer norms that follow it."""
    from edgeaffect.runtime.litert_ops import op_type

    weights = FloatWeights(dynamic_blob, float_blob)
    dyn = weights.dyn
    graph = dyn.subgraphs[0]
    hybrid = {graph.tensors[graph.operators[i].outputs[0]].name.decode(): graph.operators[i] for i in hybrid_ops(dyn)}
    want = outputs_of(float_blob, input_specs, samples)
    ranked = []
    for name, op in hybrid.items():
        alone = weights.blob([n for n in hybrid if n != name])
        e = relative_rmse(outputs_of(alone, input_specs, samples), want)
        ranked.append((e, FloatLayer(name, op_type(dyn, op), "accuracy",
                                     f"int8 here alone moves the output by {100 * e:.2f} % relative RMSE")))
    return [layer for _, layer in sorted(ranked, key=lambda t: -t[0])]


def outside_the_delegate(dynamic_blob: bytes) -> dict[str, tuple[int, str]]:
    """Hybrid ops XNNPACK does not take (the spectrotemporal extractor's 20 hybrid
    DEPTHWISE_CONV_2D: the built-in kernels run them, and each cuts the graph into another
    delegate partition): output name -> (op index, op type)."""
    from edgeaffect.runtime.litert_ops import delegated_ops, op_type, read_model

    model = read_model(dynamic_blob)
    graph = model.subgraphs[0]
    hybrid = hybrid_ops(model)
    taken = delegated_ops(dynamic_blob, hybrid)
    return {graph.tensors[graph.operators[i].outputs[0]].name.decode(): (i, op_type(model, graph.operators[i]))
            for i in hybrid if taken[i] is False}


def _float_where_delegated(dynamic_blob: bytes, fp: bytes,
                           outside: dict[str, tuple[int, str]]) -> tuple[bytes, list[FloatLayer]]:
    """The file with the ops in ``outside`` given their float32 weights back where XNNPACK then
    takes them, and those ops as float layers."""
    from edgeaffect.runtime.litert_ops import delegated_ops

    weights = FloatWeights(dynamic_blob, fp)
    outside = {n: v for n, v in outside.items() if _has_twin(weights, n)}
    if not outside:
        return dynamic_blob, []
    candidate = weights.blob(list(outside))
    taken = delegated_ops(candidate, [i for i, _ in outside.values()])
    nodes = [n for n, (i, _) in outside.items() if taken[i]]
    kept = [FloatLayer(n, outside[n][1], "speed", f"{outside[n][1]}: XNNPACK does not take it with int8 weights "
                       "(the built-in hybrid kernel runs it, a cut in the delegate's graph); with float weights it does")
            for n in nodes]
    return (weights.blob(nodes) if nodes else dynamic_blob), kept


def _has_twin(weights: FloatWeights, node: str) -> bool:
    """Whether the float file names this op's weights alike (so they can be given back)."""
    try:
        weights._weights_of({node})  # noqa: SLF001 - this module's own class
    except ValueError:
        return False
    return True


def choose(dynamic_blob: bytes, float_blob: Callable[[], bytes], input_specs: dict, samples: list[dict], *,
           accept: Callable[[bytes], list[str]] | None = None, full_int8: bool = False,
           max_float_layers: int | None = None, log=None) -> tuple[bytes, dict]:
    """(the file, facts for its manifest entry). ``float_blob``: writes the float32 file, only
    when the dynamic-range file fails ``accept``."""
    if full_int8:
        return dynamic_blob, {"float_layers": [], "mixed_precision": "off (every weight int8)"}
    fp = None
    kept: list[FloatLayer] = []
    outside = outside_the_delegate(dynamic_blob)
    if outside:  # a structural choice (the runtime's, not this CPU's): made for every target
        fp = float_blob()
        dynamic_blob, kept = _float_where_delegated(dynamic_blob, fp, outside)
    if accept is None:
        return dynamic_blob, {"float_layers": [asdict(k) for k in kept], "mixed_precision": "not searched (no bounds given)"}
    failures = accept(dynamic_blob)
    if not failures:
        return dynamic_blob, {"float_layers": [asdict(k) for k in kept],
                              "mixed_precision": (f"{len(kept)} layer(s) with float weights" if kept
                                                  else "none needed: every conv and dense weight int8")}
    if log is not None:
        print(f"    dynamic range fails ({'; '.join(failures)}); ranking its hybrid ops (one whole-model run each)",
              file=log, flush=True)
    fp = fp or float_blob()
    ranked = [r for r in added_errors(dynamic_blob, fp, input_specs, samples) if r.node not in {k.node for k in kept}]
    blob = keep_float_until_held(ranked, kept, FloatWeights(dynamic_blob, fp).blob, accept, failures,
                                 float_layer_cap(max_float_layers, ranked), log) or dynamic_blob
    return blob, {"float_layers": [asdict(k) for k in kept], "mixed_precision": f"{len(kept)} layer(s) with float weights"}
