"""Import a local Hugging Face wav2vec 2.0 checkpoint folder into the Keras model.

A folder holds ``config.json`` and ``model.safetensors`` or ``pytorch_model.bin``. Nothing
is ever downloaded. Both weight files are read without PyTorch:

- safetensors: an 8-byte little-endian header length, a JSON header (dtype, shape, byte
  range per tensor), then raw little-endian data. Read here in a few lines (the format is
  that simple), which also covers bfloat16 tensors NumPy has no dtype for.
- ``pytorch_model.bin`` (PyTorch's zip format, torch >= 1.6): a pickle whose tensors
  point at raw storages stored beside it in the zip. It is read with a restricted
  unpickler that resolves only the handful of names a state dict uses (tensor and
  parameter rebuilders, storage types, OrderedDict) and refuses any other, so a malicious
  pickle cannot run code. The pre-1.6 non-zip format is refused with a line saying to
  re-save it.

The state dict is checked as a whole before anything is assigned: a ``wav2vec2.`` prefix
is stripped, pre-training and task-head keys are ignored (``IGNORED_PREFIXES``), the
positional conv's weight norm is accepted under both namings (``weight_g`` / ``weight_v``
and ``parametrizations.weight.original0`` / ``original1``) or as a plain ``weight`` and
folded into plain per-group kernels; any other missing or unexpected key, or a shape that
does not match the config, is one ``InputError`` naming it.
"""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError
from edgeaffect.families.wav2vec2.backbone import Wav2Vec2Config, build_wav2vec2, keras_name

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
PREFIX = "wav2vec2."
# Pre-training-only parts (quantizer, contrastive projections, masking vector) and the task
# heads of the reference's Wav2Vec2For* classes: not part of the backbone.
IGNORED_PREFIXES = ("quantizer.", "project_q.", "project_hid.", "lm_head.", "masked_spec_embed",
                    "projector.", "classifier.", "layer_weights")
POS = "encoder.pos_conv_embed.conv"
WEIGHT_NORM_NAMES = {
    "old": (f"{POS}.weight_g", f"{POS}.weight_v"),
    "new": (f"{POS}.parametrizations.weight.original0", f"{POS}.parametrizations.weight.original1"),
}


# ---------------------------------------------------------------- safetensors
_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
              "I8": "i1", "U8": "u1", "BOOL": "?", "BF16": "bf16"}


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    return (raw.astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    data = Path(path).read_bytes()
    bad = f"{path} is not a valid safetensors file"
    if len(data) < 8:
        raise InputError(f"{bad} (too short)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise InputError(f"{bad} (header length {n} past the end)")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{bad} (header: {exc})") from None
    body = memoryview(data)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, stop) = info["dtype"], [int(d) for d in info["shape"]], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{bad} (entry {name!r} malformed)") from None
        if dtype not in _ST_DTYPES:
            raise InputError(f"{path}: tensor {name!r} has unsupported dtype {dtype}")
        np_dtype = np.dtype("<u2") if dtype == "BF16" else np.dtype(_ST_DTYPES[dtype])
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= start <= stop <= len(body)) or stop - start != count * np_dtype.itemsize:
            raise InputError(f"{bad} (tensor {name!r}: byte range {start}-{stop} does not fit shape {shape})")
        arr = np.frombuffer(body[start:stop], dtype=np_dtype).reshape(shape)
        out[name] = _bf16_to_f32(arr) if dtype == "BF16" else arr.copy()
    return out


# ---------------------------------------------------------------- pytorch_model.bin
_TORCH_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "bf16",
                 "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
                 "ByteStorage": "u1", "BoolStorage": "?"}
_TORCH_SCALAR = {"float32": "FloatStorage", "float": "FloatStorage", "float64": "DoubleStorage",
                 "double": "DoubleStorage", "float16": "HalfStorage", "half": "HalfStorage",
                 "bfloat16": "BFloat16Storage", "int64": "LongStorage", "long": "LongStorage",
                 "int32": "IntStorage", "int": "IntStorage", "int16": "ShortStorage", "int8": "CharStorage",
                 "uint8": "ByteStorage", "bool": "BoolStorage"}


class _StorageType:
    def __init__(self, name: str):
        self.name = name


