"""A model as a list of operators over named activation tensors, and what it costs.

Every reader (Keras, TFLite, ONNX) turns its model into this one form, so the cost of an
exported artifact is computed by the same code as the cost of the model that made it.

Conventions (stated once, used everywhere):
- MACs: multiply-accumulates of conv, dense / fully-connected, matmul and recurrent ops.
- FLOPs = 2 * MACs + one per bias add or element-wise add / multiply. Activations,
  pooling, softmax and normalisation count zero. For conv and dense layers this is
  exactly the audio-visual paper's Eq. 3: 2*Yh*Yw*Ci*Co*Kh*Kw + Yh*Yw*Co. A bias of zeros
  adds nothing (converters give bias-free convs one), and a BatchNorm right after a conv is
  that conv's bias when its folded shift is not zero: converters fold it so.
- Parameters: elements of the constant weights and biases the ops read.
- Bytes moved for a precision: (weights + input activations + output activations) x
  bytes per element, per operator; views (reshape, flatten, squeeze, dropout, identity,
  fake-quantization) move nothing. Biases are counted at the same width (int8 kernels
  keep them int32; the difference is a few hundred bytes).
- Epilogues are fused, as every runtime here does: a bias add or an activation that reads
  the single-use output of a conv / dense / matmul (through views) moves no activation
  bytes of its own and writes in place. Without this, ONNX's separate Add and Relu nodes
  would make the same model look twice as memory-bound as its Keras or TFLite form.
- A layer run once per step or segment (TimeDistributed, or segments folded into the
  batch) counts once per run; an op whose arithmetic is not known makes the totals a lower
  bound (``complete`` False, the op in ``uncounted``), never a silent zero.
- Peak activation memory: the largest sum of activation tensors alive at once when the
  operators run in the file's order, views and fused epilogues sharing their input's
  buffer. Batch 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

BYTES_PER_ELEMENT = {"float32": 4, "float16": 2, "int8": 1}
VIEW_KINDS = {"view"}


@dataclass
class Op:
    name: str
    kind: str  # conv, dense, matmul, recurrent, add, pool, concat, act, view, other
    inputs: list[str]  # activation tensors read (constants excluded)
    outputs: list[str]
    params: int = 0
    macs: int = 0
    adds: int = 0
    counted: bool = True  # False: an op with weights whose arithmetic this module does not know

    @property
    def flops(self) -> int:
        return 2 * self.macs + self.adds


@dataclass
class Graph:
    name: str
    source: str  # "keras", "tflite", "onnx"
    ops: list[Op]
    sizes: dict[str, int]  # activation tensor -> elements (batch 1)
    inputs: list[str]
    outputs: list[str]


@dataclass
class LayerRow:
    name: str
    kind: str
    params: int
    macs: int
    flops: int
    activation_elements: int  # inputs + outputs
    bytes: dict[str, int]
    intensity: dict[str, float]


@dataclass
class ModelCost:
    name: str
    source: str
    params: int
    macs: int
    flops: int
    bytes: dict[str, int]  # precision -> bytes moved in one inference
    intensity: dict[str, float]  # precision -> FLOPs / byte
    weight_bytes: dict[str, int]
    peak_activation_bytes: dict[str, int]
    uncounted: list[str] = field(default_factory=list)  # ops whose arithmetic is unknown: totals are lower bounds
    complete: bool = True  # False: macs / flops are "at least", the uncounted ops left out
    layers: list[LayerRow] = field(default_factory=list)
    convention: str = "FLOPs = 2*MACs + bias/element-wise adds (paper Eq. 3 for conv/dense)"

    def to_dict(self, layers: bool = True) -> dict:
        d = asdict(self)
        if not layers:
            d.pop("layers")
        return d


COMPUTE_KINDS = {"conv", "dense", "matmul", "recurrent"}


def fused_epilogues(graph: Graph) -> set[int]:
    """Indices of ops that run as the epilogue of the compute op before them."""
    producer = {t: i for i, op in enumerate(graph.ops) for t in op.outputs}
    consumers: dict[str, int] = {}
    for op in graph.ops:
        for t in op.inputs:
            consumers[t] = consumers.get(t, 0) + 1
    fused: set[int] = set()
    for i, op in enumerate(graph.ops):
        if op.kind not in ("act", "add") or len(op.inputs) != 1:
            continue
        t = op.inputs[0]
        while t in producer and graph.ops[producer[t]].kind in VIEW_KINDS and consumers.get(t) == 1:
            t = graph.ops[producer[t]].inputs[0] if graph.ops[producer[t]].inputs else t
            if t not in producer:
                break
        p = producer.get(t)
        if p is not None and consumers.get(t) == 1 and (graph.ops[p].kind in COMPUTE_KINDS or p in fused):
            fused.add(i)
    return fused


def _layer_row(op: Op, sizes: dict[str, int], fused: bool = False) -> LayerRow:
    act = 0 if op.kind in VIEW_KINDS or fused else sum(sizes.get(t, 0) for t in op.inputs + op.outputs)
    weights = 0 if op.kind in VIEW_KINDS else op.params
    by = {p: (weights + act) * b for p, b in BYTES_PER_ELEMENT.items()}
    return LayerRow(op.name, op.kind, op.params, op.macs, op.flops, act, by,
                    {p: (op.flops / v if v else 0.0) for p, v in by.items()})


def _buffer_of(graph: Graph, fused: set[int]) -> dict[str, str]:
    """View and fused-epilogue outputs share the buffer of their (first) input."""
    root: dict[str, str] = {}
    for i, op in enumerate(graph.ops):
        if (op.kind in VIEW_KINDS or i in fused) and op.inputs:
            src = root.get(op.inputs[0], op.inputs[0])
            for t in op.outputs:
                root[t] = src
    return root


def peak_activation_elements(graph: Graph, fused: set[int] | None = None) -> int:
    root = _buffer_of(graph, fused_epilogues(graph) if fused is None else fused)
    buf = lambda t: root.get(t, t)  # noqa: E731
    last_use: dict[str, int] = {}
    for i, op in enumerate(graph.ops):
        for t in op.inputs + op.outputs:
            last_use[buf(t)] = i
    for t in graph.outputs:
        last_use[buf(t)] = len(graph.ops)
    born = {buf(t): -1 for t in graph.inputs}
    for i, op in enumerate(graph.ops):
        for t in op.outputs:
            born.setdefault(buf(t), i)
    size = {}
    for t, s in graph.sizes.items():
        size[buf(t)] = max(size.get(buf(t), 0), s)
    peak = sum(size.get(b, 0) for b in born if born[b] < 0)
    for i in range(len(graph.ops)):
        live = sum(size.get(b, 0) for b, start in born.items() if start <= i <= last_use.get(b, start))
        peak = max(peak, live)
    return peak


def model_cost(graph: Graph) -> ModelCost:
    fused = fused_epilogues(graph)
    rows = [_layer_row(op, graph.sizes, i in fused) for i, op in enumerate(graph.ops)]
    params = sum(op.params for op in graph.ops)
    macs = sum(op.macs for op in graph.ops)
    flops = sum(op.flops for op in graph.ops)
    by = {p: sum(r.bytes[p] for r in rows) for p in BYTES_PER_ELEMENT}
    peak = peak_activation_elements(graph, fused)
    return ModelCost(
        name=graph.name, source=graph.source, params=params, macs=macs, flops=flops, bytes=by,
        intensity={p: (flops / v if v else 0.0) for p, v in by.items()},
        weight_bytes={p: params * b for p, b in BYTES_PER_ELEMENT.items()},
        peak_activation_bytes={p: peak * b for p, b in BYTES_PER_ELEMENT.items()},
        uncounted=[op.name for op in graph.ops if not op.counted],
        complete=all(op.counted for op in graph.ops),
        layers=[r for r, op in zip(rows, graph.ops) if op.kind not in VIEW_KINDS],
    )


def lstm_cost(steps: int, n_in: int, units: int) -> tuple[int, int]:
    """(MACs, bias adds) of an LSTM over ``steps``: four gates, each a (n_in + units) x units
    matrix product per step."""
    return steps * 4 * units * (n_in + units), steps * 4 * units


def prod(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d) if d not in (None, -1) and int(d) > 0 else 1
    return n
