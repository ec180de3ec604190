"""The command this family adds to ``edgeaffect`` (``Wav2Vec2Family.commands``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def embed(audio: Annotated[Path, typer.Argument(help="A 16 kHz recording, or a folder of them (recursive).")],
          backbone: Annotated[Path, typer.Option(help="A local Hugging Face wav2vec 2.0 checkpoint folder "
                                                 "(config.json + model.safetensors or pytorch_model.bin).")],
          out: Annotated[Path, typer.Option(help="The .npy to write; a folder when AUDIO is a folder.")],
          layers: Annotated[str, typer.Option(help="sum: the detector's feature (frames, hidden); all: the "
                                              "L+1 hidden states (L+1, frames, hidden).")] = "sum",
          segment_s: Annotated[Optional[float], typer.Option(help="Embed non-overlapping segments of this "
                                                             "many seconds (adds a leading segment axis).")] = None):
    """Write wav2vec 2.0 frame features (the Keras backbone with imported weights)."""
    from edgeaffect.families.wav2vec2.embed import embed as write_features

    s = write_features(audio, backbone, out, layers=layers, segment_s=segment_s)
    shape = f", shape {tuple(s['shape'])}" if "shape" in s else ""
    typer.echo(f"{s['written']} written, {s['skipped']} already there, of {s['files']} -> {s['out']}{shape}")
