"""A Keras (tf_keras) wav2vec 2.0, built from a Hugging Face ``config.json``.

The graph follows the reference implementation's module layout so that a checkpoint's
state dict maps onto it one module at a time (``checkpoint.py``):

- feature encoder: ``len(conv_dim)`` Conv1D layers (valid padding, the config's kernels,
  strides and ``conv_bias``). ``feat_extract_norm="group"``: a GroupNorm with one group
  per channel (per channel over time) after the first conv only; ``"layer"``: a channel
  LayerNorm after every conv. Then the feature activation (exact GELU).
- feature projection: LayerNorm over the last conv's channels, Dense to ``hidden_size``.
- positional convolution: kernel ``num_conv_pos_embeddings``, padding kernel // 2,
  ``num_conv_pos_embedding_groups`` groups, built as one Conv1D per group + Concatenate
  (TFLite quantizes and exports that; a grouped Conv1D it does not), weight norm folded
  into the plain kernels at import, the last frame dropped when the kernel is even, GELU.
- encoder: post-LN (``do_stable_layer_norm=False``: positions added, LayerNorm, then
  layers with attention -> add -> LayerNorm -> feed-forward -> add -> LayerNorm) or pre-LN
  (``True``: positions added, layers with LayerNorm -> attention -> add, LayerNorm ->
  feed-forward -> add, and a final LayerNorm after the last layer).

Every branch follows a config field, never the model's size ("large" checkpoints exist in
both variants). Epsilons are the config's (1e-5), GELU is exact (erf).

The model maps already normalised float32 audio (batch, samples) to the L+1 hidden states
the pinned reference returns with ``output_hidden_states=True`` (transformers 5.x): state
0 is the encoder's input to its first layer, state i the output of layer i. For a pre-LN
model the last state is *before* the final encoder LayerNorm (transformers 4.x returned
it after); ``build_wav2vec2(config, last_hidden_state=True)`` appends the normed one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError
from edgeaffect.schema import Bool, Int, List, Num, Str, Table, check

ACTIVATIONS = ("gelu", "relu")
NORMS = ("group", "layer")
_SIZE = Int(min=1, max=1 << 16)
_CONV = List(_SIZE, min_len=1, max_len=64)
# The config.json fields that shape the graph, each checked before anything is built from
# them (a bad one would surface as a Keras shape error deep in the graph). The sizes are
# required: every checkpoint's config.json writes them, and a default would hide a truncated
# file; the rest default to wav2vec2-base's (the conv strides and kernels of every release).
CONFIG = Table({"hidden_size": _SIZE, "num_hidden_layers": Int(min=1, max=1024), "num_attention_heads": _SIZE,
                "intermediate_size": Int(min=1, max=1 << 20), "hidden_act": Str(choices=ACTIVATIONS),
                "layer_norm_eps": Num(above=0, max=1), "feat_extract_norm": Str(choices=NORMS),
                "feat_extract_activation": Str(choices=ACTIVATIONS), "conv_dim": _CONV, "conv_stride": _CONV,
                "conv_kernel": _CONV, "conv_bias": Bool(), "num_conv_pos_embeddings": _SIZE,
                "num_conv_pos_embedding_groups": _SIZE, "do_stable_layer_norm": Bool(),
                "num_feat_extract_layers": Int(min=1, max=64), "model_type": Str(),
                "architectures": List(Str()), "add_adapter": Bool()},
               optional={"hidden_act", "layer_norm_eps", "feat_extract_norm", "feat_extract_activation", "conv_bias",
                         "conv_stride", "conv_kernel", "num_conv_pos_embeddings", "num_conv_pos_embedding_groups", "do_stable_layer_norm",
                         "num_feat_extract_layers", "model_type", "architectures", "add_adapter"},
               what="a JSON object (a Hugging Face wav2vec 2.0 config)")
# Which hidden states make the detector's "sum of all transformer layers" feature.
SUM_DEFINITIONS = {
    "layers": "the L transformer layers' outputs (hidden states 1..L), each as its layer emits it "
              "(pre-LN: the last one before the final encoder LayerNorm, as transformers 5.x returns it)",
    "all": "all L+1 hidden states, the encoder input (state 0) included",
    "last": "the last layer's output alone (hidden state L; the paper's 'last layer' ablation)",
}
DEFAULT_SUM = "layers"


@dataclass(frozen=True)
class Wav2Vec2Config:
    """The fields of a Hugging Face ``Wav2Vec2Config`` that shape the inference graph
    (names as in ``config.json``; defaults are wav2vec2-base's)."""

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5
    feat_extract_norm: str = "group"
    feat_extract_activation: str = "gelu"
    conv_dim: tuple = (512, 512, 512, 512, 512, 512, 512)
    conv_stride: tuple = (5, 2, 2, 2, 2, 2, 2)
    conv_kernel: tuple = (10, 3, 3, 3, 3, 2, 2)
    conv_bias: bool = False
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    do_stable_layer_norm: bool = False

    def __post_init__(self):
        for name in ("conv_dim", "conv_stride", "conv_kernel"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if not (len(self.conv_dim) == len(self.conv_stride) == len(self.conv_kernel) > 0):
            raise InputError(f"config: conv_dim, conv_stride and conv_kernel must have the same non-zero length, "
                             f"got {len(self.conv_dim)}, {len(self.conv_stride)}, {len(self.conv_kernel)}")
        if self.feat_extract_norm not in NORMS:
            raise InputError(f"config: feat_extract_norm must be one of {', '.join(NORMS)}, "
                             f"got {self.feat_extract_norm!r}")
        for name in ("hidden_act", "feat_extract_activation"):
            if getattr(self, name) not in ACTIVATIONS:
                raise InputError(f"config: {name} {getattr(self, name)!r} is not supported "
                                 f"(supported: {', '.join(ACTIVATIONS)})")
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "num_conv_pos_embeddings", "num_conv_pos_embedding_groups"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"config: {name} must be a positive integer, got {getattr(self, name)!r}")
        if self.hidden_size % self.num_attention_heads:
            raise InputError(f"config: hidden_size {self.hidden_size} is not divisible by "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.hidden_size % self.num_conv_pos_embedding_groups:
            raise InputError(f"config: hidden_size {self.hidden_size} is not divisible by "
                             f"num_conv_pos_embedding_groups {self.num_conv_pos_embedding_groups}")
        if not self.layer_norm_eps > 0:
            raise InputError(f"config: layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "Wav2Vec2Config":
        """From a ``config.json`` table: unknown fields (dropouts, masking, vocabulary, ...)
        are ignored; a model that is not plain wav2vec 2.0, or a field of the wrong kind or
        out of range (``CONFIG``), is refused in one line naming ``source`` and the field."""
        check(CONFIG, d, source)
        model_type = d.get("model_type", "wav2vec2")
        archs = d.get("architectures") or []
        if model_type != "wav2vec2" or any(not str(a).startswith("Wav2Vec2") or
                                           str(a).startswith("Wav2Vec2Conformer") or
                                           str(a).startswith("Wav2Vec2Bert") for a in archs):
            what = ", ".join(map(str, archs)) or model_type
            raise InputError(f"{source}: unsupported architecture {what} (model_type {model_type!r}); "
                             "only wav2vec 2.0 checkpoints (model_type 'wav2vec2') can be imported")
        if d.get("add_adapter"):
            raise InputError(f"{source}: add_adapter=true (a convolutional adapter after the encoder) is not supported")
        if d.get("adapter_attn_dim"):
            raise InputError(f"{source}: adapter_attn_dim is set (attention adapters) which is not supported")
        n = d.get("num_feat_extract_layers")
        if n is not None and "conv_dim" in d and int(n) != len(d["conv_dim"]):
            raise InputError(f"{source}: num_feat_extract_layers {n} != len(conv_dim) {len(d['conv_dim'])}")
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, path) -> "Wav2Vec2Config":
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"no config.json at {path}: give a Hugging Face wav2vec 2.0 checkpoint folder") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read {path} as JSON ({exc})") from None
        return cls.from_dict(d, str(path))

    @classmethod
    def base(cls, **overrides) -> "Wav2Vec2Config":
        """wav2vec2-base's shape (group norm, post-LN)."""
        return replace(cls(), **overrides)

    @classmethod
    def large(cls, feat_extract_norm: str = "layer", **overrides) -> "Wav2Vec2Config":
        """wav2vec2-large's shape; ``feat_extract_norm="layer"`` is the LV-60 / XLS-R variant
        (conv bias, pre-LN), ``"group"`` the LibriSpeech one (post-LN)."""
        layer = feat_extract_norm == "layer"
        cfg = cls(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                  feat_extract_norm=feat_extract_norm, conv_bias=layer, do_stable_layer_norm=layer)
        return replace(cfg, **overrides)

    @classmethod
    def tiny(cls, feat_extract_norm: str = "group", **overrides) -> "Wav2Vec2Config":
        """A tiny random-weight variant for tests: every structural feature of the real ones
        (7 convs with the real kernels and strides, grouped even-kernel positional conv, both
        norms), few channels. ``"layer"`` also turns on conv bias and pre-LN, as real
        layer-norm checkpoints do; override either to test the other combinations."""
        layer = feat_extract_norm == "layer"
        cfg = cls(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                  feat_extract_norm=feat_extract_norm, conv_dim=(16, 16, 16, 16, 16, 16, 24),
                  num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                  conv_bias=layer, do_stable_layer_norm=layer)
        return replace(cfg, **overrides)

    # ------------------------------------------------------------------ misc
    def to_dict(self) -> dict:
        """The config.json fields this config holds (what ``from_dict`` reads back)."""
        d = asdict(self)
        for name in ("conv_dim", "conv_stride", "conv_kernel"):
            d[name] = list(d[name])
        d["num_feat_extract_layers"] = len(self.conv_dim)
        d["model_type"] = "wav2vec2"
        return d

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


def frame_count(samples: int, config: Wav2Vec2Config) -> int:
    """Frames the feature encoder makes from ``samples`` samples (0 when too short)."""
    n = int(samples)
    for k, s in zip(config.conv_kernel, config.conv_stride):
        if n < k:
            return 0
        n = (n - k) // s + 1
    return n


def min_samples(config: Wav2Vec2Config) -> int:
    """The fewest samples that give one frame."""
    n = 1
    for k, s in reversed(list(zip(config.conv_kernel, config.conv_stride))):
        n = (n - 1) * s + k
    return n


def normalise_audio(y: np.ndarray) -> np.ndarray:
    """Per-utterance zero mean, unit variance, as the reference feature extractor does
    (``do_normalize``): (y - mean) / sqrt(var + 1e-7), over the last axis, in float32."""
    y = np.asarray(y, dtype=np.float32)
    mean = y.mean(axis=-1, keepdims=True)
    var = y.var(axis=-1, keepdims=True)
    return ((y - mean) / np.sqrt(var + 1e-7)).astype(np.float32)


def sum_hidden_states(states, definition: str = DEFAULT_SUM):
    """The detector's frame feature from the L+1 hidden states (a list of arrays or
    tensors, each (batch, frames, hidden), or one array stacked as (L+1, ...)).

    ``definition`` (see ``SUM_DEFINITIONS``): ``"layers"`` (default) sums hidden states
    1..L, the outputs of the L transformer layers, as the paper describes ("the output of
    all Transformer layers ... aggregated by summation"); the encoder input (state 0) is
    not a transformer layer's output, and the final encoder LayerNorm of a pre-LN model is
    not part of any layer, so the last term is taken before it (transformers 5.x's last
    hidden state). ``"all"`` adds state 0; ``"last"`` is state L alone.
    """
    if definition not in SUM_DEFINITIONS:
        raise InputError(f"unknown hidden-state sum {definition!r}; choose one of {', '.join(SUM_DEFINITIONS)}")
    states = list(states)
    if len(states) < 2:
        raise InputError(f"need the L+1 hidden states (at least 2), got {len(states)}")
    chosen = {"layers": states[1:], "all": states, "last": states[-1:]}[definition]
    total = chosen[0]
    for s in chosen[1:]:
        total = total + s
    return total


# ---------------------------------------------------------------------------- Keras
def keras_name(module: str) -> str:
    """The Keras layer name of a reference module path ("encoder.layers.0.attention.q_proj")."""
    return module.replace(".", "__")


_LAYERS: dict = {}


def custom_objects() -> dict:
    """The custom layers, for ``tf_keras.models.load_model`` / ``clone_model``."""
    return dict(_layers())


def _layers():
    """Custom layers, defined once TensorFlow is imported (never at module import)."""
    if _LAYERS:
        return _LAYERS
    from edgeaffect.keras_backend import keras, tf

    tf_, keras_ = tf(), keras()

    class ChannelNorm(keras_.layers.Layer):
        """GroupNorm with one group per channel: each channel normalised over time, then a
        per-channel scale and shift (the reference's first-conv GroupNorm)."""

        def __init__(self, epsilon: float = 1e-5, **kw):
            super().__init__(**kw)
            self.epsilon = float(epsilon)

        def build(self, shape):
            c = int(shape[-1])
            self.gamma = self.add_weight(name="gamma", shape=(c,), initializer="ones")
            self.beta = self.add_weight(name="beta", shape=(c,), initializer="zeros")
            super().build(shape)

        def call(self, x):
            mean = tf_.reduce_mean(x, axis=1, keepdims=True)
            centred = x - mean
            var = tf_.reduce_mean(tf_.square(centred), axis=1, keepdims=True)
            return centred * tf_.math.rsqrt(var + self.epsilon) * self.gamma + self.beta

        edgeaffect_kind = "act"

        def edgeaffect_cost(self, input_shape):
            """A normalisation: zero, as LayerNormalization and BatchNormalization count in
            the cost convention (edgeaffect/roofline/graph.py) and in ``cost`` below."""
            return 0, 0

        def get_config(self):
            return {**super().get_config(), "epsilon": self.epsilon}

    class ChannelSlice(keras_.layers.Layer):
        """Channels [start, stop) of the last axis (one group of a grouped conv)."""

        def __init__(self, start: int, stop: int, **kw):
            super().__init__(**kw)
            self.start, self.stop = int(start), int(stop)

        def call(self, x):
            return x[..., self.start:self.stop]

        def edgeaffect_cost(self, input_shape):
            return 0, 0  # a copy of some channels

        def get_config(self):
            return {**super().get_config(), "start": self.start, "stop": self.stop}

    class HeadsAttention(keras_.layers.Layer):
        """Scaled dot-product attention over heads, from projected q, k, v (batch, T, hidden)."""

        def __init__(self, num_heads: int, **kw):
            super().__init__(**kw)
            self.num_heads = int(num_heads)

        def _split(self, x, b, t, d):
            return tf_.transpose(tf_.reshape(x, [b, t, self.num_heads, d]), [0, 2, 1, 3])

        def call(self, inputs):
            q, k, v = inputs
            hidden = int(q.shape[-1])
            d = hidden // self.num_heads
            shape = tf_.shape(q)
            b, t = shape[0], shape[1]
            q, k, v = (self._split(x, b, t, d) for x in (q, k, v))
            scores = tf_.matmul(q, k, transpose_b=True) * (d ** -0.5)
            weights = tf_.nn.softmax(scores, axis=-1)
            out = tf_.matmul(weights, v)
            return tf_.reshape(tf_.transpose(out, [0, 2, 1, 3]), [b, t, hidden])

        edgeaffect_kind = "matmul"

        def edgeaffect_cost(self, input_shapes):
            """(MACs, adds): Q K^T and the weights times V, T x T x hidden multiply-adds each
            over all heads; the scale and softmax count zero (the cost convention; ``cost``
            below counts the same two matmuls)."""
            frames, hidden = int(input_shapes[0][-2]), int(input_shapes[0][-1])
            return 2 * frames * frames * hidden, 0

        def get_config(self):
            return {**super().get_config(), "num_heads": self.num_heads}

    class ErfGelu(keras_.layers.Layer):
        """Exact GELU written as 0.5 x (1 + erf(x / sqrt 2)): the same function as
        ``tf.nn.gelu(approximate=False)`` (which TensorFlow computes with erfc, an op
        tf2onnx cannot write), for the ONNX export."""

        def call(self, x):
            return 0.5 * x * (1.0 + tf_.math.erf(x * (2.0 ** -0.5)))

        edgeaffect_kind = "act"

        def edgeaffect_cost(self, input_shape):
            return 0, 0  # an activation: zero in the cost convention

    _LAYERS.update(ChannelNorm=ChannelNorm, ChannelSlice=ChannelSlice, HeadsAttention=HeadsAttention,
                   ErfGelu=ErfGelu)
    return _LAYERS


def build_wav2vec2(config: Wav2Vec2Config, *, samples: int | None = None, batch: int | None = None,
                   last_hidden_state: bool = False, gelu: str = "tf", name: str = "wav2vec2"):
    """The Keras model: normalised audio (batch, samples) float32 -> the L+1 hidden states
    [(batch, frames, hidden)] (plus, with ``last_hidden_state``, the encoder's final output
    after its closing LayerNorm: the same as the last state for a post-LN model).

    ``samples`` / ``batch`` fix the input shape (static shapes for export: 7 s = 112000).
    Layer names are the reference's module paths (``keras_name``), so ``checkpoint.py``
    loads a state dict by name. Dropout is left out (inference graph; LayerDrop too).
    ``gelu``: "tf" (``tf.nn.gelu``, exact; TFLite makes it one GELU op) or "erf" (the same
    function through erf, for tf2onnx, which cannot write TensorFlow's erfc).
    """
    from edgeaffect.keras_backend import keras

    K = keras()
    L = _layers()
    c = config
    if gelu not in ("tf", "erf"):
        raise InputError(f"gelu must be 'tf' or 'erf', got {gelu!r}")
    if samples is not None and frame_count(samples, c) < 1:  # else a Keras shape error in a conv layer
        raise InputError(f"segments of {samples} samples give no frame with this config's conv_kernel and "
                         f"conv_stride (it needs at least {min_samples(c)}): use longer segments or another checkpoint")

    def activation(kind: str, module: str):
        if kind == "gelu" and gelu == "erf":
            return L["ErfGelu"](name=keras_name(module))
        return K.layers.Activation(kind, name=keras_name(module))
    if samples is not None and frame_count(samples, c) < 1:
        raise InputError(f"{samples} samples give no frame; wav2vec 2.0 needs at least {min_samples(c)}")
    eps = c.layer_norm_eps
    act = c.feat_extract_activation
    audio = K.Input(shape=(samples,), batch_size=batch, dtype="float32", name="audio")
    x = K.layers.Reshape((-1, 1), name="audio_channels")(audio)

    # === Feature encoder ===
    for i, (dim, k, s) in enumerate(zip(c.conv_dim, c.conv_kernel, c.conv_stride)):
        p = f"feature_extractor.conv_layers.{i}"
        x = K.layers.Conv1D(dim, k, strides=s, padding="valid", use_bias=c.conv_bias,
                            name=keras_name(f"{p}.conv"))(x)
        if c.feat_extract_norm == "layer":
            # The reference's conv LayerNorms use PyTorch's default epsilon (1e-5).
            x = K.layers.LayerNormalization(epsilon=1e-5, name=keras_name(f"{p}.layer_norm"))(x)
        elif i == 0:
            x = L["ChannelNorm"](epsilon=1e-5, name=keras_name(f"{p}.layer_norm"))(x)
        x = activation(act, f"{p}.activation")(x)

    # === Feature projection ===
    x = K.layers.LayerNormalization(epsilon=eps, name=keras_name("feature_projection.layer_norm"))(x)
    h = K.layers.Dense(c.hidden_size, name=keras_name("feature_projection.projection"))(x)

    # === Positional convolution (one Conv1D per group) ===
    kpos, groups = c.num_conv_pos_embeddings, c.num_conv_pos_embedding_groups
    per = c.hidden_size // groups
    padded = K.layers.ZeroPadding1D(kpos // 2, name=keras_name("encoder.pos_conv_embed.pad"))(h)
    parts = []
    for g in range(groups):
        part = padded if groups == 1 else L["ChannelSlice"](
            g * per, (g + 1) * per, name=keras_name(f"encoder.pos_conv_embed.slice_{g}"))(padded)
        parts.append(K.layers.Conv1D(per, kpos, padding="valid",
                                     name=keras_name(f"encoder.pos_conv_embed.conv_{g}"))(part))
    pos = parts[0] if groups == 1 else K.layers.Concatenate(
        axis=-1, name=keras_name("encoder.pos_conv_embed.concat"))(parts)
    if kpos % 2 == 0:
        pos = K.layers.Cropping1D((0, 1), name=keras_name("encoder.pos_conv_embed.same_pad"))(pos)
    pos = activation(act, "encoder.pos_conv_embed.activation")(pos)
    h = K.layers.Add(name=keras_name("encoder.pos_add"))([h, pos])
    if not c.do_stable_layer_norm:
        h = K.layers.LayerNormalization(epsilon=eps, name=keras_name("encoder.layer_norm"))(h)

    # === Transformer layers ===
    states = [h]
    for i in range(c.num_hidden_layers):
        p = f"encoder.layers.{i}"

        def dense(units, module, t):
            return K.layers.Dense(units, name=keras_name(f"{p}.{module}"))(t)

        def attention(t):
            q, k, v = (dense(c.hidden_size, f"attention.{n}_proj", t) for n in ("q", "k", "v"))
            a = L["HeadsAttention"](c.num_attention_heads, name=keras_name(f"{p}.attention.heads"))([q, k, v])
            return dense(c.hidden_size, "attention.out_proj", a)

        def feed_forward(t):
            t = dense(c.intermediate_size, "feed_forward.intermediate_dense", t)
            t = activation(c.hidden_act, f"{p}.feed_forward.activation")(t)
            return dense(c.hidden_size, "feed_forward.output_dense", t)

        def norm(module, t):
            return K.layers.LayerNormalization(epsilon=eps, name=keras_name(f"{p}.{module}"))(t)

        def add(what, a, b):
            return K.layers.Add(name=keras_name(f"{p}.{what}_add"))([a, b])

        if c.do_stable_layer_norm:
            h = add("attention", h, attention(norm("layer_norm", h)))
            h = add("feed_forward", h, feed_forward(norm("final_layer_norm", h)))
        else:
            h = norm("layer_norm", add("attention", h, attention(h)))
            h = norm("final_layer_norm", add("feed_forward", h, feed_forward(h)))
        states.append(h)

    outputs = list(states)
    if last_hidden_state:
        last = states[-1]
        if c.do_stable_layer_norm:
            last = K.layers.LayerNormalization(epsilon=eps, name=keras_name("encoder.layer_norm"))(last)
        outputs.append(last)
    return K.Model(audio, outputs, name=name)


def build_feature_model(config: Wav2Vec2Config, *, samples: int | None = None, batch: int | None = None,
                        definition: str = DEFAULT_SUM, gelu: str = "tf", name: str = "wav2vec2_features"):
    """Normalised audio (batch, samples) -> the detector's frame feature (batch, frames,
    hidden): ``sum_hidden_states(definition)`` inside the graph (one output to export or
    to fine-tune through). Its layers carry the same names as ``build_wav2vec2``'s, so
    ``checkpoint.assign`` loads it the same way."""
    from edgeaffect.keras_backend import keras

    K = keras()
    if definition not in SUM_DEFINITIONS:
        raise InputError(f"unknown hidden-state sum {definition!r}; choose one of {', '.join(SUM_DEFINITIONS)}")
    backbone = build_wav2vec2(config, samples=samples, batch=batch, gelu=gelu, name=name)
    states = {"layers": backbone.outputs[1:], "all": backbone.outputs, "last": backbone.outputs[-1:]}[definition]
    feature = states[0] if len(states) == 1 else K.layers.Add(name=f"hidden_state_sum_{definition}")(states)
    model = K.Model(backbone.inputs, feature, name=name)
    if samples is not None and batch is not None:  # static shapes: its ONNX is written directly, not by tf2onnx
        from edgeaffect.families.wav2vec2.onnx_direct import onnx_writer

        model.edgeaffect_onnx = onnx_writer(config, definition)
    return model


def freeze(model, *, feature_encoder: bool = True, layers_below: int = 0) -> None:
    """Mark parts of a built backbone non-trainable, by the reference's module names: the
    conv feature encoder (as the reference's ``freeze_feature_encoder``; the projection
    stays trainable) and, with ``layers_below=n``, the positional conv, the feature
    projection and transformer layers 0..n-1 (n = L: only the summed features' head
    trains; n = L-1: the "last layer" fine-tuning of the paper's ablation)."""
    frozen = []
    if feature_encoder:
        frozen.append(keras_name("feature_extractor."))
    if layers_below > 0:
        frozen += [keras_name("feature_projection."), keras_name("encoder.pos_conv_embed."),
                   keras_name("encoder.layer_norm")]
        frozen += [keras_name(f"encoder.layers.{i}.") for i in range(layers_below)]
    for layer in model.layers:
        if layer.weights and any(layer.name.startswith(p) for p in frozen):
            layer.trainable = False


def cost(config: Wav2Vec2Config, samples: int = 112000) -> dict:
    """Parameters and FLOPs of one forward pass over ``samples`` samples (multiply-adds
    counted as two, plus bias adds; normalisations, activations and softmax not counted;
    attention's two matmuls counted). Analytic, from the config alone."""
    c = config
    params = flops = 0
    n, cin = samples, 1
    for i, (dim, k, s) in enumerate(zip(c.conv_dim, c.conv_kernel, c.conv_stride)):
        n = (n - k) // s + 1
        params += cin * dim * k + (dim if c.conv_bias else 0)
        flops += 2 * n * cin * dim * k + (n * dim if c.conv_bias else 0)
        if c.feat_extract_norm == "layer" or i == 0:
            params += 2 * dim
        cin = dim
    T, H, F = n, c.hidden_size, c.intermediate_size
    params += 2 * cin + cin * H + H
    flops += 2 * T * cin * H + T * H
    per = H // c.num_conv_pos_embedding_groups
    params += H * per * c.num_conv_pos_embeddings + H
    flops += 2 * T * H * per * c.num_conv_pos_embeddings + T * H
    params += 2 * H  # encoder LayerNorm
    layer_params = 4 * (H * H + H) + (H * F + F) + (F * H + H) + 4 * H
    layer_flops = 4 * (2 * T * H * H + T * H) + 2 * T * H * F + T * F + 2 * T * F * H + T * H + 2 * 2 * T * T * H
    params += c.num_hidden_layers * layer_params
    flops += c.num_hidden_layers * layer_flops
    return {"params": int(params), "flops": int(flops), "frames": int(T), "samples": int(samples)}


__all__ = ["Wav2Vec2Config", "build_wav2vec2", "build_feature_model", "freeze", "normalise_audio", "frame_count", "min_samples",
           "sum_hidden_states", "SUM_DEFINITIONS", "DEFAULT_SUM", "keras_name", "custom_objects", "cost"]
