"""The demo benchmark: the live demo on generated media (the family's camera video, if it
needs one, and 16 kHz speech-like audio), with its default live settings and, for a ratio,
with the setting its adapter names as the slow, literal way (``live_reference``); and the
live label's accuracy on labelled recordings both ways, in the same run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgeaffect.demo.live import DemoConfig, ms, with_settings


def speech_like(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced, formant-shaped, amplitude-modulated signal (seeded): speech-like enough for
    MFCCs and level meters, without any recording."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(h * phase) / h * (1 + 2 * np.exp(-((h * 140 - 700) / 300) ** 2)) for h in range(1, 30))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.3 * y * env / np.abs(y).max() + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def make_demo_media(folder: Path, seconds: float, adapter, fps: int = 30, sr: int = 16000) -> tuple[Path | None, Path]:
    """(the adapter's generated camera video, or None when it needs none; a speech-like wav)."""
    from edgeaffect.media.audio import write_wav

    video = adapter.demo_video(Path(folder), seconds, fps)
    wav = Path(folder) / "speech.wav"
    write_wav(wav, speech_like(sr, seconds), sr)
    return video, wav


def describe_media(video: Path | None) -> str:
    """"640x480 30 fps video file + 16 kHz wav" (what the runs were fed)."""
    if video is None:
        return "16 kHz wav"
    import cv2

    cap = cv2.VideoCapture(str(video))
    w, h, fps = (int(cap.get(p)) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT, cv2.CAP_PROP_FPS))
    cap.release()
    return f"{w}x{h} {fps} fps video file + 16 kHz wav"


# --------------------------------------------------------------------------- the compared settings

def setting_name(adapter, config: DemoConfig) -> str:
    """A run's name: the compared setting and its value ("detect every 6"), or "default"."""
    if adapter.live_reference is None:
        return "default settings"
    key = adapter.live_reference[0]
    return f"{key.replace('_', ' ')} {getattr(config.live, key)}"


def compared_configs(adapter, config: DemoConfig, compare: bool = True) -> dict[str, DemoConfig]:
    """Run name -> settings: ``config``, then (``compare``) the adapter's reference setting
    when ``config`` does not already use it."""
    config = with_settings(config, adapter, ())
    runs = {setting_name(adapter, config): config}
    if compare and adapter.live_reference is not None:
        key, value = adapter.live_reference
        if getattr(config.live, key) != value:
            ref = with_settings(config, adapter, [f"{key}={value}"])
            runs[setting_name(adapter, ref)] = ref
    return runs


# --------------------------------------------------------------------------- the timed runs

def bench_demo(bundle: Path, seconds: float, *, settings=(), compare: bool = True, echo=print) -> dict:
    """The demo on generated media, once per compared setting (one thread, paced in real
    time): each run's summary, and ``echo``'d lines as they finish."""
    import tempfile

    from edgeaffect.demo.live import Demo
    from edgeaffect.device.predict import ExportedModel
    from edgeaffect.machine import machine

    adapter = ExportedModel(bundle, threads=1).adapter
    runs = compared_configs(adapter, with_settings(DemoConfig(), adapter, settings), compare)
    out = {"machine": machine(), "seconds": seconds, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="ea-demo-") as tmp:
        video, wav = make_demo_media(Path(tmp), seconds, adapter)
        echo(f"machine: {out['machine']} (measured); {describe_media(video)}, paced in real time, "
             f"{seconds:g} s per run")
        for name, config in runs.items():
            with open(os.devnull, "w") as quiet:
                s = Demo(bundle, None if video is None else str(video), str(wav), events=Path(tmp) / "events.jsonl",
                         threads=1, config=config, log=quiet).run()
            out["runs"][name] = s
            echo(f"{name}: {s['events']} results / {s['captured_frames']} frames captured, "
                 f"{s['dropped_frames']} dropped ({s['processed_per_s']:.1f} results/s); capture-to-label "
                 f"p50 {ms(s['latency_p50_ms'])}, p95 {ms(s['latency_p95_ms'])}")
            echo("  stage shares: " + ", ".join(f"{k} {v:.0%} ({s['stage_mean_ms'][k]:.1f} ms)"
                                                for k, v in s["stage_share"].items()))
    if len(runs) == 2:
        line = ratio_line(adapter, *runs, *(out["runs"][k] for k in runs))
        if line:
            echo(line)
    return out


