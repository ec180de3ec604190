"""The live demo, its benchmark on generated media and its soak test."""

from __future__ import annotations

import json
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
             threads: Optional[int] = None,
             settings: Annotated[Optional[list[str]], typer.Option("--set", help="A live setting of the demo or the "
                                                                   "model's family, key=value (repeatable).")] = None):
    """Live microphone + camera demo: label, probabilities, FPS and latency; Ctrl-C stops it."""
    from edgeaffect.demo.live import Demo

    demo = Demo(bundle, camera, mic, show=show, events=events, duration=duration, threads=threads,
                settings=settings or ())
    try:
        s = demo.run()
    except KeyboardInterrupt:  # run() has already stopped and joined its threads
        typer.echo("demo: interrupted (Ctrl-C), stopped cleanly", err=True)
        raise typer.Exit(130) from None
    typer.echo(demo.closing_line(s))
    if s["faults"]:
        back = [f for f in s["faults"] if f["recovery_s"] is not None]
        typer.echo(f"devices lost {len(s['faults'])} times, {len(back)} back and used again"
                   + (f" (longest outage {max(f['recovery_s'] for f in back):.1f} s)" if back else ""), err=True)


@app.command("bench-demo", rich_help_panel=DEMO)
def bench_demo_cmd(bundle: Annotated[Path, typer.Argument(help="A bundle or export folder.")],
                   seconds: Annotated[float, typer.Option(help="Length of the generated media.")] = 10.0,
                   settings: Annotated[Optional[list[str]], typer.Option("--set", help="A live setting, key=value "
                                                                         "(repeatable; default: the family's).")] = None,
                   compare: Annotated[bool, typer.Option(help="Also run the demo with the family's reference "
                                                              "setting, right after, for a ratio.")] = True,
                   accuracy_clips: Annotated[int, typer.Option(help="Labelled corpus clips the live label is scored "
                                                                    "on, both settings (0: skip).")] = 16,
                   corpus: Annotated[Optional[Path], typer.Option(help="Corpus for the accuracy figure (default: the "
                                                                      "pipeline folder's, else a small synthetic one).")] = None,
                   json_out: Annotated[Optional[Path], typer.Option("--json")] = None):
    """The demo on generated media (the family's camera video, 16 kHz speech-like audio):
    results per second, capture-to-label p50 / p95 and each stage's share; with the family's
    reference setting for a ratio, and the live label's accuracy on labelled corpus clips
    both ways (same run)."""
    import tempfile

    from edgeaffect.demo.bench import bench_demo, describe_accuracy, live_accuracy
    from edgeaffect.demo.live import DemoConfig, with_settings
    from edgeaffect.device.predict import ExportedModel
    from edgeaffect.io import atomic_write_text
    from edgeaffect.progress import Progress
    from edgeaffect.workflows.bench import labelled_clips

    out = bench_demo(bundle, seconds, settings=settings or (), compare=compare, echo=typer.echo)
    if accuracy_clips > 0:
        model = ExportedModel(bundle, threads=1)
        family = model.family
        cfg = with_settings(DemoConfig(), model.adapter, settings or ())
        with tempfile.TemporaryDirectory(prefix="ea-demo-corpus-") as tmp:
            files, described = labelled_clips(family, bundle, corpus, accuracy_clips, Path(tmp))
            acc = live_accuracy(model, files, family.recording_label, cfg,
                                progress=Progress("clips", len(files), stream=sys.stderr))
        acc["corpus"] = described
        out["live_accuracy"] = acc
        for line in describe_accuracy(acc, model.adapter):
            typer.echo(line)
    if json_out:
        atomic_write_text(json_out, json.dumps(out, indent=2))


@app.command("soak-demo", rich_help_panel=DEMO)
def soak_demo_cmd(bundle: Annotated[Path, typer.Argument(help="A bundle or export folder (make demo's): "
                                                              "audio-visual, audio or staged.")],
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
    """The demo headless for a long time from looped files, its microphone and camera (if the
    model takes video) taken away mid-run and given back: RSS growth, results and labelled
    results per second over time, every recovery."""
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
