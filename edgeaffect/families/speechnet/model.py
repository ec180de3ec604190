"""SpeechNet (Zhang, Pang et al., BSPC 2026): speech emotion recognition with
pre-attention and capsule routing, over per-frame 107-dim fusion features.

Information encoding (Dense 256 -> 128, LeakyReLU, per frame) -> speech recall (LSTM 64,
all hidden states) -> speech attention (pre-attention: three parallel Dense layers give
pre-query / pre-key / pre-value; then multi-head attention) -> signal refinement (Conv1D,
ReLU, valid) -> routing (the refined map cut into 16-dim capsules, 2 routing iterations,
one 16-dim capsule per class; the output is each class capsule's length, in [0, 1)).

Every module the paper ablates (Table 2) has a switch in ``SpeechNetConfig``; what the
paper leaves open has a config value with the default documented in
``edgeaffect/families/speechnet/README.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

from edgeaffect.families.speechnet.corpora import CORPORA
from edgeaffect.families.speechnet.features import FusionConfig
from edgeaffect.contract.cost import LayerCost, conv, dense
from edgeaffect.contract.family import paper_figures
from edgeaffect.contract.registry import ModelSpec, register_model

PAPER = ("Zhang, Pang et al. Pre-attentive speech signal processing with adaptive routing for emotion "
         "recognition (SpeechNet). BSPC 2026")
ROUTING_MODES = ("modified", "dynamic", "none")
# How the routing's votes (one d x C*o matrix per input capsule) are computed; the same
# weights and numbers either way. "grouped_conv": a 1x1 convolution in n_in groups, which
# XNNPACK runs in int8; "batch_matmul": an einsum, which converts to an int8 BATCH_MATMUL
# XNNPACK does not take (5x slower than float on x86). See the model card.
VOTES_OPS = ("grouped_conv", "batch_matmul")
PAPER_MARGINS = (0.5, 0.5, 0.5)
MARGINS = {"sabour": (0.9, 0.5, 0.1), "paper": PAPER_MARGINS}


@dataclass(frozen=True)
class SpeechNetConfig:
    n_classes: int = 7
    features: FusionConfig = field(default_factory=FusionConfig)
    max_frames: int = 96  # ~3.1 s at a 32 ms hop; longer utterances are centre-cropped, shorter zero-padded
    # Information encoding (Eq. 7): n1, n2, LeakyReLU slope (not given: Keras' default 0.3).
    encoding_units: tuple = (256, 128)
    leaky_alpha: float = 0.3
    lstm_units: int = 64  # n3
    # Pre-attention width n_q, heads n_h and head size d_h are not given.
    pre_attention_units: int = 64
    heads: int = 4
    head_size: int = 16
    # Signal refinement (Eqs. 10-11): k and n4 are not given.
    conv_kernel: int = 3
    conv_filters: int = 32
    capsule_dim: int = 16  # d
    class_capsule_dim: int = 16
    routing_iterations: int = 2
    votes_op: str = "grouped_conv"  # VOTES_OPS: a graph choice for the runtime, not the paper's
    dropout: float = 0.5  # one dropout, on the refined map before routing (the paper does not say where)
    # Ablation switches (Table 2). routing: "modified" (the paper's), "dynamic" (Sabour et
    # al.'s, = "w/o modified speech routing"), "none" (= "w/o speech routing": flatten + Dense).
    encoding: bool = True
    recall: bool = True
    pre_attention: bool = True
    attention: bool = True
    refinement: bool = True
    routing: str = "modified"
    # Loss (Eq. 15) and recipe (Sec. 5.1).
    # Eq. 15's (a1, a2, a3). The paper prints 0.5, 0.5, 0.5: then every score at 0.5 makes
    # the loss exactly 0, and training collapses there (measured; see the model card).
    # Default: Sabour et al.'s margins (m+ 0.9, lambda 0.5, m- 0.1), of which Eq. 15 is the
    # class-weighted form. PAPER_MARGINS restores the printed values.
    margin_alphas: tuple = (0.9, 0.5, 0.1)
    class_weights: str = "balanced"  # omega_j: n / (C * n_j) over the training split; "none": all 1
    learning_rate: float = 1e-3
    batch_size: int = 256
    epochs: int = 200
    train_fraction: float = 0.9

    def __post_init__(self):
        if self.routing not in ROUTING_MODES:
            raise ValueError(f"routing must be one of {ROUTING_MODES}, not '{self.routing}'")
        if self.votes_op not in VOTES_OPS:
            raise ValueError(f"votes_op must be one of {VOTES_OPS}, not '{self.votes_op}'")
        if self.refinement and self.max_frames < self.conv_kernel:
            raise ValueError("max_frames must be at least conv_kernel")

    @property
    def attention_width(self) -> int:
        return self.heads * self.head_size

    def to_dict(self) -> dict:
        d = asdict(self)
        d["features"] = self.features.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SpeechNetConfig":
        d = dict(d)
        d["features"] = FusionConfig.from_dict(d.get("features", {}))
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


ABLATIONS = {  # Table 2's rows as config changes
    "full": {},
    "no-encoding": {"encoding": False},
    "no-recall": {"recall": False},
    "no-pre-attention": {"pre_attention": False},
    "no-attention": {"attention": False, "pre_attention": False},
    "no-refinement": {"refinement": False},
    "no-routing": {"routing": "none"},
    "no-modified-routing": {"routing": "dynamic"},
}


def ablate(config: SpeechNetConfig, name: str) -> SpeechNetConfig:
    from edgeaffect._optional import lookup

    return replace(config, **lookup("ablation", name, ABLATIONS))


# --- shapes and analytic cost (no TensorFlow) ---

def _stages(c: SpeechNetConfig) -> dict:
    t, width = c.max_frames, c.features.dim
    if c.encoding:
        width = c.encoding_units[-1]
    if c.recall:
        width = c.lstm_units
    if c.attention:
        width = c.attention_width
    if c.refinement:
        t, width = t - c.conv_kernel + 1, c.conv_filters
    return {"steps": t, "width": width, "capsules": t * width // c.capsule_dim}


def speechnet_cost(c: SpeechNetConfig) -> list[LayerCost]:
    """Per-layer params and FLOPs with the AVER paper's convention (2 per MAC + bias adds)."""
    rows, t, width = [], c.max_frames, c.features.dim
    if c.encoding:
        for i, units in enumerate(c.encoding_units):
            d = dense(f"encode{i + 1}", width, units)
            rows.append(LayerCost(d.name, "dense", (t, units), d.params, t * d.flops))
            width = units
    if c.recall:
        u = c.lstm_units
        macs = t * 4 * u * (width + u)
        rows.append(LayerCost("recall_lstm", "lstm", (t, u), 4 * u * (width + u + 1), 2 * macs + t * 4 * u))
        width = u
    if c.attention:
        q_width = width
        if c.pre_attention:
            for name in ("pre_query", "pre_key", "pre_value"):
                d = dense(name, width, c.pre_attention_units)
                rows.append(LayerCost(name, "dense", (t, c.pre_attention_units), d.params, t * d.flops))
            q_width = c.pre_attention_units
        h = c.attention_width
        proj = 3 * (q_width * h + h) + (h * h + h)  # q, k, v projections + output projection
        matmuls = 2 * t * t * h  # scores and weighted sum, all heads
        rows.append(LayerCost("attention", "mha", (t, h), proj,
                              t * (2 * 3 * q_width * h + 3 * h + 2 * h * h + h) + 2 * matmuls))
        width = h
    if c.refinement:
        rows.append(conv("refine", (t - c.conv_kernel + 1,), width, c.conv_filters, (c.conv_kernel,)))
        t, width = t - c.conv_kernel + 1, c.conv_filters
    if c.routing == "none":
        rows.append(dense("emotion", t * width, c.n_classes))
    else:
        n_in = t * width // c.capsule_dim
        votes = n_in * c.n_classes * c.capsule_dim * c.class_capsule_dim
        per_iter = 2 * 2 * n_in * c.n_classes * c.class_capsule_dim  # agreement + weighted sum
        rows.append(LayerCost("routing", "capsule", (c.n_classes, c.class_capsule_dim), votes,
                              2 * votes + c.routing_iterations * per_iter))
    return rows


