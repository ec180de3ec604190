"""Checkpoint folders for the wav2vec 2.0 tests: random NumPy state dicts (no torch) and,
where torch and transformers are installed, real reference models saved to disk."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from edgeaffect.families.wav2vec2.checkpoint import POS, WEIGHT_NORM_NAMES, expected_keys


def write_safetensors(path: Path, sd: dict[str, np.ndarray]) -> None:
    """A minimal safetensors writer (float32 / float16 / bfloat16-as-uint16 tensors)."""
    codes = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("uint16"): "BF16",
             np.dtype("int64"): "I64"}
    header, blobs, offset = {}, [], 0
    for name, arr in sd.items():
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": codes[arr.dtype], "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    Path(path).write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def random_state_dict(config, *, naming: str = "new", prefix: str = "", seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sd = {}
    for key, shape in expected_keys(config).items():
        sd[prefix + key] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    w = sd.pop(prefix + f"{POS}.weight")
    g = np.sqrt(np.sum(w.astype(np.float64) ** 2, axis=(0, 1), keepdims=True)).astype(np.float32)
    if naming in WEIGHT_NORM_NAMES:
        gk, vk = WEIGHT_NORM_NAMES[naming]
        sd[prefix + gk], sd[prefix + vk] = g, w
    else:
        sd[prefix + f"{POS}.weight"] = w
    return sd


def numpy_checkpoint(folder: Path, config, sd=None, config_dict=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config_dict or config.to_dict()))
    write_safetensors(folder / "model.safetensors", random_state_dict(config) if sd is None else sd)
    return folder


def reference_checkpoint(folder: Path, config, *, fmt: str = "safetensors", naming: str = "new",
                         pretraining: bool = False, seed: int = 0):
    """A transformers model with random weights (norms and biases too), saved as
    ``fmt`` ("safetensors" / "bin") with the weight-norm ``naming`` ("new" / "old").
    Returns (folder, the eval-mode reference model)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    hf_config = transformers.Wav2Vec2Config(**config.to_dict(), attn_implementation="eager")
    cls = transformers.Wav2Vec2ForPreTraining if pretraining else transformers.Wav2Vec2Model
    model = cls(hf_config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(do_normalize=True, sampling_rate=16000).save_pretrained(folder)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    if naming == "old":
        new_g, new_v = WEIGHT_NORM_NAMES["new"]
        old_g, old_v = WEIGHT_NORM_NAMES["old"]
        for new, old in ((new_g, old_g), (new_v, old_v)):
            for k in [k for k in state if k.endswith(new)]:
                state[k[: -len(new)] + old] = state.pop(k)
    assert any(k.endswith(WEIGHT_NORM_NAMES[naming][0]) for k in state)
    if fmt == "bin":
        (folder / "model.safetensors").unlink()
        torch.save(state, folder / "pytorch_model.bin")
    elif naming == "old":
        write_safetensors(folder / "model.safetensors", {k: v.numpy() for k, v in state.items()})
    model = model.wav2vec2 if pretraining else model
    return folder, model


def reference_states(model, audio: np.ndarray):
    """The reference's hidden states (L+1 arrays) and last_hidden_state for normalised audio."""
    import torch

    with torch.no_grad():
        out = model(torch.from_numpy(np.asarray(audio, dtype=np.float32)), output_hidden_states=True)
    return [h.numpy() for h in out.hidden_states], out.last_hidden_state.numpy()
