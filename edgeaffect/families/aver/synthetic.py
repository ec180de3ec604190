"""A synthetic corpus in RAVDESS's own naming and formats, deterministic from a seed.

Each clip is an mp4 (H.264) of a drawn face whose expression (mouth curve and
opening, brow height and tilt, eye opening) depends on the emotion, with speech-like
audio (harmonic voice through vowel formants, syllable rhythm) whose prosody (pitch,
pitch range, rate, loudness, spectral tilt, jitter) depends on it. Actors differ in
face geometry, skin tone and voice. It exercises the real loader and feature
pipeline; it is not the real corpus, and no accuracy on it is a paper result.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeaffect._optional import require
from edgeaffect.families.aver.ravdess import EMOTIONS, RavdessName
from edgeaffect.media.audio import write_wav

# Face: mouth curve (+ smile), mouth open, brow raise, brow tilt (+ inner up), eye opening.
_FACE = {
    "neutral":   (0.0, 0.0, 0.0, 0.0, 0.55),
    "calm":      (0.25, 0.0, -0.1, 0.0, 0.35),
    "happy":     (1.0, 0.35, 0.2, 0.0, 0.45),
    "sad":       (-0.9, 0.0, 0.2, 0.9, 0.35),
    "angry":     (-0.5, 0.25, -0.9, -0.9, 0.5),
    "fearful":   (-0.3, 0.6, 0.7, 0.6, 0.9),
    "disgust":   (-0.6, 0.1, -0.4, -0.3, 0.3),
    "surprised": (0.0, 1.0, 1.0, 0.0, 1.0),
}
# Voice: f0 factor, pitch range (semitones), syllables/s, loudness, spectral tilt, jitter, rising.
_VOICE = {
    "neutral":   (1.00, 2.0, 4.0, 0.45, 1.2, 0.004, 0.0),
    "calm":      (0.92, 1.0, 3.2, 0.30, 1.5, 0.003, 0.0),
    "happy":     (1.35, 6.0, 5.0, 0.65, 0.9, 0.010, 0.0),
    "sad":       (0.88, 1.5, 2.6, 0.22, 1.7, 0.008, -0.5),
    "angry":     (1.30, 4.0, 5.8, 0.95, 0.6, 0.015, 0.0),
    "fearful":   (1.60, 5.0, 6.5, 0.45, 1.0, 0.030, 0.0),
    "disgust":   (0.95, 3.0, 3.4, 0.45, 1.1, 0.010, -0.3),
    "surprised": (1.45, 8.0, 4.5, 0.70, 0.9, 0.010, 1.0),
}
_VOWELS = np.array([(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410)],
                   dtype=np.float64)


@dataclass(frozen=True)
class SyntheticConfig:
    actors: int = 4
    statements: int = 2
    repetitions: int = 2
    duration_s: float = 2.0
    sample_rate: int = 16000  # RAVDESS ships 48 kHz; any rate works, the features use the file's own
    width: int = 320
    height: int = 240
    fps: int = 30
    layout: str = "av"  # "av": 01 mp4 with audio inside; "split": 02 mp4 + 03 wav
    seed: int = 0


@dataclass(frozen=True)
class _Actor:
    f0: float
    formant_scale: float
    cx: int
    cy: int
    scale: float
    skin: tuple
    hair: tuple
    background: tuple


def _actor(index: int, cfg: SyntheticConfig) -> _Actor:
    rng = np.random.default_rng([cfg.seed, index, 7])
    female = index % 2 == 0  # RAVDESS: even actors are female
    s = float(rng.uniform(0.85, 1.15)) * cfg.height / 240
    return _Actor(
        f0=float(rng.uniform(190, 230) if female else rng.uniform(100, 130)),
        formant_scale=float(rng.uniform(1.08, 1.18) if female else rng.uniform(0.95, 1.03)),
        cx=int(cfg.width / 2 + rng.uniform(-0.1, 0.1) * cfg.width),
        cy=int(cfg.height / 2 + rng.uniform(-0.05, 0.05) * cfg.height),
        scale=s,
        skin=tuple(int(v) for v in rng.uniform([110, 140, 170], [170, 195, 230])),
        hair=tuple(int(v) for v in rng.uniform(20, 70, 3)),
        background=tuple(int(v) for v in rng.uniform(70, 130, 3)),
    )


def _emotion_params(table: dict, emotion: str, intensity: int) -> np.ndarray:
    base, target = np.array(table["neutral"]), np.array(table[emotion])
    return base + (target - base) * (1.0 if intensity == 1 else 1.5)


def _syllable_envelope(n: int, sr: int, rate: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude envelope (voiced syllables with gaps) and the vowel index per sample."""
    t0, t1 = 0.08 * n / sr, 0.95 * n / sr
    n_syl = max(2, int((t1 - t0) * rate))
    edges = np.linspace(t0, t1, n_syl + 1) + rng.uniform(-0.02, 0.02, n_syl + 1)
    env = np.zeros(n)
    vowel = np.zeros(n, dtype=int)
    for k in range(n_syl):
        a, b = int(edges[k] * sr), int(edges[k + 1] * sr)
        length = max(1, int((b - a) * 0.75))
        env[a : a + length] = np.sin(np.linspace(0, np.pi, length)) ** 0.7
        vowel[a:b] = rng.integers(len(_VOWELS))
    return env, vowel


