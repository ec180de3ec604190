"""TFLite int8 with chosen ops left float: the ones int8 makes slower here, and the fewest
that make a failing file hold its bounds.

How: the converter calibrates the float graph once (``calibrated``); TensorFlow's MLIR
quantizer then writes int8 from it with a deny-list of nodes kept float
(``quantize_keeping``) -- the call ``tf.lite.experimental.QuantizationDebugger`` makes for its
``get_nondebug_quantized_model``, here with float input and output. The debugger itself ranks
the nodes by the error int8 adds (``layer_errors``: RMSE in the layer's quantization steps).

The choice:
1. speed: each op of the full int8 file is timed alone against the same op of the float
   graph on this machine's XNNPACK (``edgeaffect.runtime.litert_ops``); ops int8 runs slower
   stay float (e.g. a 3x3 conv on a one-channel image: XNNPACK's int8 kernel takes 8x the
   float one here), most time lost first. The mixed file is kept only if the whole file is
   faster than full int8. An op that cannot be timed alone (a fused LSTM keeps state) stays
   float when the whole file is faster with it float (SpeechNet's int8 LSTM runs outside
   XNNPACK on LiteRT's integer kernel). So do, as a second candidate, the int8 ops XNNPACK
   does not take while it takes them in float (each splits the delegate's graph). Float
   weights cost size: the choices together grow the file by at most ``SPEED_SIZE_GROWTH``.
2. accuracy: when the file fails its task bounds (``accept``), its int8 ops are ranked by
   what each alone in int8 moves the model's output (``output_errors``; a large graph by the
   debugger's error at each op), and the fewest from the top of that list that make the file
   hold stay float (1, 2, 4 ... then bisection: ``keep_float_until_held``), up to
   ``max_float_layers`` (``float_layer_cap``).
3. size: a convolution whose per-channel quantization parameters are a large share of the
   file gets per-tensor weights, kept only if the file still holds (``per_tensor``).
``full_int8`` skips all three: every op int8, as the quantizer gives it.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

# An op stays float for speed when int8 takes this much longer than float (and 1 us more).
# At 1.25 the choice followed timing noise: AVER's third conv measured 1.18x to 1.38x in three
# runs on one AVX2 machine, and the file kept it float (18k weights, +55 KiB) in some runs only.
SPEED_MARGIN = 1.5
# A file whose float graph runs under this many microseconds has its ops timed this many times
# (the median decides): its ops take a few microseconds each, where one timing is noisy.
SMALL_FILE_US, SMALL_FILE_TIMINGS = 20_000.0, 3
# A whole file with more ops float is kept only when this much faster: below it, the choice
# would follow timing noise (two runs of one file differ by a few per cent here).
WHOLE_FILE_GAIN = 0.95
# The accuracy search keeps at most this many layers float, or half of the candidates when that
# is more (``float_layer_cap``): a fixed 8 stopped short where more were needed (the tiny wav2vec
# 2.0 backbone's TFLite int8 held with 32 of its ~120 candidates float, after 28 kept for speed;
# with a quarter as the cap it ended at p95 0.0509 against 0.05, recorded).
DEFAULT_MAX_FLOAT_LAYERS = 8
# Speed choices together may grow the file by at most this share of the full int8 file: an int8
# file is also chosen for its size. When SpeechNet's capsule routing was a BATCH_MATMUL (337k
# weights; its votes_op now makes it a grouped conv XNNPACK runs in int8) it ran 5x faster float
# on x86, but float made the file 3.3x the full int8 one (1652 KiB against 502) for 16 % of its
# time; its fused LSTM float (+29 % then) saves 70 %.
SPEED_SIZE_GROWTH = 0.5
# The candidates are ranked at the model's output (``output_errors``: one run of the ranking
# samples per op) up to this many ops; a larger graph by the debugger's error at each op.
MAX_OUTPUT_RANKED_OPS = 400
RANKING_SAMPLES = 16


@dataclass
class FloatLayer:
    node: str  # the op's output tensor name in the converted graph (the quantizer's deny-list key)
    op: str
    why: str  # "speed" or "accuracy"
    detail: str
    error: float | None = None  # what ranked it (output_errors: relative RMSE at the output)


def calibrated(concrete, variables, input_specs: dict, calibration: list[dict],
               output_range: tuple[float, float] | None = None) -> bytes:
    """The float TFLite graph of ``concrete`` (a traced model) with the ranges the representative
    samples give each tensor; ``output_range``: what the outputs' ranges must cover too
    (``widen_outputs``)."""
    from edgeaffect.keras_backend import tf

    t = tf()
    holder = t.Module()
    holder.variables_ = list(variables)
    c = t.lite.TFLiteConverter.from_concrete_functions([concrete], holder)
    c.optimizations = [t.lite.Optimize.DEFAULT]
    # By name: the converter orders a multi-input model's inputs its own way.
    c.representative_dataset = lambda: ({name: s[name] for name in input_specs} for s in calibration)
    c.experimental_mlir_quantizer = True
    c._experimental_calibrate_only = True  # noqa: SLF001 - what QuantizationDebugger sets
    blob = c.convert()
    return widen_outputs(blob, *output_range) if output_range is not None else blob


def widen_outputs(calibrated_blob: bytes, low: float, high: float) -> bytes:
    """The calibrated graph with each output's range widened to cover [low, high].

    A regression's int8 output clips at the largest score the calibration samples gave: the
    spectrotemporal sequence's, calibrated on training recordings, ended at 43.6 BDI-II points
    (the scale runs to 63), and every test score above it came out 43.6, however many ops
    stayed float (p95 |diff| 3.15 from 6 to 14 float ops)."""
    from edgeaffect.runtime.litert_ops import read_model, write_model

    model = read_model(calibrated_blob)
    graph = model.subgraphs[0]
    for index in graph.outputs:
        q = graph.tensors[index].quantization
        if q is None or q.min is None or q.max is None or len(q.min) != 1:
            continue  # not calibrated, or per-channel: nothing to widen
        q.min, q.max = [min(float(q.min[0]), low)], [max(float(q.max[0]), high)]
    return write_model(model)


def quantize_keeping(calibrated_blob: bytes, float_nodes: list[str]) -> bytes:
    """Every op int8 except ``float_nodes``, with float32 input and output: a QUANTIZE op after
    each input and a DEQUANTIZE before the output, which XNNPACK runs inside the graph. With
    int8 input and output (``fully_quantize``: the same ops int8) the runner converted them in
    NumPy, about 6 us per 6x256 input, and the spectrotemporal sequence's int8 file took 1.9x
    the fp32 time per call while its invoke alone took 0.73x."""
    from tensorflow.lite.python import convert

    from edgeaffect.keras_backend import tf

    t = tf()
    return convert.mlir_quantize(calibrated_blob, fully_quantize=False, input_data_type=t.float32,
                                 output_data_type=t.float32, denylisted_nodes=list(float_nodes) or None)


def _op_rows(path: Path) -> dict[str, object]:
    """Output tensor name -> the op's time alone (``OpTime``), for every op of a file."""
    from edgeaffect.runtime.litert_ops import op_times, read_model

    model = read_model(path.read_bytes())
    graph = model.subgraphs[0]
    timed = op_times(path, budget_s=0.02)
    names = [graph.tensors[op.outputs[0]].name.decode() for op in graph.operators]
    return {names[r.index]: r for r in timed["ops"]}, timed["whole_us"]


