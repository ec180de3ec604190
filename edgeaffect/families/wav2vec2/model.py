"""The wav2vec 2.0 depression detector's head (Zhang et al., Sci. Rep. 2024, Figs. 2-3).

Input per participant: ``features`` (S, frames, hidden), the wav2vec 2.0 feature of each
7 s segment (the sum of the transformer layers' outputs, or the last layer's), and
``segment_mask`` (S,) with 1 for a real segment and 0 for padding (participants have
different numbers of segments).

Segment encoder (per segment, Fig. 2 right): 3 x [Conv1D(80) + ReLU + dropout], average
pooling over time, attention pooling V = softmax(w C^T) C (Eq. 4).
Participant model (Fig. 3): LSTM over the segment vectors (Eq. 5), scaled dot-product
self-attention (Eq. 6), the sum of its outputs over the segments, Dense -> p(depressed).

Every value the paper leaves open is a ``DetectorConfig`` field; the defaults and why are
in ``edgeaffect/families/wav2vec2/README.md``. TensorFlow is imported inside functions only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction

from edgeaffect.families.wav2vec2.backbone import Wav2Vec2Config, frame_count
from edgeaffect.families.wav2vec2.vad import VadSettings
from edgeaffect.contract.cost import LayerCost, conv, dense
from edgeaffect.contract.family import paper_figures
from edgeaffect.contract.registry import ModelSpec, register_model

PAPER = ("Zhang, Zhang, Chen, Li, Yu. Improving speech depression detection using transfer learning with "
         "wav2vec 2.0 in low-resource environments. Sci. Rep. 2024")
LABELS = ("not depressed", "depressed")
POOLINGS = ("attention", "average", "max")

# The backbone as Hugging Face config.json fields: wav2vec2-base, wav2vec2-large (LV-60:
# layer norm, pre-LN) and a tiny random one for tests (same conv kernels and strides, so a
# segment's frame count follows the same formula). Weights come from a local checkpoint.
BASE = Wav2Vec2Config.base().to_dict()
LARGE = Wav2Vec2Config.large().to_dict()
TINY = Wav2Vec2Config.tiny().to_dict()
# layers -> which hidden states make the feature (backbone.SUM_DEFINITIONS)
LAYER_CHOICES = {"sum": "layers", "all": "all", "last": "last"}


@dataclass(frozen=True)
class DetectorConfig:
    backbone: dict = field(default_factory=lambda: dict(BASE))  # HF config.json fields
    sample_rate: int = 16000
    segment_s: float = 7.0
    tail: str = "drop"  # the last partial segment: "drop" or "pad" (zeros, when >= half a segment)
    # Silence and noise removed inside the participant's turns before cutting (the paper's
    # preprocessing; vad.py); None: whole turns are kept (``--vad off``; runs made before it).
    vad: VadSettings | None = field(default_factory=VadSettings)
    layers: str = "sum"  # "sum": the L transformer layers' outputs summed; "all": with the encoder input;
    #                      "last": the last layer's output alone (LAYER_CHOICES)
    fine_tune: bool = False  # False: frozen features (cached); True: the transformer trains too
    fine_tune_layers: str = "all"  # with fine_tune: "all" transformer layers train, or the "last" one only
    conv_filters: tuple = (80, 80, 80)
    conv_kernel: int = 3  # not given in the paper
    dropout: float = 0.2  # not given
    time_pool: int = 2  # average pooling over time before the attention pooling (size not given)
    pooling: str = "attention"  # Fig. 7: "attention", "average" or "max" over the frames
    lstm_units: int = 80  # not given
    self_attention: bool = True  # False (Table 4): the LSTM's last step -> Dense
    max_segments: int = 128  # segments per participant an exported head takes (15 min of speech)
    live_segments: int = 4  # the live demo decides once this many segments of speech are in (28 s)
    lr_backbone: float = 1e-5
    lr_head: float = 6e-3
    weight_decay: float = 1e-3  # PyTorch Adam's (an L2 term in the gradient)
    batch_size: int = 32
    epochs: int = 200
    patience: int = 10
    monitor: str = "loss"  # early stopping on the dev loss ("loss") or the dev F1 ("f1")
    balance: bool = True  # weight the classes inversely to their training frequency (not given)

    @property
    def learning_rate(self) -> float:
        """The head's rate (what shared QAT fine-tuning divides)."""
        return self.lr_head

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not '{self.pooling}'")
        if self.layers not in LAYER_CHOICES:
            raise ValueError(f"layers must be one of {tuple(LAYER_CHOICES)}, not '{self.layers}'")
        if self.fine_tune_layers not in ("all", "last"):
            raise ValueError(f"fine_tune_layers must be 'all' or 'last', not '{self.fine_tune_layers}'")
        if self.tail not in ("drop", "pad"):
            raise ValueError(f"tail must be 'drop' or 'pad', not '{self.tail}'")
        if self.vad is not None and not isinstance(self.vad, VadSettings):
            raise ValueError(f"vad must be VadSettings or None, not {type(self.vad).__name__}")
        if self.frames < 1:
            raise ValueError(f"a {self.segment_s} s segment is too short for the conv feature encoder")

    @property
    def samples(self) -> int:
        return int(round(self.segment_s * self.sample_rate))

    @property
    def frames(self) -> int:
        """Frames of one segment after the conv feature encoder (349 for 7 s at 16 kHz)."""
        return frame_count(self.samples, Wav2Vec2Config.from_dict(self.backbone))

    @property
    def hidden(self) -> int:
        return int(self.backbone["hidden_size"])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DetectorConfig":
        """A recorded config (run.json's ``model_config``); one recorded without ``vad``
        predates the voice-activity step, so it had none."""
        d = {k: tuple(v) if isinstance(v, list) and k != "backbone" else v for k, v in d.items()}
        vad = d.get("vad")
        d["vad"] = VadSettings.from_dict(vad) if isinstance(vad, dict) else vad
        return cls(**d)


