"""``edgeaffect report --html OUT/``: one static page of what the toolkit wrote about its models.

It gathers, from the folders given (by default each registered family's ``make demo*`` folder,
the reproductions' and any other pipeline or reproduction folder under ``build/``), the pipeline
summaries, every export manifest (a staged bundle's stage folders too), the benchmark JSON
(``bench``, ``bench-recordings``, ``bench-pipeline``, ``bench-demo``: budgets and the latency
gate included), the roofline plots, the training runs' test results and any ``reproduce.json``,
and writes ``OUT/index.html`` with its images beside it in ``OUT/img/``. The page needs no server
and fetches nothing: CSS is inline, confusion matrices and error plots are inline SVG drawn here,
the roofline plots are copied files. Each figure says which command made it and on what machine
("machine not recorded" where its file does not say). Inputs that are missing are skipped with a
note on the page; the folder is written whole or not at all (a temp folder, then a rename).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgeaffect import __version__
from edgeaffect.errors import InputError
from edgeaffect.io import atomic_dir

BUILD = Path("build")
# Where `edgeaffect reproduce` writes by default, and how.
REPRODUCE_FOLDER = (BUILD / "reproduce", "edgeaffect reproduce PAPER --data CORPUS")
SKIP_DIRS = {"corpus", "cache", "backup"}  # inputs and training checkpoints: nothing to show, much to walk
NOT_RECORDED = "machine not recorded"
REPRODUCE_KIND = "edgeaffect-reproduce"


@dataclass
class Item:
    path: Path
    data: object
    root: Path


@dataclass
class Gathered:
    roots: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summaries: list[Item] = field(default_factory=list)
    manifests: list[Item] = field(default_factory=list)
    bench: list[Item] = field(default_factory=list)
    timings: list[Item] = field(default_factory=list)
    demos: list[Item] = field(default_factory=list)
    bounds: list[Item] = field(default_factory=list)
    plots: list[Item] = field(default_factory=list)
    calibration: list[Item] = field(default_factory=list)
    results: list[Item] = field(default_factory=list)
    reproduce: list[Item] = field(default_factory=list)
    ablations: list[Item] = field(default_factory=list)

    current: Path | None = None  # the file being drawn (named if it cannot be)

    def visit(self, items: list[Item]):
        for item in items:
            self.current = item.path
            yield item
        self.current = None

    def machine_of_pipeline(self, path: Path) -> str | None:
        """The machine of the pipeline run (``summary.json``) whose folder holds ``path``."""
        best = None
        for s in self.summaries:
            d = s.path.parent
            if d in path.parents and (best is None or len(d.parts) > len(best.path.parent.parts)):
                best = s
        return best.data.get("machine") if best else None


def _load_json(path: Path, g: Gathered):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:  # ValueError: bad JSON, a 5000-digit int
        g.notes.append(f"{path}: not readable as JSON ({type(e).__name__}), skipped")
        return None


def _classify(path: Path, root: Path, g: Gathered) -> None:
    name = path.name
    if name.startswith("roofline-") and path.suffix in (".svg", ".png"):
        if path.suffix == ".png" and path.with_suffix(".svg").is_file():
            return  # the same plot as SVG is shown
        g.plots.append(Item(path, None, root))
        return
    if path.suffix != ".json" or not (name in ("reproduce.json", "summary.json", "manifest.json", "bounds.json",
                                               "run.json", "ablation.json") or name.startswith(("bench", "metrics"))
                                      or name.endswith("calibration.json")):
        return
    data = _load_json(path, g)
    if data is None:
        return
    item = Item(path, data, root)
    if isinstance(data, list):
        if name == "bounds.json":
            g.bounds.append(item)
        return
    if not isinstance(data, dict):
        return
    if data.get("kind") == REPRODUCE_KIND:
        g.reproduce.append(item)
    elif name == "ablation.json" and isinstance(data.get("rows"), list):
        g.ablations.append(item)
    elif isinstance(data.get("estimates"), list) and "groups" in data:
        g.calibration.append(item)
    elif name == "summary.json" and "verification" in data:
        g.summaries.append(item)
    elif name == "manifest.json" and "manifest_version" in data:
        g.manifests.append(item)
    elif name.startswith("bench") and "stage_share" in data:
        g.demos.append(item)
    elif name.startswith("bench") and isinstance(data.get("rows"), list):
        rows = data["rows"]
        (g.bench if rows and isinstance(rows[0], dict) and "status" in rows[0] else g.timings).append(item)
    elif name.startswith("metrics") and "confusion_matrix" in data:
        g.results.append(item)
    elif name == "run.json" and isinstance(data.get("test"), dict):
        test = data["test"]
        if "confusion_matrix" in test and not (path.parent / "metrics.json").is_file():
            g.results.append(item)
        elif _task_kind(data) == "regression":
            g.results.append(item)


def _task_kind(info: dict) -> str | None:
    """A training run's task kind, from its registered model's family (its ``run.json``
    names the model); None for a model this install does not know."""
    from edgeaffect.contract import get_model, list_models

    model = info.get("model")
    return get_model(model).family_plugin.task.kind if model in list_models() else None


def default_folders() -> dict[Path, str | None]:
    """Folder -> the command that writes it: each registered family's ``make demo*`` folder
    (``Family.demo_folder``), the reproductions', then any other folder under ``build/``
    that a pipeline or a reproduction wrote (its ``summary.json`` / ``reproduce.json``)."""
    from edgeaffect.contract import get_family, list_families

    folders = {}
    for name in list_families():
        family = get_family(name)
        if family.demo_folder:
            folders[Path(family.demo_folder)] = family.demo_make
    folders[REPRODUCE_FOLDER[0]] = REPRODUCE_FOLDER[1]
    found = sorted(d for d in BUILD.glob("*") if d.is_dir() and d not in folders and
                   any((d / name).is_file() for name in ("summary.json", "reproduce.json")))
    return {**folders, **dict.fromkeys(found)}


def gather(folders: list[Path] | None) -> Gathered:
    """Everything renderable under ``folders`` (files are taken as given). With no folders,
    ``default_folders()``; a missing one of those is a note, a missing given one an error."""
    g = Gathered()
    given = bool(folders)
    makes = {} if given else default_folders()
    for f in (folders or list(makes)):
        f = Path(f)
        if not f.exists():
            if given:
                raise InputError(f"not found: {f} (give folders or files that make demo / make bench / "
                                 f"edgeaffect reproduce wrote, e.g. build/quickstart)")
            how = makes.get(f)
            g.notes.append(f"{f}: not found, skipped" + (f" (`{how}` writes it)" if how else ""))
            continue
        g.roots.append(f)
        if f.is_file():
            _classify(f, f.parent, g)
            continue
        for dirpath, dirnames, filenames in os.walk(f):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
            for name in sorted(filenames):
                _classify(Path(dirpath) / name, f, g)
    # A reproduction's training runs are summarised by its table, not drawn one by one.
    repro_dirs = [r.path.parent for r in g.reproduce]
    g.results = [r for r in g.results if not any(d in r.path.parents for d in repro_dirs)]
    return g


# --- small HTML helpers -------------------------------------------------------------------

def esc(v) -> str:
    return html.escape(str(v), quote=True)


def _num(v, spec: str = ".4g") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        return format(v, spec)
    return esc(v)


def _table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    """Cells are HTML already (escape before)."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _how(how: str, machine: str | None, *, not_measured: str | None = None) -> str:
    """How a figure was made and on what machine; ``not_measured`` says why no machine applies."""
    if not_measured:
        m = esc(not_measured)
    else:
        m = esc(machine) if machine else f'<span class="unrecorded">{NOT_RECORDED}</span>'
    return f'<p class="how"><b>How:</b> {how}. <b>Machine:</b> {m}.</p>'