# --- the Keras model ---

@lru_cache(maxsize=1)
def _routing_layer(k):
    from edgeaffect.keras_backend import tf as _tf

    tf = _tf()

    class CapsuleRouting(k.layers.Layer):
        """Input capsules (B, n_in, d) -> class capsule lengths (B, C).

        Votes a_ij = W_ij u_i (Eq. 12's a_ij). ``dynamic``: Sabour et al.'s routing by
        agreement (logits accumulate, softmax over classes). ``modified`` (our reading of
        Eqs. 12-14, see the model card): the similarity a_ij . v_j is recomputed at each
        iteration rather than accumulated, and normalised over the input capsules, so each
        class weighs the blocks it draws on (the paper's "dynamic weighting").
        Squash and length avoid sqrt and division (RSQRT and MUL only) so the layer
        converts to int8 TFLite builtins.
        """

        def __init__(self, n_classes, out_dim, iterations, mode, votes_op="batch_matmul", **kw):
            # votes_op defaults to the einsum so that files saved before it existed load as they were
            super().__init__(**kw)
            self.n_classes, self.out_dim, self.iterations, self.mode = n_classes, out_dim, iterations, mode
            self.votes_op = votes_op

        def build(self, shape):
            n_in, d = int(shape[1]), int(shape[2])
            self.w = self.add_weight("votes", (n_in, d, self.n_classes * self.out_dim),
                                     initializer=k.initializers.RandomNormal(stddev=d ** -0.5))

        def _squash(self, s):
            n2 = tf.reduce_sum(tf.square(s), axis=-1, keepdims=True)
            inv = tf.math.rsqrt(1.0 + n2)  # 1 / sqrt(1 + |s|^2)
            return s * n2 * tf.math.rsqrt(n2 + 1e-7) * tf.square(inv), n2

        def _votes(self, u):
            """(B, n_in, d) x (n_in, d, C*o) -> (B, n_in, C*o), one matrix per input capsule."""
            n_in, d, ck = (int(s) for s in self.w.shape)
            if self.votes_op == "batch_matmul":
                return tf.einsum("bid,idk->bik", u, self.w)
            # A 1x1 convolution over n_in groups of d channels: group i applies capsule i's
            # matrix. Kernel (1, 1, d, n_in*C*o), output channel i*C*o + k reads group i.
            kernel = tf.reshape(tf.transpose(self.w, (1, 0, 2)), (1, 1, d, n_in * ck))
            grouped = tf.nn.conv2d(tf.reshape(u, (-1, 1, 1, n_in * d)), kernel, 1, "VALID")
            return tf.reshape(grouped, (-1, n_in, ck))

        def call(self, u):
            n_in = self.w.shape[0]
            votes = tf.reshape(self._votes(u), (-1, n_in, self.n_classes, self.out_dim))
            if self.mode == "dynamic":
                logits = tf.zeros_like(votes[..., 0])
                for r in range(self.iterations):
                    c = tf.nn.softmax(logits, axis=2)
                    v, n2 = self._squash(tf.reduce_sum(c[..., None] * votes, axis=1))
                    if r < self.iterations - 1:
                        logits = logits + tf.reduce_sum(votes * v[:, None], axis=-1)
            else:
                v, n2 = self._squash(tf.reduce_mean(votes, axis=1))
                for _ in range(self.iterations):
                    c = tf.nn.softmax(tf.reduce_sum(votes * v[:, None], axis=-1), axis=1)
                    v, n2 = self._squash(tf.reduce_sum(c[..., None] * votes, axis=1))
            return n2[..., 0] * tf.square(tf.math.rsqrt(1.0 + n2[..., 0]))  # |v| = |s|^2 / (1 + |s|^2)

        def edgeaffect_cost(self, input_shape=None):
            """(MACs, adds) for the roofline reader: the votes, then per iteration the
            agreement and the weighted sum (one multiply-add per vote element each)."""
            n_in, d, ck = (int(s) for s in self.w.shape)
            return n_in * d * ck + 2 * self.iterations * n_in * ck, 0

        def get_config(self):
            return {**super().get_config(), "n_classes": self.n_classes, "out_dim": self.out_dim,
                    "iterations": self.iterations, "mode": self.mode, "votes_op": self.votes_op}

    return CapsuleRouting


