"""SpeechNet's balanced margin loss (Eq. 15), as a Keras loss.

    L = 1/N sum_i sum_j w_j [ y_ij max(0, a1 - p_ij)^2 + a2 (1 - y_ij) max(0, p_ij - a3)^2 ] beta_i

p_ij: predicted score of class j (a capsule length, in [0, 1)); w_j: class weight;
a1 = a2 = a3 = 0.5. beta as printed, per sample i:

    beta_i = max( 1/C sum_c (1 - y_ic + y_ic (C - 1) / (1 - 1/C)) / (1 - 1/C), 1 )

For a one-hot label this is the constant (2C - 1) / (C - 1) (e.g. 13/6 for C = 7): it
scales the loss but does not re-balance it; the class weights do. Implemented as printed.
"""

from __future__ import annotations

import numpy as np


def margin_beta(y, n_classes: int):
    """beta_i of Eq. 15 for labels ``y`` [shape=(N, C)] (NumPy or TensorFlow)."""
    c = float(n_classes)
    inner = (1.0 - y + y * (c - 1.0) / (1.0 - 1.0 / c)) / (1.0 - 1.0 / c)
    mean = inner.mean(axis=-1) if isinstance(y, np.ndarray) else _tf().reduce_mean(inner, axis=-1)
    return np.maximum(mean, 1.0) if isinstance(y, np.ndarray) else _tf().maximum(mean, 1.0)


def balanced_margin_numpy(y: np.ndarray, p: np.ndarray, class_weights: np.ndarray,
                          alphas=(0.5, 0.5, 0.5)) -> float:
    """Eq. 15 in NumPy (the reference the Keras loss is tested against)."""
    a1, a2, a3 = alphas
    per_class = y * np.maximum(0.0, a1 - p) ** 2 + a2 * (1.0 - y) * np.maximum(0.0, p - a3) ** 2
    per_sample = (per_class * class_weights[None, :]).sum(axis=1) * margin_beta(y, y.shape[1])
    return float(per_sample.mean())


def _tf():
    from edgeaffect.keras_backend import tf

    return tf()


def balanced_margin_loss(class_weights, alphas=(0.5, 0.5, 0.5)):
    """Keras loss ``(y_true, y_pred) -> per-sample loss`` (Keras takes the mean over the batch)."""
    tf = _tf()
    weights = tf.constant(np.asarray(class_weights, np.float32))
    a1, a2, a3 = (float(a) for a in alphas)
    n_classes = len(class_weights)

    def balanced_margin(y_true, y_pred):
        y_true = tf.cast(y_true, tf.float32)
        per_class = (y_true * tf.square(tf.maximum(0.0, a1 - y_pred))
                     + a2 * (1.0 - y_true) * tf.square(tf.maximum(0.0, y_pred - a3)))
        return tf.reduce_sum(per_class * weights, axis=-1) * margin_beta(y_true, n_classes)

    return balanced_margin


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """w_j = N / (C * N_j) over the training labels (1 for a class with no sample)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    return np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 1.0).astype(np.float32)
