"""Per-operator time on LiteRT, which its Python API does not give (no op profiler there).

Each operator of the model's main graph is cut out into a model of its own (its constant
inputs kept, its other inputs made graph inputs) with the flatbuffer schema LiteRT ships,
then timed alone on the kernel set asked for. Whether XNNPACK takes the op shows in the
one-op model: a DELEGATE node replaces it. The whole model's time next to the sum of its
ops shows what the hops between partitions and the interpreter cost.

Device side: NumPy, flatbuffers and LiteRT's schema module, no TensorFlow.
"""

from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # tflite-runtime ships no schema; TensorFlow's is the same file
        try:
            from tensorflow.lite.python import schema_py_generated as schema
        except ImportError:
            from edgeaffect.errors import MissingDependencyError

            raise MissingDependencyError("per-operator timing needs ai-edge-litert: pip install 'edgeaffect[rpi]'") \
                from None
    return schema


def read_model(blob: bytes):
    s = _schema()
    return s.ModelT.InitFromObj(s.Model.GetRootAsModel(blob, 0))


def write_model(model) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def op_names(model) -> dict[int, str]:
    """builtin operator code -> name (``CONV_2D``)."""
    s = _schema()
    return {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}


def op_type(model, op) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    name = op_names(model).get(builtin, str(builtin))
    return name if name != "CUSTOM" else f"CUSTOM:{(code.customCode or b'').decode(errors='replace')}"


def _is_constant(model, tensor) -> bool:
    buf = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers) else None
    return buf is not None and ((buf.data is not None and len(buf.data) > 0) or bool(getattr(buf, "size", 0)))


def one_op_model(model, index: int):
    """The model reduced to operator ``index`` of its main graph, or None where the op calls
    other subgraphs (control flow) or keeps state (a variable tensor)."""
    s = _schema()
    graph = model.subgraphs[0]
    op = graph.operators[index]
    if op_type(model, op) in ("WHILE", "IF", "CALL_ONCE", "CALL"):
        return None
    used = [i for i in list(op.inputs) + list(op.outputs) + (list(op.intermediates) if op.intermediates is not None else []) if i >= 0]
    order = list(dict.fromkeys(used))
    remap = {old: new for new, old in enumerate(order)}
    buffers = [s.BufferT()]
    tensors = []
    for old in order:
        t = copy.copy(graph.tensors[old])
        if t.isVariable:
            return None
        if _is_constant(model, t):
            buffers.append(model.buffers[t.buffer])
            t.buffer = len(buffers) - 1
        else:
            t.buffer = 0
        tensors.append(t)
    new_op = copy.copy(op)
    new_op.inputs = [remap[i] if i >= 0 else -1 for i in op.inputs]
    new_op.outputs = [remap[i] for i in op.outputs]
    if op.intermediates is not None:
        new_op.intermediates = [remap[i] for i in op.intermediates]
    sub = s.SubGraphT()
    sub.tensors, sub.operators, sub.name = tensors, [new_op], b"one_op"
    sub.inputs = [remap[i] for i in dict.fromkeys(op.inputs) if i >= 0 and not _is_constant(model, graph.tensors[i])]
    sub.outputs = [remap[i] for i in op.outputs]
    out = s.ModelT()
    out.version, out.description = model.version, b"one operator"
    out.operatorCodes, out.subgraphs, out.buffers = model.operatorCodes, [sub], buffers
    out.metadata, out.signatureDefs = [], []
    return out


def _feed(interp, rng) -> None:
    for d in interp.get_input_details():
        shape, dtype = tuple(d["shape"]), np.dtype(d["dtype"])
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            x = rng.integers(max(info.min, -128), min(info.max, 127) + 1, size=shape).astype(dtype)
        elif dtype == np.bool_:
            x = rng.random(shape) > 0.5
        else:
            x = rng.random(shape).astype(dtype)
        interp.set_tensor(d["index"], x)


def _time(interp, budget_s: float, min_runs: int = 20) -> float:
    """Median seconds of one invoke."""
    for _ in range(3):
        interp.invoke()
    times, t_end = [], time.perf_counter() + budget_s
    while len(times) < min_runs or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        interp.invoke()
        times.append(time.perf_counter() - t0)
        if len(times) >= 5000:
            break
    return float(np.median(times))


def _delegated(interp) -> bool:
    return any(o["op_name"] == "DELEGATE" for o in interp._get_ops_details())


def output_step(path: str | Path) -> float:
    """The quantization step of a file's first output: its own scale for an int8 output, else
    the scale of the int8 tensor a final DEQUANTIZE reads (a file quantized inside its graph,
    as ``tflite-int8`` is); 0 for a float output."""
    def scale_of(t) -> float:
        q = t.quantization
        return float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) else 0.0

    model = read_model(Path(path).read_bytes())
    graph = model.subgraphs[0]
    out = graph.outputs[0]
    if scale_of(graph.tensors[out]):
        return scale_of(graph.tensors[out])
    for op in graph.operators:
        if out in list(op.outputs) and op_type(model, op) == "DEQUANTIZE":
            return scale_of(graph.tensors[op.inputs[0]])
    return 0.0