def _code(text) -> str:
    return f"<code>{esc(text)}</code>"


def _pass(ok: bool | None, text: str | None = None) -> str:
    if ok is None:
        return '<span class="na">-</span>'
    return f'<span class="{"ok" if ok else "bad"}">{esc(text or ("passed" if ok else "FAILED"))}</span>'


def _inline(s: str) -> str:
    """Escaped text with Markdown's **bold** and `code`."""
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", esc(s))
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)


def markdown_to_html(md: str) -> str:
    """The small Markdown subset ``roofline.papers.report`` writes: headings, paragraphs,
    pipe tables, bullets, **bold** and `code`."""
    inline = _inline

    out, table, bullets = [], [], []

    def flush():
        if table:
            cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in table]
            out.append(_table([inline(c) for c in cells[0]], [[inline(c) for c in r] for r in cells[1:]], "papers"))
            table.clear()
        if bullets:
            out.append("<ul>" + "".join(f"<li>{inline(b)}</li>" for b in bullets) + "</ul>")
            bullets.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            if not re.fullmatch(r"\|[-|: ]+\|", line.strip()):
                table.append(line)
            continue
        if line.startswith("- "):
            bullets.append(line[2:])
            continue
        flush()
        if line.startswith("## "):
            out.append(f"<h3>{inline(line[3:])}</h3>")
        elif line.startswith("# "):
            continue  # the section has its own heading
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    flush()
    return "\n".join(out)


# --- inline SVG figures ---------------------------------------------------------------------

def confusion_svg(cm: list[list[int]], labels: list[str], title: str) -> str:
    """A confusion matrix (rows: true class, columns: predicted), cell shade by row share."""
    n = len(cm)
    longest = max([len(str(x)) for x in labels] + [1])
    cell, left, top = 34, 24 + 7 * longest, 20 + int(5.5 * longest)
    w, h = left + n * cell + 10, top + n * cell + 40
    parts = [f'<svg class="cm" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
             f'role="img" aria-label="{esc(title)}"><title>{esc(title)}</title>']
    for j, lab in enumerate(labels):
        x = left + j * cell + cell / 2
        parts.append(f'<text x="{x}" y="{top - 6}" transform="rotate(-50 {x} {top - 6})" font-size="11">{esc(lab)}</text>')
    for i, row in enumerate(cm):
        total = max(1, sum(row))
        y = top + i * cell
        parts.append(f'<text x="{left - 6}" y="{y + cell / 2 + 4}" text-anchor="end" font-size="11">'
                     f'{esc(labels[i] if i < len(labels) else i)}</text>')
        for j, v in enumerate(row):
            share = v / total
            fill = f"rgb({int(247 - 200 * share)},{int(251 - 150 * share)},{int(255 - 60 * share)})"
            colour = "#fff" if share > 0.55 else "#111"
            parts.append(f'<rect x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" '
                         f'stroke="#ccc"/><text x="{left + j * cell + cell / 2}" y="{y + cell / 2 + 4}" '
                         f'text-anchor="middle" font-size="11" fill="{colour}">{int(v)}</text>')
    parts.append(f'<text x="{left + n * cell / 2}" y="{h - 12}" text-anchor="middle" font-size="12">predicted</text>')
    parts.append(f'<text x="12" y="{top + n * cell / 2}" transform="rotate(-90 12 {top + n * cell / 2})" '
                 f'text-anchor="middle" font-size="12">true</text></svg>')
    return "".join(parts)


