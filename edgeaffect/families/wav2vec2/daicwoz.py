"""DAIC-WOZ (and, by assumption, CMDC) on disk -> participants, labels, official splits, and
each participant's speech (silences and noise removed inside the turns when a ``VadSettings``
is given: ``vad.py``) cut into non-overlapping fixed-length segments. NumPy only (the
device side cuts a recording the same way).

DAIC-WOZ layout (the distribution's names):

    <root>/XXX_P/XXX_AUDIO.wav           16 kHz interview (interviewer and participant)
    <root>/XXX_P/XXX_TRANSCRIPT.csv      tab-separated: start_time, stop_time, speaker, value
                                         (speaker "Ellie" or "Participant"; times in seconds)
    <root>/train_split_Depression_AVEC2017.csv   Participant_ID, PHQ8_Binary, PHQ8_Score, ...
    <root>/dev_split_Depression_AVEC2017.csv     the same columns
    <root>/test_split_Depression_AVEC2017.csv    participant_ID, Gender (no labels as released);
    <root>/full_test_split.csv                   (optional) Participant_ID, PHQ_Binary, PHQ_Score

Test participants without labels are read but never scored. CMDC's layout is unverified;
the assumption (model card) is the same tree with the participant's speech only in the
audio (no transcript needed: every second is the participant's) and the same split-file
format under the names ``{train,dev,test}_split.csv``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError
from edgeaffect.families.wav2vec2.vad import VadSettings, runs, speech_mask
from edgeaffect.media.audio import resample  # noqa: F401  (families import it from here)

SPLIT_FILES = {"daicwoz": {"train": "train_split_Depression_AVEC2017.csv", "val": "dev_split_Depression_AVEC2017.csv",
                           "test": "test_split_Depression_AVEC2017.csv"},
               "cmdc": {"train": "train_split.csv", "val": "dev_split.csv", "test": "test_split.csv"}}
FULL_TEST = "full_test_split.csv"
LAYOUTS = tuple(SPLIT_FILES)
PARTICIPANT = "participant"
# A transcript's last stop may run this far past the audio's end (rounding of the times).
END_TOLERANCE_S = 0.5


@dataclass(frozen=True)
class Participant:
    pid: str
    audio: Path
    transcript: Path | None  # None: the whole recording is the participant's (CMDC assumption)
    label: int  # PHQ8_Binary; -1 when the split file gives none (the released test split)
    score: float  # PHQ8_Score; nan when unknown
    part: str  # train / val / test (the official split; val is DAIC-WOZ's "dev")


def _columns(header: list[str]) -> dict[str, int]:
    return {h.strip().lower(): i for i, h in enumerate(header)}


def _find(cols: dict[str, int], *names: str) -> int | None:
    for n in names:
        if n in cols:
            return cols[n]
    return None


def read_split(path: Path) -> list[tuple[str, int, float]]:
    """(participant id, binary label or -1, score or nan) per row of a split file."""
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read split file {path}: {exc}") from None
    if not rows:
        raise InputError(f"split file {path} is empty")
    cols = _columns(rows[0])
    pid = _find(cols, "participant_id")
    if pid is None:
        raise InputError(f"split file {path} has no Participant_ID column (header: {','.join(rows[0])})")
    lab = _find(cols, "phq8_binary", "phq_binary")
    sco = _find(cols, "phq8_score", "phq_score")
    out = []
    for n, r in enumerate(rows[1:], start=2):
        try:
            p = str(int(float(r[pid])))
            y = int(float(r[lab])) if lab is not None and r[lab].strip() else -1
            s = float(r[sco]) if sco is not None and r[sco].strip() else float("nan")
        except (ValueError, IndexError, OverflowError):  # OverflowError: "inf" as an id or label
            raise InputError(f"{path} line {n}: expected a participant id and PHQ-8 numbers, got {','.join(r)!r}") \
                from None
        if y not in (-1, 0, 1):
            raise InputError(f"{path} line {n}: PHQ8_Binary must be 0 or 1, got {y}")
        if not (np.isnan(s) or 0 <= s < np.inf):  # an infinite score would be written into run.json as Infinity
            raise InputError(f"{path} line {n}: a PHQ score is a number from 0 (or empty when unknown), "
                             f"got {r[sco]!r}")
        out.append((p, y, s))
    return out


def detect_layout(root: Path) -> str:
    for name, files in SPLIT_FILES.items():
        if (root / files["train"]).is_file():
            return name
    raise InputError(f"{root} is not a DAIC-WOZ tree: expected {SPLIT_FILES['daicwoz']['train']} and XXX_P/ "
                     f"folders (CMDC, as assumed: {SPLIT_FILES['cmdc']['train']})")


def find_participants(root: str | Path, corpus: str | None = None) -> tuple[str, list[Participant]]:
    """Every participant named by the official split files, in split then file order."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"corpus folder not found: {root}")
    if corpus is not None and corpus not in SPLIT_FILES:
        raise InputError(f"unknown depression corpus layout '{corpus}'; choose one of: {', '.join(LAYOUTS)}")
    layout = corpus or detect_layout(root)
    full_test = {}
    if (root / FULL_TEST).is_file():
        full_test = {p: (y, s) for p, y, s in read_split(root / FULL_TEST)}
    out, seen = [], set()
    for part, name in SPLIT_FILES[layout].items():
        path = root / name
        if not path.is_file():
            if part == "train":
                raise InputError(f"{path} is missing: the training split file is needed")
            continue
        for pid, y, s in read_split(path):
            if y < 0 and pid in full_test:
                y, s = full_test[pid]
            if pid in seen:
                raise InputError(f"participant {pid} is in more than one split file ({path.name})")
            seen.add(pid)
            folder = root / f"{pid}_P"
            audio = folder / f"{pid}_AUDIO.wav"
            transcript = folder / f"{pid}_TRANSCRIPT.csv"
            if not audio.is_file():
                raise InputError(f"{path.name} names participant {pid}, but {audio} is missing")
            if layout == "daicwoz" and not transcript.is_file():
                raise InputError(f"{path.name} names participant {pid}, but {transcript} is missing")
            out.append(Participant(pid, audio, transcript if transcript.is_file() else None, y, s, part))
    if not any(p.part == "train" for p in out):
        raise InputError(f"{root}: the training split file names no participant")
    return layout, out


