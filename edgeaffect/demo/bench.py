"""Media for the demo benchmark: a real face (scikit-image's astronaut photograph, which
ships with the package) in a 640x480 30 fps video, and 16 kHz speech-like audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeaffect._optional import require


def astronaut_frame(width: int = 640, height: int = 480) -> np.ndarray:
    data = require("skimage.data", "dev", "scikit-image")
    import cv2

    rgb = data.astronaut()
    frame = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (height, height))  # keep the face square
    canvas = np.full((height, width, 3), 40, np.uint8)
    x0 = (width - height) // 2
    canvas[:, x0:x0 + height] = frame
    return canvas


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


def make_demo_media(folder: Path, seconds: float, fps: int = 30, sr: int = 16000) -> tuple[Path, Path]:
    import cv2

    from edgeaffect.media.audio import write_wav

    video = folder / "astronaut.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    base = astronaut_frame()
    for i in range(int(seconds * fps)):
        writer.write(np.roll(base, (i % 10) - 5, axis=1))  # a little motion, the face stays detectable
    writer.release()
    wav = folder / "speech.wav"
    write_wav(wav, speech_like(sr, seconds), sr)
    return video, wav


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


def live_accuracy(model, files: list[Path], label_of, config, every_values=(1, 6), progress=None) -> dict:
    """The live path's label on every frame of labelled clips, as the demo makes it (the
    adapter's ``live_input`` on the frame and the audio up to that frame's time in the
    demo's ring, the model, the smoothing), once per face-detection interval in
    ``every_values``, in the same run: the accuracy of the label on screen per interval (a
    frame without a face counts as wrong), how often the intervals' labels agree, and the
    mean face-stage time of each. ``model``: an ``ExportedModel``."""
    from dataclasses import replace
    from types import SimpleNamespace

    from edgeaffect.demo.sources import AudioRing
    from edgeaffect.media import read_audio
    from edgeaffect.media.video import read_all_frames

    ad = model.adapter
    stats = {e: {"no_face": 0, "face_ms": 0.0, "detections": 0} for e in every_values}
    per_clip = {e: [] for e in every_values}  # (right, frames) per clip
    agree = total = 0
    first, last = every_values[0], every_values[-1]
    for k, f in enumerate(files, 1):
        truth = label_of(f)
        if truth is None:
            continue
        frames, fps = read_all_frames(f)
        y, sr = read_audio(f)
        labels = {}
        for e in every_values:
            cfg = replace(config, detect_every=e)
            live = type(ad)(ad.preprocessing, ad.task, ad.labels)  # fresh tracking state per clip
            mic = SimpleNamespace(ring=AudioRing(sr))
            recent, got, heard = [], [], 0
            for i, frame in enumerate(frames):
                end = int(round((i + 1) / fps * sr))
                mic.ring.write(y[heard:end])
                heard = max(heard, end)
                step = live.live_input(frame, mic, cfg)
                stats[e]["face_ms"] += step.stage_ms.get("face", 0.0)
                if step.status != "ok":
                    stats[e]["no_face"] += 1
                    got.append(None)
                    continue
                outputs = model.outputs(step.x)
                recent = (recent + [ad.combine(outputs)])[-config.smooth:]
                got.append(model.task.prediction(ad.smooth(recent), outputs, model.labels).decision)
            stats[e]["detections"] += getattr(getattr(live, "_tracker", None), "detections", 0)
            per_clip[e].append((sum(g == truth for g in got), len(frames)))
            labels[e] = got
        agree += sum(p == q for p, q in zip(labels[first], labels[last]))
        total += len(frames)
        if progress is not None:
            progress(k)

    def accuracy(e):
        right, n = (sum(col) for col in zip(*per_clip[e])) if per_clip[e] else (0, 0)
        return right / n if n else None

    return {"clips": len(files), "frames": total, "agreement": agree / total if total else None,
            "difference": paired_difference(per_clip[first], per_clip[last]) if first != last else None,
            "by_detect_every": {str(e): {"accuracy": accuracy(e), "no_face": s["no_face"], "searches": s["detections"],
                                         "face_mean_ms": s["face_ms"] / total if total else None}
                                for e, s in stats.items()}}