def bars_svg(values: list[tuple[str, float]], title: str, unit: str = "") -> str:
    """Horizontal bars (e.g. MAE, RMSE, |bias| and the predict-the-mean baseline)."""
    values = [(k, float(v)) for k, v in values if v is not None]
    top, row, left, width = 8, 26, 190, 300
    h = top + row * len(values) + 8
    peak = max([abs(v) for _, v in values] + [1e-12])
    parts = [f'<svg class="bars" xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{h}" '
             f'viewBox="0 0 {left + width + 90} {h}" role="img" aria-label="{esc(title)}"><title>{esc(title)}</title>']
    for i, (k, v) in enumerate(values):
        y = top + i * row
        bw = max(1.0, width * abs(v) / peak)
        parts.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" font-size="12">{esc(k)}</text>'
                     f'<rect x="{left}" y="{y + 3}" width="{bw:.1f}" height="{row - 8}" fill="#4a7ab5"/>'
                     f'<text x="{left + bw + 6}" y="{y + 16}" font-size="12">{v:.3g}{esc(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --- sections -------------------------------------------------------------------------------

def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def _missing(text: str) -> str:
    return f'<p class="missing">{text}</p>'


def section_models(g: Gathered, papers: bool, measured: dict, measured_from: str | None) -> str:
    parts = []
    for s in g.visit(g.summaries):
        d = s.data
        paper = d.get("paper") or {}
        rows = []
        for split, r in (d.get("runs") or {}).items():
            test = r.get("test") or {}
            sp = r.get("split") or {}
            rows.append([esc(split), esc(f"{sp.get('train', '-')} / {sp.get('val', '-')} / {sp.get('test', '-')}"),
                         _num(r.get("epochs")), esc(", ".join(f"{k} {_num(v)}" for k, v in test.items()
                                                              if isinstance(v, (int, float)) and k != "n")),
                         _num(test.get("n"))])
        parts.append(
            f'<article class="model"><h3>{esc(d.get("model"))} <small>({esc(d.get("family"))}, '
            f'{esc(d.get("task"))})</small></h3>'
            f'<p>Parameters {_num(d.get("params"), ",")} and FLOPs {_num((d.get("flops") or 0) / 1e6, ".2f")} M '
            f'(ours, counted); the paper ({esc(paper.get("source", "-"))}): {_num(paper.get("params_m"))} M '
            f'parameters, {_num(paper.get("gflops"))} GFLOPs.</p>'
            + (f'<p class="warn">Data: {esc(d["data"])}.</p>' if d.get("data") else "")
            + _table(["split", "train / val / test", "epochs", "test metrics (float Keras)", "n"], rows)
            + _how(f"<code>edgeaffect pipeline</code> (<code>make demo*</code>) &rarr; {_code(s.path)}, "
                   f"{_num(d.get('seconds'))} s end to end", d.get("machine"))
            + "</article>")
    if not g.summaries:
        parts.append(_missing("No pipeline summary (<code>summary.json</code>) found: run <code>make demo</code>, "
                              "<code>make demo-speech</code> or <code>make demo-depression</code>."))
    if papers:
        try:
            from edgeaffect.roofline.papers import report

            md = report(measured)
            how = ("parameters and FLOPs counted by <code>edgeaffect.roofline</code>, paper figures from "
                   "each family's <code>paper.toml</code>; <code>edgeaffect report</code>")
            parts.append("<h3>Our figures beside the papers'</h3>" + markdown_to_html(md)
                         + _how(how + (f"; our times from {_code(measured_from)}" if measured_from else ""),
                                next(iter(measured.values()))["machine"] if measured else None,
                                not_measured=None if measured else
                                "none: counted from the model graphs; no benchmark found, so no times of ours"))
        except Exception as e:  # noqa: BLE001 - a page without this table beats no page
            parts.append(_missing(f"Our figures beside the papers' could not be computed here "
                                  f"({esc(type(e).__name__)}: {esc(e)})."))
    return "\n".join(parts)


def _verification_rows(ver: list[dict]) -> list[list[str]]:
    rows = []
    for v in ver:
        metric = v.get("metric_name") or "metric"
        rows.append([esc(v.get("format")), esc(v.get("runtime")), esc(v.get("kernels", "-")), _num(v.get("n")),
                     f"{esc(metric)} {_num(v.get('metric'))}", _num(v.get("reference_metric")),
                     _num(v.get("float_metric")), _num(v.get("max_abs_diff"), ".3g"), _num(v.get("p95_abs_diff"), ".3g"),
                     _num(v.get("agreement")), esc(v.get("bounds", "-")),
                     "gating" if v.get("gating", True) else "recorded",
                     _verdict(v)])
    return rows