ABLATIONS = {  # Tables 3-4 and Fig. 7, the rows a frozen or fine-tuned run can build
    "full": {},
    "last-layer": {"layers": "last"},  # the last layer's output as the feature (Table 3's "the last layer")
    "average-pooling": {"pooling": "average"},  # Fig. 7
    "max-pooling": {"pooling": "max"},  # Fig. 7
    "no-self-attention": {"self_attention": False},  # Table 4
}


# The paper's Table 3 settings by name: whether the backbone trains, and which transformer
# layers make the feature. Our reading of its "Num_layers" column: in "A. frozen" nothing is
# fine-tuned, so "the last layer" can only be the feature (the last layer's output); we read
# the column the same way in "B. fine-tune", the fine-tuned layers being those layers ("the
# last layer": that layer trains and is the feature; "all layer": all train, outputs summed,
# as the text describes). "frozen-all-layers" (our default, the only practical one on a
# CPU) is in no row of the paper.
SETTINGS = {
    "frozen-last-layer": {"fine_tune": False, "layers": "last"},  # Table 3 A
    "frozen-all-layers": {"fine_tune": False, "layers": "sum"},  # no paper row
    "fine-tune-last-layer": {"fine_tune": True, "fine_tune_layers": "last", "layers": "last"},  # Table 3 B
    "fine-tune-all-layers": {"fine_tune": True, "fine_tune_layers": "all", "layers": "sum"},  # Tables 1, 3 B
}
SETTING_ROWS = {"frozen-last-layer": "Table 3, A. frozen, the last layer",
                "frozen-all-layers": "no row of the paper (it reports frozen features from the last layer only)",
                "fine-tune-last-layer": "Table 3, B. fine-tune, the last layer",
                "fine-tune-all-layers": "Table 3, B. fine-tune, all layers (= Table 1)"}


def apply_setting(config: DetectorConfig, name: str | None) -> DetectorConfig:
    """``config`` in one of the paper's settings (``SETTINGS``); unchanged for None."""
    from edgeaffect._optional import lookup

    return replace(config, **lookup("setting", name, SETTINGS)) if name else config