def delegated_ops(blob: bytes, indices: list[int]) -> dict[int, bool | None]:
    """Op index -> whether XNNPACK takes the op (its one-op model gets a DELEGATE node); None
    where it cannot be cut out or does not load alone. A structural fact of the runtime, not a
    timing: the same on every CPU that runs this LiteRT build."""
    from edgeaffect.runtime.litert import _resolver_options, interpreter_class

    Interpreter, _ = interpreter_class()
    model = read_model(blob)
    out = {}
    for i in indices:
        try:
            small = one_op_model(model, i)
            it = None if small is None else Interpreter(model_content=write_model(small), num_threads=1,
                                                        **_resolver_options("xnnpack"))
            if it is not None:
                it.allocate_tensors()
            out[i] = None if it is None else _delegated(it)
        except (ValueError, RuntimeError, TypeError, IndexError, KeyError):
            out[i] = None
    return out


@dataclass
class OpTime:
    index: int
    type: str
    shape: str  # the first non-constant input's and the output's shape
    dtype: str
    us: float | None  # median time of the op alone (one invoke, the interpreter call included)
    delegated: bool | None  # XNNPACK takes it (xnnpack kernels only)
    note: str = ""


def _describe(model, op) -> tuple[str, str]:
    graph = model.subgraphs[0]
    ins = [graph.tensors[i] for i in op.inputs if i >= 0 and not _is_constant(model, graph.tensors[i])]
    out = graph.tensors[op.outputs[0]]
    types = {v: k for k, v in vars(_schema().TensorType).items() if not k.startswith("_")}
    shape = lambda t: "x".join(str(int(d)) for d in (t.shape if t.shape is not None else []))  # noqa: E731
    first = ins[0] if ins else out
    return f"{shape(first)} -> {shape(out)}", f"{types.get(first.type, '?')}->{types.get(out.type, '?')}".lower()


def op_times(path: str | Path, *, kernels: str = "xnnpack", threads: int | None = 1,
             budget_s: float = 0.05, ops: bool = True) -> dict:
    """Every main-graph operator of a .tflite file timed alone, the whole model's time and the
    interpreter's own cost per call (a one-op model of the cheapest op gives its floor)."""
    from edgeaffect.runtime.litert import _resolver_options, interpreter_class

    path = Path(path)
    try:
        model = read_model(path.read_bytes())
    except Exception as exc:  # a damaged flatbuffer raises anything from struct to IndexError
        raise InputError(f"not a valid TFLite model: {path} ({type(exc).__name__})") from None
    Interpreter, package = interpreter_class()
    opts = _resolver_options(kernels)
    rng = np.random.default_rng(0)

    def interp_for(blob_or_path):
        kw = {"model_content": blob_or_path} if isinstance(blob_or_path, bytes) else {"model_path": str(blob_or_path)}
        it = Interpreter(num_threads=threads, **kw, **opts)
        it.allocate_tensors()
        return it

    whole = interp_for(path)
    _feed(whole, rng)
    whole_us = _time(whole, max(budget_s * 4, 0.2)) * 1e6
    partitions = sum(o["op_name"] == "DELEGATE" for o in whole._get_ops_details())
    rows = []
    for i, op in enumerate(model.subgraphs[0].operators if ops else []):
        kind = op_type(model, op)
        shape, dtype = _describe(model, op)
        try:
            small = one_op_model(model, i)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            rows.append(OpTime(i, kind, shape, dtype, None, None, f"not cut out: {type(exc).__name__}"))
            continue
        if small is None:
            rows.append(OpTime(i, kind, shape, dtype, None, None, "calls a subgraph or keeps state: not cut out"))
            continue
        try:
            it = interp_for(write_model(small))
            _feed(it, rng)
            us = _time(it, budget_s) * 1e6
            rows.append(OpTime(i, kind, shape, dtype, us, _delegated(it) if kernels == "xnnpack" else None))
        except (ValueError, RuntimeError) as exc:
            rows.append(OpTime(i, kind, shape, dtype, None, None, f"does not run alone: {str(exc).splitlines()[0]}"))
    return {"file": str(path), "package": package, "kernels": kernels, "threads": threads,
            "whole_us": whole_us, "partitions": partitions, "ops": rows,
            "sum_us": sum(r.us for r in rows if r.us is not None)}


def format_op_times(r: dict, top: int | None = None) -> str:
    rows = sorted((o for o in r["ops"]), key=lambda o: -(o.us or 0.0))
    shown = rows if top is None else rows[:top]
    lines = [f"per operator ({r['kernels']} kernels, {r['threads']} thread(s), each op timed alone with "
             f"one interpreter call): whole model {r['whole_us']:.1f} us, sum of ops {r['sum_us']:.1f} us, "
             f"{r['partitions']} delegate partition(s)"]
    for o in shown:
        where = "" if o.delegated is None else ("  xnnpack" if o.delegated else "  NOT delegated")
        us = f"{o.us:9.1f} us" if o.us is not None else "        - us"
        lines.append(f"  {us}  #{o.index:<4d} {o.type:22s} {o.dtype:14s} {o.shape}{where}{('  ' + o.note) if o.note else ''}")
    if top is not None and len(rows) > top:
        lines.append(f"  ... {len(rows) - top} more")
    return "\n".join(lines)
