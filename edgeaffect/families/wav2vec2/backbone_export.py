"""Export the wav2vec 2.0 feature model (normalised audio -> summed frame feature) with
static shapes for one segment, and verify every file against Keras.

Formats: TFLite float32, float16 weights, dynamic-range int8 (conv and dense weights
int8, activations quantized on the fly; the ops that break its bound keep float weights,
``edgeaffect.export.dynamic_range``), ONNX float32, and ONNX dynamic int8 of the
transformer's MatMuls only (conv feature encoder and positional conv in float). No static
(calibrated) int8: wav2vec 2.0's conv and transformer activation ranges differ too much
for it. Shapes are static, batch 1 (a dynamic LayerNorm shape can push TFLite off
XNNPACK), and the positional conv is already one Conv1D per group (a grouped conv does not
quantize in TFLite).

    python -m edgeaffect.families.wav2vec2.backbone_export OUT --tiny layer [--seconds 7]
    python -m edgeaffect.families.wav2vec2.backbone_export OUT --backbone HF_DIR
    python -m edgeaffect.families.wav2vec2.backbone_export --cost     # base / large, 7 s
    python -m edgeaffect.families.wav2vec2.backbone_export OUT --rtf --size base   # rtf.py: RTF per format
    python -m edgeaffect.families.wav2vec2.backbone_export OUT --predict BOUNDS.json ROOFS.json  # Pi estimates

Each file is written by its registered export format, run by its runtime and checked
against Keras (``backbone_files``: the verification and its bounds).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edgeaffect.errors import VerificationError
from edgeaffect.families.wav2vec2.backbone import DEFAULT_SUM, Wav2Vec2Config, build_feature_model, cost, frame_count
from edgeaffect.families.wav2vec2.backbone_files import (FORMATS, RECORDED_ONLY, backbone_file, checked, gelu_for,
                                                         run_file, verify_inputs, write_file)
from edgeaffect.families.wav2vec2.rtf import RTF_FORMATS, SIZES, measure_rtf, predict_devices, time_step, write_step
from edgeaffect.io import atomic_write_text


def _erf_twin(model, config: Wav2Vec2Config, definition: str, samples: int):
    """The same weights in a graph whose GELU goes through erf (tf2onnx cannot write erfc)."""
    twin = build_feature_model(config, samples=samples, batch=1, definition=definition, gelu="erf", name=model.name)
    for layer in twin.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return twin


def export_backbone(model, config: Wav2Vec2Config, out_dir, *, samples: int = 112000, formats=FORMATS,
                    definition: str = DEFAULT_SUM, log=sys.stderr) -> dict:
    """Write ``formats`` of the feature ``model`` (``build_feature_model(config,
    definition=definition)`` for batch 1 and ``samples``) under
    ``out_dir`` with ``report.json``; raise VerificationError if one misses its bound."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    xs = verify_inputs(samples)
    want = np.stack([model(x[None], training=False).numpy()[0] for x in xs])
    report = {"samples": samples, "frames": frame_count(samples, config), "config": config.to_dict(),
              "feature": definition, "formats": {}}
    models = {"tf": model}  # the erf twin for the ONNX formats, built once when one needs it
    failed = []
    for fmt in formats:
        gelu = gelu_for(fmt)
        if gelu not in models:
            models[gelu] = _erf_twin(model, config, definition, samples)
        path = out_dir / backbone_file(fmt)
        facts = write_file(models[gelu], fmt, samples, path, want, log)
        got = run_file(path, fmt, xs)
        r = checked(fmt, path, got, want)
        r["gating"] = fmt not in RECORDED_ONLY
        r.update({k: facts[k] for k in ("float_layers", "mixed_precision") if k in facts})
        report["formats"][fmt] = r
        verdict = "ok" if r["passed"] else ("FAILED" if r["gating"] else "below the bound (recorded, not gating)")
        print(f"  {fmt}: {r['bytes'] / 1e6:.2f} MB, max |diff| {r['max_abs_diff']:.2e} "
              f"({r['rel_max_diff']:.2e} of the scale), mean cosine {r['mean_cosine']:.6f} -> {verdict}", file=log)
        if not r["passed"] and r["gating"]:
            failed.append(fmt)
    atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2))
    if failed:
        raise VerificationError(f"{', '.join(failed)} disagree with Keras beyond the bound (see {out_dir}/report.json)")
    return report


def cost_table(seconds: float = 7.0) -> list[dict]:
    rows = []
    for name, c in (("base", Wav2Vec2Config.base()), ("large (layer norm, pre-LN)", Wav2Vec2Config.large("layer")),
                    ("large (group norm, post-LN)", Wav2Vec2Config.large("group"))):
        rows.append({"model": name, **cost(c, int(seconds * 16000))})
    return rows