class _Storage:
    def __init__(self, dtype: str, raw: bytes):
        self.dtype, self.raw = dtype, raw

    def array(self) -> np.ndarray:
        if self.dtype == "bf16":
            return _bf16_to_f32(np.frombuffer(self.raw, dtype="<u2"))
        return np.frombuffer(self.raw, dtype=np.dtype(self.dtype))


def _rebuild_tensor(storage, offset, size, stride, *_):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("tensor without a storage")
    flat = storage.array()
    size, stride = tuple(int(v) for v in size), tuple(int(v) for v in stride)
    offset = int(offset)
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in stride):
        raise pickle.UnpicklingError("malformed tensor")
    if not all(size):
        return np.zeros(size, dtype=flat.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= len(flat):
        raise pickle.UnpicklingError("tensor runs past its storage")
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(flat[offset:], shape=size, strides=[s * item for s in stride],
                                           writeable=False)
    return np.array(view)


def _rebuild_parameter(data, *_):
    return data


class _StateDictUnpickler(pickle.Unpickler):
    """Resolves only what a saved state dict needs; anything else is refused."""

    def __init__(self, file, zf: zipfile.ZipFile, root: str):
        super().__init__(file)
        self.zf, self.root = zf, root

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _TORCH_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        kind, key = pid[1], str(pid[2])
        if isinstance(kind, _StorageType):
            dtype = _TORCH_DTYPES[kind.name]
        else:  # torch >= 2 may pickle a dtype object; we only accept storage types
            raise pickle.UnpicklingError(f"unexpected storage type {kind!r}")
        try:
            raw = self.zf.read(f"{self.root}/data/{key}")
        except KeyError:
            raise pickle.UnpicklingError(f"storage {key} missing from the archive") from None
        return _Storage(dtype, raw)


def read_torch_bin(path: Path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path} is not a zip-format PyTorch checkpoint (saved by torch < 1.6?): re-save it "
                         "with a current torch or convert it to model.safetensors")
    try:
        with zipfile.ZipFile(path) as zf:
            pkls = [n for n in zf.namelist() if n.endswith("/data.pkl")]
            if len(pkls) != 1:
                raise InputError(f"{path}: expected one data.pkl in the archive, found {len(pkls)}")
            root = pkls[0][:-len("/data.pkl")]
            order = zf.read(f"{root}/byteorder").decode().strip() if f"{root}/byteorder" in zf.namelist() else "little"
            if order != "little":
                raise InputError(f"{path}: big-endian checkpoints are not supported")
            with zf.open(pkls[0]) as f:
                state = _StateDictUnpickler(f, zf, root).load()
    except InputError:
        raise
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"cannot read {path} as a PyTorch state dict ({exc})") from None
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise InputError(f"{path} does not hold a plain state dict of tensors")
    return dict(state)


def read_state_dict(folder: Path) -> tuple[dict[str, np.ndarray], Path]:
    for name in WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            return (read_safetensors(path) if name.endswith(".safetensors") else read_torch_bin(path)), path
    sharded = sorted(p.name for p in folder.glob("*.index.json"))
    hint = f" (sharded checkpoints, {sharded[0]}, are not supported)" if sharded else ""
    raise InputError(f"no {' or '.join(WEIGHT_FILES)} in {folder}{hint}")