def synth_speech(emotion: str, intensity: int, actor: _Actor, cfg: SyntheticConfig, rng, voices: dict = _VOICE
                 ) -> np.ndarray:
    f0_factor, semitones, rate, loud, tilt, jitter, rising = _emotion_params(voices, emotion, intensity)
    sr, n = cfg.sample_rate, int(cfg.duration_s * cfg.sample_rate)
    t = np.arange(n) / sr
    env, vowel = _syllable_envelope(n, sr, rate, rng)
    contour = semitones * (0.5 * np.sin(2 * np.pi * 1.3 * t + rng.uniform(0, 6)) + rising * (t / t[-1] - 0.5))
    f0 = actor.f0 * f0_factor * 2.0 ** (contour / 12.0) * (1.0 + jitter * rng.standard_normal(n).cumsum() / np.sqrt(n))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    formants = _VOWELS[vowel] * actor.formant_scale
    kernel = np.hanning(int(0.03 * sr) | 1)
    formants = np.stack([np.convolve(formants[:, j], kernel / kernel.sum(), mode="same") for j in range(3)], 1)
    y = np.zeros(n)
    for h in range(1, 40):
        fh = h * f0
        gain = sum(1.0 / (1.0 + ((fh - formants[:, j]) / (60.0 + 40 * j)) ** 2) for j in range(3))
        gain *= (fh / 100.0) ** (-tilt) * (fh < 0.45 * sr)
        y += gain * np.sin(h * phase)
    y = y / (np.abs(y).max() + 1e-9) * env * loud
    y += 0.02 * loud * rng.standard_normal(n) * env + 0.002 * rng.standard_normal(n)
    return (0.8 * y / max(1.0, np.abs(y).max())).astype(np.float32)


def _backgrounds(actor: _Actor, cfg: SyntheticConfig, rng, count: int = 4) -> list[np.ndarray]:
    """A few noisy backgrounds per clip, cycled over frames (per-frame noise is the slow part)."""
    base = np.empty((cfg.height, cfg.width, 3), np.float32)
    base[:] = actor.background
    return [np.clip(base + rng.normal(0, 5, base.shape), 0, 255).astype(np.uint8) for _ in range(count)]


def draw_face(cv2, actor: _Actor, p: np.ndarray, background: np.ndarray, rng, talk: float, blink: bool) -> np.ndarray:
    curve, mopen, brow, tilt, eye = p
    img = background.copy()
    s = actor.scale
    cx, cy = actor.cx + int(rng.normal(0, 1.5)), actor.cy + int(rng.normal(0, 1.5))
    fw, fh = int(55 * s), int(72 * s)
    cv2.ellipse(img, (cx, cy - int(20 * s)), (fw + 4, fh - 10), 0, 180, 360, actor.hair, -1)
    cv2.ellipse(img, (cx, cy), (fw, fh), 0, 0, 360, actor.skin, -1)
    ex, ey = int(22 * s), cy - int(14 * s)
    eye_h = 1 if blink else max(1, int(7 * s * eye))
    for sgn in (-1, 1):
        x = cx + sgn * ex
        cv2.ellipse(img, (x, ey), (int(11 * s), eye_h), 0, 0, 360, (235, 235, 235), -1)
        if not blink:
            cv2.circle(img, (x, ey), int(4 * s), (30, 30, 30), -1)
        by = ey - int((14 + 8 * brow) * s)
        cv2.line(img, (cx + sgn * int(10 * s), by - int(6 * tilt * s)), (cx + sgn * int(34 * s), by),
                 (45, 45, 55), max(2, int(4 * s)))
    nose = tuple(int(c * 0.75) for c in actor.skin)
    cv2.line(img, (cx, ey + int(4 * s)), (cx - int(4 * s), cy + int(16 * s)), nose, 2)
    cv2.ellipse(img, (cx, cy + int(18 * s)), (int(8 * s), int(3 * s)), 0, 0, 360, nose, -1)
    my, mw = cy + int(36 * s), int(20 * s)
    opening = mopen + 0.25 * talk
    if opening > 0.05:
        cv2.ellipse(img, (cx, my), (int(mw * 0.7), max(1, int(10 * s * opening))), 0, 0, 360, (40, 30, 80), -1)
    xs = np.linspace(-1, 1, 21)
    pts = np.stack([cx + xs * mw, my - curve * 10 * s * (xs**2 - 0.5)], 1).astype(np.int32)
    cv2.polylines(img, [pts], False, (60, 60, 150), max(2, int(3 * s)))
    return img


