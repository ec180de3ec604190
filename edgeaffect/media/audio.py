"""Audio decoding to mono float32 at the file's own sample rate, scaled as librosa
scales it (it reads through soundfile too): int16 / 32768, int24 / 2**23, int32 / 2**31,
8-bit (x - 128) / 128, float as stored.

WAV (PCM or float), FLAC, OGG (Vorbis / Opus), MP3, AIFF ... go through soundfile
(libsndfile, bundled in its wheels for x86_64 and aarch64); without soundfile, PCM WAV
still reads through the standard library. Audio inside a video container (RAVDESS
modality 01 mp4), or anything libsndfile does not know, goes through PyAV.
"""

from __future__ import annotations

import os
import tempfile
import wave
from pathlib import Path

import numpy as np

from edgeaffect._optional import require
from edgeaffect.errors import InputError, MediaError

_PCM_SCALE = {1: 128.0, 2: 32768.0, 3: 8388608.0, 4: 2147483648.0}
# The sample rates a recording may have (the range the bundles' preprocessing allows). A rate
# outside it is a damaged header: a second of samples "at 1 Hz" resampled to 16 kHz would
# take 16 000 times the memory.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384000
# Float WAV holds fractions of full scale (a little over 1 after a careless gain); samples
# this far beyond it are no recording (at 1e30 the features' float32 powers overflow).
MAX_PEAK = 1000.0


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"file not found: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"empty file: {path}")


def _soundfile():
    try:
        import soundfile
    except (ImportError, OSError):  # OSError: the wheel's libsndfile could not be loaded
        return None
    return soundfile


def _read_soundfile(sf, path: Path) -> tuple[np.ndarray, int]:
    """Raises what soundfile raises (LibsndfileError is a RuntimeError) for the caller to word."""
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return data.mean(axis=1).astype(np.float32), int(sr)


_SOUNDFILE_ERRORS = (RuntimeError, ValueError, TypeError, EOFError)


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    sf = _soundfile()
    if sf is not None:
        try:
            return _read_soundfile(sf, path)
        except _SOUNDFILE_ERRORS as exc:
            raise MediaError(f"cannot decode WAV {path}: {exc} (expected PCM 8/16/24/32-bit or float)") from None
    return _read_wav_stdlib(path)


def _read_wav_stdlib(path: Path) -> tuple[np.ndarray, int]:
    """PCM WAV with the standard library alone (an install without soundfile)."""
    try:
        with wave.open(str(path), "rb") as w:
            n_channels, width, sr = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        hint = " (float WAV needs soundfile: pip install soundfile)" if "unknown format: 3" in str(exc) else ""
        raise MediaError(f"cannot decode WAV {path}: {exc} (expected PCM 8/16/24/32-bit){hint}") from None
    if width == 1:
        data = np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        data = (b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8) | (b[:, 2].astype(np.int32) << 16))
        data = np.where(data >= 1 << 23, data - (1 << 24), data).astype(np.float32)
    else:
        data = np.frombuffer(raw, dtype=f"<i{width}").astype(np.float32)
    data = data.reshape(-1, n_channels) / _PCM_SCALE[width]
    return data.mean(axis=1).astype(np.float32), sr


def _read_container_audio(path: Path) -> tuple[np.ndarray, int]:
    av = require("av", "train", package="av")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(f"{path} has no audio track; give the audio as a separate .wav")
            stream = container.streams.audio[0]
            chunks = []
            for frame in container.decode(stream):
                arr = frame.to_ndarray()
                # Planar formats are (channels, n); packed ones (1, n * channels).
                if not frame.format.is_planar:
                    arr = arr.reshape(-1, len(frame.layout.channels)).T
                arr = _pcm_to_float(arr)
                chunks.append(arr.astype(np.float32).mean(axis=0))
            sr = stream.rate
    except av.error.FFmpegError as exc:
        raise MediaError(f"cannot decode audio in {path}: {exc}") from None
    if not chunks:
        raise MediaError(f"no audio samples in {path}")
    return np.concatenate(chunks), int(sr)


def _pcm_to_float(arr: np.ndarray) -> np.ndarray:
    """Integer samples to float as librosa scales them: int16 / 32768, uint8 (x - 128) / 128."""
    if arr.dtype.kind == "i":
        return arr.astype(np.float32) / -float(np.iinfo(arr.dtype).min)
    if arr.dtype.kind == "u":
        half = (float(np.iinfo(arr.dtype).max) + 1) / 2
        return (arr.astype(np.float32) - half) / half
    return arr


def _read_other(path: Path) -> tuple[np.ndarray, int]:
    """FLAC, OGG, MP3 ... through soundfile; what it does not know (mp4, m4a) through PyAV."""
    sf = _soundfile()
    if sf is not None:
        try:
            return _read_soundfile(sf, path)
        except _SOUNDFILE_ERRORS:
            pass  # not a format libsndfile reads: PyAV decodes containers and says what is wrong
    return _read_container_audio(path)


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode ``path`` to ``(y, sr)``: y mono float32 [shape=(n,)], sr the file's own rate."""
    path = Path(path)
    _check_file(path)
    with open(path, "rb") as f:
        head = f.read(12)
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        y, sr = _read_wav(path)
    else:
        y, sr = _read_other(path)
    if y.size == 0:
        raise MediaError(f"no audio samples in {path}")
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise MediaError(f"{path} says it is sampled at {sr} Hz, outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz: "
                         "its header is damaged; export the recording again")
    if not np.all(np.isfinite(y)):
        raise MediaError(f"audio in {path} contains NaN or infinite samples")
    peak = float(np.max(np.abs(y)))
    if peak > MAX_PEAK:
        raise MediaError(f"audio in {path} has samples at {peak:.3g} times full scale (float samples are fractions "
                         "of it): the file is damaged; export the recording again")
    return y, sr


def write_wav(path: str | os.PathLike, y: np.ndarray, sr: int) -> None:
    """Write mono 16-bit PCM atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    pcm = (np.clip(np.asarray(y, dtype=np.float64), -1.0, 32767 / 32768) * 32768).astype("<i2")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".wav")
    os.close(fd)
    try:
        with wave.open(tmp, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(sr))
            w.writeframes(pcm.tobytes())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling in the frequency domain, the one every family uses on both sides
    (training features and the device), so both see the same samples."""
    if sr_in == sr_out:
        return np.asarray(y, np.float32)
    n_out = max(1, int(round(y.size * sr_out / sr_in)))  # a few samples stay a sample: refused as too short
    spec = np.fft.rfft(np.asarray(y, np.float64))
    out = np.zeros(n_out // 2 + 1, np.complex128)
    keep = min(spec.size, out.size)
    out[:keep] = spec[:keep]
    return (np.fft.irfft(out, n=n_out) * (n_out / y.size)).astype(np.float32)
