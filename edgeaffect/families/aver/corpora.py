"""The audio-visual corpora AVER reads, one reader per layout, by name (``--corpus``) or
recognised from the folder:

- ``ravdess``: ``Actor_XX/01-01-EE-II-SS-RR-AA.mp4`` (``ravdess.py``).
- ``savee``: ``AudioVisualClip/<DC|JE|JK|KL>/<a|d|f|h|n|sa|su>NN.avi``, audio inside the
  clip. The distribution's audio-visual folder name and container are unverified; this is
  the assumption written in edgeaffect/families/aver/README.md.
- ``mead``: ``<M|W>NNN/video/front/<emotion>/level_<n>/NNN.mp4``, the frontal camera;
  audio from ``<actor>/audio/<emotion>/level_<n>/NNN.(m4a|wav)`` when that file exists,
  otherwise from the mp4 itself. MEAD's layout is unverified (assumption in the card).

Each reader returns ``Clip`` rows whose label indexes the model's own label order.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgeaffect.errors import InputError
from edgeaffect.families.aver.ravdess import Clip, find_clips

SAVEE_CODES = {"a": "angry", "d": "disgust", "f": "fearful", "h": "happy", "n": "neutral", "sa": "sad",
               "su": "surprised"}
SAVEE_SPEAKERS = ("DC", "JE", "JK", "KL")
_SAVEE = re.compile(r"^(sa|su|a|d|f|h|n)(\d\d)\.(avi|mp4)$", re.IGNORECASE)
MEAD_EMOTIONS = ("neutral", "angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised")
MEAD_VIEW = "front"
_MEAD_ACTOR = re.compile(r"^[MW]\d{3}$")

LAYOUTS = {
    "ravdess": "Actor_XX/01-01-EE-II-SS-RR-AA.mp4 (or 02-...mp4 with the matching 03-...wav)",
    "savee": "AudioVisualClip/<DC|JE|JK|KL>/<a|d|f|h|n|sa|su>NN.avi (audio inside)",
    "mead": "<M|W>NNN/video/front/<emotion>/level_<n>/NNN.mp4 (audio: <actor>/audio/<emotion>/level_<n>/NNN.m4a "
            "or the mp4's own)",
}


def _index(label: str, labels: tuple, corpus: str) -> int:
    if label not in labels:
        raise InputError(f"{corpus} label '{label}' is not one of the model's labels ({', '.join(labels)}); "
                         f"train a model made for {corpus}")
    return labels.index(label)


def read_savee(root: Path, labels: tuple) -> list[Clip]:
    clips = []
    for path in sorted(root.rglob("*")):
        m = _SAVEE.match(path.name)
        if not m or path.parent.name not in SAVEE_SPEAKERS:
            continue
        label = _index(SAVEE_CODES[m.group(1).lower()], labels, "SAVEE")
        clips.append(Clip(path, path, label, path.parent.name, None))
    return clips


def read_mead(root: Path, labels: tuple) -> list[Clip]:
    clips = []
    for actor in sorted(p for p in root.iterdir() if p.is_dir() and _MEAD_ACTOR.match(p.name)):
        for video in sorted((actor / "video" / MEAD_VIEW).glob("*/level_*/*.mp4")):
            emotion, level = video.parent.parent.name, video.parent.name
            if emotion not in MEAD_EMOTIONS:
                continue
            audio = video
            for ext in (".m4a", ".wav"):
                candidate = actor / "audio" / emotion / level / (video.stem + ext)
                if candidate.is_file():
                    audio = candidate
                    break
            clips.append(Clip(video, audio, _index(emotion, labels, "MEAD"), actor.name, None))
    return clips


def detect_layout(root: Path) -> str | None:
    if any(root.glob("Actor_*")) or any(root.glob("*/Actor_*")):
        return "ravdess"
    if any((root / "AudioVisualClip" / s).is_dir() for s in SAVEE_SPEAKERS):
        return "savee"
    if any(_MEAD_ACTOR.match(p.name) and (p / "video").is_dir() for p in root.iterdir() if p.is_dir()):
        return "mead"
    return None


def find_av_clips(root: str | Path, labels: tuple, corpus: str | None = None) -> list[Clip]:
    """The clips of the corpus under ``root`` (layout ``corpus``, or recognised)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset folder not found: {root}")
    if corpus is not None and corpus not in LAYOUTS:
        raise InputError(f"unknown audio-visual corpus layout '{corpus}'; choose one of: {', '.join(LAYOUTS)}")
    layout = corpus or detect_layout(root)
    if layout is None:
        raise InputError(f"no audio-visual emotion corpus under {root}; known layouts: "
                         + "; ".join(f"{k}: {v}" for k, v in LAYOUTS.items()))
    if layout == "ravdess":
        return find_clips(root)
    clips = (read_savee if layout == "savee" else read_mead)(root, labels)
    if not clips:
        raise InputError(f"no {layout} clips under {root}; expected {LAYOUTS[layout]}")
    return sorted(clips, key=lambda c: str(c.video.relative_to(root)))