def ratio_line(adapter, name_a: str, name_b: str, a: dict, b: dict) -> str | None:
    """Run ``a`` against run ``b``: results per second, p50 latency and each live stage."""
    if not (a["latency_p50_ms"] and b["latency_p50_ms"]):
        return None
    stages = "".join(f", {k} stage x{a['stage_mean_ms'][k] / max(b['stage_mean_ms'][k], 1e-9):.2f}"
                     for k in adapter.live_stages)
    return (f"{name_a} vs {name_b} (consecutive runs): results/s "
            f"x{a['processed_per_s'] / max(b['processed_per_s'], 1e-9):.2f}, p50 latency "
            f"x{a['latency_p50_ms'] / b['latency_p50_ms']:.2f}{stages}")


# --------------------------------------------------------------------------- the live label's accuracy

def paired_difference(base: list[tuple[int, int]], other: list[tuple[int, int]], resamples: int = 2000,
                      seed: int = 0) -> dict | None:
    """Accuracy of ``other`` minus ``base`` (frame-weighted, in percentage points) over the
    same clips, with a 95 % interval from a paired bootstrap over clips: frames of one clip
    are not independent, so the clip is the unit that is resampled."""
    if not base or len(base) != len(other):
        return None
    ok_a, n = np.array(base, float).T
    ok_b = np.array(other, float)[:, 0]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(n), size=(resamples, len(n)))
    diffs = (ok_b[idx].sum(1) - ok_a[idx].sum(1)) / n[idx].sum(1) * 100
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"pp": float((ok_b.sum() - ok_a.sum()) / n.sum() * 100), "ci95_pp": [float(lo), float(hi)],
            "method": f"paired bootstrap over {len(n)} clips, {resamples} resamples"}


def _steps(adapter, settings, path: Path) -> tuple[list, float]:
    """A recording's live steps: its frames (and their rate) when the model takes video,
    else one step per result at the adapter's live rate over the audio."""
    from edgeaffect.media import read_audio
    from edgeaffect.media.video import read_all_frames

    if adapter.needs_video:
        return read_all_frames(path)
    rate = adapter.live_rate(settings)
    y, sr = read_audio(path)
    return [None] * max(1, int(y.size / sr * rate)), rate


def _live_labels(model, settings, frames: list, rate: float, y: np.ndarray, sr: int, smooth: int):
    """The label the demo would show at each step (None: no model input), with a fresh
    adapter (its own tracking state), its stage times and its counters."""
    from types import SimpleNamespace

    from edgeaffect.demo.sources import AudioRing

    ad = model.adapter
    live = type(ad)(ad.preprocessing, ad.task, ad.labels)
    mic = SimpleNamespace(ring=AudioRing(sr))
    recent, got, heard = [], [], 0
    stage_ms = dict.fromkeys(ad.live_stages, 0.0)
    for i, frame in enumerate(frames):
        end = int(round((i + 1) / rate * sr))
        mic.ring.write(y[heard:end])
        heard = max(heard, end)
        step = live.live_input(frame, mic, settings)
        for k in stage_ms:
            stage_ms[k] += step.stage_ms.get(k, 0.0)
        if step.status != "ok":
            got.append(None)
            continue
        outputs = model.outputs(step.x)
        recent = (recent + [ad.combine(outputs)])[-smooth:]
        got.append(model.task.prediction(ad.smooth(recent), outputs, model.labels).decision)
    return got, stage_ms, live.live_counters()


def _compared_values(adapter, config: DemoConfig, values) -> tuple[str | None, list]:
    """(the compared setting, its values: ``values``, else the reference value then
    ``config``'s); (None, [None]) when the adapter compares nothing."""
    if adapter.live_reference is None:
        return None, [None]
    key, reference = adapter.live_reference
    return key, list(values) if values is not None else list(dict.fromkeys([reference, getattr(config.live, key)]))