def _verdict(v: dict) -> str:
    if v.get("passed") or v.get("passed") is None:
        return _pass(v.get("passed"))
    why = "; ".join(map(str, v.get("failures") or []))
    if v.get("gating", True):
        return _pass(False, "FAILED" + (f": {why}" if why else ""))
    return f'<span class="warn">outside its bounds (recorded, not gating){": " + esc(why) if why else ""}</span>'


def _mixed_precision(files: dict) -> str:
    """Per quantized file that chose its float layers: which stayed float and why, and the
    times the choice measured on the exporting machine."""
    rows = []
    for fmt, entry in files.items():
        if "mixed_precision" not in entry:
            continue
        times = ", ".join(f"{label} {entry[k]:g} us" for k, label in
                          (("float_us_here", "float"), ("full_int8_us_here", "all int8"), ("mixed_us_here", "as written"))
                          if isinstance(entry.get(k), (int, float)))
        layers = entry.get("float_layers") or []
        kept = "<br>".join(f"{esc(l.get('node', '').split(';')[0])} ({esc(l.get('op'))}, {esc(l.get('why'))}): "
                           f"{esc(l.get('detail'))}" for l in layers) or "-"
        rows.append([esc(fmt), esc(entry["mixed_precision"]), kept, esc(times or "-")])
    if not rows:
        return ""
    return ("<p>Layers left float by the export (<code>edgeaffect sensitivity RUN</code> ranks them all):</p>"
            + _table(["format", "mixed precision", "float layers (op, why: measured)",
                      "one pass, batch 1, one thread, on the exporting machine"], rows, "verify"))


def section_verification(g: Gathered) -> str:
    parts = []
    for m in g.visit(g.manifests):
        d = m.data
        ver = d.get("verification") or []
        stage = d.get("stage")
        title = esc(d.get("model")) + (f" &mdash; stage <i>{esc(stage)}</i>" if stage else "")
        staged = " (a staged bundle: the whole chain, each stage's folder below)" if d.get("stages") else ""
        machine = d.get("verified_on")
        how = (f"the export's verification against the Keras model on held-out data, in {_code(m.path)}{staged}"
               f" (<code>edgeaffect export</code> / <code>make demo*</code>)")
        if not machine:  # manifests older than verified_on: the pipeline's machine, if one made it
            machine = g.machine_of_pipeline(m.path)
            if machine:
                how += "; the machine is the pipeline's that exported it (its summary.json)"
        body = (_table(["format", "runtime", "kernels", "n", "metric", "its source", "float", "max |diff|",
                        "p95 |diff|", "agreement", "bounds", "role", "result"], _verification_rows(ver), "verify")
                if ver else _missing("No verification recorded in this manifest."))
        body += _mixed_precision(d.get("files") or {})
        parts.append(f'<article><h3>{title} <small>{_code(m.path.parent)}</small></h3>'
                     f'<p>Task {esc((d.get("task") or {}).get("kind", "-"))}; formats '
                     f'{esc(", ".join(d.get("formats") or list(d.get("files") or {})))}.</p>' + body + _how(how, machine)
                     + "</article>")
    if not g.manifests:
        parts.append(_missing("No export manifest (<code>manifest.json</code>) found: <code>make demo</code> writes "
                              "<code>build/quickstart/export</code>."))
    return "\n".join(parts)


def _vs_float(v) -> str:
    """A quantized row against the float32 file of its model, measured in the same run (timed
    interleaved, with its interval, where the bench did)."""
    if not isinstance(v, dict):
        return "-"
    low, high = v.get("latency_low"), v.get("latency_high")
    interval = (f" [{_num(low, '.2f')}-{_num(high, '.2f')}]"
                if isinstance(low, (int, float)) and isinstance(high, (int, float)) else "")
    return (f"{_num(v.get('latency_ratio'), '.2f')}x{interval} time, {_num(v.get('size_ratio'), '.2f')}x size, "
            f"{_num(v.get('metric_diff'), '+.4f')} metric, {_num(v.get('float_layers'))} float")


def _int8_reference(ref) -> str:
    """What int8 gains on the benchmark's CPU (a plain conv net, the same run): the ratios above
    are read against it."""
    if not isinstance(ref, dict) or not ref.get("line"):
        return ""
    return f'<p class="how"><b>This CPU\'s int8:</b> {esc(ref["line"])}.</p>'


