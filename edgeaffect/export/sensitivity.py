"""Where quantization hurts: for each stage of a run, its quantized layers ranked by the error
int8 adds there (the format's own measure: TFLite's QuantizationDebugger RMSE in quantization
steps, ONNX Runtime's qdq_loss_debug noise power), with the task metric on the test split when
that layer alone stays float, beside the metric of the all-int8 file and of the float model.

Post-training from the trained (float) weights, as the format's mixed-precision search sees a
model without QAT; the export itself searches from QAT's weights.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgeaffect.export.formats import get_format
from edgeaffect.export.stages import plan
from edgeaffect.export.verify import run_batched
from edgeaffect.runtime import load_runner
from edgeaffect.train.qat import representative_samples


@dataclass
class Ranked:
    """One layer: its place, the error int8 adds there, what the metric is with it alone float."""
    stage: str
    node: str
    op: str
    error: float
    unit: str
    metric_alone_float: float | None
    # relative RMSE at the model's output when this layer alone is int8 (None: not measured)
    output_error: float | None = None


def sensitivity(run, data, format_name: str, top: int = 10, log=None) -> dict:
    """Per stage: the ranked layers of ``format_name``'s int8 file (the ``top`` first measured
    for the metric), the metric of the all-int8 file and of the float model."""
    f = get_format(format_name)
    if f.sensitivity is None:
        from edgeaffect.errors import InputError

        takes = ", ".join(n for n in _formats_with_sensitivity())
        raise InputError(f"format '{format_name}' has no per-layer sensitivity: give one of {takes}")
    p = plan(run, data)
    task, targets = run.family.task, p.targets("test")
    metric_of = lambda outputs: float(task.metric(task.judged(outputs), targets))  # noqa: E731
    result = {"format": f.name, "metric": task.metric_name, "higher_is_better": task.higher_is_better,
              "float_metric": metric_of(p.outputs(p.float_runners)), "stages": []}
    with tempfile.TemporaryDirectory(prefix="edgeaffect-sensitivity-") as d:
        for stage in p.stages:
            calibration = representative_samples(p.fed("train")[stage.name])
            path = Path(d) / p.file_name(stage, f).replace("/", "-")

            def metric(blob: bytes) -> float:
                path.write_bytes(blob)
                runner = load_runner(path, f.runtime)
                return metric_of(p.outputs({**p.float_runners, stage.name: lambda x: run_batched(runner, x)}))

            if log is not None:
                print(f"  {p.describe(stage)}: ranking {f.name}'s layers", file=log, flush=True)
            with f.sensitivity(stage.model, stage.inputs, calibration) as ranking:
                at_output = ranking.at_output or {}
                rows = [Ranked(stage.name, node, op, err, ranking.unit, None, at_output.get(node))
                        for node, op, err in ranking.layers]
                if at_output:  # the export's search order: what each moves the output
                    rows.sort(key=lambda r: -(r.output_error if r.output_error is not None else -1.0))
                for row in rows[:top]:
                    row.metric_alone_float = metric(ranking.write([row.node]))
                result["stages"].append({"stage": stage.name, "int8_metric": metric(ranking.write([])),
                                         "layers": [vars(r) for r in rows]})
    return result


def _formats_with_sensitivity() -> list[str]:
    from edgeaffect.export.formats import list_formats

    return [n for n in list_formats() if get_format(n).sensitivity is not None]


def format_table(result: dict, top: int = 10) -> str:
    """The ranked table, one block per stage."""
    m = result["metric"]
    lines = [f"{result['format']}: layers ranked by what each moves the output when it alone is int8 (the "
             f"export's search order) where measured, else by the error int8 adds at the layer; {m} on the test "
             f"split (float model {result['float_metric']:.4f}), post-training from the trained weights"]
    for s in result["stages"]:
        unit = s["layers"][0]["unit"] if s["layers"] else ""
        lines.append(f"\n{s['stage']}: every layer int8 -> {m} {s['int8_metric']:.4f}; int8 error at the layer: "
                     f"{unit}; at the output: relative RMSE with the layer alone int8")
        rows = [("rank", "layer", "op", "int8 error at the layer", "at the output", f"{m} with it alone float")]
        for i, r in enumerate(s["layers"][:top], 1):
            alone = "" if r["metric_alone_float"] is None else f"{r['metric_alone_float']:.4f}"
            out = "-" if r.get("output_error") is None else f"{100 * r['output_error']:.2f} %"
            rows.append((str(i), short_name(r["node"]), r["op"], f"{r['error']:.3g}", out, alone))
        widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
        if len(s["layers"]) > top:
            lines.append(f"({len(s['layers']) - top} more, with a smaller error; --top to show them)")
    return "\n".join(lines)


def short_name(node: str) -> str:
    """A fused op's first name (the converter joins the names it fused with ';')."""
    return node.split(";")[0]
