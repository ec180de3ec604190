"""Seeded fuzzing of the recordings a user hands to the speech and depression models (issue 30):
damaged and odd audio files (truncated or lying WAV headers, empty files, wrong, absurd or
missing sample rates, 8 / 16 / 24 / 32-bit, float and A-law WAV, many channels, NaN and inf
samples, text or noise named .wav, very short clips, silence, clipping, FLAC) and, beside a
DAIC-WOZ-named recording, damaged transcripts. Each goes to

- ``edgeaffect predict`` on three hand-made bundles (SpeechNet; spectrotemporal and wav2vec2,
  each in its two stages), whose model files are tiny ONNX graphs with the real input and
  output names and shapes, so an accepted recording runs to a printed prediction;
- the training side's per-recording steps that ``train`` / ``reproduce`` run over a corpus
  (SpeechNet's librosa fusion features; the spectrotemporal dataset's ``_recording``; the
  wav2vec2 corpus's cut into participant segments).

Invariant: success, or one line ``error: ...`` (exit 2 on the command line) naming what is
wrong; no other exception, no case running past its deadline (a hang), nothing written into
the bundles or beside the recording. The normal suite runs a few cases; ``-m slow`` a longer
campaign. The helpers here (deadline, CLI runner, case notes) serve
``test_fuzz_report_reproduce.py`` too."""

from __future__ import annotations

import hashlib
import io
import json
import random
import signal
import struct
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from edgeaffect.errors import EdgeAffectError
from tests.test_manifest_schema import speech_manifest
from tests.test_staged_bundles import spectro_preprocessing, wav2vec2_preprocessing

# --------------------------------------------------------------------------- the harness


class Hang(Exception):
    """A case ran past its deadline."""


@contextmanager
def deadline(seconds: float, what: str):
    """Raise Hang in this (the main) thread when the block runs longer than ``seconds``."""

    def expired(signum, frame):
        raise Hang(f"{what} ran longer than {seconds:g} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextmanager
def case(description: str):
    """Name the case in whatever fails inside the block (its traceback, an assertion)."""
    try:
        yield
    except BaseException as exc:
        exc.add_note(description)
        raise


def one_line(exc: EdgeAffectError) -> str:
    """The line the command line prints for ``exc``, checked to be one line that says something."""
    line = f"error: {exc}"
    assert "\n" not in line and "\r" not in line and len(line) > len("error: ") + 5, repr(line)
    return line


def run_cli(*args, seconds: float = 60.0) -> tuple[int, str]:
    """The command line in this process, as ``main`` runs it: (exit code, the error line or "").
    Any exception but an EdgeAffectError escapes and fails the test with its traceback."""
    from edgeaffect.cli import app

    # Its output goes where a terminal's would: UTF-8, strict (what it cannot print fails here too).
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    with deadline(seconds, " ".join(map(str, args[:2]))), redirect_stdout(out):
        try:
            code = app([str(a) for a in args], standalone_mode=False)
        except EdgeAffectError as exc:
            return exc.exit_code, one_line(exc)
    return code or 0, ""


def call(fn, *args, seconds: float = 60.0):
    """``fn(*args)`` under a deadline: (its result, None) or (None, the one error line)."""
    with deadline(seconds, getattr(fn, "__name__", "call")):
        try:
            return fn(*args), None
        except EdgeAffectError as exc:
            return None, one_line(exc)


def tree(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- tiny real bundles
# Input and output names and shapes as the families' adapters make and read them; the graphs
# only reduce and mix their inputs (what they compute does not matter, that they run does).

SPEECH_FRAMES, SPEECH_DIM = 48, 107
SPECTRO_FEATURES = {"n_mels": 48, "segment_s": 0.48, "segments_per_sequence": 6, "sequence_hop": 3}  # as -tiny
W2V = {"sample_rate": 16000, "segment_s": 0.5, "max_segments": 8, "frames": 10, "hidden": 8}


def _onnx(nodes, inputs: dict, outputs: dict, weights: dict) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, "fuzz", [helper.make_tensor_value_info(k, TensorProto.FLOAT, s) for k, s in inputs.items()],
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, s) for k, s in outputs.items()],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def _w(rng, *shape) -> np.ndarray:
    return (0.1 * rng.standard_normal(shape)).astype(np.float32)


