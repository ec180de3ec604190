"""SpeechNet's 107-dimensional fusion features, per frame, in NumPy (device side).

The paper (Sec. 4.2) lists MFCC (with the deltas of Eq. 17), zero-crossing rate,
chroma, spectral contrast, centroid, roll-off (0.85), bandwidth, tonnetz and pitch, and
says they make 107 dimensions without the breakdown. The composition is therefore a
config (``FusionConfig.composition``) that must sum to 107; the default is our
reconstruction, written in ``edgeaffect/families/speechnet/README.md``.

Every block follows librosa's definition with the same frames (centred, zero padding,
periodic Hann window), so ``features/fusion_librosa.py`` (the training side) and this
file agree within the tolerance ``tests/test_fusion.py`` states. Choices that make the
two agree exactly by construction:
- chroma with tuning fixed at 0 (librosa would estimate it per file with ``piptrack``);
- tonnetz from that STFT chroma (librosa's default is the constant-Q chroma, which has
  no small NumPy equivalent);
- delta as the paper's Eq. 17, MFCC(t+1) - MFCC(t-1), edges repeated (librosa's
  ``delta`` is a Savitzky-Golay filter);
- pitch with YIN (``librosa.yin``), in Hz, one value per frame, voiced or not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np

from edgeaffect.errors import InputError, MediaError
from edgeaffect.features.mfcc import MfccConfig, _hann, mfcc_from_power
from edgeaffect.media.audio import resample  # noqa: F401  (families import it from here)

FUSION_DIM = 107
BLOCKS = ("mfcc", "mfcc_delta", "chroma", "contrast", "tonnetz", "zcr", "centroid", "rolloff", "bandwidth", "pitch")
# Reconstruction (the paper gives no breakdown): every family it names at its usual size
# (chroma 12, contrast 6 bands + 1, tonnetz 6, five scalars = 30) leaves 77 for the
# cepstrum: 40 MFCC and the Eq. 17 deltas of the first 37.
DEFAULT_COMPOSITION = (("mfcc", 40), ("mfcc_delta", 37), ("chroma", 12), ("contrast", 7), ("tonnetz", 6),
                       ("zcr", 1), ("centroid", 1), ("rolloff", 1), ("bandwidth", 1), ("pitch", 1))
_FIXED = {"chroma": 12, "contrast": None, "tonnetz": 6, "zcr": 1, "centroid": 1, "rolloff": 1, "bandwidth": 1,
          "pitch": 1}


@dataclass(frozen=True)
class FusionConfig:
    sample_rate: int = 16000  # audio is resampled to this first
    n_fft: int = 1024  # 64 ms window
    hop_length: int = 512  # 32 ms hop
    n_mels: int = 128
    composition: tuple = DEFAULT_COMPOSITION
    rolloff_percent: float = 0.85  # the paper's Eq. 23
    contrast_fmin: float = 200.0
    pitch_fmin: float = 65.0
    pitch_fmax: float = 500.0
    yin_threshold: float = 0.1
    # Bad input: below this RMS (dBFS) an utterance is "silent"; above this fraction of
    # samples at full scale it is "clipped".
    silence_dbfs: float = -60.0
    max_clipped_fraction: float = 0.01
    expected_dim: int = field(default=FUSION_DIM)

    def __post_init__(self):
        names = [name for name, _ in self.composition]
        unknown = sorted(set(names) - set(BLOCKS))
        if unknown:
            raise ValueError(f"unknown fusion feature block(s) {unknown}; known: {', '.join(BLOCKS)}")
        if len(set(names)) != len(names):
            raise ValueError(f"a fusion feature block is listed twice: {names}")
        sizes = dict(self.composition)
        for name, fixed in _FIXED.items():
            if name in sizes and fixed is not None and sizes[name] != fixed:
                raise ValueError(f"fusion block '{name}' has {fixed} dimensions, not {sizes[name]}")
        if sizes.get("mfcc_delta", 0) > sizes.get("mfcc", 0):
            raise ValueError("mfcc_delta cannot have more dimensions than mfcc")
        if self.dim != self.expected_dim:
            raise ValueError(f"fusion composition sums to {self.dim}, not {self.expected_dim}: {dict(self.composition)}")

    @property
    def dim(self) -> int:
        return sum(size for _, size in self.composition)

    @property
    def contrast_bands(self) -> int:
        return dict(self.composition).get("contrast", 7) - 1

    @property
    def mfcc(self) -> MfccConfig:
        return MfccConfig(n_mfcc=dict(self.composition).get("mfcc", 1), n_fft=self.n_fft, hop_length=self.hop_length,
                          n_mels=self.n_mels)

    def names(self) -> list[str]:
        """One name per output dimension, e.g. 'mfcc3', 'chroma11', 'pitch'."""
        return [name if size == 1 else f"{name}{i}" for name, size in self.composition for i in range(size)]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["composition"] = [list(p) for p in self.composition]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FusionConfig":
        d = dict(d)
        d["composition"] = tuple((str(n), int(s)) for n, s in d.get("composition", DEFAULT_COMPOSITION))
        return cls(**d)


# --- input checks (the same on both sides) ---

def check_audio(y: np.ndarray, config: FusionConfig, what: str = "audio") -> None:
    """Refuse what would give meaningless features, with one line each."""
    if y.size < config.n_fft:
        raise MediaError(f"{what} is shorter than one frame: {y.size} samples at {config.sample_rate} Hz, "
                         f"need at least {config.n_fft} ({1000 * config.n_fft / config.sample_rate:.0f} ms)")
    if not np.all(np.isfinite(y)):
        raise MediaError(f"{what} holds NaN or infinite samples; re-export the file")
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    if rms <= 10 ** (config.silence_dbfs / 20):
        level = "digital silence" if rms == 0 else f"{20 * np.log10(rms):.0f} dBFS"
        raise MediaError(f"{what} is silent ({level}, threshold {config.silence_dbfs:g} dBFS); "
                         "check the microphone or the file")
    clipped = float(np.mean(np.abs(y) >= 0.999))
    if clipped > config.max_clipped_fraction:
        raise MediaError(f"{what} is clipped: {100 * clipped:.1f} % of samples at full scale "
                         f"(limit {100 * config.max_clipped_fraction:g} %); lower the recording gain")


def prepare_audio(y: np.ndarray, sr: int, config: FusionConfig, what: str = "audio") -> np.ndarray:
    y = resample(np.asarray(y, dtype=np.float32), int(sr), config.sample_rate)
    check_audio(y, config, what)
    return y


# --- the blocks ---

def _frames(y: np.ndarray, n: int, hop: int, pad_mode: str) -> np.ndarray:
    padded = np.pad(y, n // 2, mode=pad_mode)
    count = 1 + (padded.size - n) // hop
    return padded[np.arange(n)[None, :] + hop * np.arange(count)[:, None]]  # (t, n)


def _fft_freqs(sr: int, n_fft: int) -> np.ndarray:
    return np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)


def _normalize_columns(x: np.ndarray, order) -> np.ndarray:
    """Columns scaled to unit norm; all-zero columns left as they are (librosa's rule)."""
    norm = np.linalg.norm(x, ord=order, axis=0) if order != np.inf else np.abs(x).max(axis=0)
    norm = np.where(norm < np.finfo(x.dtype).tiny, 1.0, norm)
    return x / norm


@lru_cache(maxsize=8)
def chroma_filters(sr: int, n_fft: int, n_chroma: int = 12) -> np.ndarray:
    """Gaussian pitch-class bumps over the FFT bins, centred on C (as librosa's, tuning 0)."""
    freqs = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    bins = n_chroma * np.log2(freqs / (440.0 / 16))
    bins = np.concatenate(([bins[0] - 1.5 * n_chroma], bins))  # 0 Hz: 1.5 octaves below bin 1
    widths = np.concatenate((np.maximum(bins[1:] - bins[:-1], 1.0), [1.0]))
    half = np.round(n_chroma / 2)
    dist = np.remainder(bins[None, :] - np.arange(n_chroma)[:, None] + half + 10 * n_chroma, n_chroma) - half
    w = np.exp(-0.5 * (2 * dist / widths[None, :]) ** 2)
    w = w / np.linalg.norm(w, axis=0, keepdims=True)
    w *= np.exp(-0.5 * ((bins / n_chroma - 5.0) / 2.0) ** 2)[None, :]  # centre octave 5, width 2
    w = np.roll(w, -3 * (n_chroma // 12), axis=0)
    return w[:, : 1 + n_fft // 2].astype(np.float32)


def _tonnetz_basis() -> np.ndarray:
    dims = np.linspace(0, 12, num=12, endpoint=False)
    angles = np.outer([7 / 6, 7 / 6, 3 / 2, 3 / 2, 2 / 3, 2 / 3], dims)
    angles[::2] -= 0.5  # the sine rows
    return np.array([1, 1, 1, 1, 0.5, 0.5])[:, None] * np.cos(np.pi * angles)  # fifths, minor, major thirds


def _contrast(mag: np.ndarray, sr: int, n_fft: int, n_bands: int, fmin: float) -> np.ndarray:
    """Octave-band peak minus valley (dB), valley / peak = mean of the lowest / highest 2 %."""
    freqs = _fft_freqs(sr, n_fft)
    edges = np.zeros(n_bands + 2)
    edges[1:] = fmin * 2.0 ** np.arange(n_bands + 1)
    valleys, peaks = np.zeros((n_bands + 1, mag.shape[1])), np.zeros((n_bands + 1, mag.shape[1]))
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        band = (freqs >= lo) & (freqs <= hi)
        idx = np.flatnonzero(band)
        if k > 0:
            band[idx[0] - 1] = True
        if k == n_bands:
            band[idx[-1] + 1 :] = True
        sub = mag[band]
        if k < n_bands:
            sub = sub[:-1]
        q = max(int(np.rint(0.02 * band.sum())), 1)
        ordered = np.sort(sub, axis=0)
        valleys[k], peaks[k] = ordered[:q].mean(axis=0), ordered[-q:].mean(axis=0)
    return _to_db(peaks) - _to_db(valleys)


def _to_db(x: np.ndarray, top_db: float = 80.0) -> np.ndarray:
    """librosa's power_to_db (ref 1, amin 1e-10): floor at top_db below the whole array's maximum."""
    db = 10 * np.log10(np.maximum(1e-10, x))
    return np.maximum(db, db.max() - top_db)


def _yin(y: np.ndarray, sr: int, n: int, hop: int, fmin: float, fmax: float, threshold: float) -> np.ndarray:
    """YIN f0 (de Cheveigne & Kawahara 2002) per frame, as ``librosa.yin`` computes it."""
    frames = _frames(y.astype(np.float64), n, hop, "constant").T  # (n, t)
    lo, hi = int(np.floor(sr / fmax)), min(int(np.ceil(sr / fmin)), n - 1)
    size = 1 << int(np.ceil(np.log2(2 * n - 1)))
    acf = np.fft.irfft(np.abs(np.fft.rfft(frames, n=size, axis=0)) ** 2, n=size, axis=0)[: hi + 1]
    energy = np.cumsum(frames ** 2, axis=0)
    diff = np.zeros((hi + 1, frames.shape[1]))
    lags = np.arange(1, hi + 1)
    diff[1:] = 2 * (acf[0:1] - acf[lags]) - energy[: hi]  # difference function d(tau), Eq. 7 of YIN
    cmnd = diff[lo:] / (np.cumsum(diff[1:], axis=0)[lo - 1 :] / lags[lo - 1 :, None] + np.finfo(float).tiny)
    # Parabolic refinement of every lag (0 at both ends and where the parabola is flat).
    a = cmnd[2:] + cmnd[:-2] - 2 * cmnd[1:-1]
    b = (cmnd[2:] - cmnd[:-2]) / 2
    shift = np.zeros_like(cmnd)
    with np.errstate(divide="ignore", invalid="ignore"):
        shift[1:-1] = np.where(np.abs(b) >= np.abs(a), 0.0, -b / a)
    prev = np.concatenate([cmnd[:1], cmnd[:-1]])
    nxt = np.concatenate([cmnd[1:], cmnd[-1:]])
    trough = (cmnd < prev) & (cmnd <= nxt)
    trough[0] = cmnd[0] < cmnd[1]
    below = trough & (cmnd < threshold)
    period = np.where(below.any(axis=0), below.argmax(axis=0), cmnd.argmin(axis=0))
    cols = np.arange(cmnd.shape[1])
    return sr / (lo + period + shift[period, cols])


def fusion_features(y: np.ndarray, sr: int, config: FusionConfig = FusionConfig()) -> np.ndarray:
    """Per-frame fusion features [shape=(t, dim)] float32, blocks in ``config.composition`` order."""
    y = prepare_audio(y, sr, config)
    sr, n, hop = config.sample_rate, config.n_fft, config.hop_length
    frames = _frames(y.astype(np.float64), n, hop, "constant") * _hann(n)
    mag = np.abs(np.fft.rfft(frames, axis=1)).T  # (1 + n // 2, t)
    power = mag ** 2
    freqs = _fft_freqs(sr, n)[:, None]
    sizes = dict(config.composition)
    blocks: dict[str, np.ndarray] = {}
    if "mfcc" in sizes or "mfcc_delta" in sizes:
        cep = mfcc_from_power(power, sr, config.mfcc)
        blocks["mfcc"] = cep
        k = sizes.get("mfcc_delta", 0)
        padded = np.pad(cep[:k], ((0, 0), (1, 1)), mode="edge")
        blocks["mfcc_delta"] = padded[:, 2:] - padded[:, :-2]  # Eq. 17
    chroma = _normalize_columns(chroma_filters(sr, n).astype(np.float64) @ power, np.inf)
    blocks["chroma"] = chroma
    blocks["tonnetz"] = _tonnetz_basis() @ _normalize_columns(chroma, 1)
    blocks["contrast"] = _contrast(mag, sr, n, config.contrast_bands, config.contrast_fmin)
    zframes = _frames(y, n, hop, "edge")
    signs = np.signbit(np.where(np.abs(zframes) <= 1e-10, 0.0, zframes))
    blocks["zcr"] = np.mean(signs[:, 1:] != signs[:, :-1], axis=1, dtype=np.float64)[None] * (n - 1) / n
    spectrum = _normalize_columns(mag, 1)
    centroid = np.sum(freqs * spectrum, axis=0, keepdims=True)
    blocks["centroid"] = centroid
    blocks["bandwidth"] = np.sqrt(np.sum(spectrum * (freqs - centroid) ** 2, axis=0, keepdims=True))
    cumulative = np.cumsum(mag, axis=0)
    reached = cumulative >= config.rolloff_percent * cumulative[-1:]
    blocks["rolloff"] = np.nanmin(np.where(reached, freqs, np.nan), axis=0, keepdims=True)
    if "pitch" in sizes:
        blocks["pitch"] = _yin(y, sr, n, hop, config.pitch_fmin, config.pitch_fmax, config.yin_threshold)[None]
    t = mag.shape[1]
    out = np.concatenate([blocks[name][:size, :t] for name, size in config.composition], axis=0)
    return out.T.astype(np.float32)


# --- model inputs (the same on both sides) ---

def fit_length(x: np.ndarray, max_frames: int) -> np.ndarray:
    """Centre crop to ``max_frames``, or zero-pad at the end (zero = the training mean once
    standardised)."""
    if len(x) >= max_frames:
        start = (len(x) - max_frames) // 2
        return x[start : start + max_frames]
    return np.concatenate([x, np.zeros((max_frames - len(x), x.shape[1]), x.dtype)])


def standardise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std, refusing a result that is not finite (bad statistics or input)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = ((x - mean) / std).astype(np.float32)
    if not np.all(np.isfinite(out)):
        bad = np.flatnonzero(~np.all(np.isfinite(out.reshape(-1, out.shape[-1])), axis=0))
        raise InputError(f"features are NaN or infinite after standardisation in dimension(s) {bad[:5].tolist()}: "
                         "the statistics (std 0?) or the audio are broken; retrain or check the file")
    return out


def model_input(frames: np.ndarray, mean: np.ndarray, std: np.ndarray, max_frames: int) -> np.ndarray:
    """One utterance's features -> the network's input [shape=(1, max_frames, dim)]."""
    return fit_length(standardise(frames, mean, std), max_frames)[None]
