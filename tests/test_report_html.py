"""``edgeaffect report --html``: the page built from small fixture files, opened from disk in a
real browser (headless Chromium): the rendered page is read (text after layout, images decoded,
inline SVG laid out), a screenshot is taken, and no console error, page error or network
request is allowed."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from edgeaffect.errors import InputError
from edgeaffect.report.html import NOT_RECORDED, write_report

ROOT = Path(__file__).resolve().parents[1]
MACHINE = "Fixture CPU 9000, 2 logical CPUs, Linux x86_64"
REPRO_MACHINE = "Reproduce box, 8 logical CPUs, Linux aarch64"


# --- fixture files, in the shapes the commands write ------------------------------------------

def _png(width: int, height: int) -> bytes:
    """A small RGB gradient PNG (no imaging library needed)."""
    raw = b"".join(b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 128))
                   for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="320" height="200" viewBox="0 0 320 200">'
       '<polyline points="10,190 120,40 310,40" fill="none" stroke="#1f77b4" stroke-width="3"/>'
       '<circle cx="100" cy="80" r="6" fill="#d62728"/></svg>')


def _verification(fmt, runtime, metric, passed=True, gating=True, failures=()):
    return {"format": fmt, "runtime": runtime, "kernels": "xnnpack", "task": "classification", "n": 30,
            "max_abs_diff": 0.01, "p95_abs_diff": 0.004, "agreement": 0.97, "metric_name": "accuracy",
            "metric": metric, "reference_metric": 0.9, "float_metric": 0.9, "bounds": "p95 |diff| <= 0.05",
            "failures": list(failures), "gating": gating, "passed": passed}


def reproduce_json(synthetic: bool, quick: bool = False, finished: str | None = "2026-11-22T11:00:00Z") -> dict:
    """A ``reproduce.json`` in the schema ``edgeaffect reproduce`` writes."""
    return {"kind": "edgeaffect-reproduce", "version": 1, "paper": "speechnet-ser",
            "title": "SpeechNet: speech emotion recognition", "model": "speechnet-emodb", "data": "/data/emodb",
            "corpus": "emodb", "synthetic": synthetic, "quick": quick, "machine": REPRO_MACHINE,
            "started": "2026-11-22T10:00:00Z", "finished": finished,
            "rows": [{"table": "Table 4", "corpus": "EmoDB", "protocol": "paper", "split": "random 80/10/10",
                      "runs": 3, "seeds": [0, 1, 2], "metric": "accuracy",
                      "ours": {"mean": 0.8123, "std": 0.0211, "values": [0.79, 0.83, 0.8169]},
                      "paper": 0.9433, "paper_row": "EmoDB, SpeechNet", "note": "10 runs in the paper"},
                     {"table": "Table 4", "corpus": "EmoDB", "protocol": "speaker-independent",
                      "split": "leave-one-speaker-out", "runs": 1, "seeds": [0], "metric": "accuracy",
                      "ours": {"mean": 0.6, "std": None, "values": [0.6]}, "paper": None, "paper_row": None,
                      "note": "not in the paper"}]}


def write_fixtures(root: Path) -> dict:
    """Two build folders and two reproduce runs; returns the paths."""
    qs, dep = root / "quickstart", root / "depression"
    labels = ["angry", "happy", "neutral"]
    files = {
        qs / "summary.json": {
            "model": "aver-ravdess", "family": "aver", "task": "classification", "metric": "accuracy",
            "machine": MACHINE, "seconds": 12.5, "params": 66584, "flops": 14420000,
            "paper": {"source": "Table V", "params_m": 0.06, "gflops": 0.014},
            "runs": {"paper": {"test": {"n": 30, "accuracy": 0.9}, "split": {"kind": "paper", "train": 90,
                                                                             "val": 20, "test": 30}, "epochs": 3}},
            "verification": [], "timings": [],
            "data": "synthetic corpus in the real layout, generated here; its figures are not paper results"},
        qs / "export" / "manifest.json": {
            "manifest_version": 1, "model": "aver-ravdess", "family": "aver", "task": {"kind": "classification"},
            "labels": labels, "formats": ["tflite-int8", "onnx-qdq"],
            "files": {"tflite-int8": {"file": "m.tflite", "mixed_precision": "1 layer(s) float",
                                      "float_us_here": 132.6, "full_int8_us_here": 180.6, "mixed_us_here": 68.0,
                                      "float_layers": [{"node": "aver/face_conv1/Relu;aver/face_conv1/Conv2D",
                                                        "op": "CONV_2D", "why": "speed",
                                                        "detail": "int8 135.0 us, float 17.0 us alone"}]},
                      "onnx-qdq": {"file": "m.onnx"}},
            "verification": [_verification("tflite-int8", "litert", 0.9),
                             _verification("onnx-qdq", "onnxruntime", 0.5, passed=False, gating=False,
                                           failures=["agreement 0.5 < 0.95"])]},
        qs / "bench.json": {
            "machine": MACHINE, "threads": 1,
            "rows": [{"model": "aver-ravdess", "format": "tflite-int8", "runtime": "litert", "path": "x.tflite",
                      "bytes": 80384, "status": "ok", "p50_ms": 0.1234, "p99_ms": 0.25, "throughput_per_s": 8100.0,
                      "peak_rss_mib": 65.7, "metric_name": "accuracy", "accuracy": 0.9,
                      "accuracy_source": "export verification, held-out split (30 samples)",
                      "baseline": {"path": "b.tflite", "ratio": 1.31, "low": 1.22, "high": 1.4, "pairs": 40,
                                   "tolerance": 0.1, "regressed": True, "line": "candidate / baseline = 1.310"}},
                     {"model": "aver-ravdess", "format": "tflite-fp32", "runtime": "litert", "path": "y.tflite",
                      "bytes": 274372, "status": "ok", "p50_ms": 0.2, "p99_ms": 0.3, "throughput_per_s": 5000.0,
                      "peak_rss_mib": 66.0, "baseline_note": "no baseline of aver-ravdess tflite-fp32 in b/"}],
            "budgets": [{"budget": "host.aver-ravdess.tflite-int8", "metric": "p50_ms", "limit": 2.0, "value": 0.1234,
                         "kind": "measured", "passed": True, "detail": ""},
                        {"budget": "rpi4.aver-ravdess.tflite-int8", "metric": "size_kib", "limit": 50.0,
                         "value": 78.5, "kind": "measured (file size)", "passed": False, "detail": ""}]},
        qs / "bench-demo.json": {"seconds": 20.0, "events": 400, "processed_per_s": 20.0, "latency_p50_ms": 54.0,
                                 "latency_p95_ms": 77.0, "dropped_frames": 9, "captured_frames": 600,
                                 "stage_mean_ms": {"capture": 15.0, "face": 38.0, "inference": 0.3},
                                 "stage_share": {"capture": 0.28, "face": 0.7, "inference": 0.02},
                                 "machine": MACHINE},
        qs / "roofline" / "bounds.json": [{"model": "aver-ravdess-tflite-int8", "device": "rpi4", "intensity": 44.8,
                                           "latency_ms": 0.3, "limited_by": "compute", "measured_p50_ms": None,
                                           "machine": None},
                                          {"model": "aver-ravdess-tflite-int8", "device": "host", "intensity": 44.8,
                                           "latency_ms": 0.04, "limited_by": "compute", "measured_p50_ms": 0.06,
                                           "machine": MACHINE}],
        qs / "roofline-calibration.json": {"groups": [], "estimates": [
            {"model": "aver-ravdess", "device": "rpi4", "precision": "float32", "estimate_ms": 35.23, "low_ms": 24.75,
             "high_ms": 45.77, "extrapolated": True, "note": "calibrated on 10 published figures"}]},
        qs / "runs" / "paper-split" / "run.json": {"model": "aver-ravdess", "labels": labels,
                                                   "split": {"kind": "paper"}, "test": {"n": 30, "accuracy": 0.9},
                                                   "note": "Accuracy on the synthetic corpus: not a paper result."},
        qs / "runs" / "paper-split" / "metrics.json": {"n": 30, "accuracy": 0.9, "macro_f1": 0.89, "labels": labels,
                                                       "confusion_matrix": [[9, 1, 0], [0, 10, 0], [1, 1, 8]]},
        dep / "export" / "manifest.json": {
            "manifest_version": 1, "model": "spectrotemporal-tiny", "task": {"kind": "regression"},
            "stages": [{"name": "extractor", "folder": "extractor"}], "formats": ["tflite-fp32"],
            "verification": [_verification("tflite-fp32", "litert", 4.3)]},
        dep / "export" / "extractor" / "manifest.json": {
            "manifest_version": 1, "model": "spectrotemporal-tiny", "stage": "extractor",
            "task": {"kind": "regression"}, "files": {"tflite-fp32": {}},
            "verification": [_verification("tflite-fp32", "litert", 4.3)]},
        dep / "runs" / "paper-split" / "run.json": {
            "model": "spectrotemporal-tiny", "split": {"kind": "paper"}, "test_unit": "recording",
            "test": {"n": 16, "mae": 4.11, "rmse": 5.24, "bias": -2.92}, "baseline_mae_predicting_the_training_mean": 12.3},
        # no "machine" key: the page must say so
        dep / "bench-recordings.json": {"threads": 1, "rows": [{"what": "features + inference tflite-fp32",
                                                                "runtime": "numpy", "runs": 31, "p50_ms": 21.7654,
                                                                "p90_ms": 49.6, "p99_ms": 130.0}]},
        root / "repro-synthetic" / "reproduce.json": reproduce_json(synthetic=True, quick=True, finished=None),
        # a reproduction's own training runs: summarised by its table, not drawn one by one
        root / "repro-synthetic" / "runs" / "emodb" / "paper" / "seed-0" / "metrics.json": {
            "n": 4, "accuracy": 0.5, "labels": ["a", "b"], "confusion_matrix": [[1, 1], [1, 1]]},
        root / "repro-real" / "reproduce.json": reproduce_json(synthetic=False),
    }
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
    (qs / "roofline" / "roofline-host.svg").write_text(SVG)
    (qs / "roofline" / "roofline-rpi4.png").write_bytes(_png(64, 40))
    (qs / "corpus").mkdir()
    (qs / "corpus" / "bench.json").write_text("not json: corpus folders are never read")
    return {"folders": [qs, dep, root / "repro-synthetic", root / "repro-real"]}


def cli(*args, cwd=None, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "edgeaffect.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


# --- the browser ---------------------------------------------------------------------------------

def chromium_path() -> str:
    """The system Chromium; installed through the project's set-up (scripts/apt-deps.sh, as
    `make test` does) when missing and this machine can; else the test skips, saying why."""
    names = ("chromium", "chromium-browser")
    found = next((shutil.which(n) for n in names if shutil.which(n)), None)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["sh", str(ROOT / "scripts" / "apt-deps.sh"), "chromium"], capture_output=True, timeout=900)
        found = next((shutil.which(n) for n in names if shutil.which(n)), None)
    if found is None:
        pytest.skip("Chromium is not installed and this machine cannot install it (needs root and apt-get: "
                    "`sudo make apt` installs the Debian package chromium)")
    return found


@pytest.fixture(scope="module")
def page_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    f = write_fixtures(root / "build")
    out = root / "site" / "report"
    r = cli("report", *f["folders"], "--html", out)
    assert r.returncode == 0, r.stderr
    assert "index.html" in r.stdout
    return out


def test_page_renders_in_chromium(page_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    problems, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto((page_dir / "index.html").as_uri(), wait_until="load")
            page.wait_for_function("[...document.images].every(i => i.complete)")

            # Every request is a file beside the page: nothing from the network.
            assert requests and all(u.startswith("file://") for u in requests), requests
            imgs = page.evaluate("[...document.images].map(i => [i.getAttribute('src'), i.naturalWidth, "
                                 "i.getBoundingClientRect().width])")
            assert len(imgs) == 2, imgs  # the two roofline plots (SVG and PNG)
            for src, natural, shown in imgs:
                assert src.startswith("img/") and natural > 0 and shown > 100, (src, natural, shown)

            text = page.inner_text("body")
            for heading in ("Models beside the papers", "Every export's verification",
                            "Benchmarks, budgets and the latency gate", "Roofline plots",
                            "Confusion matrices and error plots", "Reproductions of the papers' tables"):
                assert page.get_by_role("heading", name=heading).is_visible(), heading
            assert "Skipped inputs" not in text  # every given folder was found

            # Benchmarks: measured figures with their machine; the failed budget and the regressed gate.
            bench = page.inner_text("#bench")
            assert "0.1234" in bench and "regressed" in bench and "FAILED" in bench
            assert "no baseline of aver-ravdess tflite-fp32" in bench
            assert f"Machine: {MACHINE}" in bench
            recordings = page.locator("article", has_text="bench-recordings.json")
            assert "21.7654" in recordings.inner_text() and NOT_RECORDED in recordings.inner_text()

            # Verification: the whole export, the staged bundle and its stage folder.
            ver = page.inner_text("#verification")
            assert "stage extractor" in ver and "recorded, not gating" in ver and "agreement 0.5 < 0.95" in ver
            # ... and the layers the int8 export kept float, why, and the times it chose by
            assert "aver/face_conv1/Relu (CONV_2D, speed): int8 135.0 us, float 17.0 us alone" in ver
            assert "float 132.6 us, all int8 180.6 us, as written 68 us" in ver and "1 layer(s) float" in ver

            # The papers' table (our counted figures beside theirs) rendered as a table.
            assert page.locator("table.papers").count() >= 3
            assert "Our figures beside the papers'" in page.inner_text("#models")

            roof = page.inner_text("#roofline")
            assert "35.2" in roof and "extrapolated" in roof and "not measured here" in roof
            assert f"Machine: {MACHINE}" in roof  # the host rows of bounds.json name their machine

            # Confusion matrix and error plot: inline SVG, laid out, with the fixture's counts.
            cm = page.locator("svg.cm").first
            box = cm.bounding_box()
            assert box and box["width"] > 100 and box["height"] > 100
            assert page.locator("svg.cm").count() == 1 and page.locator("svg.cm rect").count() == 9
            cells = page.locator("svg.cm text").all_text_contents()
            assert "10" in cells and "8" in cells
            assert page.locator("#results svg.bars").count() >= 1
            assert "mae 4.11" in page.inner_text("#results")

            # Reproduce: the synthetic run says plainly it is not a paper result; the real one does not.
            synthetic = page.locator("article.reproduce.is-synthetic")
            real = page.locator("article.reproduce:not(.is-synthetic)")
            assert synthetic.count() == 1 and real.count() == 1
            banner = synthetic.locator("p.synthetic")
            assert banner.is_visible() and "not paper results" in banner.inner_text()
            assert "Quick run" in synthetic.inner_text() and "not finished" in synthetic.inner_text()
            assert real.locator("p.synthetic").count() == 0
            rt = real.inner_text()
            assert "0.8123" in rt and "0.9433" in rt and "no paper figure" in rt and REPRO_MACHINE in rt

            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert not problems, problems
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1280 and height > 2000, (width, height)
    from PIL import Image

    colours = Image.open(shot).convert("RGB").resize((320, height // 4)).getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, tables and plots, not a blank page


def test_page_files_and_atomic_replace(page_dir, tmp_path):
    assert (page_dir / "index.html").is_file() and len(list((page_dir / "img").iterdir())) == 2
    assert not [p for p in page_dir.parent.iterdir() if p.name != "report"]  # no temp folder left
    html = (page_dir / "index.html").read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<script" not in html
    # Written again over an old page: replaced whole.
    out = tmp_path / "r"
    (out / "img").mkdir(parents=True)
    (out / "img" / "stale.png").write_bytes(b"x")
    (out / "index.html").write_text("an earlier page")
    (tmp_path / "empty").mkdir()
    write_report([tmp_path / "empty"], out, papers=False)
    assert not (out / "img" / "stale.png").exists() and "edgeaffect report" in (out / "index.html").read_text()


def test_missing_inputs_are_notes_not_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no build/ here: every default folder is missing
    page = write_report(None, tmp_path / "out", papers=False).read_text()
    assert "build/quickstart: not found, skipped (<code>make demo</code> writes it)" in page
    assert "build/depression: not found, skipped (<code>make demo-depression</code> writes it)" in page
    assert "build/reproduce: not found, skipped (<code>edgeaffect reproduce PAPER --data CORPUS</code> writes it)" in page
    for what in ("No pipeline summary", "No export manifest", "No benchmark", "No roofline plots",
                 "No training run results", "No <code>reproduce.json</code> found"):
        assert what in page, what
    # A folder with unreadable JSON: one note, the rest of the page is written.
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "bench.json").write_text("{broken")
    page = write_report([tmp_path / "b"], tmp_path / "out2", papers=False).read_text()
    assert "bench.json: not readable as JSON" in page
    # Found by fuzzing (issue 30): JSON nested past the parser's recursion limit, a 5000-digit number.
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "bench.json").write_text("[" * 100_000)
    (tmp_path / "d" / "bounds.json").write_text("[" + "9" * 5000 + "]")
    page = write_report([tmp_path / "d"], tmp_path / "out3", papers=False).read_text()
    assert "bench.json: not readable as JSON (RecursionError)" in page
    assert "bounds.json: not readable as JSON (ValueError)" in page
    # Readable but hand-edited into another shape: that section names the file; the others are drawn.
    (tmp_path / "b" / "bench.json").write_text(json.dumps({"rows": [{"status": "ok", "bytes": "many"}]}))
    (tmp_path / "b" / "metrics.json").write_text(json.dumps({"confusion_matrix": [[1, 0], [0, 1]], "n": 2,
                                                            "labels": ["a", "b"], "accuracy": 1.0}))
    page = write_report([tmp_path / "b"], tmp_path / "out3", papers=False).read_text()
    assert f"{tmp_path / 'b' / 'bench.json'}: could not be shown (TypeError" in page
    assert '<svg class="cm"' in page


def test_given_path_missing_is_one_line_exit_2(tmp_path):
    r = cli("report", tmp_path / "no-such-folder", "--html", tmp_path / "out")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and "not found" in err[0] and "no-such-folder" in err[0], r.stderr
    assert not (tmp_path / "out").exists()
    r = cli("report", tmp_path, cwd=tmp_path)
    assert r.returncode == 2 and "--html" in r.stderr
    # The page folder is replaced whole, so it must never be a folder of inputs.
    (tmp_path / "build" / "export").mkdir(parents=True)
    (tmp_path / "build" / "export" / "manifest.json").write_text("{}")
    for target, fragment in [(tmp_path / "build", "not a report folder"),
                             (tmp_path / "build" / "export" / "manifest.json", "not a report folder")]:
        with pytest.raises(InputError, match=fragment):
            write_report([tmp_path / "build"], target, papers=False)
    page = tmp_path / "page"
    (page / "inputs").mkdir(parents=True)
    (page / "index.html").write_text("an earlier page")
    with pytest.raises(InputError, match="holds the input"):
        write_report([page / "inputs"], page, papers=False)
    assert (tmp_path / "build" / "export" / "manifest.json").read_text() == "{}"
    assert (page / "inputs").is_dir()


def test_ablation_tables_say_which_partition_their_figures_are_on(tmp_path):
    """Issue 27: an ablation's figures are on the partition the paper compares modules on
    (Development for the spectrotemporal model); the page says which, per table, with the
    machine and the command, and a file written before the field existed reads as test."""
    runs = tmp_path / "runs"
    (runs / "st").mkdir(parents=True)
    (runs / "st" / "ablation.json").write_text(json.dumps({
        "model": "spectrotemporal-tiny", "split": "paper", "seed": 0, "figures": "development",
        "machine": "the test machine", "rows": [{"row": "full", "params": 1234, "mae": 6.54321, "rmse": 8.1},
                                                 {"row": "no-vlnep", "params": 1000, "mae": 7.25, "rmse": 9.0}]}))
    (runs / "aver").mkdir()
    (runs / "aver" / "ablation.json").write_text(json.dumps({
        "model": "aver-ravdess", "split": "paper", "seed": 1,
        "rows": [{"row": "full", "params": 99, "accuracy": 0.5, "macro_f1": 0.25}]}))
    page = write_report([runs], tmp_path / "out", papers=False).read_text()
    section = page[page.index('id="ablations"'):]
    assert "spectrotemporal-tiny: paper split, seed 0, figures on <b>development</b>" in section
    assert "6.543" in section and "no-vlnep" in section and "the test machine" in section
    assert "aver-ravdess: paper split, seed 1, figures on <b>test</b>" in section  # an older file: test figures
    assert "50.00" in section and "25.00" in section and "n/a" in section  # percent; a missing figure is n/a
    assert "edgeaffect ablation spectrotemporal-tiny" in section


def test_bench_rows_show_int8_against_float_and_this_cpus_int8(tmp_path):
    """Issue 26: each quantized row says its time, size and metric against the float32 file of
    the same run, and the page says what int8 gains on the benchmark's CPU."""
    b = tmp_path / "b"
    b.mkdir()
    row = {"model": "m", "format": "tflite-int8", "runtime": "litert", "status": "ok", "bytes": 2048,
           "p50_ms": 0.2, "vs_float": {"format": "tflite-fp32", "latency_ratio": 1.18, "size_ratio": 0.27,
                                       "metric_diff": -0.0125, "float_layers": 1}}
    (b / "bench.json").write_text(json.dumps({
        "machine": "cpu X", "threads": 1, "rows": [row, {**row, "format": "tflite-fp32", "vs_float": "odd"}],
        "int8_reference": {"line": "this CPU's int8 reference (plain conv net): int8 is 1.34x SLOWER"}}))
    page = write_report([b], tmp_path / "out", papers=False).read_text()
    section = page[page.index("Benchmark"):]
    assert "1.18x time, 0.27x size, -0.0125 metric, 1 float" in section
    # timed interleaved by the bench: the interval is shown
    row["vs_float"].update(latency_low=1.15, latency_high=1.21)
    (b / "bench.json").write_text(json.dumps({"machine": "cpu X", "threads": 1, "rows": [row]}))
    page = write_report([b], tmp_path / "out2", papers=False).read_text()
    assert "1.18x [1.15-1.21] time, 0.27x size" in page
    assert "This CPU's int8:</b> this CPU&#x27;s int8 reference (plain conv net): int8 is 1.34x SLOWER" in section
