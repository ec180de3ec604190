"""The measurement store: every run on one of the user's own devices (``edgeaffect bench
EXPORTS --on NAME``) kept as one JSON file in ``edgeaffect.home.measurements_dir()``, and what
the predictor and the budgets take from it.

A record (schema 1)::

    {"schema": 1, "when": "2025-05-01T10:00:00Z", "command": "bench",
     "device": {"name": "lab", "kind": "rpi5", "cpu": ..., "machine": ..., "governor": ...,
                "throttled": ..., "runtimes": {package: version}, "edgeaffect": version, ...},
     "threads": 4,
     "rows": [{"model", "format", "runtime", "package", "sha256", "bytes", "p50_ms", "p90_ms",
               "p99_ms", "runs", "model_memory_mib", "status", "cost"}]}

``cost`` is the predictor's view of the file (``file_cost``), so a figure calibrates the
device's estimates without its Keras graph. Files are written atomically and never changed;
a damaged one is skipped with a warning.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from edgeaffect.errors import InputError
from edgeaffect.io import sha256 as file_sha256  # noqa: F401  (the store names files by it)
from edgeaffect.schema import Int, List, Num, Nullable, SchemaError, Str, Table, check

SCHEMA = 1
# Manifest runtimes (and the packages that provide them) -> the runtime names calibration
# groups by (published.toml's, the catalog's ``runtimes``).
RUNTIMES = {"litert": "litert", "tflite": "litert", "ai-edge-litert": "litert", "tflite-runtime": "litert",
            "tensorflow": "litert", "onnxruntime": "onnxruntime", "onnxruntime-gpu": "onnxruntime",
            "tensorrt": "tensorrt"}

ROW = Table({"model": Str(), "format": Str(), "status": Str(empty=True)})
RECORD = Table({"schema": Int(min=1, max=SCHEMA), "when": Str(), "command": Str(),
                "device": Table({"name": Str(), "kind": Str()}), "threads": Nullable(Int(min=1)),
                "rows": List(ROW)}, what="a measurement record (a table)")
COST = Table({"flops": Num(above=0), "conv3x3_flops": Num(min=0), "other_flops": Num(min=0)})


@dataclass(frozen=True)
class Measurement:
    """One latency figure calibration fits: published (``published.toml``) or the user's own."""
    device: str
    runtime: str
    precision: str
    threads: int | None  # None: not stated by the source (or not meaningful: a GPU)
    model: str
    latency_ms: float
    source: str
    clock_ghz: float | None = None
    statistic: str = ""
    own: bool = False  # measured on the user's own device (the measurement store)


# --------------------------------------------------------------------------- a file's cost

def file_cost(path) -> dict:
    """The predictor's cost of a .tflite / .onnx file: the dict ``calibrate.split_cost`` gives
    for a Keras model (flops, bytes per precision, params, the dense 3x3 stride-1 convolutions'
    share and the rest), JSON-serialisable."""
    from edgeaffect.roofline.readers import analyse

    path = Path(path)
    cost = analyse(path)
    c3 = min(conv3x3_flops_of_file(path), cost.flops)
    return {"flops": cost.flops, "bytes": dict(cost.bytes), "params": cost.params, "conv3x3_flops": c3,
            "other_flops": max(cost.flops - c3, 0), "complete": cost.complete,
            "cost_source": f"read from {path.name}"}


def conv3x3_flops_of_file(path: Path) -> int:
    """FLOPs of a file's dense 3x3 stride-1 convolutions, counted as ``calibrate.conv3x3_flops``
    counts a Keras model's; 0 for a format it cannot read."""
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        return _tflite_conv3x3(path)
    if suffix == ".onnx":
        return _onnx_conv3x3(path)
    return 0


def _conv3x3(in_hw, kernel_hw, kernel_in: int, in_ch: int, out_hw, out_ch: int, bias: bool) -> int:
    """FLOPs of one convolution if it is dense, 3x3 and stride 1, else 0. A TFLite file keeps
    no strides: stride 1 shows as an output as large as the input ('same') or 2 smaller ('valid')."""
    from edgeaffect.roofline.graph import prod

    if tuple(int(k) for k in kernel_hw) != (3, 3) or int(kernel_in) != int(in_ch):
        return 0
    if not all(int(o) in (int(i), int(i) - 2) for i, o in zip(in_hw, out_hw)):
        return 0
    out = prod(out_hw) * int(out_ch)
    return 2 * out * 9 * int(in_ch) + (out if bias else 0)