def slower_in_int8(float_blob: bytes, int8_blob: bytes) -> tuple[list[FloatLayer], list[FloatLayer],
                                                                 list[FloatLayer], float, float]:
    """(the ops int8 runs slower than float here, most time lost first; the int8 ops XNNPACK
    leaves to the built-in kernels while it takes their float twin; the int8 ops that cannot be
    timed alone (a fused LSTM keeps state); the float file's time, the int8 file's). Each op's
    times are the median of ``SMALL_FILE_TIMINGS`` passes when the file is small."""
    with tempfile.TemporaryDirectory(prefix="edgeaffect-mixed-") as d:
        fp, ip = Path(d) / "float.tflite", Path(d) / "int8.tflite"
        fp.write_bytes(float_blob)
        ip.write_bytes(int8_blob)
        passes = [(_op_rows(fp), _op_rows(ip))]
        if passes[0][0][1] < SMALL_FILE_US:
            passes += [(_op_rows(fp), _op_rows(ip)) for _ in range(SMALL_FILE_TIMINGS - 1)]
    (floats, _), (ints, _) = passes[0]
    float_us = float(np.median([f[1] for f, _ in passes]))
    int8_us = float(np.median([i[1] for _, i in passes]))

    def median_us(name: str, which: int) -> float | None:
        times = [p[which][0][name].us for p in passes if name in p[which][0]]
        return None if not times or any(t is None for t in times) else float(np.median(times))

    slow, outside, untimed = [], [], []
    for name, r in ints.items():
        if r.dtype.startswith("float") or r.type in ("QUANTIZE", "DEQUANTIZE") or name not in floats:
            continue
        i_us, f_us = median_us(name, 1), median_us(name, 0)
        if i_us is None:
            untimed.append(FloatLayer(name, r.type, "speed", f"{r.type} {r.shape}: {r.note}"))
        elif f_us is not None and i_us > f_us * SPEED_MARGIN + 1.0:
            slow.append((i_us - f_us, FloatLayer(name, r.type, "speed", f"{r.type} {r.shape}: int8 {i_us:.1f} us, "
                                                 f"float {f_us:.1f} us alone on this machine's XNNPACK")))
        elif r.delegated is False and floats[name].delegated:
            # Alone it may be quick; in the graph it cuts the delegate's partition in two.
            outside.append(FloatLayer(name, r.type, "speed", f"{r.type} {r.shape}: int8 {i_us:.1f} us, float "
                                      f"{f_us:.1f} us alone; XNNPACK takes it in float, not in int8, where it "
                                      f"splits the graph into another delegate partition"))
    return [layer for _, layer in sorted(slow, key=lambda t: -t[0])], outside, untimed, float_us, int8_us