def live_accuracy(model, files: list[Path], label_of, config: DemoConfig, values=None, progress=None) -> dict:
    """The live path's label on every frame (or live step) of labelled recordings, as the
    demo makes it (the adapter's ``live_input`` on the frame and the audio up to that
    frame's time in the demo's ring, the model, the smoothing), once per value of the
    adapter's compared setting (``values``; default: its reference value, then
    ``config``'s), in the same run: the accuracy of the label on screen per value (a step
    without a model input counts as wrong), how often the values' labels agree, each live
    stage's mean time and the adapter's counters. ``model``: an ``ExportedModel``."""
    from edgeaffect.media import read_audio

    ad = model.adapter
    config = with_settings(config, ad, ())
    key, values = _compared_values(ad, config, values)
    runs = {v: with_settings(config, ad, [f"{key}={v}"]) if key else config for v in values}
    stats = {v: {"no_input": 0, "stage_ms": dict.fromkeys(ad.live_stages, 0.0), "counters": {}} for v in runs}
    per_clip = {v: [] for v in runs}  # (right, steps) per clip
    agree = total = 0
    first, last = list(runs)[0], list(runs)[-1]
    for k, f in enumerate(files, 1):
        truth = label_of(f)
        if truth is None:
            continue
        y, sr = read_audio(f)
        frames, rate = _steps(ad, config.live, f)
        labels = {}
        for v, c in runs.items():
            got, stage_ms, counters = _live_labels(model, c.live, frames, rate, y, sr, config.smooth)
            s = stats[v]
            s["no_input"] += sum(g is None for g in got)
            for name in stage_ms:
                s["stage_ms"][name] += stage_ms[name]
            for name, n in counters.items():
                s["counters"][name] = s["counters"].get(name, 0) + n
            per_clip[v].append((sum(g == truth for g in got), len(got)))
            labels[v] = got
        agree += sum(p == q for p, q in zip(labels[first], labels[last]))
        total += len(labels[first])
        if progress is not None:
            progress(k)

    def accuracy(v):
        right, n = (sum(col) for col in zip(*per_clip[v])) if per_clip[v] else (0, 0)
        return right / n if n else None

    def row(v, s):
        means = {f"{name}_mean_ms": t / total if total else None for name, t in s["stage_ms"].items()}
        return {"accuracy": accuracy(v), "no_input": s["no_input"], **s["counters"], **means}

    return {"clips": len(files), "frames": total, "setting": key, "agreement": agree / total if total else None,
            "difference": paired_difference(per_clip[first], per_clip[last]) if first != last else None,
            f"by_{key or 'settings'}": {str(v if key else "default"): row(v, s) for v, s in stats.items()}}


def describe_accuracy(acc: dict, adapter) -> list[str]:
    """``live_accuracy``'s result as the lines ``bench-demo`` prints (``acc["corpus"]``
    says where the recordings came from)."""
    key = acc.get("setting")
    by = acc[f"by_{key or 'settings'}"]
    unit = "frame" if adapter.needs_video else "step"
    missing = " or ".join(adapter.live_reported.values()) or "without a model input"
    name = (lambda v: f"{key.replace('_', ' ')} {v}") if key else (lambda v: v)

    def cells(v):
        times = [f"{stage} {v[f'{stage}_mean_ms']:.1f} ms/{unit}" for stage in adapter.live_stages
                 if v.get(f"{stage}_mean_ms") is not None]
        counts = [f"{v[c]} {c}" for c in v if c not in ("accuracy", "no_input") and not c.endswith("_mean_ms")]
        return ", ".join(times + counts)

    lines = [f"live label accuracy on {acc['clips']} labelled clips ({acc['frames']} {unit}s, {acc['corpus']}; "
             f"a {unit} {missing} counts as wrong): "
             + ", ".join(f"{name(e)}: {v['accuracy']:.1%} ({cells(v)})" for e, v in by.items())
             + (f"; labels agree on {acc['agreement']:.1%} of {unit}s" if len(by) == 2 else "")]
    d = acc.get("difference")
    if d:
        first, last = list(by)
        lines.append(f"{name(last)} minus {name(first)}: {d['pp']:+.1f} points, 95 % interval "
                     f"[{d['ci95_pp'][0]:+.1f}, {d['ci95_pp'][1]:+.1f}] ({d['method']})")
    return lines
