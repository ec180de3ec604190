"""The live demo, its benchmark on generated media and its soak test."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgeaffect.cli._panels import DEMO

app = typer.Typer()


@app.command("demo", rich_help_panel=DEMO)
def demo_cmd(bundle: Annotated[Path, typer.Argument(help="A bundle or export folder.")],
             camera: Annotated[str, typer.Option(help="Camera index, device path, or a video file.")] = "0",
             mic: Annotated[Optional[str], typer.Option(help="sounddevice input (index or name) or a wav file; default input if omitted.")] = None,
             show: Annotated[bool, typer.Option("--show/--headless", help="A window with the overlay (default: headless).")] = False,
             events: Annotated[Optional[Path], typer.Option(help="Write JSON lines: time, label, probabilities, per-stage latency.")] = None,
             duration: Annotated[Optional[float], typer.Option(help="Stop after this many seconds.")] = None,
             threads: Optional[int] = None):
    """Live microphone + camera demo: label, probabilities, FPS and latency; Ctrl-C stops it."""
    from edgeaffect.demo.live import Demo

    demo = Demo(bundle, camera, mic, show=show, events=events, duration=duration, threads=threads)
    try:
        s = demo.run()
    except KeyboardInterrupt:  # run() has already stopped and joined its threads
        typer.echo("demo: interrupted (Ctrl-C), stopped cleanly", err=True)
        raise typer.Exit(130) from None
    video = "" if not demo.needs_video else f"{s['no_face']} without a face, {s['dropped_frames']} frames dropped; "
    typer.echo(f"{s['events']} results in {s['seconds']:.1f} s ({s['processed_per_s']:.1f}/s), {s['labels']} labelled, "
               f"{video}capture-to-label p50 {_ms(s['latency_p50_ms'])} p95 {_ms(s['latency_p95_ms'])}")
    if s["faults"]:
        back = [f for f in s["faults"] if f["recovery_s"] is not None]
        typer.echo(f"devices lost {len(s['faults'])} times, {len(back)} back and used again"
                   + (f" (longest outage {max(f['recovery_s'] for f in back):.1f} s)" if back else ""), err=True)


def _ms(v) -> str:
    return "-" if v is None else f"{v:.1f} ms"


@app.command("bench-demo", rich_help_panel=DEMO)
def bench_demo_cmd(bundle: Annotated[Path, typer.Argument(help="A bundle or export folder.")],
                   seconds: Annotated[float, typer.Option(help="Length of the generated 640x480 30 fps clip.")] = 10.0,
                   detect_every: Annotated[Optional[int], typer.Option(help="Full face search every N frames, tracking "
                                                                            "between (default: DemoConfig's).")] = None,
                   compare: Annotated[bool, typer.Option(help="Also run the demo with the full search on every frame "
                                                              "(detect every 1), right after, for a ratio.")] = True,
                   accuracy_clips: Annotated[int, typer.Option(help="Labelled corpus clips the live label is scored "
                                                                    "on, tracking vs every frame (0: skip).")] = 16,
                   corpus: Annotated[Optional[Path], typer.Option(help="Corpus for the accuracy figure (default: the "
                                                                      "pipeline folder's, else a small synthetic one).")] = None,
                   json_out: Annotated[Optional[Path], typer.Option("--json")] = None):
    """The demo on a generated 640x480 30 fps video of a real face (skimage's astronaut) and
    16 kHz speech-like audio: results per second, capture-to-label p50 / p95 and each stage's
    share; with tracking against the full search on every frame, and the live label's
    accuracy on labelled corpus clips both ways (same run)."""
    import tempfile
    from dataclasses import replace

    from edgeaffect.demo.bench import live_accuracy, make_demo_media
    from edgeaffect.demo.live import Demo, DemoConfig
    from edgeaffect.device.predict import ExportedModel
    from edgeaffect.io import atomic_write_text
    from edgeaffect.measure.bench import machine
    from edgeaffect.progress import Progress
    from edgeaffect.workflows.bench import labelled_clips

    cfg = DemoConfig() if detect_every is None else replace(DemoConfig(), detect_every=max(1, detect_every))
    runs = {f"detect every {cfg.detect_every}": cfg}
    if compare and cfg.detect_every != 1:
        runs["detect every 1"] = replace(cfg, detect_every=1)
    typer.echo(f"machine: {machine()} (measured); 640x480 30 fps video file + 16 kHz wav, paced in real time, "
               f"{seconds:g} s per run")
    out = {"machine": machine(), "seconds": seconds, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="ea-demo-") as tmp:
        video, wav = make_demo_media(Path(tmp), seconds)
        for name, c in runs.items():
            s = Demo(bundle, str(video), str(wav), events=Path(tmp) / "events.jsonl", threads=1, config=c,
                     log=open(os.devnull, "w")).run()
            out["runs"][name] = s
            typer.echo(f"{name}: {s['events']} results / {s['captured_frames']} frames captured, "
                       f"{s['dropped_frames']} dropped ({s['processed_per_s']:.1f} results/s); capture-to-label "
                       f"p50 {_ms(s['latency_p50_ms'])}, p95 {_ms(s['latency_p95_ms'])}")
            typer.echo("  stage shares: " + ", ".join(f"{k} {v:.0%} ({s['stage_mean_ms'][k]:.1f} ms)"
                                                      for k, v in s["stage_share"].items()))
    if len(runs) == 2:
        a, b = (out["runs"][k] for k in runs)
        if a["latency_p50_ms"] and b["latency_p50_ms"]:
            typer.echo(f"tracking vs every frame (consecutive runs): results/s x{a['processed_per_s'] / max(b['processed_per_s'], 1e-9):.2f}, "
                       f"p50 latency x{a['latency_p50_ms'] / b['latency_p50_ms']:.2f}, face stage "
                       f"x{a['stage_mean_ms']['face'] / max(b['stage_mean_ms']['face'], 1e-9):.2f}")
    if accuracy_clips > 0:
        model = ExportedModel(bundle, threads=1)
        family = model.family
        with tempfile.TemporaryDirectory(prefix="ea-demo-corpus-") as tmp:
            files, described = labelled_clips(family, bundle, corpus, accuracy_clips, Path(tmp))
            every = (1, cfg.detect_every) if cfg.detect_every != 1 else (1,)
            acc = live_accuracy(model, files, family.recording_label, cfg, every,
                                progress=Progress("clips", len(files), stream=sys.stderr))
        acc["corpus"] = described
        out["live_accuracy"] = acc
        by = acc["by_detect_every"]
        typer.echo(f"live label accuracy on {acc['clips']} labelled clips ({acc['frames']} frames, {acc['corpus']}; "
                   "a frame without a face counts as wrong): "
                   + ", ".join(f"detect every {e}: {v['accuracy']:.1%} (face {v['face_mean_ms']:.1f} ms/frame, "
                               f"{v['searches']} searches)" for e, v in by.items())
                   + (f"; labels agree on {acc['agreement']:.1%} of frames" if len(by) == 2 else ""))
        d = acc.get("difference")
        if d:
            typer.echo(f"tracking minus every frame: {d['pp']:+.1f} points, 95 % interval "
                       f"[{d['ci95_pp'][0]:+.1f}, {d['ci95_pp'][1]:+.1f}] ({d['method']})")
    if json_out:
        atomic_write_text(json_out, json.dumps(out, indent=2))


@app.command("soak-demo", rich_help_panel=DEMO)
def soak_demo_cmd(bundle: Annotated[Path, typer.Argument(help="An audio-visual bundle or export folder (make demo's).")],
                  minutes: Annotated[float, typer.Option(help="How long the demo runs.")] = 30.0,
                  audio: Annotated[str, typer.Option(help="pulse: a PulseAudio null sink as the microphone (unplugged "
                                                          "and plugged in again); file: the wav looped, no mic faults.")] = "pulse",
                  fault_every: Annotated[Optional[float], typer.Option(help="Seconds per fault cycle (mic out, then "
                                                                            "camera out); default: one cycle.")] = None,
                  outage: Annotated[float, typer.Option(help="Seconds each device stays away.")] = 5.0,
                  bucket: Annotated[float, typer.Option(help="Seconds per row of the results/s table.")] = 60.0,
                  max_growth_mib: Annotated[float, typer.Option(help="Fail (exit 1) when RSS grows more than this "
                                                                     "after the warm-up.")] = 64.0,
                  json_out: Annotated[Optional[Path], typer.Option("--json")] = None,
                  markdown: Optional[Path] = None):
    """The demo headless for a long time from looped files, its microphone and camera taken
    away mid-run and given back: RSS growth, results per second over time, every recovery."""
    from edgeaffect.demo.soak import soak, table
    from edgeaffect.io import atomic_write_text

    r = soak(bundle, minutes * 60.0, audio=audio, fault_every_s=fault_every, outage_s=outage, bucket_s=bucket)
    text = table(r)
    typer.echo(text)
    if json_out:
        atomic_write_text(json_out, json.dumps(r, indent=2))
    if markdown:
        atomic_write_text(markdown, text + "\n")
    lost = [x for x in r["recoveries"] if not x["recovered"]]
    if lost or r["rss_growth_mib"] > max_growth_mib:
        why = [f"{x['device']} unplugged at {x['unplugged_s']:.0f} s was not used again" for x in lost]
        if r["rss_growth_mib"] > max_growth_mib:
            why.append(f"RSS grew {r['rss_growth_mib']:.1f} MiB (> {max_growth_mib:g})")
        typer.echo("soak failed: " + "; ".join(why), err=True)
        raise typer.Exit(1)