def tiny_graphs() -> dict[str, bytes]:
    from onnx import helper

    n, rng = "N", np.random.default_rng(0)
    s = int(W2V["segment_s"] * W2V["sample_rate"])
    f, h, m = W2V["frames"], W2V["hidden"], W2V["max_segments"]
    return {
        "speech": _onnx([helper.make_node("ReduceMean", ["features"], ["a"], axes=[1], keepdims=0),
                         helper.make_node("MatMul", ["a", "w"], ["b"]),
                         helper.make_node("Softmax", ["b"], ["scores"], axis=1)],
                        {"features": [n, SPEECH_FRAMES, SPEECH_DIM]}, {"scores": [n, 7]},
                        {"w": _w(rng, SPEECH_DIM, 7)}),
        "extractor": _onnx([helper.make_node("ReduceMean", ["segment"], ["a"], axes=[1, 2], keepdims=0),
                            helper.make_node("MatMul", ["a", "w"], ["b"]),
                            helper.make_node("Tanh", ["b"], ["features"])],
                           {"segment": [n, 48, 48, 3]}, {"features": [n, 256]}, {"w": _w(rng, 3, 256)}),
        "sequence": _onnx([helper.make_node("Add", ["spectral", "vlnep"], ["a"]),
                           helper.make_node("ReduceMean", ["a"], ["b"], axes=[2], keepdims=0),
                           helper.make_node("ReduceMean", ["b"], ["c"], axes=[1], keepdims=1),
                           helper.make_node("Sigmoid", ["c"], ["d"]),
                           helper.make_node("Mul", ["d", "scale"], ["score"])],
                          {"spectral": [n, "S", 256], "vlnep": [n, "S", 256]}, {"score": [n, 1]},
                          {"scale": np.float32(63.0)}),
        "backbone": _onnx([helper.make_node("Reshape", ["audio", "shape"], ["a"]),
                           helper.make_node("MatMul", ["a", "w"], ["features"])],
                          {"audio": [n, s]}, {"features": [n, f, h]},
                          {"shape": np.asarray([-1, f, s // f], np.int64), "w": _w(rng, s // f, h)}),
        "head": _onnx([helper.make_node("ReduceMean", ["features"], ["a"], axes=[2, 3], keepdims=0),
                       helper.make_node("ReduceMean", ["a"], ["b"], axes=[1], keepdims=1),
                       helper.make_node("Sigmoid", ["b"], ["p"]),
                       helper.make_node("ReduceSum", ["segment_mask", "axis"], ["c"], keepdims=1),
                       helper.make_node("Add", ["c", "eps"], ["d"]),
                       helper.make_node("Div", ["segment_mask", "d"], ["w"]),
                       helper.make_node("Concat", ["p", "w"], ["out"], axis=1)],
                      {"features": [n, m, f, h], "segment_mask": [n, m]}, {"out": [n, 1 + m]},
                      {"axis": np.asarray([1], np.int64), "eps": np.float32(1e-6)}),
    }


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files_entry(data: bytes) -> dict:
    return {"onnx-fp32": {"file": "m.onnx", "format": "onnx-fp32", "runtime": "onnxruntime", "bytes": len(data),
                          "sha256": _sha(data)}}


def write_speech_bundle(folder: Path, graph: bytes) -> Path:
    m = speech_manifest()
    m.update(files=_files_entry(graph), checksums={"m.onnx": _sha(graph)}, formats=["onnx-fp32"])
    m["target"]["default_format"] = "onnx-fp32"
    folder.mkdir(parents=True)
    (folder / "m.onnx").write_bytes(graph)
    (folder / "manifest.json").write_text(json.dumps(m))
    return folder


def write_staged_bundle(folder: Path, family: str, model: str, kind: str, labels: list, preprocessing: dict,
                        stages: dict[str, tuple[dict, list, bytes]]) -> Path:
    """A staged bundle: the top manifest (checksums of the stage manifests) and one folder per
    stage with its manifest and its ONNX file."""
    common = {"manifest_version": 1, "toolkit_version": "0.1.0", "model": model, "family": family,
              "task": {"kind": kind}, "labels": labels, "verification": [], "trained": {}}
    sums = {}
    for name, (inputs, output, graph) in stages.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "m.onnx").write_bytes(graph)
        manifest = {**common, "stage": name, "preprocessing": preprocessing,
                    "inputs": {k: {"shape": v, "dtype": "float32"} for k, v in inputs.items()},
                    "output": {"name": name, "shape": output}, "files": _files_entry(graph),
                    "checksums": {"m.onnx": _sha(graph)}}
        text = json.dumps(manifest).encode()
        (folder / name / "manifest.json").write_bytes(text)
        sums[f"{name}/manifest.json"] = _sha(text)
    top = {**common, "preprocessing": preprocessing, "formats": ["onnx-fp32"], "checksums": sums,
           "stages": [{"name": n, "folder": n} for n in stages]}
    (folder / "manifest.json").write_text(json.dumps(top))
    return folder


def spectro_bundle(folder: Path, graphs: dict) -> Path:
    p = spectro_preprocessing()
    p["features"].update(SPECTRO_FEATURES)
    s = SPECTRO_FEATURES["segments_per_sequence"]
    return write_staged_bundle(folder, "spectrotemporal", "spectrotemporal-tiny", "regression", ["BDI-II"], p, {
        "extractor": ({"segment": [None, 48, 48, 3]}, [None, 256], graphs["extractor"]),
        "sequence": ({"spectral": [None, s, 256], "vlnep": [None, s, 256]}, [None, 1], graphs["sequence"])})


def wav2vec2_bundle(folder: Path, graphs: dict) -> Path:
    from edgeaffect.families.wav2vec2.vad import VadSettings

    p = {**wav2vec2_preprocessing(), **W2V, "vad": VadSettings().to_dict(), "live_segments": 2}
    samples, m = int(W2V["segment_s"] * W2V["sample_rate"]), W2V["max_segments"]
    return write_staged_bundle(folder, "wav2vec2", "wav2vec2-tiny", "detection", ["not depressed", "depressed"], p, {
        "backbone": ({"audio": [None, samples]}, [None, W2V["frames"], W2V["hidden"]], graphs["backbone"]),
        "head": ({"features": [None, m, W2V["frames"], W2V["hidden"]], "segment_mask": [None, m]}, [None, 1 + m],
                 graphs["head"])})


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    root, graphs = tmp_path_factory.mktemp("fuzz-bundles"), tiny_graphs()
    return {"speech": write_speech_bundle(root / "speech", graphs["speech"]),
            "spectrotemporal": spectro_bundle(root / "spectro", graphs),
            "wav2vec2": wav2vec2_bundle(root / "w2v", graphs)}


# --------------------------------------------------------------------------- recordings

def wav_bytes(payload: bytes, *, sr: int, channels: int, bits: int, tag: int = 1, fmt_extra: bytes = b"",
              extra_chunks: bytes = b"", data_size: int | None = None, riff_size: int | None = None,
              block_align: int | None = None) -> bytes:
    """A WAV file written field by field, so that any field can lie."""
    u32 = lambda v: struct.pack("<I", v & 0xFFFFFFFF)  # noqa: E731
    align = block_align if block_align is not None else channels * max(bits, 8) // 8
    fmt = struct.pack("<HHIIHH", tag & 0xFFFF, channels & 0xFFFF, sr & 0xFFFFFFFF, (sr * align) & 0xFFFFFFFF,
                      align & 0xFFFF, bits & 0xFFFF) + fmt_extra
    body = (b"WAVE" + b"fmt " + u32(len(fmt)) + fmt + extra_chunks + b"data"
            + u32(len(payload) if data_size is None else data_size) + payload + b"\0" * (len(payload) % 2))
    return b"RIFF" + u32(len(body) if riff_size is None else riff_size) + body


def encode(x: np.ndarray, kind: str) -> tuple[bytes, int, int]:
    """Float samples [shape=(n, channels)] in [-1, 1] -> (bytes, bits, format tag)."""
    if kind not in ("float32", "float64"):  # NaN and inf exist in float WAV only
        x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    if kind == "pcm8":
        return np.clip(np.round(x * 128 + 128), 0, 255).astype(np.uint8).tobytes(), 8, 1
    if kind in ("pcm16", "pcm32"):
        bits = 16 if kind == "pcm16" else 32
        top = 2.0 ** (bits - 1)
        return np.clip(np.round(x * top), -top, top - 1).astype(f"<i{bits // 8}").tobytes(), bits, 1
    if kind == "pcm24":
        v = np.clip(np.round(x * 2 ** 23), -2 ** 23, 2 ** 23 - 1).astype("<i4")
        return v.view(np.uint8).reshape(-1, 4)[:, :3].tobytes(), 24, 1
    if kind in ("float32", "float64"):  # NaN and inf go through as they are
        return x.astype("<f4" if kind == "float32" else "<f8").tobytes(), 32 if kind == "float32" else 64, 3
    # A-law / mu-law: 8-bit codes (any byte decodes to something)
    return np.clip(np.round(x * 127 + 128), 0, 255).astype(np.uint8).tobytes(), 8, 6 if kind == "alaw" else 7


SIGNALS = ("speech", "speech", "speech", "sine", "noise", "silence", "quiet", "dc", "square", "impulses", "nan", "inf",
           "huge")
RATES = (8000, 16000, 16000, 22050, 44100, 48000, 11025, 4000, 1000, 100, 7, 1, 0, 96000, 384000, 2 ** 31 - 1)
SECONDS = (0.0, 1e-4, 0.01, 0.1, 0.5, 1.0, 2.0, 3.5, 5.0, 8.0, 30.0)
ENCODINGS = ("pcm16", "pcm16", "pcm16", "pcm8", "pcm24", "pcm32", "float32", "float64", "alaw", "ulaw")


def signal_samples(kind: str, n: int, rng: random.Random) -> np.ndarray:
    from edgeaffect.demo.bench import speech_like
    from edgeaffect.families.spectrotemporal.synthetic import speech

    if kind == "speech":
        y = (speech(rng.uniform(0, 63), n / 8000 + 1e-3, rng.randrange(1000))[:n] if rng.random() < 0.5
             else speech_like(16000, n / 16000 + 1e-3, rng.randrange(1000))[:n])
        return np.asarray(y, np.float64)
    t = np.arange(n)
    if kind == "sine":
        return 0.5 * np.sin(t * rng.uniform(0.01, 2.0))
    if kind == "noise":
        return np.random.default_rng(rng.randrange(1000)).uniform(-0.5, 0.5, n)
    if kind == "silence":
        return np.zeros(n)
    if kind == "quiet":
        return 1e-5 * np.sin(t / 3.0)
    if kind == "dc":
        return np.full(n, rng.choice([0.5, -1.0, 1.0]))
    if kind == "square":
        return np.sign(np.sin(t / 5.0))
    if kind == "impulses":
        y = np.zeros(n)
        y[:: max(1, n // 7)] = 1.0
        return y
    y = signal_samples("speech", n, rng)
    if n:
        y[rng.randrange(n)] = {"nan": np.nan, "inf": np.inf, "huge": 1e30}[kind]
    return y


def _damage(data: bytes, rng: random.Random) -> bytes:
    """What a bad copy, a crashed writer or a hand edit does to a file."""
    b = bytearray(data)
    mode = rng.choice(["truncate-header", "truncate", "flip-header", "field", "append", "junk-chunk"])
    if mode == "truncate-header":
        return bytes(b[: rng.randrange(min(len(b), 60))])
    if mode == "truncate":
        return bytes(b[: rng.randrange(len(b))]) if b else b""
    if mode == "flip-header":
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(min(len(b), 44)) if b else 0
            if b:
                b[at] ^= 1 << rng.randrange(8)
        return bytes(b)
    if mode == "field":  # a header field (sizes, channels, rate, bits) set to an extreme
        at = rng.choice([4, 22, 24, 28, 32, 34, 40])
        value = rng.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(1 << 32)])
        if len(b) >= at + 4:
            b[at : at + (2 if at in (22, 32, 34) else 4)] = struct.pack("<I", value)[: 2 if at in (22, 32, 34) else 4]
        return bytes(b)
    if mode == "append":
        return bytes(b) + bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
    at = 36 if len(b) > 36 else len(b)  # an odd-sized or lying chunk before "data"
    size = rng.choice([1, 3, 0xFFFFFFF0, len(b)])
    return bytes(b[:at]) + b"LIST" + struct.pack("<I", size) + b"x" * rng.randint(0, 5) + bytes(b[at:])


def _flac(x: np.ndarray, sr: int) -> bytes:
    import io

    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, np.clip(x, -1, 1), sr, format="FLAC")
    return buf.getvalue()


NOT_AUDIO = [b"", b"hello, this is not audio\n" * 20, json.dumps({"audio": [1, 2, 3]}).encode(), b"RIFF",
             b"RIFF\x24\x00\x00\x00WAVE", b"RIFF\xff\xff\xff\xffWAVEfmt ", b"\x89PNG\r\n\x1a\n" + b"\0" * 100,
             b"ID3\x03\x00\x00\x00" + b"\xff" * 200, b"fLaC" + b"\0" * 50, b"OggS" + b"\x00" * 60,
             b"RF64\xff\xff\xff\xffWAVEds64", "caf\u00e9 \u00fc\u00f1\u00ef\u00e7\u00f8d\u00e9".encode("latin-1"),
             b"\0" * 4096]


def random_recording(rng: random.Random) -> tuple[str, bytes]:
    """(what it is, the file's bytes)."""
    roll = rng.random()
    if roll < 0.25:  # a usable recording in a common format: the cases must reach the models too
        sr, seconds = rng.choice([8000, 16000, 22050, 44100, 48000]), rng.uniform(3.5, 8.0)
        enc, channels = rng.choice(["pcm16", "pcm16", "pcm24", "float32", "pcm8"]), rng.choice([1, 1, 2])
        x = np.repeat(signal_samples("speech", int(seconds * sr), rng)[:, None], channels, axis=1)
        payload, bits, tag = encode(x, enc)
        return f"speech {enc} {sr} Hz {seconds:.1f} s x{channels}", wav_bytes(payload, sr=sr, channels=channels,
                                                                               bits=bits, tag=tag)
    if roll < 0.37:
        i = rng.randrange(len(NOT_AUDIO) + 1)
        data = NOT_AUDIO[i] if i < len(NOT_AUDIO) else bytes(rng.randrange(256) for _ in range(rng.randint(1, 3000)))
        return f"not audio #{i}", data
    kind, enc = rng.choice(SIGNALS), rng.choice(ENCODINGS)
    sr, seconds, channels = rng.choice(RATES), rng.choice(SECONDS), rng.choice([1, 1, 1, 2, 2, 3, 6])
    n = int(min(seconds * (sr if 1000 <= sr <= 48000 else 16000), 400_000))
    x = np.repeat(signal_samples(kind, n, rng)[:, None], channels, axis=1)
    if channels > 1 and rng.random() < 0.5:
        with np.errstate(invalid="ignore"):  # inf * 0 is NaN: one more non-finite sample
            x[:, 1:] *= rng.choice([0.0, -1.0, 0.5])  # a silent or inverted second channel
    what = f"{kind} {enc} {sr} Hz {seconds:g} s x{channels}"
    if roll < 0.45 and 1000 <= sr <= 192000 and n:
        data = _flac(np.nan_to_num(x, posinf=1.0, neginf=-1.0), sr)
        what = "flac " + what
    else:
        payload, bits, tag = encode(x, enc)
        extra = b""
        if rng.random() < 0.1:  # WAVE_FORMAT_EXTENSIBLE, with the subformat GUID of PCM or float, or a wrong one
            guid = rng.choice([struct.pack("<H", tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71",
                               bytes(rng.randrange(256) for _ in range(16))])
            extra, tag = struct.pack("<HHI", 22, bits, 0) + guid, 0xFFFE
        data = wav_bytes(payload, sr=sr, channels=channels, bits=bits, tag=tag, fmt_extra=extra)
    if rng.random() < 0.35:
        data = _damage(data, rng)
        what += " damaged"
    return what, data


def special_path(path: Path, rng: random.Random) -> str:
    """Make ``path`` something other than a readable file; returns what."""
    import os

    kind = rng.choice(["missing", "folder", "loop", "dangling", "fifo"])
    if kind == "folder":
        path.mkdir()
    elif kind == "loop":
        path.symlink_to(path.name)
    elif kind == "dangling":
        path.symlink_to("nowhere.wav")
    elif kind == "fifo":  # reading it would block for ever: it must be refused unopened
        os.mkfifo(path)
    return f"a {kind} path"


TRANSCRIPT_HEAD = "start_time\tstop_time\tspeaker\tvalue\n"


def random_transcript(rng: random.Random, seconds: float) -> bytes | None:
    """A DAIC-WOZ transcript for a recording of ``seconds`` (None: no transcript beside it)."""
    roll = rng.random()
    if roll < 0.4:
        return None
    turns = [(0.1, max(0.2, seconds * 0.45), "Participant"), (seconds * 0.5, seconds * 0.55, "Ellie"),
             (seconds * 0.6, max(seconds * 0.95, 0.7), "Participant")]
    rows = [f"{a:.3f}\t{b:.3f}\t{who}\thm\n" for a, b, who in turns]
    if roll < 0.7:
        return (TRANSCRIPT_HEAD + "".join(rows)).encode()
    bad = rng.choice([b"", b"\n\n", TRANSCRIPT_HEAD.encode(), b"a,b,c\n1,2,3\n", b"\xff\xfe\x00garbage\x80\n",
                      (TRANSCRIPT_HEAD + "x\ty\tParticipant\thi\n").encode(),
                      (TRANSCRIPT_HEAD + "-1\t2\tParticipant\thi\n").encode(),
                      (TRANSCRIPT_HEAD + "nan\tinf\tParticipant\thi\n").encode(),
                      (TRANSCRIPT_HEAD + "1e400\t1e401\tParticipant\thi\n").encode(),
                      (TRANSCRIPT_HEAD + f"0\t{'9' * 400}\tParticipant\thi\n").encode(),
                      (TRANSCRIPT_HEAD + "5\t1\tParticipant\thi\n").encode(),
                      (TRANSCRIPT_HEAD + "0\t1\n").encode(),
                      (TRANSCRIPT_HEAD + "0\t9999\tParticipant\thi\n").encode(),
                      "start_time,stop_time,speaker,value\n0,1,Participant,hi\n".encode(),
                      (TRANSCRIPT_HEAD + "".join(rows)).encode()[: rng.randrange(10, 80)]])
    return bad


# --------------------------------------------------------------------------- the consumers

def _speechnet_features(path: Path):
    """The two steps of SpeechNet's dataset builder per file (``dataset._features``), called
    directly: ``_features`` itself turns any exception into a skipped file, which would hide one."""
    from edgeaffect.families.speechnet.features import FusionConfig
    from edgeaffect.families.speechnet.features_librosa import fusion_features_librosa
    from edgeaffect.media import read_audio

    y, sr = read_audio(path)
    f = fusion_features_librosa(y, sr, FusionConfig())
    assert f.ndim == 2 and f.shape[1] == SPEECH_DIM and np.all(np.isfinite(f)), f.shape
    return f


def _spectro_recording(path: Path):
    """The spectrotemporal dataset builder's per-recording job (it returns a MediaError's line
    as the reason to skip; anything else would escape here)."""
    from edgeaffect.families.spectrotemporal.dataset import _recording
    from edgeaffect.families.spectrotemporal.model import tiny_config

    c = tiny_config()
    out = _recording((path, c.features, c.vlnep_rule))
    if isinstance(out, str):  # skipped, with its reason: one line, as the build prints it
        assert "\n" not in out and out, out
        return None
    z, hist = out
    assert len(z) == len(hist) >= c.features.segments_per_sequence and np.all(np.isfinite(z))
    return out


def _wav2vec2_segments(path: Path, transcript: Path | None):
    """What ``build_corpus`` does per participant: read the audio and the transcript, cut the
    participant's speech into segments (voice activity on, as wav2vec2-tiny trains)."""
    from edgeaffect.families.wav2vec2.daicwoz import participant_segments, read_transcript
    from edgeaffect.families.wav2vec2.model import tiny_config
    from edgeaffect.media import read_audio

    c = tiny_config()
    y, sr = read_audio(path)
    turns = read_transcript(transcript) if transcript is not None else None
    segs = participant_segments(y, sr, turns, sample_rate=c.sample_rate, segment_s=c.segment_s, tail=c.tail,
                                what=f"participant ({path})", vad=c.vad)
    assert segs.ndim == 2 and len(segs) and np.all(np.isfinite(segs))
    return segs


def recording_case(bundles: dict, folder: Path, i: int, rng: random.Random, seconds: float = 60.0) -> dict:
    """One damaged recording (and maybe its transcript) in ``folder``, through every consumer:
    {consumer: whether it was accepted}."""
    folder.mkdir()
    what, data = random_recording(rng)
    pid = 300 + i
    path = folder / (f"{pid}_AUDIO.wav" if rng.random() < 0.5 else rng.choice(["r.wav", "r.WAV", "r.flac", "r"]))
    if rng.random() < 0.04:  # not a readable file at all
        what = special_path(path, rng)
    else:
        path.write_bytes(data)
    transcript = None
    if path.name.endswith("_AUDIO.wav"):
        text = random_transcript(rng, rng.choice([1.0, 3.0, 8.0]))
        if text is not None:
            transcript = folder / f"{pid}_TRANSCRIPT.csv"
            transcript.write_bytes(text)
    written, accepted = tree(folder), {}
    with case(f"case {i}: {what} as {path.name}" + (" with a transcript" if transcript else "")):
        for family, bundle in bundles.items():
            code, line = run_cli("predict", path, "--model", bundle, "--json", seconds=seconds)
            assert code in (0, 2), (family, code, line)
            accepted[f"predict {family}"] = code == 0
        for who, fn, args in (("features speechnet", _speechnet_features, (path,)),
                              ("features spectrotemporal", _spectro_recording, (path,)),
                              ("segments wav2vec2", _wav2vec2_segments, (path, transcript))):
            accepted[who] = call(fn, *args, seconds=seconds)[0] is not None
        assert tree(folder) == written, "something was written beside the recording"
    return accepted


def _fuzz_recordings(bundles: dict, tmp_path: Path, n: int, seed: int):
    rng = random.Random(seed)
    before = {k: tree(v) for k, v in bundles.items()}
    outcomes: dict[str, dict[str, int]] = {}
    for i in range(n):
        for who, ok in recording_case(bundles, tmp_path / f"r{i}", i, rng).items():
            outcomes.setdefault(who, {"ok": 0, "refused": 0})["ok" if ok else "refused"] += 1
    assert {k: tree(v) for k, v in bundles.items()} == before, "a command wrote into a bundle"
    print(outcomes)
    for who, c in outcomes.items():  # the cases reach the checks, and usable recordings get through
        assert c["ok"] and c["refused"], (who, outcomes)
    return outcomes


# --------------------------------------------------------------------------- named regressions


def test_the_hand_made_bundles_predict_from_a_good_recording(bundles, tmp_path):
    from edgeaffect.families.spectrotemporal.synthetic import speech
    from edgeaffect.media.audio import write_wav

    wav = tmp_path / "ok.wav"
    write_wav(wav, speech(20.0, 6.0, seed=1), 8000)
    for family, bundle in bundles.items():
        assert run_cli("predict", wav, "--model", bundle, "--json") == (0, ""), family


def _pcm16(tmp_path: Path, name: str, y: np.ndarray, sr: int) -> Path:
    path = tmp_path / name
    path.write_bytes(wav_bytes(encode(np.asarray(y, np.float64)[:, None], "pcm16")[0], sr=sr, channels=1, bits=16))
    return path


def test_a_header_saying_1_hz_is_refused_before_any_resampling(bundles, tmp_path):
    """Was MemoryError (fuzz case: 8 s of samples declared at 1 Hz): SpeechNet and wav2vec2
    resampled them to 16 kHz, 16 000 times as many samples."""
    wav = _pcm16(tmp_path, "r.wav", 0.3 * np.sin(np.arange(128_000) / 7), 1)
    for family in ("speech", "wav2vec2"):
        code, line = run_cli("predict", wav, "--model", bundles[family])
        assert code == 2 and "says it is sampled at 1 Hz, outside 1000-384000 Hz" in line, (family, line)
    assert "sampled at 1 Hz" in call(_wav2vec2_segments, wav, None)[1]


def test_a_one_sample_recording_is_too_short_not_an_fft_error(bundles, tmp_path):
    """Was `ValueError: Invalid number of FFT data points (0)`: one sample resampled to a
    lower rate rounded to no sample at all."""
    from edgeaffect.families.spectrotemporal.dataset import _recording
    from edgeaffect.families.spectrotemporal.model import tiny_config
    from edgeaffect.families.speechnet.features import FusionConfig, fusion_features

    wav = _pcm16(tmp_path, "one.wav", [0.5], 16000)
    assert "too short" in run_cli("predict", wav, "--model", bundles["spectrotemporal"])[1]
    assert "too short" in _recording((wav, tiny_config().features, "match"))  # the reason it is skipped
    assert "shorter than one frame: 1 samples" in call(fusion_features, np.full(1, 0.5, np.float32), 44100,
                                                       FusionConfig())[1]
    assert "less than one 2 s segment" in call(_wav2vec2_segments, _pcm16(tmp_path, "one48k.wav", [0.5], 48000),
                                               None)[1]


def test_float_samples_far_beyond_full_scale_are_refused(bundles, tmp_path):
    """Was librosa's `ParameterError: Input must be finite` in SpeechNet's dataset builder
    (counted as a skipped file by its catch-all): one float sample at 1e30, whose power
    overflows float32."""
    y = np.asarray(signal_samples("speech", 16000 * 3, random.Random(0)))
    y[100] = 1e30
    wav = tmp_path / "huge.wav"
    wav.write_bytes(wav_bytes(encode(y[:, None], "float32")[0], sr=16000, channels=1, bits=32, tag=3))
    for family, bundle in bundles.items():
        code, line = run_cli("predict", wav, "--model", bundle)
        assert code == 2 and "has samples at 1e+30 times full scale" in line, (family, line)
    assert "times full scale" in call(_speechnet_features, wav)[1]
    y[100] = 3.0  # a careless gain is still a recording
    wav.write_bytes(wav_bytes(encode(y[:, None], "float32")[0], sr=16000, channels=1, bits=32, tag=3))
    assert run_cli("predict", wav, "--model", bundles["speech"]) == (0, "")


# --------------------------------------------------------------------------- the campaigns


def test_fuzzed_recordings_end_in_a_prediction_or_one_line(bundles, tmp_path):
    _fuzz_recordings(bundles, tmp_path, 20, seed=30)


@pytest.mark.slow
def test_fuzzed_recordings_longer_campaign(bundles, tmp_path):
    _fuzz_recordings(bundles, tmp_path, 600, seed=3030)