# --------------------------------------------------------------------------- transcripts

def read_transcript(path: Path, speaker: str = PARTICIPANT) -> np.ndarray:
    """The (start, stop) times in seconds [shape=(n, 2)] of ``speaker``'s turns, sorted."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read transcript {path}: {exc}") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError(f"transcript {path} is empty")
    delim = "\t" if "\t" in lines[0] else ","
    rows = list(csv.reader(lines, delimiter=delim))
    cols = _columns(rows[0])
    a, b, s = _find(cols, "start_time"), _find(cols, "stop_time"), _find(cols, "speaker")
    if a is None or b is None or s is None:
        raise InputError(f"transcript {path} needs start_time, stop_time and speaker columns "
                         f"(header: {' '.join(rows[0])})")
    times = []
    for n, r in enumerate(rows[1:], start=2):
        try:
            if r[s].strip().lower() != speaker:
                continue
            t0, t1 = float(r[a]), float(r[b])
        except (ValueError, IndexError):
            raise InputError(f"{path} line {n}: expected start_time, stop_time and speaker, got {r!r}") from None
        if not (np.isfinite(t0) and np.isfinite(t1)) or t0 < 0 or t1 < t0:
            raise InputError(f"{path} line {n}: a turn from {t0} s to {t1} s is not a time span")
        times.append((t0, t1))
    return np.asarray(sorted(times), np.float64).reshape(-1, 2)


def turn_mask(n: int, sr: int, turns: np.ndarray, what: str) -> np.ndarray:
    """Which of ``n`` samples lie inside ``turns`` (seconds), overlaps counted once. A turn
    ending past the audio (beyond rounding) means the transcript belongs to another recording."""
    duration = n / sr
    if turns.size and turns[:, 1].max() > duration + END_TOLERANCE_S:
        raise InputError(f"{what}: the transcript has speech up to {turns[:, 1].max():.1f} s but the audio lasts "
                         f"{duration:.1f} s; the transcript does not match the recording")
    keep = np.zeros(n, bool)
    for t0, t1 in turns:
        keep[int(round(t0 * sr)): int(round(t1 * sr))] = True
    return keep


def speech_only(y: np.ndarray, sr: int, turns: np.ndarray, what: str) -> np.ndarray:
    """The samples inside ``turns`` (seconds), in order, overlaps counted once."""
    return y[turn_mask(y.size, sr, turns, what)]


def voiced_speech(y: np.ndarray, sr: int, turns: np.ndarray | None, vad: VadSettings, what: str) -> np.ndarray:
    """The samples inside ``turns`` (None: the whole recording) that the voice-activity step
    keeps (silences and noise removed inside each turn, ``vad.py``), in order."""
    inside = turn_mask(y.size, sr, turns, what) if turns is not None else np.ones(y.size, bool)
    return y[speech_mask(y, sr, vad, spans=list(zip(*runs(inside))))]


# --------------------------------------------------------------------------- segments

def cut_segments(speech: np.ndarray, samples: int, tail: str = "drop") -> np.ndarray:
    """Non-overlapping segments of ``samples`` in order [shape=(n, samples)]. ``tail``: "drop"
    the last partial segment, or "pad" it with zeros (when at least half a segment)."""
    n = speech.size // samples
    segs = speech[: n * samples].reshape(n, samples)
    rest = speech[n * samples:]
    if tail == "pad" and rest.size >= samples // 2:
        segs = np.concatenate([segs, np.pad(rest, (0, samples - rest.size))[None]])
    return segs.astype(np.float32)


def normalise(segments: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per segment, in float32 (wav2vec 2.0's feature extractor,
    epsilon 1e-7; the same arithmetic as ``backbone.normalise_audio``)."""
    x = np.asarray(segments, np.float32)
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + 1e-7)).astype(np.float32)


def participant_segments(y: np.ndarray, sr: int, turns: np.ndarray | None, *, sample_rate: int, segment_s: float,
                         tail: str, what: str, vad: VadSettings | None = None) -> np.ndarray:
    """A recording (and its participant's turns; None: all of it) -> the segments, raw.
    ``vad``: remove silences and noise inside the turns first (None: keep whole turns)."""
    y = np.asarray(y, np.float32)
    if not np.all(np.isfinite(y)):
        raise InputError(f"{what}: the audio holds NaN or infinite samples; re-export the file")
    if vad is None:
        speech = speech_only(y, sr, turns, what) if turns is not None else y
    else:
        speech = voiced_speech(y, sr, turns, vad, what)
    speech = resample(speech, int(sr), sample_rate) if speech.size else speech
    samples = int(round(segment_s * sample_rate))
    segs = cut_segments(speech, samples, tail)
    if not len(segs):
        if turns is not None and not turns.size:
            said = "no participant turns"
        else:
            said = f"{speech.size / sample_rate:.1f} s of participant speech" + (
                "" if vad is None else " left after silence and noise removal (voice activity)")
        raise InputError(f"{what}: {said}, less than one {segment_s:g} s segment; "
                         "a participant needs speech to be scored")
    return segs