def setting_of(config: DetectorConfig) -> str | None:
    """The name of the paper's setting ``config`` trains in, None if it is in none (a
    fine-tuned backbone's ``fine_tune_layers`` counts only then; ``layers="all"`` adds the
    encoder input, in no setting)."""
    for name, change in SETTINGS.items():
        if all(getattr(config, k) == v for k, v in change.items() if k != "fine_tune_layers" or config.fine_tune):
            return name
    return None


VAD_CHOICES = ("on", "off")


def apply_vad(config: DetectorConfig, choice: str | None) -> DetectorConfig:
    """``config`` with the voice-activity step "on" (its settings, or the defaults) or
    "off" (whole turns); unchanged for None."""
    if choice is None:
        return config
    from edgeaffect._optional import lookup

    lookup("--vad", choice, dict.fromkeys(VAD_CHOICES))
    return replace(config, vad=None if choice == "off" else config.vad or VadSettings())


def ablate(config: DetectorConfig, name: str | None) -> DetectorConfig:
    from edgeaffect._optional import lookup

    return replace(config, **lookup("ablation", name, ABLATIONS)) if name else config


# A padded key's score is lowered by this much before the softmax (its weight: e^-30 of a
# real key's at the same score, 1e-13). Not -1e9: int8 quantizes the masked scores per
# tensor, and a range of 1e9 leaves every real score in one step (measured: the int8 head
# then weighted all 16 tiny segments, padding included, 1/16 each).
MASK_PENALTY = 30.0

# --- custom layers (export needs them by name) ---

