"""Frame features from the Keras wav2vec 2.0 (``edgeaffect embed``).

One recording -> one ``.npy``: ``layers="sum"`` the detector's feature (frames, hidden)
(``backbone.sum_hidden_states``, definition ``DEFAULT_SUM``), ``layers="all"`` the L+1
hidden states stacked as (L+1, frames, hidden), the states the pinned reference returns
with ``output_hidden_states=True`` after its feature extractor's normalisation (when the
checkpoint's ``preprocessor_config.json`` has ``do_normalize``, the default).

With ``segment_s``, the recording is cut into non-overlapping segments of that length in
order (a shorter tail is dropped), each normalised and embedded on its own, and the
arrays gain a leading segment axis: (segments, frames, hidden) or (segments, L+1, frames,
hidden). Attention memory grows with the square of the length, so a whole recording
longer than ``MAX_ATTENTION_BYTES`` of attention scores is refused with a line pointing
at ``--segment-s``.

Sample rate: the recording must be at the checkpoint's rate (16 kHz); another rate is
refused in one line rather than resampled here, since the resampler changes the
features and a corpus cache should use one the user chose.

A folder in place of one file embeds every audio file under it (recursively), writing
``OUT/<relative path>.npy`` for each; a file whose ``.npy`` exists is skipped, so an
interrupted run resumes. Every write is atomic.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError, MediaError
from edgeaffect.families.wav2vec2.backbone import (DEFAULT_SUM, Wav2Vec2Config, frame_count, min_samples,
                                                   normalise_audio, sum_hidden_states)
from edgeaffect.io import atomic_write_bytes

LAYERS = ("sum", "all")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus")
MAX_ATTENTION_BYTES = 4 << 30


class Embedder:
    """A loaded backbone and what its checkpoint says about the input."""

    def __init__(self, model, config: Wav2Vec2Config, *, do_normalize: bool = True, sampling_rate: int = 16000,
                 definition: str = DEFAULT_SUM):
        self.model, self.config = model, config
        self.do_normalize, self.sampling_rate, self.definition = do_normalize, sampling_rate, definition
        self._fn = None

    @classmethod
    def from_folder(cls, folder, definition: str = DEFAULT_SUM) -> "Embedder":
        from edgeaffect.families.wav2vec2.checkpoint import load_pretrained, read_preprocessor

        model, config = load_pretrained(folder)
        pre = read_preprocessor(folder)
        return cls(model, config, do_normalize=pre["do_normalize"], sampling_rate=pre["sampling_rate"],
                   definition=definition)

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        if self._fn is None:
            from edgeaffect.keras_backend import tf

            t = tf()
            self._fn = t.function(lambda x: self.model(x, training=False), reduce_retracing=True,
                                  input_signature=[t.TensorSpec([None, None], t.float32)])
        return [s.numpy() for s in self._fn(batch)]

    def states(self, audio: np.ndarray) -> np.ndarray:
        """Raw audio (batch, samples) -> hidden states (batch, L+1, frames, hidden)."""
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2:
            raise InputError(f"expected audio of shape (batch, samples), got {audio.shape}")
        if frame_count(audio.shape[1], self.config) < 1:
            raise MediaError(f"{audio.shape[1]} samples are too few: wav2vec 2.0 needs at least "
                             f"{min_samples(self.config)} ({min_samples(self.config) / self.sampling_rate:.3f} s)")
        x = normalise_audio(audio) if self.do_normalize else audio
        return np.stack(self._run(x), axis=1)

    def features(self, audio: np.ndarray, layers: str = "sum") -> np.ndarray:
        """Raw audio (batch, samples) -> (batch, frames, hidden) for ``sum`` or
        (batch, L+1, frames, hidden) for ``all``."""
        if layers not in LAYERS:
            raise InputError(f"--layers must be one of {', '.join(LAYERS)}, got {layers!r}")
        states = self.states(audio)
        if layers == "all":
            return states
        return sum_hidden_states(list(np.moveaxis(states, 1, 0)), self.definition)

    def recording(self, y: np.ndarray, layers: str = "sum", segment_s: float | None = None,
                  name: str = "recording") -> np.ndarray:
        """One mono recording at ``sampling_rate`` -> its features (see the module doc)."""
        y = np.asarray(y, dtype=np.float32)
        if segment_s is None:
            frames = frame_count(y.size, self.config)
            need = 4 * self.config.num_attention_heads * frames * frames
            if need > MAX_ATTENTION_BYTES:
                raise InputError(f"{name} is {y.size / self.sampling_rate:.0f} s long: attention over all of it "
                                 f"would take {need / 2**30:.0f} GiB; embed it in segments with --segment-s 7")
            return self.features(y[None], layers)[0]
        if not segment_s > 0:
            raise InputError(f"--segment-s must be > 0, got {segment_s}")
        n = int(round(segment_s * self.sampling_rate))
        count = y.size // n
        if count == 0 or frame_count(n, self.config) < 1:
            raise MediaError(f"{name} is {y.size / self.sampling_rate:.2f} s long, shorter than one "
                             f"{segment_s:g} s segment")
        segments = y[:count * n].reshape(count, n)
        return np.concatenate([self.features(segments[i:i + 1], layers) for i in range(count)], axis=0)


def _read(path: Path, rate: int) -> np.ndarray:
    from edgeaffect.media.audio import read_audio

    y, sr = read_audio(path)
    if sr != rate:
        raise MediaError(f"{path} is {sr} Hz; the backbone takes {rate} Hz: resample it first "
                         f"(e.g. ffmpeg -i IN -ar {rate} -ac 1 OUT.wav)")
    return y


def _save(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array, dtype=np.float32))
    atomic_write_bytes(path, buf.getvalue())


def audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
                  and not p.name.startswith("."))


def embed(source, backbone, out, *, layers: str = "sum", segment_s: float | None = None,
          definition: str = DEFAULT_SUM, log=sys.stderr) -> dict:
    """``edgeaffect embed``: a file -> ``out`` (.npy); a folder -> one .npy per audio file
    under ``out`` (a folder), skipping those already written. Returns a summary."""
    from edgeaffect.progress import Progress

    source, out = Path(source), Path(out)
    if layers not in LAYERS:
        raise InputError(f"--layers must be one of {', '.join(LAYERS)}, got {layers!r}")
    if segment_s is not None and not segment_s > 0:
        raise InputError(f"--segment-s must be > 0, got {segment_s}")
    if not source.exists():
        raise InputError(f"{source} does not exist: give an audio file or a folder of them")
    if source.is_dir():
        if out.exists() and not out.is_dir():
            raise InputError(f"{out} is a file: with a folder of recordings, --out must be a folder")
        files = audio_files(source)
        if not files:
            raise InputError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {source}")
        targets = [(f, out / f.relative_to(source).with_suffix(".npy")) for f in files]
    else:
        if out.is_dir():
            raise InputError(f"{out} is a folder: with one recording, --out names the .npy file to write")
        targets = [(source, out)]
    todo = [(f, t) for f, t in targets if not (source.is_dir() and t.is_file())]
    summary = {"files": len(targets), "skipped": len(targets) - len(todo), "written": 0, "out": str(out)}
    if not todo:
        return summary
    from edgeaffect.families.wav2vec2.checkpoint import read_preprocessor

    rate = read_preprocessor(backbone)["sampling_rate"] if Path(backbone).is_dir() else 16000
    embedder = None
    progress = Progress("recordings", len(todo), stream=log) if source.is_dir() else None
    for i, (f, target) in enumerate(todo):
        y = _read(f, rate)  # a bad recording is refused before the backbone is loaded
        if embedder is None:
            embedder = Embedder.from_folder(backbone, definition=definition)
        feats = embedder.recording(y, layers, segment_s, name=str(f))
        _save(target, feats)
        summary["written"] += 1
        summary["shape"] = list(feats.shape)
        if progress:
            progress(i + 1, f.name)
    return summary