def _frames(emotion, intensity, actor, cfg, audio, rng) -> list[np.ndarray]:
    cv2 = require("cv2", "train", package="opencv-python-headless")
    p = _emotion_params(_FACE, emotion, intensity)
    n_frames = int(round(cfg.duration_s * cfg.fps))
    spf = cfg.sample_rate / cfg.fps
    loud = np.array([np.abs(audio[int(i * spf) : int((i + 1) * spf)]).mean() for i in range(n_frames)])
    talk = loud / (loud.max() + 1e-9)
    blink_at = set(int(b) + d for b in rng.integers(0, n_frames, 1) for d in range(3))
    backgrounds = _backgrounds(actor, cfg, rng)
    return [draw_face(cv2, actor, p, backgrounds[i % len(backgrounds)], rng, talk[i], i in blink_at)
            for i in range(n_frames)]


# container -> (video codec and options, audio codec): RAVDESS's mp4 (H.264 + AAC), the
# SAVEE / MEAD-style avi (MPEG-4 part 2 + 16-bit PCM).
_CODECS = {"mp4": (("libx264", {"preset": "veryfast", "crf": "20"}), "aac"),
           "avi": (("mpeg4", {}), "pcm_s16le")}


def _write_video(path: Path, frames: list[np.ndarray], audio: np.ndarray | None, cfg: SyntheticConfig,
                 container: str = "mp4") -> None:
    """A video file of ``frames`` (and ``audio`` when given) in ``container``, written atomically."""
    av = require("av", "train")
    (video_codec, video_options), audio_codec = _CODECS[container]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f".{container}")
    os.close(fd)
    try:
        with av.open(tmp, "w", format=container) as out:
            vs = out.add_stream(video_codec, rate=cfg.fps, options=video_options)
            vs.width, vs.height, vs.pix_fmt = cfg.width, cfg.height, "yuv420p"
            ast = out.add_stream(audio_codec, rate=cfg.sample_rate, layout="mono") if audio is not None else None
            for img in frames:
                out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="bgr24")))
            out.mux(vs.encode(None))
            if ast is not None:
                pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)[None, :]
                frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
                frame.sample_rate = cfg.sample_rate
                out.mux(ast.encode(frame))
                out.mux(ast.encode(None))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def utterances(cfg: SyntheticConfig) -> list[RavdessName]:
    """The utterances RAVDESS records per actor (neutral has no strong intensity)."""
    names = []
    for a in range(1, cfg.actors + 1):
        for e, emotion in enumerate(EMOTIONS):
            for i in (1,) if emotion == "neutral" else (1, 2):
                for s in range(1, cfg.statements + 1):
                    for r in range(1, cfg.repetitions + 1):
                        names.append(RavdessName("01", "01", e, i, s, r, a))
    return names