def whole_us(blob: bytes) -> float:
    from edgeaffect.runtime.litert_ops import op_times

    with tempfile.TemporaryDirectory(prefix="edgeaffect-mixed-") as d:
        p = Path(d) / "m.tflite"
        p.write_bytes(blob)
        return op_times(p, budget_s=0.0, ops=False)["whole_us"]


def layer_errors(calibrated_blob: bytes, input_specs: dict, calibration: list[dict],
                 float_nodes: list[str] = ()) -> list[tuple[str, float]]:
    """Nodes ranked by the error int8 adds there: RMSE between the int8 op's output and the
    float op on the same int8 input, in the output's quantization steps (TensorFlow's
    QuantizationDebugger on the calibration samples), largest first."""
    from tensorflow.lite.python import convert

    from edgeaffect.keras_backend import tf

    t = tf()
    debug_blob = convert.mlir_quantize(calibrated_blob, fully_quantize=False, enable_numeric_verify=True,
                                       denylisted_nodes=list(float_nodes) or None)
    names = _input_order(debug_blob, input_specs)
    debugger = t.lite.experimental.QuantizationDebugger(
        quant_debug_model_content=debug_blob,
        debug_dataset=lambda: ([np.asarray(s[n], np.float32) for n in names] for s in calibration[:64]))
    debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)  # adds each tensor's scale and its float name
    ranked = []
    for row in csv.DictReader(io.StringIO(dump.getvalue())):
        mse, scale = float(row["mean_squared_error"] or "nan"), float(row["scale"] or 0.0)
        if scale > 0 and np.isfinite(mse):
            ranked.append((row["tensor_name"], math.sqrt(max(mse, 0.0)) / scale))
    return sorted(ranked, key=lambda r: -r[1])


def _input_order(blob: bytes, input_specs: dict) -> list[str]:
    """The model's input names in the order its interpreter lists them."""
    from edgeaffect.runtime.litert import _clean_name

    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_content=blob).get_input_details()
    return [_clean_name(d["name"]) if _clean_name(d["name"]) in input_specs else list(input_specs)[i]
            for i, d in enumerate(details)]


def op_of(calibrated_blob: bytes, node: str) -> str:
    from edgeaffect.runtime.litert_ops import op_type, read_model

    model = read_model(calibrated_blob)
    graph = model.subgraphs[0]
    for op in graph.operators:
        if graph.tensors[op.outputs[0]].name.decode() == node:
            return op_type(model, op)
    return "?"


