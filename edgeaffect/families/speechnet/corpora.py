"""Speech emotion corpora by their real layouts, one reader per corpus, registered by name.

Every reader turns a corpus folder into ``Utterance`` rows (wav path, label name,
speaker); ``find_utterances`` picks the reader by name or recognises the layout.
Labels use one vocabulary across corpora (``angry``, ``happy``, ...). Unrecognised
files are ignored; a folder with no recognised file is an error naming the layouts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edgeaffect._optional import lookup
from edgeaffect.families.aver.ravdess import EMOTIONS as RAVDESS_EMOTIONS
from edgeaffect.families.aver.ravdess import parse_name as parse_ravdess
from edgeaffect.errors import InputError


@dataclass(frozen=True)
class Utterance:
    path: Path
    label: str
    speaker: str


@dataclass(frozen=True)
class Corpus:
    name: str
    labels: tuple[str, ...]  # the model's class order
    layout: str  # one line, for error messages
    read: Callable[[Path], list[Utterance]]


CORPORA: dict[str, Corpus] = {}


def _register(name: str, labels: tuple, layout: str):
    def wrap(fn):
        CORPORA[name] = Corpus(name, labels, layout, fn)
        return fn

    return wrap


def _wavs(root: Path):
    return sorted(p for p in root.rglob("*") if p.suffix.lower() == ".wav" and not p.name.startswith("."))


# --- EmoDB: 03a01Fa.wav = speaker 03, text a01, emotion F (German initial), version a ---
EMODB_LETTERS = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fearful", "F": "happy", "T": "sad",
                 "N": "neutral"}
_EMODB = re.compile(r"^(\d\d)([ab]\d\d)([WLEAFTN])([a-z])\.wav$")


@_register("emodb", ("angry", "boredom", "disgust", "fearful", "happy", "sad", "neutral"),
           "EmoDB: wav/03a01Fa.wav (speaker, text, emotion letter W L E A F T N, version)")
def read_emodb(root: Path) -> list[Utterance]:
    out = []
    for p in _wavs(root):
        m = _EMODB.match(p.name)
        if m:
            out.append(Utterance(p, EMODB_LETTERS[m.group(3)], m.group(1)))
    return out


# --- SAVEE: AudioData/DC/sa01.wav, or flattened DC_sa01.wav ---
SAVEE_CODES = {"a": "angry", "d": "disgust", "f": "fearful", "h": "happy", "n": "neutral", "sa": "sad",
               "su": "surprised"}
_SAVEE_SPEAKERS = ("DC", "JE", "JK", "KL")
_SAVEE = re.compile(r"^(?:(DC|JE|JK|KL)_)?(sa|su|a|d|f|h|n)(\d\d)\.wav$")


@_register("savee", ("angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised"),
           "SAVEE: AudioData/<DC|JE|JK|KL>/<a|d|f|h|n|sa|su>NN.wav, or flattened DC_a01.wav")
def read_savee(root: Path) -> list[Utterance]:
    out = []
    for p in _wavs(root):
        m = _SAVEE.match(p.name)
        if not m:
            continue
        speaker = m.group(1) or (p.parent.name if p.parent.name in _SAVEE_SPEAKERS else None)
        if speaker:
            out.append(Utterance(p, SAVEE_CODES[m.group(2)], speaker))
    return out


# --- RAVDESS audio-only speech: Actor_XX/03-01-EE-II-SS-RR-AA.wav ---
@_register("ravdess", RAVDESS_EMOTIONS, "RAVDESS audio: Actor_XX/03-01-EE-II-SS-RR-AA.wav (speech only)")
def read_ravdess_audio(root: Path) -> list[Utterance]:
    out = []
    for p in _wavs(root):
        n = parse_ravdess(p.name)
        if n is not None and n.modality == "03" and n.vocal_channel == "01":
            out.append(Utterance(p, RAVDESS_EMOTIONS[n.emotion], f"{n.actor:02d}"))
    return out


# --- CREMA-D: AudioWAV/1001_DFA_ANG_XX.wav = actor, sentence, emotion, level ---
CREMAD_CODES = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
_CREMAD = re.compile(r"^(\d{4})_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_(LO|MD|HI|XX|X)\.wav$")


@_register("crema-d", ("angry", "disgust", "fearful", "happy", "neutral", "sad"),
           "CREMA-D: AudioWAV/1001_DFA_ANG_XX.wav (actor, sentence, emotion, level)")
def read_cremad(root: Path) -> list[Utterance]:
    out = []
    for p in _wavs(root):
        m = _CREMAD.match(p.name)
        if m:
            out.append(Utterance(p, CREMAD_CODES[m.group(3)], m.group(1)))
    return out


# --- IEMOCAP, 4 classes (excited merged into happy; other labels left out) ---
IEMOCAP_CODES = {"neu": "neutral", "ang": "angry", "sad": "sad", "hap": "happy", "exc": "happy"}
_IEMOCAP_LINE = re.compile(r"^\[[\d.]+\s*-\s*[\d.]+\]\s+(Ses\d\d[FM]_\S+)\s+(\w+)\s+\[")


@_register("iemocap", ("angry", "happy", "neutral", "sad"),
           "IEMOCAP: Session{1..5}/sentences/wav/<dialog>/<utt>.wav with labels in "
           "Session*/dialog/EmoEvaluation/*.txt")
def read_iemocap(root: Path) -> list[Utterance]:
    labels: dict[str, str] = {}
    for txt in sorted(root.glob("Session*/dialog/EmoEvaluation/*.txt")):
        for line in _lines(txt):
            m = _IEMOCAP_LINE.match(line)
            if m and m.group(2) in IEMOCAP_CODES:
                labels[m.group(1)] = IEMOCAP_CODES[m.group(2)]
    out = []
    for p in sorted(root.glob("Session*/sentences/wav/*/*.wav")):
        label = labels.get(p.stem)
        if label:  # speaker: session and the speaking actor's gender (last field, e.g. ..._F000)
            out.append(Utterance(p, label, p.stem[:5] + p.stem.rsplit("_", 1)[-1][0]))
    return out


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError as exc:  # a folder or a link to nowhere under a label file's name
        raise InputError(f"cannot read the label file {path} ({exc})") from None


def detect_corpus(root: Path) -> str | None:
    """The registered corpus whose reader recognises the most files under ``root``."""
    counts = {name: len(c.read(root)) for name, c in CORPORA.items()}
    best = max(counts, key=counts.get)
    return best if counts[best] else None


def find_utterances(root: str | Path, corpus: str | None = None) -> tuple[Corpus, list[Utterance]]:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"corpus folder not found: {root}")
    name = corpus or detect_corpus(root)
    if name is None:
        layouts = "; ".join(c.layout for c in CORPORA.values())
        raise InputError(f"no recognised speech-emotion corpus under {root}. Known layouts: {layouts}")
    spec = lookup("corpus", name, CORPORA)
    rows = spec.read(root)
    if not rows:
        raise InputError(f"no {name} files under {root}; expected {spec.layout}")
    return spec, rows