def section_bench(g: Gathered) -> str:
    parts = []
    for b in g.visit(g.bench):
        d = b.data
        rows, gate = [], []
        for r in d.get("rows", []):
            status = str(r.get("status", "-"))
            rows.append([esc(r.get("model")), esc(r.get("format")), esc(r.get("runtime")),
                         _pass(status == "ok", status) if status else "-",
                         _num(r["bytes"] / 1024, ".1f") if r.get("bytes") else "-",
                         (f"{esc(r.get('metric_name', 'accuracy'))} {_num(r.get(r.get('metric_name', 'accuracy')))}"
                          if r.get(r.get("metric_name", "accuracy")) is not None else "-"),
                         _num(r.get("p50_ms"), ".4f"), _num(r.get("p99_ms"), ".4f"),
                         _num(r.get("throughput_per_s"), ".1f"), _num(r.get("peak_rss_mib"), ".1f"),
                         _vs_float(r.get("vs_float"))])
            base = r.get("baseline")
            if base:
                gate.append([esc(r.get("model")), esc(r.get("format")), _num(base.get("ratio"), ".3f"),
                             f"{_num(base.get('low'), '.3f')} &ndash; {_num(base.get('high'), '.3f')}",
                             _num(base.get("pairs")), _num(base.get("tolerance"), ".0%"),
                             _pass(not base.get("regressed"), "regressed" if base.get("regressed") else "ok"),
                             esc(base.get("line", ""))])
            elif r.get("baseline_note"):
                gate.append([esc(r.get("model")), esc(r.get("format")), "-", "-", "-", "-",
                             '<span class="na">not compared</span>', esc(r["baseline_note"])])
        how = (f"<code>edgeaffect bench EXPORTS --json</code> (<code>make bench</code>) &rarr; {_code(b.path)}; "
               f"batch 1, {_num(d.get('threads', 1))} thread(s)")
        sources = sorted({r["accuracy_source"] for r in d.get("rows", []) if r.get("accuracy_source")})
        parts.append(f"<article><h3>Benchmark {_code(b.path)}</h3>"
                     + _table(["model", "format", "runtime", "status", "size KiB", "accuracy", "p50 ms", "p99 ms",
                               "per s", "peak RSS MiB", "vs float32 (time, size, metric, layers float)"], rows, "bench")
                     + (f"<p>Accuracy: {esc('; '.join(sources))}.</p>" if sources else "")
                     + _int8_reference(d.get("int8_reference"))
                     + _how(how, d.get("machine")))
        budgets = d.get("budgets") or []
        if budgets:
            brows = [[esc(c.get("budget")), esc(c.get("metric")), _num(c.get("value")), _num(c.get("limit"), "g"),
                      esc(c.get("kind")), _pass(c.get("passed")), esc(c.get("detail", ""))] for c in budgets]
            parts.append("<h4>Budgets (<code>roofline/budgets.toml</code>)</h4>"
                         + _table(["budget", "metric", "value", "limit", "kind", "result", "detail"], brows, "budgets")
                         + _how(f"<code>edgeaffect bench --budgets</code> &rarr; {_code(b.path)}; a budget "
                                "over a prediction is a roofline bound, not a measurement", d.get("machine")))
        if gate:
            parts.append("<h4>Latency gate (against the saved baseline, timed interleaved)</h4>"
                         + _table(["model", "format", "candidate / baseline", "interval", "pairs", "tolerance",
                                   "result", "detail"], gate, "gate")
                         + _how("<code>edgeaffect bench --baseline</code>: each file and its baseline timed in "
                                "alternating blocks in one run, median of pairs", d.get("machine")))
        parts.append("</article>")
    if not g.bench:
        parts.append(_missing("No benchmark (<code>edgeaffect bench --json</code>) found: <code>make bench</code> "
                              "writes <code>build/quickstart/bench.json</code>."))
    for t in g.visit(g.timings):
        d = t.data
        rows = [[esc(r.get("what")), esc(r.get("runtime")), _num(r.get("runs")), _num(r.get("p50_ms"), ".4f"),
                 _num(r.get("p90_ms"), ".4f"), _num(r.get("p99_ms"), ".4f"),
                 _num(r.get("real_time_factor_p50"), ".3g")] for r in d.get("rows", [])]
        cmd = "bench-pipeline" if "pipeline" in t.path.name else "bench-recordings"
        parts.append(f"<article><h3>Latency per recording {_code(t.path)}</h3>"
                     + _table(["what", "runtime", "runs", "p50 ms", "p90 ms", "p99 ms", "real-time factor p50"], rows)
                     + _how(f"<code>edgeaffect {cmd} --json</code> (<code>make bench</code>) &rarr; {_code(t.path)}; "
                            f"batch 1, {_num(d.get('threads', 1))} thread(s)", d.get("machine")) + "</article>")
    for dm in g.visit(g.demos):
        d = dm.data
        shares = d.get("stage_share") or {}
        means = d.get("stage_mean_ms") or {}
        parts.append(
            f"<article><h3>Live demo on a generated video {_code(dm.path)}</h3>"
            f"<p>{_num(d.get('events'))} results in {_num(d.get('seconds'), '.1f')} s "
            f"({_num(d.get('processed_per_s'), '.1f')}/s); capture-to-label p50 {_num(d.get('latency_p50_ms'), '.1f')} ms, "
            f"p95 {_num(d.get('latency_p95_ms'), '.1f')} ms; {_num(d.get('dropped_frames'))} of "
            f"{_num(d.get('captured_frames'))} frames dropped.</p>"
            + bars_svg([(f"{k} ({shares.get(k, 0):.0%})", v) for k, v in means.items()], "demo stage mean ms", " ms")
            + _how(f"<code>edgeaffect bench-demo --json</code> (<code>make bench</code>) &rarr; {_code(dm.path)}; "
                   "640x480 30 fps file + 16 kHz wav, paced in real time", d.get("machine")) + "</article>")
    return "\n".join(parts)


def _host_machine(g: Gathered, folder: Path) -> str | None:
    """The machine the host rows of the bounds.json beside a plot were measured on (newer files record it)."""
    for b in g.bounds:
        if b.path.parent == folder and isinstance(b.data, list):
            for r in b.data:
                if isinstance(r, dict) and r.get("machine"):
                    return r["machine"]
    return None