def custom_objects() -> dict:
    from edgeaffect.keras_backend import keras, tf

    k, t = keras(), tf()

    class FoldSegments(k.layers.Layer):
        """(batch, S, frames, hidden) -> (batch * S, frames, hidden)."""

        edgeaffect_kind = "view"

        def call(self, x):
            return t.reshape(x, t.concat([[-1], t.shape(x)[2:]], 0))

        def edgeaffect_cost(self, input_shape):
            return 0, 0  # a reshape

        def edgeaffect_fold(self, input_shape):
            """Each participant becomes S rows: the layers after run S times (None: S open)."""
            return input_shape[1]

    class UnfoldSegments(k.layers.Layer):
        """(batch * S, d) -> (batch, S, d), S taken from a reference tensor."""

        edgeaffect_kind = "view"

        def call(self, inputs):
            v, ref = inputs
            return t.reshape(v, t.stack([t.shape(ref)[0], t.shape(ref)[1], v.shape[-1]]))

        def edgeaffect_cost(self, input_shapes):
            return 0, 0  # a reshape

        def edgeaffect_fold(self, input_shapes):
            """S rows back into one participant (None: S open)."""
            segments = input_shapes[1][1]
            return None if segments is None else Fraction(1, int(segments))

    class AttentionPooling(k.layers.Layer):
        """Eq. 4: V = softmax(w C^T) C over the frames (w: one learned vector)."""

        def build(self, shape):
            self.w = self.add_weight(name="w", shape=(int(shape[-1]), 1), initializer="glorot_uniform")

        def call(self, c):
            a = t.nn.softmax(t.matmul(c, self.w)[..., 0], axis=-1)  # (n, T)
            return t.reduce_sum(c * a[..., None], axis=1)

        def edgeaffect_cost(self, input_shape):
            """(MACs, adds) per segment: the scores C w and the weighted sum a^T C, T x d
            multiply-adds each; the softmax counts zero (the cost convention)."""
            frames, d = int(input_shape[-2]), int(input_shape[-1])
            return 2 * frames * d, 0

    class AttentionMatrix(k.layers.Layer):
        """Eq. 6's softmax(Q K^T / sqrt(d_K)) over the segments, padding masked: keys by
        ``MASK_PENALTY`` off their score, queries by zeroing their rows [shape=(b, S, S)]."""

        def __init__(self, units, **kw):
            super().__init__(**kw)
            self.units = int(units)
            self.q = k.layers.Dense(self.units, name="query")
            self.k = k.layers.Dense(self.units, name="key")

        def call(self, inputs):
            x, m = inputs  # (b, S, d), (b, S)
            scores = t.matmul(self.q(x), self.k(x), transpose_b=True) / float(self.units) ** 0.5
            scores -= (1.0 - m[:, None, :]) * MASK_PENALTY
            return t.nn.softmax(scores, axis=-1) * m[:, :, None]

        def edgeaffect_cost(self, input_shapes):
            """(MACs, adds): the query and key projections (S x d x units each, bias adds),
            then Q K^T (S x S x units); the scale, the masking and the softmax count zero, as
            softmax does in the cost convention (and in Keras MultiHeadAttention's count)."""
            segments, d = int(input_shapes[0][-2]), int(input_shapes[0][-1])
            return 2 * segments * d * self.units + segments * segments * self.units, 2 * segments * self.units

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    class AttendAndSum(k.layers.Layer):
        """The self-attention's output A V summed over the (real) segments [shape=(b, d)]."""

        def call(self, inputs):
            a, v = inputs
            return t.reduce_sum(t.matmul(a, v), axis=1)

        def edgeaffect_cost(self, input_shapes):
            """(MACs, adds): A V, S x S x d multiply-adds; the sum over the segments is a
            reduction (zero, as pooling is in the cost convention)."""
            segments, d = int(input_shapes[1][-2]), int(input_shapes[1][-1])
            return segments * segments * d, 0

    class SegmentWeights(k.layers.Layer):
        """Each segment's share of that sum: sum_i A_ij over the real queries / their count
        (the weights of the real segments sum to 1) [shape=(b, S)]."""

        def call(self, inputs):
            a, m = inputs
            return t.reduce_sum(a, axis=1) / t.maximum(t.reduce_sum(m, axis=1, keepdims=True), 1.0)

        def edgeaffect_cost(self, input_shapes):
            return 0, int(input_shapes[1][-1])  # one division per segment; the sums are reductions

    class LastRealStep(k.layers.Layer):
        """The LSTM's output at each participant's last real segment [shape=(b, d)]: padding
        comes after the real segments, so m_t - m_{t+1} is one at that step only."""

        def call(self, inputs):
            h, m = inputs
            last = m - t.concat([m[:, 1:], t.zeros_like(m[:, :1])], axis=1)
            return t.reduce_sum(h * last[:, :, None], axis=1)

        def edgeaffect_cost(self, input_shapes):
            """(MACs, adds): m_t - m_{t+1} (S), then h times it (S x d); the sum is a reduction."""
            segments, d = int(input_shapes[0][-2]), int(input_shapes[0][-1])
            return 0, segments + segments * d

    return {c.__name__: c for c in (FoldSegments, UnfoldSegments, AttentionPooling, AttentionMatrix, AttendAndSum,
                                    SegmentWeights, LastRealStep)}


def segment_encoder(k, custom, c: DetectorConfig, x, training=None):
    """(n, frames, hidden) -> (n, filters[-1])."""
    for i, f in enumerate(c.conv_filters):
        x = k.layers.Conv1D(f, c.conv_kernel, padding="same", name=f"seg_conv{i + 1}")(x)
        x = k.layers.ReLU(name=f"seg_relu{i + 1}")(x)
        x = k.layers.Dropout(c.dropout, name=f"seg_dropout{i + 1}")(x)
    if c.time_pool > 1:
        x = k.layers.AveragePooling1D(c.time_pool, padding="same", name="seg_avgpool")(x)
    if c.pooling == "attention":
        return custom["AttentionPooling"](name="seg_attention_pool")(x)
    if c.pooling == "average":
        return k.layers.GlobalAveragePooling1D(name="seg_mean_pool")(x)
    return k.layers.GlobalMaxPooling1D(name="seg_max_pool")(x)