def generate(root: str | Path, cfg: SyntheticConfig = SyntheticConfig(), progress=None) -> list[Path]:
    """Write the corpus under ``root`` (``Actor_XX/...``); files already there are kept."""
    from edgeaffect.data.synthetic import mark

    root = Path(root)
    mark(root, "ravdess")
    written = []
    names = utterances(cfg)
    for k, n in enumerate(names):
        folder = root / f"Actor_{n.actor:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([cfg.seed, n.actor, n.emotion, n.intensity, n.statement, n.repetition])
        actor = _actor(n.actor, cfg)
        emotion = EMOTIONS[n.emotion]
        if cfg.layout == "av":
            targets = [folder / n.filename("mp4")]
        else:
            targets = [folder / RavdessName("02", *_rest(n)).filename("mp4"),
                       folder / RavdessName("03", *_rest(n)).filename("wav")]
        if all(t.exists() for t in targets):
            written += targets
            continue
        audio = synth_speech(emotion, n.intensity, actor, cfg, rng)
        frames = _frames(emotion, n.intensity, actor, cfg, audio, rng)
        if cfg.layout == "av":
            _write_video(targets[0], frames, audio, cfg)
        else:
            _write_video(targets[0], frames, None, cfg)
            write_wav(targets[1], audio, cfg.sample_rate)
        written += targets
        if progress:
            progress(k + 1)
    return written


def _rest(n: RavdessName) -> tuple:
    return (n.vocal_channel, n.emotion, n.intensity, n.statement, n.repetition, n.actor)


# Voice and face tables by RAVDESS emotion name; the other corpora's names map onto them.
_AS_RAVDESS = {"disgusted": "disgust", "fear": "fearful", "contempt": "disgust"}


def _clip(emotion: str, intensity: int, actor_index: int, cfg: SyntheticConfig, key: list[int]):
    rng = np.random.default_rng([cfg.seed, *key])
    actor = _actor(actor_index, cfg)
    name = _AS_RAVDESS.get(emotion, emotion)
    audio = synth_speech(name, intensity, actor, cfg, rng)
    return _frames(name, intensity, actor, cfg, audio, rng), audio


def generate_savee(root: str | Path, cfg: SyntheticConfig = SyntheticConfig(), progress=None) -> list[Path]:
    """A SAVEE-layout audio-visual corpus: ``AudioVisualClip/<DC|JE|JK|KL>/<code>NN.avi``,
    ``cfg.actors`` speakers (at most 4), ``statements * repetitions`` clips per emotion
    (SAVEE: 30 neutral, 15 of each other emotion). Synthetic: never a paper result."""
    from edgeaffect.data.synthetic import mark
    from edgeaffect.families.aver.corpora import SAVEE_CODES, SAVEE_SPEAKERS

    root = Path(root)
    mark(root, "savee")
    per = cfg.statements * cfg.repetitions
    jobs = [(s, code, n) for s in SAVEE_SPEAKERS[: cfg.actors] for code in SAVEE_CODES for n in range(1, per + 1)]
    written = []
    for k, (speaker, code, n) in enumerate(jobs):
        path = root / "AudioVisualClip" / speaker / f"{code}{n:02d}.avi"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # SAVEE's speakers are all male: odd actors in the voice model
            frames, audio = _clip(SAVEE_CODES[code], 1, 2 * SAVEE_SPEAKERS.index(speaker) + 1, cfg,
                                  [SAVEE_SPEAKERS.index(speaker), len(code), ord(code[-1]), n])
            _write_video(path, frames, audio, cfg, "avi")
        written.append(path)
        if progress:
            progress(k + 1)
    return written


def generate_mead(root: str | Path, cfg: SyntheticConfig = SyntheticConfig(), progress=None) -> list[Path]:
    """A MEAD-layout corpus (the layout assumed in edgeaffect/families/aver/README.md): per actor
    ``M0NN`` / ``W0NN``, ``video/front/<emotion>/level_<n>/0NN.mp4`` with the audio inside,
    neutral at level 1 only, other emotions at levels 1 and 2, ``statements * repetitions``
    clips per level. Synthetic: never a paper result."""
    from edgeaffect.data.synthetic import mark
    from edgeaffect.families.aver.corpora import MEAD_EMOTIONS

    root = Path(root)
    mark(root, "mead")
    per = cfg.statements * cfg.repetitions
    jobs = [(a, e, lv, n) for a in range(1, cfg.actors + 1) for e in MEAD_EMOTIONS
            for lv in ((1,) if e == "neutral" else (1, 2)) for n in range(1, per + 1)]
    written = []
    for k, (a, emotion, level, n) in enumerate(jobs):
        actor = f"{'W' if a % 2 == 0 else 'M'}{a:03d}"
        path = root / actor / "video" / "front" / emotion / f"level_{level}" / f"{n:03d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            frames, audio = _clip(emotion, level, a, cfg, [a, MEAD_EMOTIONS.index(emotion), level, n])
            _write_video(path, frames, audio, cfg)
        written.append(path)
        if progress:
            progress(k + 1)
    return written
