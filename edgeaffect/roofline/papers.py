"""The papers' own cost and speed figures (each family's ``paper.toml``, found through the
registry) beside ours, with the ratio, and the places where a paper's figures cannot all
hold at once."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from edgeaffect.errors import InputError

# Every weight is read and multiplied at least once per forward pass (no weight sharing
# across layers in these models), so FLOPs >= 2 * params; and FP32 memory >= 4 B * params.
MIN_FLOPS_PER_PARAM = 2
FP32_BYTES = 4


def load_figures() -> tuple[dict, list[dict]]:
    """(family -> its paper's header, every cost row with ``paper`` set to the family), from
    the registered families that keep a ``paper.toml``."""
    from edgeaffect.contract import get_family, list_families

    papers, figures = {}, []
    for name in list_families():
        path = get_family(name).paper_file
        if path is None:
            continue
        data = tomllib.loads(path.read_text())
        papers[name] = data["paper"]
        figures += [{"paper": name, **row} for row in data.get("figures", [])]
    return papers, figures


def contradictions(fig: dict) -> list[str]:
    """What cannot hold at once among one row's figures."""
    out = []
    p, g, mem = fig.get("params_m"), fig.get("gflops"), fig.get("memory_mb")
    if p and g and g * 1e9 < MIN_FLOPS_PER_PARAM * p * 1e6:
        out.append(f"{p} M parameters need at least {MIN_FLOPS_PER_PARAM * p:.1f} M FLOPs per pass "
                   f"(each weight used once), but {g * 1e3:g} M FLOPs are stated")
    if p and mem and fig.get("memory_kind") == "FP32" and mem * 1e6 < FP32_BYTES * p * 1e6 * 0.999:
        out.append(f"{p} M FP32 parameters alone take {FP32_BYTES * p:.1f} MB, but {mem} MB is stated")
    return out


def implied_gflops(fig: dict) -> float | None:
    if fig.get("gflops") and fig.get("time_ms"):
        return fig["gflops"] / (fig["time_ms"] / 1e3)
    return None


@dataclass
class Ours:
    params: int
    flops: int
    memory_mb: float  # fp32 weights + peak activations, batch 1
    time_ms: float | None = None
    time_how: str = ""


def our_figures(model: str, measured: dict | None = None) -> Ours | None:
    """Our counted figures for a registered model; None when it is not built yet."""
    from edgeaffect.contract import list_models
    from edgeaffect.contract.registry import get_model

    if model not in list_models():
        return None
    spec = get_model(model)
    try:
        from edgeaffect.roofline.readers import analyse

        cost = analyse(spec.build_model())
        memory = (cost.weight_bytes["float32"] + cost.peak_activation_bytes["float32"]) / 1e6
    except ImportError:  # no TensorFlow here: weights only
        memory = spec.params * FP32_BYTES / 1e6
    ours = Ours(spec.params, spec.flops, memory)
    if measured and model in measured:
        ours.time_ms, ours.time_how = measured[model]["p50_ms"], measured[model]["how"]
    return ours


def measured_from_bench(bench: dict, source: str = "the benchmark file") -> dict:
    """Our measured time per model from ``edgeaffect bench --json`` output: the first fp32 row's p50.
    Rows without a model name and a time (a hand-edited file) are left out."""
    if not isinstance(bench, dict) or not isinstance(bench.get("rows", []), list):
        raise InputError(f"{source} is not what `edgeaffect bench --json` writes (an object with a list of "
                         "'rows'); give that file")
    measured = {}
    for r in bench.get("rows", []):
        if not (isinstance(r, dict) and isinstance(r.get("model"), str) and _positive(r.get("p50_ms"))):
            continue
        if str(r.get("format", "")).endswith("fp32") and r["model"] not in measured:
            measured[r["model"]] = {"p50_ms": r["p50_ms"], "machine": bench.get("machine"),
                                    "how": f"p50 of {r['format']} on {r.get('runtime')}, batch 1, "
                                           f"{bench.get('threads', 1)} thread(s), measured on {bench.get('machine')}"}
    return measured


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf")


def _ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def report(measured: dict | None = None) -> str:
    """Markdown: each paper row, ours beside it, ratios, contradictions."""
    papers, figures = load_figures()
    lines = ["# Our figures beside the papers'", "",
             "Paper figures are as printed (each family's `paper.toml`). Ours: parameters and FLOPs counted by "
             "`edgeaffect.roofline` (FLOPs = 2*MACs + bias adds, the audio-visual paper's Eq. 3); memory = FP32 "
             "weights + peak activations at batch 1; time = our measured p50 where a benchmark is given, on the "
             "machine it names (never the paper's hardware, so the time ratio compares machines as much as "
             "models). `not built`: the model is not in edgeaffect yet.", ""]
    for key, paper in papers.items():
        rows = [f for f in figures if f["paper"] == key]
        lines += [f"## {paper['title']}", "", f"Paper's hardware: {paper['hardware']}.", "",
                  "| method | source | params (M) paper / ours / ratio | FLOPs (G) paper / ours / ratio "
                  "| memory (MB) paper / ours | time (ms) paper / ours | implied GFLOP/s |",
                  "|---|---|---|---|---|---|---|"]
        notes = []
        for f in rows:
            ours = our_figures(f["model"], measured) if f.get("model") else None
            built = f.get("model") and ours is not None
            # a paper's own method with no figure to set ours beside says so in the data (proposed)
            tag = "" if f.get("model") or f.get("proposed") else " (compared work)"
            p, g, m, t = f.get("params_m"), f.get("gflops"), f.get("memory_mb"), f.get("time_ms")
            fmt = lambda v: "-" if v is None else f"{v:g}"  # noqa: E731
            if built:
                cols = [f"{fmt(p)} / {ours.params / 1e6:.4f} / {_ratio(ours.params / 1e6, p)}",
                        f"{fmt(g)} / {ours.flops / 1e9:.5f} / {_ratio(ours.flops / 1e9, g)}",
                        f"{fmt(m)} / {ours.memory_mb:.3f}",
                        f"{fmt(t)} / {'-' if ours.time_ms is None else f'{ours.time_ms:.3f}'}"]
                if ours.time_ms is not None:
                    notes.append(f"{f['method']}: our time is {ours.time_how}.")
            elif f.get("model"):
                cols = [f"{fmt(p)} / not built / -", f"{fmt(g)} / not built / -", f"{fmt(m)} / not built",
                        f"{fmt(t)} / not built"]
            else:
                cols = [fmt(p), fmt(g), fmt(m), fmt(t)]
            ig = implied_gflops(f)
            lines.append(f"| {f['method']}{tag} | {f['source']} | " + " | ".join(cols) +
                         f" | {'-' if ig is None else f'{ig:.3f}'} |")
            for c in contradictions(f):
                notes.append(f"**Cannot all hold** ({f['method']}, {f['source']}): {c}.")
            if f.get("note"):
                notes.append(f"{f['method']}: {f['note']}.")
        lines += [""] + [f"- {n}" for n in notes] + ([""] if notes else [])
    return "\n".join(lines) + "\n"
