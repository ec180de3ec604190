"""The runners' int8 input / output conversion: in place with float32 scalars (for speed), the
same numbers as the textbook expression, halves rounded to even and saturated at the type."""

import numpy as np
import pytest

from edgeaffect.runtime.base import TensorInfo, dequantize, quantize


def _textbook(x, info):
    lo, hi = np.iinfo(info.dtype).min, np.iinfo(info.dtype).max
    return np.clip(np.round(x / info.scale) + info.zero_point, lo, hi).astype(info.dtype)


@pytest.mark.parametrize("dtype, zero_point", [("int8", -62), ("int8", 0), ("uint8", 128), ("int16", 5)])
@pytest.mark.parametrize("scale", [0.04002070054411888, 0.4150759279727936, 1 / 3, 7.0])
def test_quantize_and_dequantize_match_the_textbook_expression(dtype, zero_point, scale):
    rng = np.random.default_rng(0)
    info = TensorInfo("x", (3, 1000), dtype, scale, zero_point)
    span = float(np.iinfo(dtype).max)
    x = (rng.standard_normal((3, 1000)) * scale * span).astype(np.float32)  # saturates both ends
    x[0, :10] = (np.arange(10) + 0.5) * np.float32(scale)  # halves: to even
    q = quantize(x, info)
    assert q.dtype == np.dtype(dtype) and np.array_equal(q, _textbook(x, info))
    info_range = np.iinfo(dtype)
    assert q.min() == info_range.min and q.max() == info_range.max
    want = (scale * (q.astype(np.float32) - zero_point)).astype(np.float32)
    got = dequantize(q, info)
    assert got.dtype == np.float32 and np.array_equal(got, want)
    assert np.array_equal(quantize(np.array([[0.5, 1.5, 2.5]], np.float32), TensorInfo("h", (1, 3), "int8", 1.0)),
                          np.array([[0, 2, 2]], np.int8))


def test_a_float_tensor_passes_through():
    info = TensorInfo("x", (1, 2), "float32")
    x = np.array([[1.25, -3.5]], np.float32)
    assert np.array_equal(quantize(x, info), x) and dequantize(x, info).dtype == np.float32