def _participant(k, t, custom, c: DetectorConfig, v, mask, ref, with_weights: bool, unroll: bool = False):
    """Segment vectors (batch * S, d) -> p(depressed) (batch, 1) [and the segment weights]."""
    v = custom["UnfoldSegments"](name="unfold")([v, ref])
    # No Keras mask on the LSTM (TFLite's int8 converter crashes on a masked LSTM): padding
    # comes after the real segments, and an LSTM's output at a step depends on the steps
    # before it only, so the real steps' outputs are the masked LSTM's; the padded steps
    # are masked below (attention keys, queries and sum, or the last real step).
    h = k.layers.LSTM(c.lstm_units, return_sequences=True, unroll=unroll, name="lstm")(v)
    if c.self_attention:  # Eq. 6, then the sum over the segments
        a = custom["AttentionMatrix"](c.lstm_units, name="self_attention")([h, mask])
        value = k.layers.Dense(c.lstm_units, name="self_attention_value")(h)
        weights = custom["SegmentWeights"](name="segment_weights")([a, mask])
        h = custom["AttendAndSum"](name="attend_and_sum")([a, value])
    else:
        weights = k.layers.Lambda(lambda m: m / t.maximum(t.reduce_sum(m, 1, keepdims=True), 1.0),
                                  name="uniform_weights")(mask)
        h = custom["LastRealStep"](name="last_real_step")([h, mask])
    p = k.layers.Dense(1, activation="sigmoid", name="probability")(h)
    return [p, weights] if with_weights else p


def build_head(c: DetectorConfig, segments: int | None = None, with_weights: bool = False, unroll: bool = False):
    """The head as a Keras model: {features, segment_mask} -> p(depressed) (batch, 1), and with
    ``with_weights`` also each segment's weight (batch, S) (uniform over the real segments
    when the self-attention is ablated)."""
    from edgeaffect.keras_backend import keras, tf

    k, t = keras(), tf()
    custom = custom_objects()
    feats = k.Input((segments, c.frames, c.hidden), name="features")
    mask = k.Input((segments,), name="segment_mask")
    v = segment_encoder(k, custom, c, custom["FoldSegments"](name="fold")(feats))
    out = _participant(k, t, custom, c, v, mask, feats, with_weights, unroll)
    return k.Model([feats, mask], out, name="wav2vec2_detector_head")


def build_finetune(c: DetectorConfig, backbone, segments: int | None = None, with_weights: bool = False):
    """The whole detector for fine-tuning: {audio (S, samples) normalised per segment,
    segment_mask} -> the backbone on every segment -> its feature (``c.layers``) -> the
    head. The conv feature encoder is frozen (the paper keeps "the lower convolutional
    layers" intact); the transformer (or, with ``fine_tune_layers="last"``, its last layer,
    Table 3's "fine-tune, the last layer") trains at ``lr_backbone``."""
    from edgeaffect.families.wav2vec2.backbone import sum_hidden_states
    from edgeaffect.keras_backend import keras, tf

    k, t = keras(), tf()
    custom = custom_objects()
    from edgeaffect.families.wav2vec2.backbone import freeze

    n = int(c.backbone["num_hidden_layers"])
    freeze(backbone, feature_encoder=True, layers_below=n - 1 if c.fine_tune_layers == "last" else 0)
    audio = k.Input((segments, c.samples), name="audio")
    mask = k.Input((segments,), name="segment_mask")
    states = backbone(custom["FoldSegments"](name="fold")(audio))
    x = sum_hidden_states(states, LAYER_CHOICES[c.layers])
    v = segment_encoder(k, custom, c, x)
    out = _participant(k, t, custom, c, v, mask, audio, with_weights)
    return k.Model([audio, mask], out, name="wav2vec2_detector")


def build_head_stage(c: DetectorConfig):
    """The head as the exported stage: static ``max_segments`` segments (padding after the
    real ones, as in training), one output (batch, 1 + max_segments): p(depressed), then
    each segment's weight (an exported runner returns one tensor; both parts lie in [0, 1],
    so an int8 output shares one scale without squeezing either). The LSTM is unrolled over
    the static segments (the same function): TFLite's fused int8 LSTM, calibrated from the
    Keras graph, was off by more than its output's range (measured: max |diff| 1.6-2.0 x the
    largest output on the tiny detector); unrolled, it is plain matmuls and activations,
    each quantized from its own calibrated range."""
    from edgeaffect.keras_backend import keras

    k = keras()
    head = build_head(c, segments=c.max_segments, with_weights=True, unroll=True)
    out = k.layers.Concatenate(name="probability_and_weights")(head.outputs)
    return k.Model(head.inputs, out, name="wav2vec2_detector_head_stage")