def main(argv=None) -> int:
    import argparse

    from edgeaffect.errors import EdgeAffectError

    p = argparse.ArgumentParser(prog="python -m edgeaffect.families.wav2vec2.backbone_export")
    p.add_argument("out", nargs="?", type=Path)
    p.add_argument("--backbone", type=Path, help="a local Hugging Face checkpoint folder")
    p.add_argument("--tiny", choices=("group", "layer"), help="a tiny random-weight config instead")
    p.add_argument("--seconds", type=float, default=7.0)
    p.add_argument("--cost", action="store_true", help="print parameters and FLOPs of base and large per segment")
    p.add_argument("--rtf", action="store_true",
                   help="measure the real-time factor per format (each export in its own process; OUT/rtf.json)")
    p.add_argument("--size", choices=SIZES, help="with --rtf: a random-weight config instead of --backbone")
    p.add_argument("--threads", type=int, default=1, help="with --rtf: threads of every runtime")
    p.add_argument("--rounds", type=int, default=8, help="with --rtf: timed runs per format, interleaved")
    p.add_argument("--predict", nargs=2, type=Path, metavar=("BOUNDS_JSON", "ROOFS_JSON"),
                   help="with OUT of an --rtf run: device estimates from `edgeaffect roofline --out DIR` "
                        "(DIR/bounds.json) and `edgeaffect host-roofs --json` (a prediction; OUT/predict.json)")
    p.add_argument("--rtf-step", help=argparse.SUPPRESS)
    p.add_argument("--formats", help=f"with --rtf: comma-separated, of {', '.join(RTF_FORMATS)} (default: all)")
    a = p.parse_args(argv)
    from edgeaffect.logs import quiet_entry_point

    quiet_entry_point()  # TensorFlow's start-up lines hidden, as the command line does
    samples = int(round(a.seconds * 16000))
    try:
        if a.predict:
            if a.out is None:
                p.error("--predict needs OUT (the folder of an --rtf run)")
            predict_devices(a.out, *a.predict)
            return 0
        if a.rtf or a.rtf_step:
            if a.out is None or (a.backbone is None) == (a.size is None):
                p.error("--rtf needs OUT and one of --backbone / --size")
            if a.threads < 1 or a.rounds < 1:
                p.error("--threads and --rounds must be >= 1")
            if a.rtf_step == "time":
                time_step(a.out, a.formats.split(","), samples, a.size, a.backbone, threads=a.threads,
                          rounds=a.rounds)
            elif a.rtf_step:
                write_step(a.out, a.rtf_step, samples, a.size, a.backbone)
            else:
                formats = tuple(f.strip() for f in (a.formats or ",".join(RTF_FORMATS)).split(",") if f.strip())
                unknown = [f for f in formats if f not in RTF_FORMATS]
                if unknown:
                    p.error(f"--formats: unknown {', '.join(unknown)} (known: {', '.join(RTF_FORMATS)})")
                measure_rtf(a.out, seconds=a.seconds, size=a.size, backbone=a.backbone, formats=formats,
                            threads=a.threads, rounds=a.rounds)
            return 0
        if a.cost:
            for r in cost_table(a.seconds):
                print(f"{r['model']}: {r['params'] / 1e6:.2f} M parameters, {r['flops'] / 1e9:.1f} GFLOPs per "
                      f"{a.seconds:g} s ({r['frames']} frames)")
            if a.out is None:
                return 0
        if a.out is None or (a.backbone is None) == (a.tiny is None):
            p.error("give OUT and one of --backbone / --tiny (or --cost alone)")
        if a.backbone is not None:
            from edgeaffect.families.wav2vec2.checkpoint import load_pretrained

            model, config = load_pretrained(a.backbone, samples=samples, batch=1, feature=DEFAULT_SUM)
        else:
            from edgeaffect.families.wav2vec2.checkpoint import assign

            from edgeaffect.keras_backend import keras

            keras().utils.set_random_seed(0)
            config = Wav2Vec2Config.tiny(a.tiny)
            model = build_feature_model(config, samples=samples, batch=1)
            rng = np.random.default_rng(0)
            weights = {layer.name: [w + 0.1 * rng.standard_normal(w.shape).astype(np.float32)
                                    for w in layer.get_weights()] for layer in model.layers if layer.weights}
            assign(model, weights)
        export_backbone(model, config, a.out, samples=samples)
    except EdgeAffectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
