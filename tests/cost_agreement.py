"""Issue 27: every exported stage's cost, read from its TFLite and ONNX graphs, agrees with
the Keras model's, and no op goes uncounted on either side (a reader that skipped an op, or
took an unknown dimension as 1, would make Keras's count look right against a silent
undercount: both happened, to ONNX Runtime's dynamic int8 MatMulInteger and to tf2onnx's
Tensordot reshapes).

Multiply-adds within 2 %, every file; FLOPs within 2 % for TFLite files and, by default, ONNX
files (``onnx_flops``). The cost convention counts activations and normalisations as zero; the
readers know their ops (TFLite's GELU, ONNX's LayerNormalization) and the exact GELU written
through Erf, while a LayerNorm that tf2onnx writes as separate element-wise ops counts as
written (a few tenths of a percent at these sizes).
"""

from __future__ import annotations

from pathlib import Path

TOLERANCE = 0.02


def assert_costs_agree(keras_model, folder: Path, onnx_flops: float = TOLERANCE) -> dict[str, tuple]:
    """Every .tflite / .onnx file in ``folder`` against ``keras_model``; file -> (MAC ratio, FLOP ratio)."""
    from edgeaffect.roofline.readers import analyse

    keras = analyse(keras_model)
    assert keras.uncounted == [] and keras.flops > 0, keras.uncounted
    files = sorted(Path(folder).glob("*.tflite")) + sorted(Path(folder).glob("*.onnx"))
    assert files, f"no exported file in {folder}"
    ratios, off = {}, {}
    for f in files:
        c = analyse(f)
        assert c.uncounted == [], (f.name, c.uncounted)
        ratios[f.name] = (c.macs / keras.macs, c.flops / keras.flops)
        flop_tolerance = onnx_flops if f.suffix == ".onnx" else TOLERANCE
        if abs(ratios[f.name][0] - 1) > TOLERANCE or abs(ratios[f.name][1] - 1) > flop_tolerance:
            off[f.name] = tuple(round(r, 4) for r in ratios[f.name])
    assert not off, (f"(MACs, FLOPs) of the exported files / Keras's beyond tolerance: {off} "
                     f"(Keras {keras.macs:,} MACs, {keras.flops:,} FLOPs)")
    return ratios
