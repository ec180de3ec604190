"""The deep spectrotemporal network (Jabbar, Uddin et al., Sci. Rep. 2025), one stage.

Inputs per sequence of S segments: ``spectrogram`` (S, frames, n_mels, 3) in the
backbone's pixel range (features.to_pixels) and ``vlnep`` (S, 256) standardised
histograms. Spectral stream: the segments folded into the batch; EfficientNet-B3 on the
whole image -> GAP (holistic) and on 4 overlapping corner patches -> GAP -> mean (local);
concatenated (3072 for B3) per segment. The backbone is built flat in this graph (its
layers called once per view with shared weights): a nested model is not quantizable.
Each stream: Conv1D embedding (d_model filters), sinusoidal positions (Eqs. 9-10),
encoder layers (MHA + two-layer FFN, residual + LayerNorm), attention aggregation
(Eqs. 12-14). Concatenate, dropout 0.2, Dense 128, Dense 1.

Every value the paper leaves open is a ``SpectroNetConfig`` field; the defaults and why
are in ``edgeaffect/families/spectrotemporal/README.md``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction

from edgeaffect.families.spectrotemporal.features import SpectroConfig
from edgeaffect.contract.cost import LayerCost, conv, dense
from edgeaffect.contract.family import paper_figures
from edgeaffect.contract.registry import ModelSpec, register_model

PAPER = ("Jabbar, Uddin, Joolee, Nasridinov. Deep spectrotemporal network based depression severity "
         "estimation from speech. Sci. Rep. 2025")
BANDS = (("minimal", 0.0), ("mild", 14.0), ("moderate", 20.0), ("severe", 29.0))
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)
B3 = (1.2, 1.4)  # EfficientNet-B3's width and depth coefficients
MIN_VIEW = 32  # below 32 pixels a view shrinks to nothing before EfficientNet's last stride-2 stage


STREAMS = ("both", "spectral", "temporal")
VIEWS = ("both", "holistic", "local")
# keras.applications backbones buildable without a download (random weights, or a local file).
# Their GAP width; Inception-ResNet-v2 (Table 2) needs views of at least 75 x 75 pixels, larger
# than the 60 x 48 patches at the paper's segment size, so it is not offered.
BACKBONES = {"efficientnet": None, "vgg16": 512, "resnet101": 2048}
# Table 1's rows and Table 2's backbones (each "Based Spectral Stream": the spectral stream alone).
ABLATIONS = {
    "full": {},
    "holistic-spectral": {"streams": "spectral", "spectral_views": "holistic"},
    "local-spectral": {"streams": "spectral", "spectral_views": "local"},
    "spectral": {"streams": "spectral"},
    "temporal": {"streams": "temporal"},
    "vgg16-spectral": {"streams": "spectral", "backbone_arch": "vgg16"},
    "resnet101-spectral": {"streams": "spectral", "backbone_arch": "resnet101"},
}


@dataclass(frozen=True)
class SpectroNetConfig:
    features: SpectroConfig = field(default_factory=SpectroConfig)
    # Backbone: (width, depth) coefficients; B3 is the paper's. A smaller pair builds a
    # tiny EfficientNet through the same keras.applications code (tests only).
    backbone: tuple = B3
    backbone_weights: str = "none"  # "none" (from scratch) or a local efficientnetb3_notop.h5
    freeze_backbone: bool = False
    patch_fraction: float = 0.6  # 4 corner patches, each 0.6 of the frames and of the bands
    vlnep_rule: str = "match"  # the text's rule; "xor": the equations'
    # Ablations (Tables 1-2): which streams, which spectral views, which backbone.
    streams: str = "both"  # "both" | "spectral" | "temporal"
    spectral_views: str = "both"  # "both" (holistic + local) | "holistic" | "local"
    backbone_arch: str = "efficientnet"  # "efficientnet" (B3 at the paper's coefficients) | "vgg16" | "resnet101"
    d_model: int = 256
    heads: int = 8
    ffn_units: int = 512
    encoder_layers: int = 3
    embed_kernel: int = 1  # not given; 1 puts the trainable count at 15.0 M beside the paper's 15.1 M
    encoder_dropout: float = 0.1
    dropout: float = 0.2
    dense_units: int = 128
    learning_rate: float = 1e-4
    batch_size: int = 32
    epochs: int = 60

    def __post_init__(self):
        for what, n in (("frames per segment", self.features.frames_per_segment), ("Mel bands", self.features.n_mels)):
            if int(n * self.patch_fraction) < MIN_VIEW:
                raise ValueError(f"{what} x patch_fraction = {n * self.patch_fraction:g} < {MIN_VIEW}: "
                                 "EfficientNet needs views of at least 32 x 32")
        if self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} is not a multiple of heads {self.heads}")
        for name, value, allowed in (("streams", self.streams, STREAMS), ("spectral_views", self.spectral_views, VIEWS),
                                     ("backbone_arch", self.backbone_arch, tuple(BACKBONES))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")

    @property
    def uses_spectral(self) -> bool:
        return self.streams in ("both", "spectral")

    @property
    def uses_temporal(self) -> bool:
        return self.streams in ("both", "temporal")

    @property
    def segments(self) -> int:
        return self.features.segments_per_sequence

    @property
    def image(self) -> tuple[int, int]:
        return self.features.frames_per_segment, self.features.n_mels

    def patches(self) -> list[tuple[int, int, int, int]]:
        """(top, left, height, width) of the 4 overlapping corner patches."""
        (h, w), f = self.image, self.patch_fraction
        ph, pw = int(h * f), int(w * f)
        return [(t, l, ph, pw) for t in (0, h - ph) for l in (0, w - pw)]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["features"] = self.features.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SpectroNetConfig":
        d = dict(d)
        d["features"] = SpectroConfig.from_dict(d["features"])
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# --- custom layers (QAT and export need them by name) ---

def custom_objects() -> dict:
    from edgeaffect.keras_backend import keras, tf

    k, t = keras(), tf()

    class FoldSegments(k.layers.Layer):
        """(batch, S, ...) <-> (batch * S, ...): the per-segment network sees segments as a batch."""

        def __init__(self, shape, **kw):
            super().__init__(**kw)
            self.shape = tuple(shape)

        def call(self, x):
            # The new batch size from the old one, never -1: TFLite's int8 calibrator resizes
            # inputs, and a -1 reshape then gets a zero-sized shape (measured).
            n = t.shape(x)[0]
            first = n * x.shape[1] if len(self.shape) == 3 else n // self.shape[0]
            return t.reshape(x, t.concat([[first], list(self.shape)], 0))

        edgeaffect_kind = "view"

        def edgeaffect_cost(self, input_shape):
            return 0, 0  # a reshape

        def edgeaffect_fold(self, input_shape):
            """Rows out per row in: S when folding (the layers after run per segment), 1/S
            when unfolding (None: S open)."""
            if len(self.shape) == 3:
                return input_shape[1]
            return Fraction(1, int(self.shape[0]))

        def get_config(self):
            return {**super().get_config(), "shape": list(self.shape)}

    class PositionalEncoding(k.layers.Layer):
        """Adds the sinusoids of Eqs. 9-10 (a constant, no weights)."""

        def call(self, x):
            s, d = x.shape[1], x.shape[2]
            pos = t.range(s, dtype=t.float32)[:, None]
            i = t.range(d, dtype=t.float32)[None, :]
            angle = pos / t.pow(10000.0, 2.0 * t.floor(i / 2.0) / float(d))
            even = t.cast(t.math.floormod(t.range(d), 2) == 0, t.float32)[None, :]
            return x + (even * t.sin(angle) + (1.0 - even) * t.cos(angle))[None]

        def edgeaffect_cost(self, input_shape):
            return 0, math.prod(int(d) for d in input_shape[1:])  # one add per element (the sinusoids are constants)

    class WeightedSum(k.layers.Layer):
        """Eq. 14: G = sum_k beta(k) z_k."""

        def call(self, inputs):
            z, beta = inputs
            return t.reduce_sum(z * beta, axis=1)

        def edgeaffect_cost(self, input_shapes):
            return math.prod(int(d) for d in input_shapes[0][1:]), 0  # beta^T z: one multiply-add per element of z

    class ChannelAffine(k.layers.Layer):
        """x * scale + offset per channel, constants in the config: the backbone stem's
        Normalization (whose state tensors tf2onnx turns into extra graph inputs)."""

        def __init__(self, scale, offset, **kw):
            super().__init__(**kw)
            self.scale, self.offset = [float(v) for v in scale], [float(v) for v in offset]

        def call(self, x):
            return x * t.constant(self.scale, x.dtype) + t.constant(self.offset, x.dtype)

        edgeaffect_kind = "act"

        def edgeaffect_cost(self, input_shape):
            return 0, 0  # a normalisation: zero in the cost convention, as BatchNormalization

        def get_config(self):
            return {**super().get_config(), "scale": self.scale, "offset": self.offset}

    return {c.__name__: c for c in (FoldSegments, PositionalEncoding, WeightedSum, ChannelAffine)}


# --- the backbone, flat ---

def backbone_template(c: SpectroNetConfig):
    """The configured backbone (no top, GAP) on a free-size input, weights loaded if given."""
    if c.backbone_arch == "efficientnet":
        template = efficientnet_template(c)
        if c.backbone_weights != "none":
            load_imagenet_notop(template, c.backbone_weights)
        return template
    from pathlib import Path

    from tf_keras import applications

    from edgeaffect.errors import InputError

    build = {"vgg16": applications.VGG16, "resnet101": applications.ResNet101}[c.backbone_arch]
    template = build(include_top=False, weights=None, input_shape=(None, None, 3), pooling="avg")
    if c.backbone_weights != "none":
        if not Path(c.backbone_weights).is_file():
            raise InputError(f"backbone weights not found: {c.backbone_weights} (Keras' {c.backbone_arch} notop .h5)")
        template.load_weights(str(c.backbone_weights))
    return template


def efficientnet_template(c: SpectroNetConfig):
    """A keras.applications EfficientNet (no top, GAP) on a free-size input: its layers are
    called once per view. Free size: the padding before stride-2 convs is then the same for
    every view (for even sizes it equals Keras' own)."""
    from tf_keras.src.applications.efficientnet import EfficientNet

    width, depth = c.backbone
    return EfficientNet(width, depth, 300, dropout_rate=0.3, model_name="efficientnetb3" if tuple(c.backbone) == B3
                        else "efficientnet-tiny", include_top=False, weights=None, input_shape=(None, None, 3),
                        pooling="avg")


def load_imagenet_notop(template, path) -> None:
    """Load Keras' ``efficientnetb3_notop.h5`` into a template built with ``weights=None``.

    With ``weights="imagenet"`` Keras adds a multiply by 1/sqrt(stddev) after the
    Normalization layer (tensorflow#49930); a template built without it gets the same
    function by folding that factor into the Normalization variance:
    (x - m) / sqrt(v) / sqrt(s) = (x - m) / sqrt(v s)."""
    from pathlib import Path

    import numpy as np

    from edgeaffect.errors import InputError

    if not Path(path).is_file():
        raise InputError(f"backbone weights not found: {path} (Keras' efficientnetb3_notop.h5)")
    template.load_weights(str(path))
    norm = next(layer for layer in template.layers if type(layer).__name__ == "Normalization")
    mean, var, count = norm.get_weights()
    norm.set_weights([mean, var * np.asarray(IMAGENET_STDDEV_RGB, var.dtype).reshape(var.shape), count])
    # Normalization keeps the mean / variance it computes with apart from its weights.
    norm.finalize_state()


def reapply(template, x):
    """``template``'s graph called on ``x`` layer by layer (shared weights, no nesting)."""
    from edgeaffect.keras_backend import tf

    nest = tf().nest
    affine = custom_objects()["ChannelAffine"]
    memo = {id(template.inputs[0]): x}
    for depth in sorted(template._nodes_by_depth, reverse=True):  # noqa: SLF001 - tf_keras' graph
        for node in template._nodes_by_depth[depth]:  # noqa: SLF001
            if node.is_input:
                continue
            sub = lambda v: memo.get(id(v), v)  # noqa: E731
            layer = node.layer
            if type(layer).__name__ == "Normalization":
                layer = _stem_affine(affine, layer)
            out = layer(*nest.map_structure(sub, node.call_args), **nest.map_structure(sub, node.call_kwargs))
            for old, new in zip(nest.flatten(node.outputs), nest.flatten(out)):
                memo[id(old)] = new
    return memo[id(template.outputs[0])]


def _stem_affine(affine, norm):
    """The Normalization layer's (x - mean) / sqrt(variance) as constants (one per view)."""
    import numpy as np

    mean, var = (np.asarray(v, np.float64).reshape(-1) for v in norm.get_weights()[:2])
    scale = 1.0 / np.maximum(np.sqrt(var), 1e-7)  # Keras' Normalization: max(sqrt(var), epsilon)
    return affine(scale.tolist(), (-mean * scale).tolist())


def build_spectronet(c: SpectroNetConfig):
    """The whole network on one sequence (training, and the one-stage export). Ablated
    configurations drop a stream (and its input) or a spectral view."""
    from edgeaffect.keras_backend import keras

    k = keras()
    L, custom = k.layers, custom_objects()
    s, (h, w) = c.segments, c.image
    inputs, spectral, vlnep_in = {}, None, None
    if c.uses_spectral:  # === Spectral stream: per segment ===
        spec_in = inputs["spectrogram"] = L.Input((s, h, w, 3), name="spectrogram")
        images = custom["FoldSegments"]((h, w, 3), name="fold_segments")(spec_in)
        per_segment = _spectral_features(k, c, images)
        spectral = custom["FoldSegments"]((s, int(per_segment.shape[-1])), name="unfold_segments")(per_segment)
    if c.uses_temporal:  # === Temporal stream input ===
        vlnep_in = inputs["vlnep"] = L.Input((s, 256), name="vlnep")
    out = _transformer_head(k, custom, c, spectral, vlnep_in)
    return _detached(k, k.Model(inputs, out, name="spectrotemporal"), custom)


def spectral_width(c: SpectroNetConfig) -> int:
    """Features per segment: holistic + local GAP vectors (3072 for B3), or one of them."""
    per_view = BACKBONES[c.backbone_arch] or _round_filters(1280, c.backbone[0])
    return per_view * (2 if c.spectral_views == "both" else 1)


def build_extractor(c: SpectroNetConfig):
    """Stage 1 on the device: one segment's 3-channel spectrogram -> its spectral features
    (EfficientNet on the whole image and on 4 patches). Layer names are the full model's,
    so weights move between them by name."""
    from edgeaffect.keras_backend import keras

    k = keras()
    h, w = c.image
    segment = k.layers.Input((h, w, 3), name="segment")
    return _detached(k, k.Model({"segment": segment}, _spectral_features(k, c, segment), name="spectral_extractor"),
                     custom_objects())


def build_sequence_model(c: SpectroNetConfig):
    """Stage 2 on the device: a sequence of S segments' spectral features and VLNEP
    histograms -> the BDI-II score (the dual-stream transformer and the head)."""
    from edgeaffect.keras_backend import keras

    k = keras()
    L, custom = k.layers, custom_objects()
    spectral = L.Input((c.segments, spectral_width(c)), name="spectral")
    vlnep = L.Input((c.segments, 256), name="vlnep")
    out = _transformer_head(k, custom, c, spectral, vlnep)
    return _detached(k, k.Model({"spectral": spectral, "vlnep": vlnep}, out, name="spectrotemporal_sequence"), custom)


def copy_weights(source, target, *, shared_only: bool = False) -> None:
    """Every weighted layer of ``target`` takes the weights of ``source``'s layer of that name
    (``shared_only``: layers ``source`` lacks keep theirs, e.g. one stage into the whole)."""
    have = {layer.name for layer in source.layers}
    for layer in target.layers:
        if layer.weights and (layer.name in have or not shared_only):
            layer.set_weights(source.get_layer(layer.name).get_weights())


def _spectral_features(k, c: SpectroNetConfig, images):
    L = k.layers
    h, w = c.image
    template = backbone_template(c)
    if c.freeze_backbone:
        template.trainable = False
    if c.backbone_arch != "efficientnet":  # caffe-style inputs: the ImageNet mean taken out per channel
        images = custom_objects()["ChannelAffine"]([1.0] * 3, [-103.939, -116.779, -123.68], name="caffe_mean")(images)
    views = []
    if c.spectral_views in ("both", "holistic"):
        views.append(reapply(template, images))
    if c.spectral_views in ("both", "local"):
        local = [reapply(template, L.Cropping2D(((t, h - t - ph), (l, w - l - pw)), name=f"patch{i}")(images))
                 for i, (t, l, ph, pw) in enumerate(c.patches())]
        views.append(L.Average(name="local")(local))
    return L.Concatenate(name="spectral_features")(views) if len(views) > 1 else views[0]


def _transformer_head(k, custom, c: SpectroNetConfig, spectral, vlnep):
    L = k.layers
    g = [_stream(k, custom, c, x, name) for x, name in ((spectral, "spectral"), (vlnep, "temporal")) if x is not None]
    v = L.Concatenate(name="fusion")(g) if len(g) > 1 else g[0]  # Eq. 15
    v = L.Dropout(c.dropout, name="dropout")(v)
    v = L.Dense(c.dense_units, activation="relu", name="dense")(v)
    return L.Dense(1, name="bdi")(v)


def _detached(k, model, custom):
    """The same model rebuilt from its config: its backbone layers then carry only the five
    views' nodes, not the template's (Keras' clone_model, which QAT uses, trips on those)."""
    clean = k.Model.from_config(model.get_config(), custom_objects=custom)
    for layer in clean.layers:
        layer.set_weights(model.get_layer(layer.name).get_weights())
    return clean


def _stream(k, custom, c: SpectroNetConfig, x, name: str):
    L = k.layers
    z = L.Conv1D(c.d_model, c.embed_kernel, padding="same", name=f"{name}_embed")(x)  # Eq. 8
    z = custom["PositionalEncoding"](name=f"{name}_positions")(z)
    for i in range(c.encoder_layers):
        p = f"{name}_enc{i + 1}"
        a = L.MultiHeadAttention(c.heads, c.d_model // c.heads, dropout=c.encoder_dropout, name=f"{p}_mha")(z, z)
        z = L.LayerNormalization(epsilon=1e-6, name=f"{p}_ln1")(L.Add(name=f"{p}_add1")([z, a]))
        f = L.Dense(c.ffn_units, activation="relu", name=f"{p}_ffn1")(z)
        f = L.Dropout(c.encoder_dropout, name=f"{p}_drop")(L.Dense(c.d_model, name=f"{p}_ffn2")(f))
        z = L.LayerNormalization(epsilon=1e-6, name=f"{p}_ln2")(L.Add(name=f"{p}_add2")([z, f]))
    q = L.Dense(c.d_model, activation="tanh", name=f"{name}_att_q")(z)  # Eq. 12
    e = L.Dense(1, name=f"{name}_att_score")(q)  # Eq. 13 (on q(k): see the model card)
    beta = L.Softmax(axis=1, name=f"{name}_att_softmax")(e)
    return custom["WeightedSum"](name=f"{name}_context")([z, beta])  # Eq. 14


# --- analytic cost (no TensorFlow) ---

def _round_filters(f: float, width: float, divisor: int = 8) -> int:
    f *= width
    new = max(divisor, int(f + divisor / 2) // divisor * divisor)
    return int(new + divisor if new < 0.9 * f else new)


_BLOCKS = ((1, 3, 1, 32, 16, 1), (2, 3, 2, 16, 24, 6), (2, 5, 2, 24, 40, 6), (3, 3, 2, 40, 80, 6),
           (3, 5, 1, 80, 112, 6), (4, 5, 2, 112, 192, 6), (1, 3, 1, 192, 320, 6))  # repeats, k, stride, in, out, expand


def _down(n: int, k: int) -> int:
    return (n + (k // 2 - 1) + k // 2 - k) // 2 + 1  # free-size padding, then a valid stride-2 conv


def efficientnet_cost(prefix: str, hw: tuple[int, int], width: float, depth: float) -> list[LayerCost]:
    """Per-layer rows of one EfficientNet pass (BatchNorm: 4 parameters per channel, 0 FLOPs:
    it folds into the conv before it)."""
    rows = []
    h, w = _down(hw[0], 3), _down(hw[1], 3)
    c = _round_filters(32, width)
    rows += [conv(f"{prefix}stem_conv", (h, w), 3, c, (3, 3)), LayerCost(f"{prefix}stem_bn", "bn", (h, w, c), 4 * c, 0)]
    for bi, (rep, kk, stride, fin, fout, ex) in enumerate(_BLOCKS):
        fin, fout = _round_filters(fin, width), _round_filters(fout, width)
        for j in range(int(math.ceil(depth * rep))):
            cin, st, n = (fin if j == 0 else fout), (stride if j == 0 else 1), f"{prefix}block{bi + 1}{chr(97 + j)}_"
            mid = cin * ex
            if ex != 1:
                rows += [conv(n + "expand", (h, w), cin, mid, (1, 1)), LayerCost(n + "expand_bn", "bn", (h, w, mid),
                                                                                 4 * mid, 0)]
            if st == 2:
                h, w = _down(h, kk), _down(w, kk)
            rows += [LayerCost(n + "dwconv", "depthwise", (h, w, mid), kk * kk * mid, 2 * h * w * mid * kk * kk),
                     LayerCost(n + "bn", "bn", (h, w, mid), 4 * mid, 0)]
            se = max(1, int(cin * 0.25))
            rows += [dense(n + "se_reduce", mid, se), dense(n + "se_expand", se, mid),
                     LayerCost(n + "se_excite", "multiply", (h, w, mid), 0, h * w * mid)]
            rows += [conv(n + "project", (h, w), mid, fout, (1, 1)), LayerCost(n + "project_bn", "bn", (h, w, fout),
                                                                               4 * fout, 0)]
    top = _round_filters(1280, width)
    rows += [conv(f"{prefix}top_conv", (h, w), _round_filters(320, width), top, (1, 1)),
             LayerCost(f"{prefix}top_bn", "bn", (h, w, top), 4 * top, 0)]
    # Convs without bias: take the bias terms back out (params and adds) so the count is Keras'.
    return [_no_bias(r) if r.kind.startswith("conv") else r for r in rows]


def _no_bias(r: LayerCost) -> LayerCost:
    c, area = r.out_shape[-1], math.prod(r.out_shape[:-1])
    return LayerCost(r.name, r.kind, r.out_shape, r.params - c, r.flops - area * c)


def backbone_params(c: SpectroNetConfig) -> int:
    return sum(r.params for r in efficientnet_cost("", c.image, *c.backbone)) + 7  # + Normalization mean/var/count


def spectronet_cost(c: SpectroNetConfig) -> list[LayerCost]:
    """Rows for one sequence: the backbone's parameters once (shared), its FLOPs for every
    view of every segment (row names say which), then the transformer."""
    # The stem's Normalization becomes constants (ChannelAffine): Keras' 7 state values are not weights here.
    # Only EfficientNet is counted here; the other backbones (ablations): `edgeaffect cost` reads the graph.
    rows, shared = [], 1
    views = ([("whole/", c.image)] if c.spectral_views in ("both", "holistic") else []) + (
        [(f"patch{i}/", (ph, pw)) for i, (_, _, ph, pw) in enumerate(c.patches())]
        if c.spectral_views in ("both", "local") else [])
    for prefix, hw in views if c.uses_spectral and c.backbone_arch == "efficientnet" else []:
        rows += [LayerCost(r.name, r.kind, r.out_shape, r.params * shared, r.flops * c.segments)
                 for r in efficientnet_cost(prefix, hw, *c.backbone)]
        shared = 0  # one set of weights for every view
    streams = [("spectral", spectral_width(c))] if c.uses_spectral else []
    streams += [("temporal", 256)] if c.uses_temporal else []
    for name, width in streams:
        rows += _transformer_cost(c, name, width)
    rows += [dense("dense", len(streams) * c.d_model, c.dense_units), dense("bdi", c.dense_units, 1)]
    return rows


def _transformer_cost(c: SpectroNetConfig, name: str, width: int) -> list[LayerCost]:
    s, d = c.segments, c.d_model
    rows = [conv(f"{name}_embed", (s,), width, d, (c.embed_kernel,))]
    for i in range(c.encoder_layers):
        p = f"{name}_enc{i + 1}"
        proj = dense(f"{p}_mha_proj", d, d)
        rows += [LayerCost(f"{p}_mha", "attention", (s, d), 4 * proj.params, 4 * s * proj.flops + 2 * 2 * s * s * d),
                 LayerCost(f"{p}_ln1", "layernorm", (s, d), 2 * d, 0),
                 LayerCost(f"{p}_ffn1", "dense", (s, c.ffn_units), dense("", d, c.ffn_units).params,
                           s * dense("", d, c.ffn_units).flops),
                 LayerCost(f"{p}_ffn2", "dense", (s, d), dense("", c.ffn_units, d).params,
                           s * dense("", c.ffn_units, d).flops),
                 LayerCost(f"{p}_ln2", "layernorm", (s, d), 2 * d, 0)]
    rows += [LayerCost(f"{name}_att_q", "dense", (s, d), dense("", d, d).params, s * dense("", d, d).flops),
             LayerCost(f"{name}_att_score", "dense", (s, 1), d + 1, s * (2 * d + 1))]
    return rows


# --- variants ---

def _spec(name: str, c: SpectroNetConfig, corpus: str) -> ModelSpec:
    s, (h, w) = c.segments, c.image
    return ModelSpec(name=name, family="spectrotemporal", paper=PAPER, task=f"BDI-II regression (0-63, {corpus})",
                     labels=("BDI-II",), inputs={"spectrogram": (s, h, w, 3), "vlnep": (s, 256)}, config=c,
                     build=build_spectronet, cost=spectronet_cost,
                     paper_figures=paper_figures(__package__, name))  # Table 4 and the text: paper.toml


@register_model
def spectrotemporal_avec2013() -> ModelSpec:
    return _spec("spectrotemporal-avec2013", SpectroNetConfig(), "AVEC2013")


@register_model
def spectrotemporal_avec2014() -> ModelSpec:
    return _spec("spectrotemporal-avec2014", SpectroNetConfig(), "AVEC2014")


def tiny_config(**kw) -> SpectroNetConfig:
    """A small configuration through the same code (tests, quick demos): a width-0.1 EfficientNet,
    48 x 48 images (0.48 s, 48 Mel bands), 6-segment sequences, d_model 32."""
    feats = SpectroConfig(n_mels=48, segment_s=0.48, segments_per_sequence=6, sequence_hop=3)
    base = SpectroNetConfig(features=feats, backbone=(0.1, 0.1), patch_fraction=2 / 3, d_model=32, heads=4,
                            ffn_units=64, encoder_layers=1, dense_units=32, learning_rate=3e-3, batch_size=16)
    return replace(base, **kw)


@register_model
def spectrotemporal_tiny() -> ModelSpec:
    return _spec("spectrotemporal-tiny", tiny_config(), "tests and demos; not the paper's size")