def section_roofline(g: Gathered, img_dir: Path) -> str:
    parts = []
    if g.plots:
        figs = []
        for i, p in enumerate(g.plots):
            name = f"{i:02d}-{p.path.name}"
            shutil.copyfile(p.path, img_dir / name)
            device = p.path.stem.removeprefix("roofline-")
            host = device == "host"
            kind = ("the roofs of the machine that ran it, measured through the runtimes' kernels, with the "
                    "benchmark's achieved points" if host
                    else "the device catalog's roofs (<code>roofline/devices.toml</code>): bounds are predictions")
            figs.append(f'<figure><img src="img/{esc(name)}" alt="roofline {esc(device)}" loading="eager">'
                        f"<figcaption>{esc(device)} {_code(p.path)}"
                        + _how(f"<code>edgeaffect roofline --out</code> (<code>make roofline</code>); {kind}",
                               _host_machine(g, p.path.parent) if host else None,
                               not_measured=None if host else f"none: {device}'s published figures, not a measurement")
                        + "</figcaption></figure>")
        parts.append('<div class="plots">' + "".join(figs) + "</div>")
    else:
        parts.append(_missing("No roofline plots found: <code>make roofline</code> writes "
                              "<code>build/quickstart/roofline/</code>."))
    for b in g.visit(g.bounds):
        rows = [[esc(r.get("model")), esc(r.get("device")), _num(r.get("intensity"), ".2f"),
                 ("" if r.get("complete", True) else "at least ") + _num(r.get("latency_ms"), ".4g"),
                 esc(r.get("limited_by")), _num(r.get("measured_p50_ms"), ".4g")]
                for r in b.data if isinstance(r, dict)]
        parts.append(f"<details><summary>Latency lower bounds {_code(b.path)} ({len(rows)} rows)</summary>"
                     + _table(["model", "device", "FLOP/B", "bound ms (prediction)", "limited by", "measured p50 ms"],
                              rows) + "</details>"
                     + _how(f"<code>edgeaffect roofline</code> &rarr; {_code(b.path)}",
                            _host_machine(g, b.path.parent)))
    for c in g.visit(g.calibration):
        rows = [[esc(e.get("model")), esc(e.get("device")), esc(e.get("precision")), _num(e.get("estimate_ms"), ".3g"),
                 f"{_num(e.get('low_ms'), '.3g')} &ndash; {_num(e.get('high_ms'), '.3g')}",
                 '<span class="warn">extrapolated</span>' if e.get("extrapolated") else "within the fit",
                 esc(e.get("note", ""))] for e in c.data["estimates"]]
        if rows:
            parts.append(f"<h3>Calibrated estimates per device {_code(c.path)}</h3>"
                         + _table(["model", "device", "precision", "estimate ms", "band ms", "range", "how fitted"],
                                  rows)
                         + _how(f"<code>edgeaffect calibrate --json</code> (<code>make roofline</code>) &rarr; "
                                f"{_code(c.path)}", None, not_measured="none: predictions fitted to published "
                                "latencies of public models on each device, not measured here"))
    return "\n".join(parts)


def section_results(g: Gathered) -> str:
    parts = []
    for r in g.visit(g.results):
        d = r.data
        run_dir = r.path.parent
        if r.path.name != "run.json" and (run_dir / "run.json").is_file():
            info = _load_json(run_dir / "run.json", g) or {}
        else:
            info = d
        test = d if "confusion_matrix" in d else d.get("test", {})
        model = info.get("model", "?")
        split = (info.get("split") or {}).get("kind", run_dir.name)
        machine = info.get("machine") or g.machine_of_pipeline(r.path)
        how = (f"<code>edgeaffect train</code> (or <code>make demo*</code>), test split of {_code(run_dir)}: "
               f"{esc(split)} split, n = {_num(test.get('n'))}")
        note = info.get("note")
        if "confusion_matrix" in test:
            labels = test.get("labels") or info.get("labels") or [str(i) for i in range(len(test["confusion_matrix"]))]
            title = f"{model} ({split} split): accuracy {_num(test.get('accuracy'), '.3f')}"
            figure = confusion_svg(test["confusion_matrix"], list(labels), title)
            text = (f"accuracy {_num(test.get('accuracy'), '.4f')}, macro F1 {_num(test.get('macro_f1'), '.4f')}")
        else:
            title = f"{model} ({split} split): errors"
            base = info.get("baseline_mae_predicting_the_training_mean")
            figure = bars_svg([("MAE", test.get("mae")), ("RMSE", test.get("rmse")),
                               ("|bias|", abs(test["bias"]) if test.get("bias") is not None else None),
                               ("MAE predicting the mean", base)], title)
            text = ", ".join(f"{k} {_num(v)}" for k, v in test.items() if isinstance(v, (int, float)))
            if info.get("test_unit"):
                text += f" (per {esc(info['test_unit'])})"
        parts.append(f'<figure class="result"><figcaption><b>{esc(title)}</b> &mdash; {text}'
                     + (f'<br><span class="warn">{esc(note)}</span>' if note else "") + "</figcaption>"
                     + figure + _how(how, machine) + "</figure>")
    if not g.results:
        parts.append(_missing("No training run results (<code>metrics.json</code> / <code>run.json</code>) found: "
                              "<code>make demo</code> trains into <code>build/quickstart/runs/</code>."))
    return "\n".join(parts)


