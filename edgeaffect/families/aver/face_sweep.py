"""How tight a clip's frame-to-frame face track can be: time, box agreement with the paper's
exhaustive pass, and clip labels, for each (track_ratio, track_margin) setting, in one run.

    python -m edgeaffect.families.aver.face_sweep BUNDLE CORPUS [--settings 1.33:0.35,1.15:0.2]

One thread for decoding, OpenCV and BLAS; each clip's six frames are decoded once, then every setting's face
search runs on them in turn (the order rotates per clip), so the time ratios share the
machine's state. Boxes are compared with the exhaustive pass on the same frames; labels
come from the bundle's model on each setting's crops, against the clip's true label.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import edgeaffect.families.aver.faces as F


def box_iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter)


def parse_settings(text: str) -> list[tuple[float, float]]:
    """``"1.33:0.35,1.15:0.2"`` -> [(1.33, 0.35), (1.15, 0.2)] (ratio:margin pairs)."""
    out = []
    for part in text.split(","):
        ratio, _, margin = part.partition(":")
        try:
            r, m = float(ratio), float(margin)
        except ValueError:
            raise ValueError(f"bad setting {part!r}: give ratio:margin, e.g. 1.15:0.2") from None
        if r <= 1 or m < 0:
            raise ValueError(f"bad setting {part!r}: the ratio must be > 1 and the margin >= 0")
        out.append((r, m))
    return out


def sweep(bundle: Path, clips: list[Path], settings: list[tuple[float, float]], label_of) -> list[dict]:
    from edgeaffect.device.predict import ExportedModel
    from edgeaffect.families.aver.features import audio_features

    model = ExportedModel(bundle, threads=1)
    adapter = model.adapter
    face = adapter.features.face
    configs = [replace(face, track_ratio=r, track_margin=m) for r, m in settings]
    reference = replace(face, search="exhaustive")
    rows = [{"ratio": r, "margin": m, "ms": [], "iou": [], "miss": 0, "frames": 0, "right": 0, "same": 0}
            for r, m in settings]
    ref_right = 0
    for k, clip in enumerate(clips):
        frames, y, sr = adapter.load(clip)
        grays = [F.to_gray(f) for f in frames]
        mfcc = audio_features(y, sr, adapter.features)  # the same for every setting
        ref_boxes = F.find_faces(grays, reference)
        ref_label = _label(model, grays, ref_boxes, mfcc)
        truth = label_of(clip)
        ref_right += ref_label == truth
        order = list(range(len(settings)))
        for i in order[k % len(order):] + order[:k % len(order)]:  # rotated per clip
            t = time.perf_counter()
            boxes = F.find_faces(grays, configs[i])
            rows[i]["ms"].append((time.perf_counter() - t) * 1e3)
            for a, b in zip(ref_boxes, boxes):
                rows[i]["frames"] += 1
                if (a is None) != (b is None):
                    rows[i]["miss"] += 1
                elif a is not None:
                    rows[i]["iou"].append(box_iou(a, b))
            label = _label(model, grays, boxes, mfcc)
            rows[i]["right"] += label == truth
            rows[i]["same"] += label == ref_label
    n = len(clips)
    return [{"track_ratio": r["ratio"], "track_margin": r["margin"], "faces_ms_p50": statistics.median(r["ms"]),
             "iou_median": float(np.median(r["iou"])), "iou_p5": float(np.percentile(r["iou"], 5)),
             "frames_found_by_one_only": r["miss"], "frames": r["frames"], "clip_accuracy": r["right"] / n,
             "reference_accuracy": ref_right / n, "labels_equal_to_reference": r["same"] / n, "clips": n}
            for r in rows]


def _label(model, grays, boxes, mfcc):
    """The bundle's label from these boxes' crops (as ``AverAdapter.inputs`` makes them)."""
    from edgeaffect.families.aver.faces import NoFaceError
    from edgeaffect.families.aver.features import crops_from_boxes, model_inputs

    adapter = model.adapter
    try:
        faces = crops_from_boxes(grays, boxes, adapter.features)
    except NoFaceError:  # no face in any sampled frame: no label, counted wrong
        return None
    x = model_inputs({"face": faces, "mfcc": mfcc}, adapter.mean, adapter.std)
    return adapter.prediction(model.outputs(x), x).decision


def main(argv: list[str] | None = None) -> int:
    import argparse

    from edgeaffect.contract import get_family
    from edgeaffect.logs import quiet_python
    from edgeaffect.measure.bench import held_to_threads
    from edgeaffect.machine import machine

    p = argparse.ArgumentParser(prog="python -m edgeaffect.families.aver.face_sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("bundle", type=Path, help="an audio-visual bundle or export folder (make demo's)")
    p.add_argument("corpus", type=Path, help="labelled clips in the bundle's corpus layout")
    p.add_argument("--settings", default="1.33:0.35,1.2:0.25,1.15:0.2,1.1:0.15", help="ratio:margin pairs")
    p.add_argument("--clips", type=int, default=240, help="clips taken evenly from the corpus")
    args = p.parse_args(argv)
    quiet_python()
    try:
        settings = parse_settings(args.settings)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    family = get_family("aver")
    found = [c for c in family.recordings(args.corpus) if family.recording_label(c) is not None]
    if not found:
        print(f"error: no labelled clips under {args.corpus}: give the corpus the bundle was trained on", file=sys.stderr)
        return 2
    clips = found[:: max(1, len(found) // args.clips)][: args.clips]
    with held_to_threads(1):  # decoding, OpenCV and BLAS: the times are one core's
        rows = sweep(args.bundle, clips, settings, family.recording_label)
    print(f"machine: {machine()}; {len(clips)} clips, one thread; faces ms = the six frames' search per clip (p50)")
    print("| track_ratio | track_margin | faces ms/clip p50 | box IoU to exhaustive median / p5 | frames found by one only "
          "| clip accuracy (exhaustive) | labels = exhaustive |")
    print("|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['track_ratio']:g} | {r['track_margin']:g} | {r['faces_ms_p50']:.1f} | {r['iou_median']:.3f} / "
              f"{r['iou_p5']:.3f} | {r['frames_found_by_one_only']} / {r['frames']} | {r['clip_accuracy']:.1%} "
              f"({r['reference_accuracy']:.1%}) | {r['labels_equal_to_reference']:.1%} |")
    return 0


if __name__ == "__main__":
    from edgeaffect.logs import filter_native_stderr

    filter_native_stderr()  # the runtime's native log lines; only when run as a command
    sys.exit(main())