def choose(calibrated_blob: bytes, input_specs: dict, calibration: list[dict], *,
           accept: Callable[[bytes], list[str]] | None = None, full_int8: bool = False,
           max_float_layers: int | None = None, speed: bool = True, log=None) -> tuple[bytes, dict]:
    """(the int8 file, facts for its manifest entry: which nodes stayed float and why, and what
    each choice measured). ``speed``: ops may stay float because int8 runs them slower on this
    machine (only when the file is for this machine)."""
    full = quantize_keeping(calibrated_blob, [])
    if full_int8:
        return full, {"float_layers": [], "mixed_precision": "off (full int8 asked for)"}
    if speed:
        slow, outside, untimed, float_us, full_us = slower_in_int8(calibrated_blob, full)
        facts = {"float_us_here": round(float_us, 1), "full_int8_us_here": round(full_us, 1)}
    else:
        slow, outside, untimed, full_us = [], [], [], 0.0
        facts = {"speed_choices": "none: the file is for another device, where this machine's timings do not hold"}
    kept, blob, blob_us = [], full, full_us
    # Speed choices are not capped by ``max_float_layers`` (that caps the accuracy search): each
    # is measured, and kept only when the whole file is faster for it and the file not too large.
    untimed, slow, outside = _within_size(calibrated_blob, len(full), untimed, slow, outside, facts=facts)
    for layer in untimed:  # not timed alone: judged by the whole file with it float
        candidate = quantize_keeping(calibrated_blob, [k.node for k in kept] + [layer.node])
        candidate_us = whole_us(candidate)
        if candidate_us * SPEED_MARGIN < blob_us:
            layer.detail += (f"; the whole file {candidate_us:.1f} us with it float, {blob_us:.1f} us with it int8, "
                             f"on this machine's XNNPACK")
            kept.append(layer)
            blob, blob_us = candidate, candidate_us
    if slow or outside:
        kept, blob, blob_us = _fastest_speed_choice(calibrated_blob, kept, slow, outside, blob, blob_us, facts)
    failures = accept(blob) if accept else []
    if failures:
        ranked = ranked_for_accuracy(calibrated_blob, input_specs, calibration, [k.node for k in kept], log)
        blob = keep_float_until_held(ranked, kept, lambda nodes: quantize_keeping(calibrated_blob, nodes), accept,
                                     failures, float_layer_cap(max_float_layers, ranked), log) or blob
    if accept is not None:
        blob = _smaller_if_it_holds(blob, accept, facts, log)
    if speed:
        facts["mixed_us_here"] = round(whole_us(blob), 1) if kept else facts["full_int8_us_here"]
    facts["float_layers"] = [asdict(k) for k in kept]
    facts["mixed_precision"] = (f"{len(kept)} layer(s) float" if kept else "none needed: every op int8")
    return blob, facts


def _smaller_if_it_holds(blob: bytes, accept: Callable[[bytes], list[str]], facts: dict, log=None) -> bytes:
    """The file with per-tensor weights where per-channel parameters are a large share of it
    (``edgeaffect.export.per_tensor``), if it still holds its bounds; else ``blob``."""
    from edgeaffect.export import per_tensor as pt

    ops = pt.heavy_ops(blob)
    if not ops:
        return blob
    candidate, names = pt.per_tensor(blob, ops)
    failures = accept(candidate)
    facts["per_tensor_weights"] = {"ops": names, "kept": not failures,
                                   "bytes": [len(blob), len(candidate)], "failures": failures[:3]}
    if log is not None:
        outcome = "kept" if not failures else f"not kept ({failures[0]})"
        print(f"  per-tensor weights for {', '.join(names)}: {len(blob) // 1024} -> {len(candidate) // 1024} KiB, "
              f"{outcome}", file=log, flush=True)
    return blob if failures else candidate


def added_bytes(calibrated_blob: bytes) -> dict[str, int]:
    """Node -> the bytes its constant inputs add when it stays float (float32 instead of int8:
    three quarters of their float size)."""
    from edgeaffect.runtime.litert_ops import _is_constant, read_model

    model = read_model(calibrated_blob)
    graph = model.subgraphs[0]
    out = {}
    for op in graph.operators:
        consts = [graph.tensors[i] for i in op.inputs if i >= 0 and _is_constant(model, graph.tensors[i])]
        size = sum(len(model.buffers[t.buffer].data) for t in consts if model.buffers[t.buffer].data is not None)
        out[graph.tensors[op.outputs[0]].name.decode()] = size * 3 // 4
    return out


