"""``make demo``: synthetic corpus -> AVER -> QAT -> TFLite / ONNX -> verification -> one table.

Everything lands under one folder; steps already done (corpus files, features, a
finished training run) are reused, so an interrupted pipeline picks up where it stopped.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from edgeaffect.bench import bench_export, machine
from edgeaffect.data.synthetic import SyntheticConfig, generate, utterances
from edgeaffect.io import atomic_write_text
from edgeaffect.progress import Progress

MODEL = "aver-ravdess"


def _train_or_load(name, data, folder: Path, split: str, epochs: int, seed: int, log):
    from edgeaffect.train.trainer import load_run, train_aver

    if (folder / "run.json").exists():
        print(f"reusing the finished run in {folder}", file=log)
        return load_run(folder)
    return train_aver(name, data, folder, split=split, seed=seed, max_epochs=epochs, log=log)


def run_pipeline(out: str | Path, *, actors: int = 8, epochs: int = 60, speaker_epochs: int = 30, qat_epochs: int = 10,
                 seed: int = 0, log=sys.stderr) -> dict:
    from edgeaffect.data.dataset import build_aver_dataset
    from edgeaffect.export.exporter import export_run
    from edgeaffect.models import get_model

    out = Path(out)
    t_start = time.monotonic()
    spec = get_model(MODEL)
    cfg = SyntheticConfig(actors=actors, statements=1, repetitions=2, seed=seed)
    print(f"1/5 synthetic RAVDESS-format corpus: {len(utterances(cfg))} clips, {actors} actors -> {out / 'corpus'}",
          file=log, flush=True)
    generate(out / "corpus", cfg, progress=Progress("clips", len(utterances(cfg)), stream=log))
    print("2/5 features (Haar faces, 40 MFCC x 6 segments; time-stretched copies for augmentation)", file=log, flush=True)
    data = build_aver_dataset(out / "corpus", stretch_rate=spec.config.time_stretch_rate if spec.config.augment else None,
                              cache_dir=out / "cache", log=log)
    print(f"3/5 train {MODEL} (paper split; then a speaker-independent split for comparison)", file=log, flush=True)
    run = _train_or_load(MODEL, data, out / "runs" / "paper-split", "paper", epochs, seed, log)
    speaker = _train_or_load(MODEL, data, out / "runs" / "speaker-split", "speaker", speaker_epochs, seed, log)
    print("4/5 QAT, export, verify against Keras", file=log, flush=True)
    export_dir = out / "export"
    manifest = export_run(run, data, export_dir, qat_epochs=qat_epochs, log=log)
    print("5/5 latency on this machine (batch 1, 1 thread)", file=log, flush=True)
    first_clip = sorted((out / "corpus").rglob("*.mp4"))[0]
    timings = bench_export(export_dir, first_clip, keras_model=run.model, budget_s=1.0, log=log)
    summary = {
        "model": MODEL, "machine": machine(), "seconds": round(time.monotonic() - t_start, 1),
        "params": spec.params, "flops_eq3": spec.flops, "paper": spec.paper_figures,
        "float_test_accuracy": run.info["test"]["accuracy"], "speaker_split_test_accuracy": speaker.info["test"]["accuracy"],
        "split": run.info["split"], "speaker_split": speaker.info["split"],
        "verification": manifest["verification"], "timings": timings,
        "data": "synthetic RAVDESS-format corpus generated here; accuracies on it are not paper results",
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    table = summary_table(summary)
    atomic_write_text(out / "summary.md", table + "\n")
    print("\n" + table, flush=True)
    return summary


def summary_table(s: dict) -> str:
    by_fmt = {t["what"].split()[-1]: t for t in s["timings"] if t["what"].startswith("inference ")}
    lines = [
        f"edgeaffect pipeline: {s['model']} on a synthetic RAVDESS-format corpus ({s['seconds']:.0f} s)",
        f"machine: {s['machine']}",
        f"parameters {s['params']:,} (paper Table V: {s['paper']['params_m']} M); "
        f"FLOPs by the paper's Eq. 3: {s['flops_eq3'] / 1e6:.2f} M (Table V: {s['paper']['gflops']} G)",
        f"test accuracy, float Keras: {s['float_test_accuracy']:.4f} on the paper's split "
        f"({s['split']['test']} samples); {s['speaker_split_test_accuracy']:.4f} speaker-independent "
        f"({s['speaker_split']['test']} samples). Synthetic data: not comparable to the paper's "
        f"{s['paper'].get('accuracy_pct')} % on RAVDESS.",
        "",
        "| format | runtime | size (KiB) | test accuracy | vs Keras max abs diff | top-1 agreement | p50 ms | p90 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for v in s["verification"]:
        t = by_fmt.get(v["format"], {})
        size = next((x["bytes"] for x in s["timings"] if x["what"] == f"inference {v['format']}"), 0) / 1024
        lines.append(f"| {v['format']} | {t.get('runtime', v['runtime'])} | {size:.1f} | {v['accuracy']:.4f} | "
                     f"{v['max_abs_diff']:.2e} | {v['top1_agreement']:.4f} | {t.get('p50_ms', float('nan')):.3f} | "
                     f"{t.get('p90_ms', float('nan')):.3f} |")
    keras_t = by_fmt.get("direct)")
    if keras_t:
        lines.append(f"| keras (float, model(x)) | tf_keras | - | {s['float_test_accuracy']:.4f} | 0 | 1 | "
                     f"{keras_t['p50_ms']:.3f} | {keras_t['p90_ms']:.3f} |")
    feats = next((t for t in s["timings"] if t["what"].startswith("clip ->")), None)
    if feats:
        lines.append(f"\nclip -> features (decode mp4, 6 Haar faces, 6 x 40 MFCC in NumPy): p50 {feats['p50_ms']:.1f} ms, "
                     f"p90 {feats['p90_ms']:.1f} ms. Paper: {s['paper'].get('cpu_ms')} ms per inference on an "
                     f"{s['paper'].get('cpu')} (their measurement, another machine).")
    return "\n".join(lines)


# --------------------------------------------------------------------------- SpeechNet

SPEECH_MODEL = "speechnet-emodb"


def run_speech_pipeline(out: str | Path, *, speakers: int = 8, texts: int = 8, epochs: int | None = None,
                        speaker_epochs: int | None = None, qat_epochs: int = 10, seed: int = 0, budget_s: float = 2.0,
                        log=sys.stderr) -> dict:
    """Synthetic EmoDB-format corpus -> SpeechNet (the paper's recipe) -> QAT -> TFLite with
    the fused LSTM / ONNX -> verification -> per-utterance latency. Finished steps are reused."""
    from edgeaffect.bench import bench_speech
    from edgeaffect.data.synthetic_speech import SpeechCorpusConfig, emodb_names, generate_emodb
    from edgeaffect.export.exporter import export_run
    from edgeaffect.models import get_model
    from edgeaffect.train.families import load_corpus, train
    from edgeaffect.train.trainer import load_run

    out = Path(out)
    t_start = time.monotonic()
    spec = get_model(SPEECH_MODEL)
    cfg = SpeechCorpusConfig(speakers=speakers, texts=texts, seed=seed)
    print(f"1/5 synthetic EmoDB-format corpus: {len(emodb_names(cfg))} utterances -> {out / 'corpus'}", file=log)
    generate_emodb(out / "corpus", cfg, progress=Progress("utterances", len(emodb_names(cfg)), stream=log))
    print("2/5 fusion features (librosa, 107 per frame)", file=log, flush=True)
    data = load_corpus(SPEECH_MODEL, out / "corpus", out / "cache", log=log)
    print(f"3/5 train {SPEECH_MODEL}: paper recipe (random 90/10), then a speaker-independent split", file=log)
    runs = {}
    for split, n in (("paper", epochs), ("speaker", speaker_epochs)):
        folder = out / "runs" / f"{split}-split"
        runs[split] = (load_run(folder) if (folder / "run.json").exists()
                       else train(SPEECH_MODEL, data, folder, split=split, seed=seed, epochs=n, log=log))
    print("4/5 QAT, export, verify against Keras", file=log, flush=True)
    export_dir = out / "export"
    manifest = (json.loads((export_dir / "manifest.json").read_text()) if (export_dir / "manifest.json").exists()
                else export_run(runs["paper"], data, export_dir, qat_epochs=qat_epochs, log=log))
    print("5/5 latency per utterance on this machine (batch 1, 1 thread)", file=log, flush=True)
    wavs = sorted((out / "corpus" / "wav").glob("*.wav"))[::max(1, len(data) // 20)][:20]
    timings = bench_speech(export_dir, wavs, budget_s=budget_s, log=log)
    summary = {
        "model": SPEECH_MODEL, "machine": machine(), "seconds": round(time.monotonic() - t_start, 1),
        "params": spec.params, "flops": spec.flops, "paper": spec.paper_figures,
        "test": runs["paper"].info["test"], "speaker_test": runs["speaker"].info["test"],
        "split": runs["paper"].info["split"], "speaker_split": runs["speaker"].info["split"],
        "epochs": runs["paper"].info["epochs"], "verification": manifest["verification"], "timings": timings,
        "data": "synthetic EmoDB-format corpus generated here; accuracies on it are not paper results",
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    table = speech_summary_table(summary)
    atomic_write_text(out / "summary.md", table + "\n")
    print("\n" + table, flush=True)
    return summary


def speech_summary_table(s: dict) -> str:
    t = {row["what"]: row for row in s["timings"]}
    feats = next(row for row in s["timings"] if row["what"].startswith("features ("))
    p = s["paper"]
    lines = [
        f"edgeaffect speech pipeline: {s['model']} on a synthetic EmoDB-format corpus ({s['seconds']:.0f} s)",
        f"machine: {s['machine']}",
        f"parameters {s['params']:,} (paper: about {p['params_m']} M); FLOPs (2 per MAC + bias adds) "
        f"{s['flops'] / 1e6:.1f} M (paper: about {p['gflops'] * 1e3:g} M). The paper's two figures cannot both hold: "
        f"{p['params_m']} M weights used once already need {2 * p['params_m']:.1f} M FLOPs.",
        f"test accuracy, float Keras: {s['test']['accuracy']:.4f} on the random 90/10 split ({s['split']['test']} "
        f"utterances, {s['epochs']} epochs); {s['speaker_test']['accuracy']:.4f} speaker-independent "
        f"({s['speaker_split']['test']} utterances). Synthetic data: not comparable to the paper's "
        f"{p.get('accuracy_pct')} % on EmoDB.",
        "",
        "| format | runtime | size (KiB) | test accuracy | vs Keras max abs diff | top-1 agreement "
        "| inference p50 / p90 ms | features + inference p50 / p90 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for v in s["verification"]:
        inf, both = t.get(f"inference {v['format']}", {}), t.get(f"features + inference {v['format']}", {})
        lines.append(f"| {v['format']} | {inf.get('runtime', v['runtime'])} | {(inf.get('bytes') or 0) / 1024:.1f} | "
                     f"{v['accuracy']:.4f} | {v['max_abs_diff']:.2e} | {v['top1_agreement']:.4f} | "
                     f"{inf.get('p50_ms', float('nan')):.3f} / {inf.get('p90_ms', float('nan')):.3f} | "
                     f"{both.get('p50_ms', float('nan')):.2f} / {both.get('p90_ms', float('nan')):.2f} |")
    lines.append(f"\n{feats['what']}: p50 {feats['p50_ms']:.2f} ms, p90 {feats['p90_ms']:.2f} ms (measured, decode "
                 f"excluded). Paper: {p['gpu_ms']} ms per utterance on an {p['gpu']} (their measurement, another "
                 "machine).")
    return "\n".join(lines)