def _mean_std(o) -> str:
    if not isinstance(o, dict):
        return _num(o)
    s = _num(o.get("mean"))
    if o.get("std") is not None:
        s += f" &plusmn; {_num(o.get('std'), '.3g')}"
    vals = o.get("values") or []
    if vals:
        s += f'<br><small>{esc(", ".join(format(v, ".4g") if isinstance(v, (int, float)) else str(v) for v in vals))}</small>'
    return s


def section_reproduce(g: Gathered) -> str:
    parts = []
    for r in g.visit(g.reproduce):
        d = r.data
        synthetic = bool(d.get("synthetic"))
        tag = ' <small class="warn">(synthetic corpus: not a paper result)</small>' if synthetic else ""
        head = (f"<h3>{esc(d.get('paper'))}: {esc(d.get('title', ''))}{tag}</h3>"
                f"<p>Model {esc(d.get('model'))}; corpus {esc(d.get('corpus'))} from {_code(d.get('data'))}; "
                f"started {esc(d.get('started') or '-')}, "
                + (f"finished {esc(d['finished'])}" if d.get("finished") else
                   "<b>not finished</b> (the same command resumes where it stopped)")
                + f"; each run's folder under {_code(r.path.parent / 'runs')}.</p>")
        if synthetic:
            head += ('<p class="synthetic"><b>Synthetic corpus.</b> These numbers come from a synthetic corpus '
                     "written in the real layout to test the protocol's plumbing; they are not paper results and "
                     "say nothing about whether the paper's numbers hold.</p>")
        if d.get("version") != 1:
            head += (f'<p class="warn">reproduce.json version {esc(d.get("version"))}: this page reads version 1; '
                     "fields it does not know are not shown.</p>")
        if d.get("quick"):
            head += ('<p class="warn"><b>Quick run</b> (<code>--quick</code>): a shortened protocol for smoke tests, '
                     "not the paper's.</p>")
        ours_head = "ours (synthetic corpus)" if synthetic else "ours (mean &plusmn; std; each run)"
        rows = [[esc(x.get("table")), esc(x.get("corpus")), esc(x.get("protocol")), esc(x.get("split")),
                 _num(x.get("runs")), esc(", ".join(map(str, x.get("seeds") or []))), esc(x.get("metric")),
                 _mean_std(x.get("ours")),
                 (_num(x.get("paper")) + (f"<br><small>{esc(x['paper_row'])}</small>" if x.get("paper_row") else ""))
                 if x.get("paper") is not None else '<span class="na">no paper figure</span>',
                 esc(x.get("note") or "")] for x in d.get("rows", [])]
        parts.append(f'<article class="reproduce{" is-synthetic" if synthetic else ""}">' + head
                     + _table(["table", "corpus", "protocol", "split", "runs", "seeds", "metric", ours_head,
                               "paper's figure", "note"], rows, "reproduce")
                     + _how(f"<code>edgeaffect reproduce {esc(d.get('paper'))}"
                            f"{' --quick' if d.get('quick') else ''}</code> &rarr; {_code(r.path)}", d.get("machine"))
                     + "</article>")
    if not g.reproduce:
        parts.append(_missing("No <code>reproduce.json</code> found: <code>edgeaffect reproduce PAPER --data PATH</code> "
                              "writes one."))
    return "\n".join(parts)


def section_ablations(g: Gathered) -> str:
    """Each ``edgeaffect ablation`` table, with the partition its figures are on (``figures``:
    the paper compares modules on Development for the spectrotemporal model, on test for the
    others; a file written before the field existed holds test figures)."""
    from edgeaffect.contract import get_model

    parts = []
    for a in g.visit(g.ablations):
        d = a.data
        task = get_model(str(d.get("model"))).family_plugin.task
        keys, percent = task.table_figures, task.kind != "regression"  # the task's own table (as `ablation`)
        rows = [[esc(r.get("row")), _num(r.get("params"), ",d") if isinstance(r.get("params"), int) else "-"]
                + [(_num(100 * r[k], ".2f") if percent else _num(r[k], ".3f"))
                   if isinstance(r.get(k), (int, float)) else '<span class="na">n/a</span>' for k in keys]
                for r in d["rows"] if isinstance(r, dict)]
        unit = " (%, macro over the classes)" if percent else " (score units)"
        parts.append(f"<article><h3>{esc(d.get('model'))}: {esc(d.get('split'))} split, seed {esc(d.get('seed'))}, "
                     f"figures on <b>{esc(d.get('figures', 'test'))}</b></h3>"
                     + _table(["row", "params"] + [k.replace("_", " ") + unit for k in keys], rows, "ablation")
                     + _how(f"<code>edgeaffect ablation {esc(d.get('model'))}</code> &rarr; {_code(a.path)}; one "
                            "training run per removed module, on the data given, not the paper's figures",
                            d.get("machine") or g.machine_of_pipeline(a.path)) + "</article>")
    if not g.ablations:
        parts.append(_missing("No <code>ablation.json</code> found: <code>edgeaffect ablation MODEL --data CORPUS "
                              "--out DIR</code> writes one."))
    return "\n".join(parts)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d2530;background:#fafbfc}
