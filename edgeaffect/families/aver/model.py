"""Lightweight audio-visual emotion CNN (Ding, Tang, Lu, IEEE TAC 2025).

Face branch: three 3x3 convs (16, 32, 64), valid padding, stride 1, ReLU, 2x2 max
pooling after each, dropout after the last. Audio branch: two 1D convs (16, 32),
kernel 5, ReLU, max pooling 2 after each, dropout after the second. Both flattened,
concatenated, Dense(16 or 14) + ReLU, dropout, Dense(8 or 7) softmax.
See ``edgeaffect/families/aver/README.md`` for every choice the paper leaves open.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from edgeaffect.families.aver.ravdess import EMOTIONS as RAVDESS_EMOTIONS
from edgeaffect.contract.cost import LayerCost, conv, dense
from edgeaffect.contract.family import paper_figures
from edgeaffect.contract.registry import ModelSpec, register_model

PAPER = "Ding, Tang, Lu. Lightweight spatio-temporal CNN for audio-visual emotion recognition. IEEE TAC 2025"
SAVEE_EMOTIONS = ("angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised")


@dataclass(frozen=True)
class AverConfig:
    n_classes: int = 8
    dense_units: int = 16
    dropout: float = 0.4
    face_size: int = 64
    n_mfcc: int = 40
    face_filters: tuple = (16, 32, 64)
    face_kernel: int = 3
    audio_filters: tuple = (16, 32)
    audio_kernel: int = 5
    # Training recipe (Sec. III-D).
    learning_rate: float = 1e-3
    batch_size: int = 128
    max_epochs: int = 1000  # the paper stops on validation loss only; this is a safety cap
    patience: int = 30
    min_delta: float = 1e-3
    augment: bool = False  # RAVDESS: Gaussian noise (var 0.01) on faces, time stretch 0.8 on audio
    face_noise_var: float = 0.01
    time_stretch_rate: float = 0.8

    def to_dict(self) -> dict:
        return asdict(self)


def aver_cost(c: AverConfig) -> list[LayerCost]:
    rows, side, ch = [], c.face_size, 1
    for i, f in enumerate(c.face_filters):
        side -= c.face_kernel - 1
        rows.append(conv(f"face_conv{i + 1}", (side, side), ch, f, (c.face_kernel, c.face_kernel)))
        side, ch = side // 2, f
    face_flat = side * side * ch
    length, ch = c.n_mfcc, 1
    for i, f in enumerate(c.audio_filters):
        length -= c.audio_kernel - 1
        rows.append(conv(f"mfcc_conv{i + 1}", (length,), ch, f, (c.audio_kernel,)))
        length, ch = length // 2, f
    rows.append(dense("fusion_dense", face_flat + length * ch, c.dense_units))
    rows.append(dense("emotion", c.dense_units, c.n_classes))
    return rows


def build_aver(c: AverConfig):
    from edgeaffect.keras_backend import keras

    k = keras()
    L = k.layers
    # === Face branch ===
    face_in = L.Input((c.face_size, c.face_size, 1), name="face")
    x = face_in
    for i, f in enumerate(c.face_filters):
        x = L.Conv2D(f, c.face_kernel, activation="relu", name=f"face_conv{i + 1}")(x)
        x = L.MaxPooling2D(2, name=f"face_pool{i + 1}")(x)
    x = L.Dropout(c.dropout, name="face_dropout")(x)
    x = L.Flatten(name="face_flatten")(x)
    # === Audio branch ===
    mfcc_in = L.Input((c.n_mfcc, 1), name="mfcc")
    a = mfcc_in
    for i, f in enumerate(c.audio_filters):
        a = L.Conv1D(f, c.audio_kernel, activation="relu", name=f"mfcc_conv{i + 1}")(a)
        a = L.MaxPooling1D(2, name=f"mfcc_pool{i + 1}")(a)
    a = L.Dropout(c.dropout, name="mfcc_dropout")(a)
    a = L.Flatten(name="mfcc_flatten")(a)
    # === Fusion ===
    z = L.Concatenate(name="fusion")([x, a])
    z = L.Dense(c.dense_units, activation="relu", name="fusion_dense")(z)
    z = L.Dropout(c.dropout, name="fusion_dropout")(z)
    out = L.Dense(c.n_classes, activation="softmax", name="emotion")(z)
    return k.Model(inputs={"face": face_in, "mfcc": mfcc_in}, outputs=out, name="aver")


def _spec(name: str, config: AverConfig, labels: tuple, dataset: str) -> ModelSpec:
    return ModelSpec(
        name=name, family="aver", paper=PAPER, task=f"emotion classification ({len(labels)} classes, {dataset})",
        labels=labels,
        inputs={"face": (config.face_size, config.face_size, 1), "mfcc": (config.n_mfcc, 1)},
        config=config, build=build_aver, cost=aver_cost,
        paper_figures=paper_figures(__package__, name),  # Table V and each corpus's accuracy: paper.toml
    )


@register_model
def aver_ravdess() -> ModelSpec:
    return _spec("aver-ravdess", AverConfig(8, 16, 0.4, augment=True), RAVDESS_EMOTIONS, "RAVDESS")


@register_model
def aver_mead() -> ModelSpec:
    labels = ("neutral", "angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised")
    return _spec("aver-mead", AverConfig(8, 16, 0.3), labels, "MEAD")


@register_model
def aver_savee() -> ModelSpec:
    return _spec("aver-savee", AverConfig(7, 14, 0.5), SAVEE_EMOTIONS, "SAVEE")