def probability_loss():
    """Binary cross-entropy on the first output column (p); the segment weights that follow
    have no targets (QAT of the head stage)."""
    from edgeaffect.keras_backend import keras

    bce = keras().losses.BinaryCrossentropy()

    def loss(y_true, y_pred):
        return bce(y_true[:, :1], y_pred[:, :1])

    return loss


def backbone_variables(model) -> set[int]:
    """ids of the trainable variables that belong to the backbone (the slow learning rate)."""
    ids = set()
    for layer in model.layers:
        if layer.name.startswith("wav2vec2"):
            ids |= {id(v) for v in layer.trainable_variables}
    return ids


# --- analytic cost (no TensorFlow): per participant of ``max_segments`` segments ---

def head_cost(c: DetectorConfig) -> list[LayerCost]:
    s, f, rows, ch = c.max_segments, c.frames, [], c.hidden
    for i, filters in enumerate(c.conv_filters):
        r = conv(f"seg_conv{i + 1}", (f,), ch, filters, (c.conv_kernel,))
        rows.append(LayerCost(r.name, r.kind, (s, *r.out_shape), r.params, r.flops * s))
        ch = filters
    t_out = -(-f // c.time_pool) if c.time_pool > 1 else f
    if c.pooling == "attention":
        rows.append(LayerCost("seg_attention_pool", "attention", (s, ch), ch, s * t_out * (2 * ch + 2 * ch)))
    u = c.lstm_units
    gates = 4 * (ch * u + u * u + u)
    rows.append(LayerCost("lstm", "lstm", (s, u), gates, s * 2 * gates))
    if c.self_attention:
        proj = dense("", u, u)
        rows.append(LayerCost("self_attention", "attention", (u,), 3 * proj.params,
                              s * 3 * proj.flops + 2 * 2 * s * s * u))
    rows.append(dense("probability", u, 1))
    return rows


def _spec(name: str, c: DetectorConfig, task: str) -> ModelSpec:
    return ModelSpec(name=name, family="wav2vec2", paper=PAPER, task=task, labels=LABELS,
                     inputs={"features": (c.max_segments, c.frames, c.hidden), "segment_mask": (c.max_segments,)},
                     config=c, build=build_head, cost=head_cost,
                     paper_figures=paper_figures(__package__, name))  # Tables 1-3: paper.toml


@register_model
def wav2vec2_daicwoz() -> ModelSpec:
    return _spec("wav2vec2-daicwoz", DetectorConfig(), "depressed / not (PHQ-8 >= 10) per participant, DAIC-WOZ; "
                 "wav2vec 2.0 base")


@register_model
def wav2vec2_large_daicwoz() -> ModelSpec:
    return _spec("wav2vec2-large-daicwoz", DetectorConfig(backbone=dict(LARGE)),
                 "depressed / not (PHQ-8 >= 10) per participant, DAIC-WOZ; wav2vec 2.0 large")


@register_model
def wav2vec2_large_cmdc() -> ModelSpec:
    return _spec("wav2vec2-large-cmdc", DetectorConfig(backbone=dict(LARGE)),
                 "depressed / not per participant, CMDC (layout assumed); wav2vec 2.0 large")


def tiny_config(**kw) -> DetectorConfig:
    """Tests and demos: a tiny random backbone, 2 s segments (99 frames), a small head."""
    base = DetectorConfig(backbone=dict(TINY), segment_s=2.0, conv_filters=(16, 16, 16), lstm_units=16,
                          dropout=0.1, max_segments=16, batch_size=8, epochs=60, patience=15)
    return replace(base, **kw)


@register_model
def wav2vec2_tiny() -> ModelSpec:
    return _spec("wav2vec2-tiny", tiny_config(), "depressed / not per participant; tests and demos, not the "
                 "paper's size")