# ---------------------------------------------------------------- mapping
def expected_keys(config: Wav2Vec2Config) -> dict[str, tuple]:
    """Reference state-dict key -> shape for the backbone (positional conv as a plain
    ``weight``; its weight-norm namings are resolved before the comparison)."""
    c = config
    keys: dict[str, tuple] = {}
    cin = 1
    for i, (dim, k) in enumerate(zip(c.conv_dim, c.conv_kernel)):
        p = f"feature_extractor.conv_layers.{i}"
        keys[f"{p}.conv.weight"] = (dim, cin, k)
        if c.conv_bias:
            keys[f"{p}.conv.bias"] = (dim,)
        if c.feat_extract_norm == "layer" or i == 0:
            keys[f"{p}.layer_norm.weight"] = keys[f"{p}.layer_norm.bias"] = (dim,)
        cin = dim
    H, F = c.hidden_size, c.intermediate_size
    keys["feature_projection.layer_norm.weight"] = keys["feature_projection.layer_norm.bias"] = (cin,)
    keys["feature_projection.projection.weight"] = (H, cin)
    keys["feature_projection.projection.bias"] = (H,)
    keys[f"{POS}.weight"] = (H, H // c.num_conv_pos_embedding_groups, c.num_conv_pos_embeddings)
    keys[f"{POS}.bias"] = (H,)
    keys["encoder.layer_norm.weight"] = keys["encoder.layer_norm.bias"] = (H,)
    for i in range(c.num_hidden_layers):
        p = f"encoder.layers.{i}"
        for n in ("q", "k", "v", "out"):
            keys[f"{p}.attention.{n}_proj.weight"] = (H, H)
            keys[f"{p}.attention.{n}_proj.bias"] = (H,)
        for n in ("layer_norm", "final_layer_norm"):
            keys[f"{p}.{n}.weight"] = keys[f"{p}.{n}.bias"] = (H,)
        keys[f"{p}.feed_forward.intermediate_dense.weight"] = (F, H)
        keys[f"{p}.feed_forward.intermediate_dense.bias"] = (F,)
        keys[f"{p}.feed_forward.output_dense.weight"] = (H, F)
        keys[f"{p}.feed_forward.output_dense.bias"] = (H,)
    return keys


def fold_weight_norm(g: np.ndarray, v: np.ndarray) -> np.ndarray:
    """weight = g * v / ||v||, the norm over every dim but the last (``weight_norm(dim=2)``:
    one norm per kernel tap)."""
    v = v.astype(np.float64)
    norm = np.sqrt(np.sum(v * v, axis=(0, 1), keepdims=True))
    return (g.astype(np.float64) * v / norm).astype(np.float32)


def canonical_state_dict(state: dict[str, np.ndarray], config: Wav2Vec2Config, source: str = "checkpoint"
                         ) -> dict[str, np.ndarray]:
    """Strip the prefix, drop ignored keys, fold weight norm, check keys and shapes."""
    sd: dict[str, np.ndarray] = {}
    for key, value in state.items():
        k = key[len(PREFIX):] if key.startswith(PREFIX) else key
        if k.startswith(IGNORED_PREFIXES):
            continue
        if k in sd:
            raise InputError(f"{source}: key {k!r} appears both with and without the '{PREFIX}' prefix")
        sd[k] = value
    present = {name: [k for k in pair if k in sd] for name, pair in WEIGHT_NORM_NAMES.items()}
    forms = [name for name, found in present.items() if found] + ([f"{POS}.weight"] if f"{POS}.weight" in sd else [])
    if len(forms) > 1:
        raise InputError(f"{source}: the positional conv weight is stored more than once "
                         f"({', '.join(forms)}); keep one form")
    for name, (gk, vk) in WEIGHT_NORM_NAMES.items():
        if present[name]:
            if len(present[name]) != 2:
                missing = gk if gk not in sd else vk
                raise InputError(f"{source}: missing key {missing!r} (the positional conv's weight norm needs both "
                                 "parts)")
            g, v = sd.pop(gk), sd.pop(vk)
            want = expected_keys(config)[f"{POS}.weight"]
            if tuple(v.shape) != want or tuple(g.shape) != (1, 1, want[2]):
                raise InputError(f"{source}: positional conv weight norm shapes g {tuple(g.shape)}, v {tuple(v.shape)} "
                                 f"do not match the config (g (1, 1, {want[2]}), v {want}; weight_norm dim=2 expected)")
            sd[f"{POS}.weight"] = fold_weight_norm(g, v)
    expected = expected_keys(config)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InputError(f"{source}: missing key {missing[0]!r}{more}: the state dict does not match config.json")
    if unexpected:
        more = f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else ""
        raise InputError(f"{source}: unexpected key {unexpected[0]!r}{more}: the state dict does not match "
                         "config.json (or is not a wav2vec 2.0 model)")
    for k, want in expected.items():
        if tuple(sd[k].shape) != want:
            raise InputError(f"{source}: {k!r} has shape {tuple(sd[k].shape)}, config.json implies {want}")
        arr = np.asarray(sd[k])
        if not np.issubdtype(arr.dtype, np.floating):
            raise InputError(f"{source}: {k!r} is {arr.dtype}, expected floating point weights")
        arr = arr.astype(np.float32)
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{source}: {k!r} contains NaN or infinite values")
        sd[k] = arr
    return sd


def keras_weights(sd: dict[str, np.ndarray], config: Wav2Vec2Config) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> its weights, from a canonical state dict."""
    c = config
    out: dict[str, list[np.ndarray]] = {}

    def linear(module):
        out[keras_name(module)] = [sd[f"{module}.weight"].T.copy(), sd[f"{module}.bias"]]

    def norm(module):
        out[keras_name(module)] = [sd[f"{module}.weight"], sd[f"{module}.bias"]]

    for i in range(len(c.conv_dim)):
        p = f"feature_extractor.conv_layers.{i}"
        w = [np.transpose(sd[f"{p}.conv.weight"], (2, 1, 0)).copy()]
        if c.conv_bias:
            w.append(sd[f"{p}.conv.bias"])
        out[keras_name(f"{p}.conv")] = w
        if c.feat_extract_norm == "layer" or i == 0:
            norm(f"{p}.layer_norm")
    norm("feature_projection.layer_norm")
    linear("feature_projection.projection")
    groups = c.num_conv_pos_embedding_groups
    per = c.hidden_size // groups
    w, b = sd[f"{POS}.weight"], sd[f"{POS}.bias"]
    for g in range(groups):
        kernel = np.transpose(w[g * per:(g + 1) * per], (2, 1, 0)).copy()  # (k, in/g, out/g)
        out[keras_name(f"encoder.pos_conv_embed.conv_{g}")] = [kernel, b[g * per:(g + 1) * per].copy()]
    norm("encoder.layer_norm")
    for i in range(c.num_hidden_layers):
        p = f"encoder.layers.{i}"
        for n in ("q", "k", "v", "out"):
            linear(f"{p}.attention.{n}_proj")
        norm(f"{p}.layer_norm")
        norm(f"{p}.final_layer_norm")
        linear(f"{p}.feed_forward.intermediate_dense")
        linear(f"{p}.feed_forward.output_dense")
    return out


def assign(model, weights: dict[str, list[np.ndarray]]) -> None:
    """Set every layer of ``model`` that has weights; each must be in ``weights``. Layers
    named in ``weights`` that the model lacks are skipped only for the pre-LN final
    LayerNorm (not in the graph unless ``last_hidden_state`` is asked for)."""
    names = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in weights:
            raise InputError(f"internal: no checkpoint weights for Keras layer {layer.name!r}")
        layer.set_weights(weights[layer.name])
        names.add(layer.name)
    left = set(weights) - names - {keras_name("encoder.layer_norm")}
    if left:
        raise InputError(f"internal: checkpoint weights with no Keras layer: {sorted(left)[0]!r}")


def read_checkpoint(folder) -> tuple[Wav2Vec2Config, dict[str, list[np.ndarray]]]:
    """(config, Keras layer name -> weights) from a local checkpoint folder, checked."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder: give a Hugging Face wav2vec 2.0 checkpoint folder "
                         "(config.json + model.safetensors or pytorch_model.bin)")
    config = Wav2Vec2Config.from_json(folder / "config.json")
    state, path = read_state_dict(folder)
    sd = canonical_state_dict(state, config, source=str(path))
    return config, keras_weights(sd, config)