header{background:#23354d;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;opacity:.85}
nav{padding:8px 24px;background:#e8edf3;position:sticky;top:0}nav a{margin-right:14px;color:#23354d}
main{padding:8px 24px 40px;max-width:1500px}section{margin-top:22px}h2{border-bottom:2px solid #23354d;padding-bottom:3px}
table{border-collapse:collapse;margin:8px 0;font-size:12.5px;background:#fff}th,td{border:1px solid #d4dae1;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eef2f6}code{background:#eef1f4;padding:0 3px;border-radius:3px;font-size:12px}
.how{font-size:12px;color:#4b5563;margin:2px 0 12px}.unrecorded{color:#a15c00;font-style:italic}
.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:700}.na{color:#888}
.missing{background:#fff6e0;border-left:4px solid #e0a000;padding:6px 10px}
.warn{color:#7a4b00}.synthetic{background:#ffe9e9;border:2px solid #c62828;padding:8px 12px;font-size:15px}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots figure{margin:0;background:#fff;border:1px solid #d4dae1;padding:6px;width:440px}
.plots img{width:100%;height:auto}figure.result{display:inline-block;vertical-align:top;margin:8px 16px 8px 0;background:#fff;border:1px solid #d4dae1;padding:8px;max-width:560px}
article{margin-bottom:14px}.notes li{color:#7a4b00}
"""


def render(g: Gathered, out: Path, *, papers: bool = True, bench: Path | None = None) -> str:
    from edgeaffect.roofline.papers import measured_from_bench

    bench_file = bench if bench is not None else (g.bench[0].path if g.bench else None)
    try:
        data = json.loads(bench_file.read_text()) if bench is not None else (g.bench[0].data if g.bench else None)
        measured = measured_from_bench(data, str(bench_file)) if data else {}
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError, InputError) as e:
        g.notes.append(f"{bench_file}: no times of ours taken from it ({type(e).__name__}: {e})")
        bench_file, measured = None, {}
    img_dir = out / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    def guarded(anchor: str, title: str, draw):
        try:
            body = draw()
        except Exception as e:  # noqa: BLE001 - a hand-edited file costs its section, not the page
            where = f"{g.current}: " if g.current else ""
            body = _missing(f"{esc(where)}could not be shown ({esc(type(e).__name__)}: {esc(e)}); "
                            "fix or remove that file.")
        return _section(anchor, title, body)

    bench_label = str(bench_file) if bench_file else None
    # (anchor, title, link in the page's nav, the section's body)
    table = [("models", "Models beside the papers", "Models", lambda: section_models(g, papers, measured, bench_label)),
             ("verification", "Every export's verification", "Verification", lambda: section_verification(g)),
             ("bench", "Benchmarks, budgets and the latency gate", "Benchmarks", lambda: section_bench(g)),
             ("roofline", "Roofline plots", "Roofline", lambda: section_roofline(g, img_dir)),
             ("results", "Confusion matrices and error plots", "Results", lambda: section_results(g)),
             ("reproduce", "Reproductions of the papers' tables", "Reproduce", lambda: section_reproduce(g)),
             ("ablations", "Ablations: one module removed per row", "Ablations", lambda: section_ablations(g))]
    sections = [guarded(anchor, title, draw) for anchor, title, _, draw in table]
    nav = "".join(f'<a href="#{anchor}">{link}</a>' for anchor, _, link, _ in table)
    notes = ("<section id=\"notes\"><h2>Skipped inputs</h2><ul class=\"notes\">"
             + "".join(f"<li>{_inline(n)}</li>" for n in g.notes) + "</ul></section>") if g.notes else ""
    synthetic_any = any(s.data.get("data") for s in g.summaries) or any(r.data.get("synthetic") for r in g.reproduce)
    banner = ('<p class="warn">Figures trained or reproduced on synthetic corpora are marked on their figure: '
              "they test the plumbing and are not paper results.</p>") if synthetic_any else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>edgeaffect report</title><style>{CSS}</style></head><body>"
            f"<header><h1>edgeaffect report</h1><p>edgeaffect {esc(__version__)}; page written "
            f"{esc(time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()))} from "
            f"{esc(', '.join(map(str, g.roots)) or 'nothing found')}</p></header><nav>{nav}</nav><main>"
            + banner + notes + "\n".join(sections) + "</main></body></html>\n")


def write_report(folders: list[Path] | None, out: Path, *, papers: bool = True, bench: Path | None = None) -> Path:
    """Gather, render, and write ``out/index.html`` (+ ``out/img/``) atomically; returns the page."""
    if bench is not None and not bench.is_file():
        raise InputError(f"--bench file not found: {bench}")
    # The folder is replaced whole: never let that be anything but an earlier page.
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / "index.html").is_file())):
        raise InputError(f"--html {out} exists and is not a report folder (it would be replaced): "
                         f"give a new folder or an earlier report's")
    g = gather(folders)
    for root in g.roots:
        if out.resolve() == root.resolve() or out.resolve() in root.resolve().parents:
            raise InputError(f"--html {out} holds the input {root}: write the page elsewhere, e.g. build/report")
    with atomic_dir(out) as tmp:
        page = render(g, tmp, papers=papers, bench=bench)
        # A JSON string may hold a lone surrogate ("\ud800"), which no UTF-8 text can: written escaped.
        (tmp / "index.html").write_text(page, encoding="utf-8", errors="backslashreplace")
    return out / "index.html"