def _within_size(calibrated_blob: bytes, full_bytes: int, *groups: list[FloatLayer],
                 facts: dict) -> list[list[FloatLayer]]:
    """``groups`` (in the order they are tried, each most time saved first) without the layers
    whose float weights would take the speed choices past ``SPEED_SIZE_GROWTH`` of the full
    int8 file; those stay int8 and are named in ``facts["left_int8_for_size"]``."""
    cost, room = added_bytes(calibrated_blob), int(SPEED_SIZE_GROWTH * full_bytes)
    kept_groups, left = [], []
    for group in groups:
        kept_groups.append([])
        for layer in group:
            extra = cost.get(layer.node, 0)
            if extra > room:
                left.append(f"{layer.op} (+{extra / 1024:.0f} KiB float)")
                continue
            room -= extra
            kept_groups[-1].append(layer)
    if left:
        facts["left_int8_for_size"] = (f"{', '.join(left)}: faster float here, left int8 to keep the speed "
                                       f"choices within +{SPEED_SIZE_GROWTH:.0%} of the full int8 file")
    return kept_groups


def _fastest_speed_choice(calibrated_blob: bytes, kept: list[FloatLayer], slow: list[FloatLayer],
                          outside: list[FloatLayer], blob: bytes, blob_us: float,
                          facts: dict) -> tuple[list[FloatLayer], bytes, float]:
    """(kept, file, its time): ``blob`` or one of two mixed files -- the ops slower in int8
    float, and those plus the int8 ops XNNPACK does not take (``outside``) -- whichever is
    fastest, a mixed one only when at least ``1 - WHOLE_FILE_GAIN`` faster. The files are timed
    in interleaved rounds (median): one timing each follows this machine's noise on a small file."""
    options = [(kept, blob)]
    for extra in (slow, slow + outside):
        if extra and all(kept + extra != o[0] for o in options):
            options.append((kept + extra, quantize_keeping(calibrated_blob, [k.node for k in kept + extra])))
    times = interleaved_us([b for _, b in options])
    facts["speed_mixed_us_here"] = round(min(times[1:]), 1)
    best = min(range(1, len(options)), key=lambda i: times[i])
    if times[best] < times[0] * WHOLE_FILE_GAIN:
        return options[best][0], options[best][1], times[best]
    return kept, blob, blob_us


def interleaved_us(blobs: list[bytes], rounds: int = 5) -> list[float]:
    """Each file's whole-model time (median of ``rounds`` rounds, the files in turn each round)."""
    times = [[] for _ in blobs]
    for _ in range(rounds):
        for i, b in enumerate(blobs):
            times[i].append(whole_us(b))
    return [float(np.median(t)) for t in times]