def load_pretrained(folder, *, samples: int | None = None, batch: int | None = None,
                    last_hidden_state: bool = False, feature: str | None = None):
    """(model, config) from a local checkpoint folder; see ``build_wav2vec2`` for the
    options. With ``feature`` (a ``SUM_DEFINITIONS`` key) the model is
    ``build_feature_model``'s: one output, the summed frame feature."""
    from edgeaffect.families.wav2vec2.backbone import build_feature_model

    config, weights = read_checkpoint(folder)
    if feature is not None:
        model = build_feature_model(config, samples=samples, batch=batch, definition=feature)
    else:
        model = build_wav2vec2(config, samples=samples, batch=batch, last_hidden_state=last_hidden_state)
    assign(model, weights)
    return model, config


def read_preprocessor(folder) -> dict:
    """The feature extractor's settings the embedding needs (``do_normalize``,
    ``sampling_rate``), from ``preprocessor_config.json`` when the folder has one; the
    reference's defaults (normalise, 16 kHz) otherwise."""
    path = Path(folder) / "preprocessor_config.json"
    settings = {"do_normalize": True, "sampling_rate": 16000}
    if path.is_file():
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read {path} as JSON ({exc})") from None
        if not isinstance(d, dict):
            raise InputError(f"{path}: expected a JSON object")
        settings["do_normalize"] = bool(d.get("do_normalize", True))
        settings["sampling_rate"] = int(d.get("sampling_rate", 16000))
    return settings