def custom_objects() -> dict:
    from edgeaffect.keras_backend import keras

    return {"CapsuleRouting": _routing_layer(keras())}


def build_speechnet(c: SpeechNetConfig):
    from edgeaffect.keras_backend import keras

    k = keras()
    L = k.layers
    x_in = L.Input((c.max_frames, c.features.dim), name="features")
    h = x_in
    if c.encoding:  # Eq. 7, per frame
        for i, units in enumerate(c.encoding_units):
            h = L.Dense(units, name=f"encode{i + 1}")(h)
            h = L.LeakyReLU(c.leaky_alpha, name=f"encode{i + 1}_leaky")(h)
    if c.recall:  # Eq. 8: every hidden state
        h = L.LSTM(c.lstm_units, return_sequences=True, name="recall_lstm")(h)
    if c.attention:
        q = k_ = v = h
        if c.pre_attention:  # three parallel auxiliary layers
            q = L.Dense(c.pre_attention_units, name="pre_query")(h)
            k_ = L.Dense(c.pre_attention_units, name="pre_key")(h)
            v = L.Dense(c.pre_attention_units, name="pre_value")(h)
        h = L.MultiHeadAttention(c.heads, c.head_size, output_shape=c.attention_width, name="attention")(
            q, v, key=k_)
    if c.refinement:  # Eqs. 10-11
        h = L.Conv1D(c.conv_filters, c.conv_kernel, activation="relu", name="refine")(h)
    h = L.Dropout(c.dropout, name="dropout")(h)
    flat = L.Flatten(name="flatten")(h)
    if c.routing == "none":
        out = L.Dense(c.n_classes, activation="sigmoid", name="emotion")(flat)
    else:
        n_caps = _stages(c)["capsules"]
        caps = L.Reshape((n_caps, c.capsule_dim), name="capsules")(
            L.Lambda(lambda t: t[:, : n_caps * c.capsule_dim], name="whole_capsules")(flat)
            if n_caps * c.capsule_dim != flat.shape[-1] else flat)
        out = _routing_layer(k)(c.n_classes, c.class_capsule_dim, c.routing_iterations, c.routing,
                                c.votes_op, name="routing")(caps)
    return k.Model(x_in, out, name="speechnet")


