"""The QAT fine-tune is seeded by the run: two exports of one run fine-tune to the same weights."""

import numpy as np

from edgeaffect.keras_backend import keras
from edgeaffect.train.qat import qat_finetune


def _tiny_model(k):
    inp = k.Input((12,), name="x")
    h = k.layers.Dense(16, activation="relu")(inp)
    h = k.layers.Dropout(0.3)(h)
    return k.Model(inp, k.layers.Dense(3, activation="softmax")(h))


def _finetune(float_model, data, seed):
    x, y = data
    qat = qat_finetune(float_model, {"x": x[:96]}, y[:96], {"x": x[96:]}, y[96:], epochs=3, batch_size=16,
                       patience=3, seed=seed, log=open("/dev/null", "w"))
    return [w.copy() for w in qat.get_weights()]


def test_qat_finetune_is_seeded():
    k = keras()
    k.utils.set_random_seed(1)
    float_model = _tiny_model(k)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 12)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 128)]
    a = _finetune(float_model, (x, y), seed=7)
    k.utils.set_random_seed(123)  # whatever ran before, the fine-tune starts from its own seed
    b = _finetune(float_model, (x, y), seed=7)
    c = _finetune(float_model, (x, y), seed=8)
    # Same seed: equal to float32 rounding of one op order (CPU kernels here are deterministic
    # for these shapes; 1e-6 leaves room for a reduction split differently by thread count).
    assert max(float(np.max(np.abs(p - q))) for p, q in zip(a, b)) <= 1e-6
    # Another seed shuffles and drops differently: the weights must move, or the seed does nothing.
    assert max(float(np.max(np.abs(p - q))) for p, q in zip(a, c)) > 1e-4
