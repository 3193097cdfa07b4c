"""FastGRNN's step and head as TensorFlow graphs, built from :class:`FastGRNNParams`.

The numpy maths (validation, forward pass, calibration states) is
``export.fastgrnn_params``; here only the ops the converter turns into TFLite.
"""

from __future__ import annotations

from typing import Any

from export.fastgrnn_params import FastGRNNParams, sigmoid


def tf_step(p: FastGRNNParams, x: Any, h: Any) -> Any:
    """One FastGRNN step in TensorFlow ops (float32 constants from ``p``), row vectors."""
    import tensorflow as tf

    def mat(a: Any) -> Any:
        return tf.constant(a, dtype=tf.float32)

    xw = tf.matmul(x, mat(p.w1))
    if p.w2 is not None:
        xw = tf.matmul(xw, mat(p.w2))
    hu = tf.matmul(h, mat(p.u1))
    if p.u2 is not None:
        hu = tf.matmul(hu, mat(p.u2))
    pre = xw + hu
    g = pre + mat(p.bias_gate)
    v = pre + mat(p.bias_update)
    if p.gate == "quantSigm":
        z = tf.clip_by_value((g + 1.0) * 0.5, 0.0, 1.0)
    else:
        z = tf.sigmoid(g)
    if p.update == "quantTanh":
        c = tf.clip_by_value(v, -1.0, 1.0)
    else:
        c = tf.tanh(v)
    sz, sn = float(sigmoid(p.zeta)), float(sigmoid(p.nu))
    return z * h + ((sz + sn) - sz * z) * c


def tf_head(p: FastGRNNParams, h: Any) -> Any:
    """Classifier on the last state: ``h @ dense_kernel + dense_bias``."""
    import tensorflow as tf

    return (tf.matmul(h, tf.constant(p.dense_kernel, dtype=tf.float32))
            + tf.constant(p.dense_bias, dtype=tf.float32))