# --- registered variants, one per corpus ---


def _spec(corpus: str, dataset: str) -> ModelSpec:
    labels = CORPORA[corpus].labels
    config = SpeechNetConfig(n_classes=len(labels))
    return ModelSpec(
        name=f"speechnet-{corpus}", family="speechnet", paper=PAPER,
        task=f"speech emotion classification ({len(labels)} classes, {dataset})", labels=labels,
        inputs={"features": (config.max_frames, config.features.dim)}, config=config, build=build_speechnet,
        cost=speechnet_cost,
        paper_figures=paper_figures(__package__, f"speechnet-{corpus}"),  # Sec. 6, Tables 3 and 4: paper.toml
    )


@register_model
def speechnet_emodb() -> ModelSpec:
    return _spec("emodb", "EmoDB")


@register_model
def speechnet_savee() -> ModelSpec:
    return _spec("savee", "SAVEE")


@register_model
def speechnet_iemocap() -> ModelSpec:
    return _spec("iemocap", "IEMOCAP (4 classes)")


@register_model
def speechnet_ravdess() -> ModelSpec:
    return _spec("ravdess", "RAVDESS speech (not in the paper)")


@register_model
def speechnet_crema_d() -> ModelSpec:
    return _spec("crema-d", "CREMA-D (not in the paper)")