def _tflite_conv3x3(path: Path) -> int:
    from edgeaffect.runtime.litert import interpreter_class

    Interpreter, _ = interpreter_class()
    try:  # no default delegate: XNNPACK would hide the ops behind DELEGATE nodes
        from ai_edge_litert.interpreter import OpResolverType

        interp = Interpreter(model_path=str(path),
                             experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    except ImportError:
        interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    shape = {d["index"]: [int(s) for s in d["shape"]] for d in interp.get_tensor_details()}
    total = 0
    for op in interp._get_ops_details():  # noqa: SLF001 - the only listing of the ops
        if op["op_name"] != "CONV_2D":
            continue
        ins = [int(t) for t in op["inputs"] if t >= 0]
        x, w, y = shape[ins[0]], shape[ins[1]], shape[int(op["outputs"][0])]
        if len(x) == 4 and len(w) == 4 and len(y) == 4:  # NHWC, weights OHWI
            total += _conv3x3(x[1:3], w[1:3], w[3], x[3], y[1:3], y[3], len(ins) > 2)
    return total


def _onnx_conv3x3(path: Path) -> int:
    from edgeaffect._optional import require
    from edgeaffect.roofline.graph import prod

    onnx = require("onnx", "train")
    g = onnx.shape_inference.infer_shapes(onnx.load(str(path))).graph
    shapes = {vi.name: [d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim]
              for vi in [*g.input, *g.value_info, *g.output]}
    inits = {i.name: list(i.dims) for i in g.initializer}
    by_output = {o: n for n in g.node for o in n.output}
    total = 0
    for node in g.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        w = _onnx_weight_shape(node.input[1], inits, by_output)
        kernel = list(attrs.get("kernel_shape", w[2:] if w else []))
        stride_one = all(s == 1 for s in attrs.get("strides", [1])) and all(d == 1 for d in attrs.get("dilations", [1]))
        if w is None or kernel != [3, 3] or not stride_one or attrs.get("group", 1) != 1:
            continue
        out = prod(shapes.get(node.output[0], [0]))
        total += 2 * out * 9 * int(w[1]) + (out if len(node.input) > 2 and node.input[2] else 0)
    return total


def _onnx_weight_shape(name: str, inits: dict, by_output: dict) -> list | None:
    """A Conv's weight shape, through a DequantizeLinear (a Q/DQ model) where there is one."""
    while name not in inits:
        node = by_output.get(name)
        if node is None or not node.input:
            return None
        name = node.input[0]
    return inits[name]


# --------------------------------------------------------------------------- the store

def _folder(folder) -> Path:
    from edgeaffect.home import measurements_dir

    return Path(folder) if folder is not None else measurements_dir()


def parse_when(text) -> datetime | None:
    """A record's ``when`` (ISO 8601, UTC) as an aware datetime; None if unreadable."""
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _check_record(record, source: str) -> dict:
    check(RECORD, record, source)
    if parse_when(record["when"]) is None:
        raise InputError(f"{source}: 'when' must be an ISO 8601 UTC time, got {record['when']!r}")
    return record


def _file_name(record: dict) -> str:
    when = parse_when(record["when"]).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = re.sub(r"[^A-Za-z0-9_-]", "_", record["device"]["name"])  # a file name, whatever the record says
    command = re.sub(r"[^A-Za-z0-9_-]", "_", record["command"])
    return f"{when}-{name}-{command}-{secrets.token_hex(3)}.json"


def save_measurement(record: dict) -> Path:
    """Keep one run's record: a new file in the store, written atomically (a run cut off
    leaves no partial file that a later load trusts)."""
    from edgeaffect.io import atomic_write_text

    _check_record(record, "measurement record")
    folder = _folder(None)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _file_name(record)
    while path.exists():  # the random part collided: draw again rather than overwrite
        path = folder / _file_name(record)
    atomic_write_text(path, json.dumps(record, indent=2))
    return path


def _store_files(folder: Path) -> list[Path]:
    """The records' files (hidden names are an atomic writer's temp files)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


def load_measurements(folder=None) -> list[dict]:
    """Every readable record, oldest file name first; a damaged file is skipped with one
    warning line on stderr."""
    out = []
    for path in _store_files(_folder(folder)):
        try:
            out.append(_check_record(json.loads(path.read_text()), f"measurement {path}"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            print(f"warning: measurement {path} skipped: not readable JSON ({exc})", file=sys.stderr)
        except InputError as exc:
            print(f"warning: {exc} (skipped)", file=sys.stderr)
    return out


def store_key(folder=None) -> tuple:
    """What the store holds, cheaply: (folder, sorted (file name, mtime)); changes when a
    record is added, replaced or removed."""
    path = _folder(folder)
    entries = []
    for p in _store_files(path):
        try:
            entries.append((p.name, p.stat().st_mtime_ns))
        except FileNotFoundError:  # removed while listing
            continue
    return str(path), tuple(entries)


# --------------------------------------------------------------------------- using it

def runtime_of(row: dict) -> str:
    """The calibration runtime of a row (its manifest runtime, else its package's name)."""
    for name in (row.get("runtime"), (row.get("package") or "").split(" ")[0]):
        if name and name.lower() in RUNTIMES:
            return RUNTIMES[name.lower()]
    return str(row.get("runtime") or row.get("package") or "unknown")


def _usable(row: dict) -> bool:
    """An ok row with a latency, a file hash and a cost the predictor can read."""
    if not isinstance(row, dict) or row.get("status") != "ok" or not isinstance(row.get("sha256"), str):
        return False
    try:
        Num(above=0).check(row.get("p50_ms"), "p50_ms")
        COST.check(row.get("cost"), "cost")
    except SchemaError:
        return False
    return True


def describe_device(device: dict) -> str:
    """``lab (Cortex-A76, governor ondemand, not throttled)``: what a measured figure stands on."""
    bits = [device.get("cpu") or "unknown CPU"]
    if device.get("governor"):
        bits.append(f"governor {device['governor']}")
    t = device.get("throttled")
    if t is not None:
        bits.append("not throttled" if t in ("0x0", "0") else f"THROTTLED ({t})")
    return f"{device.get('name', '?')} ({', '.join(bits)})"


def to_calibration(records: list[dict]) -> tuple[list[Measurement], dict[str, dict]]:
    """(figures, costs) for ``calibrate.calibrate``: one own figure per ok row with a cost, its
    model keyed ``own:<sha256[:12]>`` (the file), its cost under that key. The same file on the
    same device kind, runtime, precision and threads counts once (the newest run): repeated
    runs of one file would otherwise outweigh the other models and hide the fit's error."""
    from edgeaffect.roofline.devices import load_catalog, precision_of_format

    catalog = load_catalog()
    newest: dict[tuple, tuple[Measurement, dict]] = {}
    for record in sorted(records, key=lambda r: parse_when(r["when"])):
        device = record["device"]
        if device["kind"] not in catalog or device["kind"] == "host":
            continue
        for row in filter(_usable, record["rows"]):
            m = Measurement(device["kind"], runtime_of(row), precision_of_format(row["format"]), record.get("threads"),
                            f"own:{row['sha256'][:12]}", float(row["p50_ms"]),
                            f"your own: measured on {device['name']} ({device.get('cpu') or 'unknown CPU'}) "
                            f"{record['when']}", statistic="p50", own=True)
            newest[(m.device, m.runtime, m.precision, m.threads, m.model)] = (m, row["cost"])
    return [m for m, _ in newest.values()], {m.model: cost for m, cost in newest.values()}


def own_figures(folder=None) -> tuple[list[Measurement], dict[str, dict]]:
    """The store's figures and costs, ready for calibration."""
    return to_calibration(load_measurements(folder))


def fresh_measurement(device_kind: str, sha256: str, threads: int, max_age_days: float,
                      records: list[dict] | None = None, now: datetime | None = None) -> tuple[dict, dict] | None:
    """(row, record): the newest ok row of that very file (by SHA-256) measured on a device of
    ``device_kind`` at ``threads`` threads, not older than ``max_age_days``; else None."""
    records = load_measurements() if records is None else records
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=max_age_days)
    best = None
    for record in records:
        when = parse_when(record["when"])
        if record["device"]["kind"] != device_kind or record.get("threads") != threads or when < cutoff:
            continue
        for row in record["rows"]:
            if isinstance(row, dict) and row.get("sha256") == sha256 and row.get("status") == "ok" \
                    and isinstance(row.get("p50_ms"), (int, float)) and (best is None or when > best[0]):
                best = (when, row, record)
    return None if best is None else (best[1], best[2])