def float_layer_cap(max_float_layers: int | None, ranked: list) -> int:
    """The user's cap, or by default ``DEFAULT_MAX_FLOAT_LAYERS`` or half of the ranked
    candidates, whichever is more."""
    return max(DEFAULT_MAX_FLOAT_LAYERS, len(ranked) // 2) if max_float_layers is None else max_float_layers


def outputs_of(blob: bytes, input_specs: dict, samples: list[dict]) -> list[np.ndarray]:
    """The first output of a .tflite file on each sample, in float (an int8 input quantized and
    an int8 output dequantized with the file's own scales), batch 1."""
    from edgeaffect.runtime.litert import interpreter_class

    Interpreter, _ = interpreter_class()
    it = Interpreter(model_content=blob, num_threads=1)
    it.allocate_tensors()
    out_d = it.get_output_details()[0]
    outs = []
    for sample in samples:
        for d in it.get_input_details():
            name = next((n for n in input_specs if n in d["name"]), d["name"])
            x = np.asarray(sample[name], np.float32).reshape(d["shape"])
            scale, zero = d["quantization"]
            if d["dtype"] != np.float32:
                info = np.iinfo(d["dtype"])
                x = np.clip(np.round(x / scale) + zero, info.min, info.max)
            it.set_tensor(d["index"], x.astype(d["dtype"]))
        it.invoke()
        y = it.get_tensor(out_d["index"]).astype(np.float64)
        scale, zero = out_d["quantization"]
        outs.append((y - zero) * scale if out_d["dtype"] != np.float32 else y)
    return outs


def relative_rmse(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    return float(np.mean([np.sqrt(np.mean((g - w) ** 2)) / (np.sqrt(np.mean(w ** 2)) + 1e-12)
                          for g, w in zip(got, want)]))


def int8_ops(blob: bytes) -> list[tuple[str, str]]:
    """(output tensor name, op type) of every op computing in int8 (its output int8; the
    QUANTIZE / DEQUANTIZE at the edges and the shape arithmetic left out): the candidates."""
    from edgeaffect.runtime.litert_ops import _schema, op_type, read_model

    int8 = _schema().TensorType.INT8
    model = read_model(blob)
    graph = model.subgraphs[0]
    out = []
    for op in graph.operators:
        kind = op_type(model, op)
        tensor = graph.tensors[op.outputs[0]]
        if kind not in ("QUANTIZE", "DEQUANTIZE") and tensor.type == int8:
            out.append((tensor.name.decode(), kind))
    return out


def output_errors(calibrated_blob: bytes, input_specs: dict, samples: list[dict],
                  kept: list[str] = ()) -> list[FloatLayer] | None:
    """The int8 ops, the one whose int8 alone (every other candidate float) moves the model's
    output most first: relative RMSE against the file with every candidate float. None for a
    graph of more than ``MAX_OUTPUT_RANKED_OPS``. Judged at the output, not at the op: the
    spectrotemporal sequence's layer-norm MEANs add little where they are and move its score
    by tens of points, which the debugger's per-op error ranks low."""
    candidates = [(n, k) for n, k in int8_ops(quantize_keeping(calibrated_blob, list(kept))) if n not in kept]
    if len(candidates) > MAX_OUTPUT_RANKED_OPS:
        return None
    names = [n for n, _ in candidates]
    samples = samples[:RANKING_SAMPLES]
    want = outputs_of(quantize_keeping(calibrated_blob, [*kept, *names]), input_specs, samples)
    ranked = []
    for name, kind in candidates:
        alone = quantize_keeping(calibrated_blob, [*kept, *(n for n in names if n != name)])
        e = relative_rmse(outputs_of(alone, input_specs, samples), want)
        ranked.append((e, FloatLayer(name, kind, "accuracy",
                                     f"int8 here alone moves the output by {100 * e:.2f} % relative RMSE", e)))
    return [layer for _, layer in sorted(ranked, key=lambda t: -t[0])]


def ranked_for_accuracy(calibrated_blob: bytes, input_specs: dict, calibration: list[dict], kept: list[str],
                        log=None) -> list[FloatLayer]:
    """The candidates for the accuracy search, most harmful first: at the model's output where
    the graph is small enough, else by the debugger's error at each op."""
    if log is not None:
        print("    int8 fails its bounds; ranking its ops by what each moves the output", file=log, flush=True)
    ranked = output_errors(calibrated_blob, input_specs, calibration, kept)
    if ranked is not None:
        return ranked
    return [FloatLayer(n, op_of(calibrated_blob, n), "accuracy", f"int8 adds RMSE {e:.2f} quantization steps here")
            for n, e in layer_errors(calibrated_blob, input_specs, calibration, kept)]


def keep_float_until_held(ranked: list[FloatLayer], kept: list[FloatLayer], write: Callable[[list[str]], bytes],
                          accept: Callable[[bytes], list[str]], failures: list[str], max_float_layers: int,
                          log=None) -> bytes | None:
    """The fewest of ``ranked`` (most harmful first), taken in order, that make the file hold,
    at most ``max_float_layers`` more than ``kept`` holds: 1, 2, 4 ... layers until one holds,
    then bisection between the last that failed and it (a few files judged instead of one per
    layer). ``kept`` grows in place. The file for the layers kept (the largest tried when none
    held), or None when none was written."""
    known = {k.node for k in kept}
    order = [layer for layer in ranked if layer.node not in known][:max_float_layers]
    if not failures or not order:
        return None
    tried: dict[int, tuple[bytes, list[str]]] = {}

    def attempt(n: int) -> bool:
        if n not in tried:
            blob = write([k.node for k in kept] + [layer.node for layer in order[:n]])
            tried[n] = (blob, accept(blob))
            if log is not None:
                print(f"    mixed precision: {len(kept) + n} float layer(s), "
                      f"{'holds' if not tried[n][1] else 'fails: ' + '; '.join(tried[n][1])}", file=log, flush=True)
        return not tried[n][1]

    low, high = 0, 1  # low: most that failed; high: the next to try
    while not attempt(high):
        if high == len(order):
            break
        low, high = high, min(2 * high, len(order))
    if attempt(high):
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (low, mid) if attempt(mid) else (mid, high)
    for layer in order[:high]:
        layer.detail += f"; the file failed: {'; '.join(failures)}"
    kept.extend(order[:high])
    return tried[high][0]
