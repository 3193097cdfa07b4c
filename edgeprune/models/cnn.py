"""Convolutional models: a microcontroller-sized HAR CNN and the pruning paper's CNNs.

``har_cnn`` uses only layers the integer C exporter supports: Conv1D (ReLU activation,
``valid``/``same`` padding, stride), MaxPooling1D, GlobalAveragePooling1D and Dense.
The paper CNNs (ResNet-32, WRN-28-8, MobileNet-V1, ResNet-50) are for the pruning
experiments and use BatchNorm; they are not meant for the C exporter.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import tf_keras as keras

_L2 = keras.regularizers.L2


def _pos_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name}={value!r} is invalid; must be a positive int")
    return int(value)


def _shape(name: str, value: Any, rank: int, example: str, min_size: int = 1) -> tuple:
    ok = (
        isinstance(value, Sequence)
        and len(value) == rank
        and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool)
            and v >= (min_size if i < rank - 1 else 1)
            for i, v in enumerate(value)
        )
    )
    if not ok:
        raise ValueError(
            f"{name}={value!r} is invalid; must be {rank} positive ints (spatial sizes "
            f">= {min_size}), e.g. {example}"
        )
    return tuple(int(v) for v in value)


def _seeded(seed: int | None, k: int) -> keras.initializers.Initializer:
    return keras.initializers.HeNormal(seed=None if seed is None else int(seed) * 64 + k)


def har_cnn(
    input_shape: Sequence[int] = (128, 9),
    classes: int = 2,
    filters: Sequence[int] = (16, 32, 64),
    kernel_size: int = 5,
    pool_size: int = 2,
    dense_units: int = 32,
    padding: str = "same",
    seed: int | None = 0,
) -> keras.Model:
    """A small 1-D CNN for HAR windows, returning logits (about 16 K params by default).

    ``[Conv1D(f, kernel_size, relu) -> MaxPooling1D(pool_size)]`` for every ``f`` but the
    last, then ``Conv1D(filters[-1], relu) -> GlobalAveragePooling1D ->
    Dense(dense_units, relu) -> Dense(classes)`` (``dense_units=0`` drops the hidden
    Dense). Only layers the integer C exporter supports; nothing random at inference.
    """
    shape = _shape("input_shape", input_shape, 2, "(128, 9)")
    classes = _pos_int("classes", classes)
    kernel_size = _pos_int("kernel_size", kernel_size)
    pool_size = _pos_int("pool_size", pool_size)
    if padding not in ("same", "valid"):
        raise ValueError(f"padding={padding!r} is invalid; allowed: ('same', 'valid')")
    if isinstance(filters, numbers.Integral) or not filters:
        raise ValueError(f"filters={filters!r} is invalid; must be a non-empty sequence of ints")
    filters = [_pos_int("filters", f) for f in filters]
    if isinstance(dense_units, bool) or not isinstance(dense_units, numbers.Integral) or (
        dense_units < 0
    ):
        raise ValueError(f"dense_units={dense_units!r} is invalid; must be an int >= 0")
    inputs = keras.Input(shape=shape, name="window")
    x = inputs
    for i, f in enumerate(filters):
        x = keras.layers.Conv1D(
            f, kernel_size, padding=padding, activation="relu",
            kernel_initializer=_seeded(seed, i), name=f"conv{i}",
        )(x)
        if i < len(filters) - 1:
            x = keras.layers.MaxPooling1D(pool_size, name=f"pool{i}")(x)
    x = keras.layers.GlobalAveragePooling1D(name="gap")(x)
    if dense_units:
        x = keras.layers.Dense(
            int(dense_units), activation="relu", kernel_initializer=_seeded(seed, 40),
            name="dense",
        )(x)
    logits = keras.layers.Dense(
        classes, kernel_initializer=keras.initializers.GlorotUniform(
            seed=None if seed is None else int(seed) * 64 + 41
        ), name="logits",
    )(x)
    return keras.Model(inputs, logits, name="har_cnn")


# ---- paper CNNs (BatchNorm; for the pruning experiments, not for the C exporter) ----

def _conv(filters: int, k: int, stride: int = 1, wd: float = 0.0, name: str | None = None):
    return keras.layers.Conv2D(
        filters, k, strides=stride, padding="same", use_bias=False,
        kernel_initializer="he_normal", kernel_regularizer=_L2(wd) if wd else None, name=name,
    )


def resnet32(
    width: int = 1,
    input_shape: Sequence[int] = (32, 32, 3),
    classes: int = 10,
    weight_decay: float = 1e-4,
) -> keras.Model:
    """CIFAR ResNet-32 (He et al. 2016): 3 stages x 5 basic blocks, 16/32/64 x ``width``.

    Downsampling shortcuts are 1x1 convolutions + BN (option B); ≈ 0.47 M params at
    width 1 with 10 classes (published ≈ 0.46 M with parameter-free option A).
    """
    width = _pos_int("width", width)
    shape = _shape("input_shape", input_shape, 3, "(32, 32, 3)")
    classes = _pos_int("classes", classes)
    inputs = keras.Input(shape=shape)
    x = _conv(16 * width, 3, wd=weight_decay)(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    for stage, f in enumerate((16 * width, 32 * width, 64 * width)):
        for block in range(5):
            stride = 2 if stage > 0 and block == 0 else 1
            y = _conv(f, 3, stride, weight_decay)(x)
            y = keras.layers.ReLU()(keras.layers.BatchNormalization()(y))
            y = keras.layers.BatchNormalization()(_conv(f, 3, 1, weight_decay)(y))
            if stride != 1 or x.shape[-1] != f:
                x = keras.layers.BatchNormalization()(_conv(f, 1, stride, weight_decay)(x))
            x = keras.layers.ReLU()(keras.layers.Add()([x, y]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes, kernel_regularizer=_L2(weight_decay))(x)
    return keras.Model(inputs, outputs, name=f"resnet32_w{width}")


def wide_resnet(
    depth: int = 28,
    width: int = 8,
    input_shape: Sequence[int] = (32, 32, 3),
    classes: int = 10,
    weight_decay: float = 5e-4,
) -> keras.Model:
    """Wide ResNet WRN-``depth``-``width`` (Zagoruyko & Komodakis 2016), pre-activation.

    ``(depth - 4) / 6`` blocks per stage, widths 16/32/64 x ``width``, 1x1 conv shortcut
    where the shape changes; no dropout. WRN-28-8 ≈ 23.4 M params, WRN-28-10 ≈ 36.5 M.
    """
    depth, width = _pos_int("depth", depth), _pos_int("width", width)
    if (depth - 4) % 6 or depth < 10:
        raise ValueError(f"depth={depth} is invalid; must be 6n + 4 with n >= 1 (e.g. 16, 28)")
    shape = _shape("input_shape", input_shape, 3, "(32, 32, 3)")
    classes = _pos_int("classes", classes)
    n = (depth - 4) // 6
    inputs = keras.Input(shape=shape)
    x = _conv(16, 3, wd=weight_decay)(inputs)
    for stage, f in enumerate((16 * width, 32 * width, 64 * width)):
        for block in range(n):
            stride = 2 if stage > 0 and block == 0 else 1
            o = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
            y = _conv(f, 3, stride, weight_decay)(o)
            y = keras.layers.ReLU()(keras.layers.BatchNormalization()(y))
            y = _conv(f, 3, 1, weight_decay)(y)
            shortcut = x if (stride == 1 and x.shape[-1] == f) else _conv(
                f, 1, stride, weight_decay
            )(o)
            x = keras.layers.Add()([shortcut, y])
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes, kernel_regularizer=_L2(weight_decay))(x)
    return keras.Model(inputs, outputs, name=f"wrn_{depth}_{width}")


def wrn_28_8(input_shape: Sequence[int] = (32, 32, 3), classes: int = 10) -> keras.Model:
    """WRN-28-8 (≈ 23.4 M params with 10 classes)."""
    return wide_resnet(28, 8, input_shape=input_shape, classes=classes)


def mobilenet_v1(
    alpha: float = 1.0,
    input_shape: Sequence[int] = (224, 224, 3),
    classes: int = 1000,
) -> keras.Model:
    """MobileNet-V1 (Howard et al. 2017) via ``keras.applications.MobileNet``, untrained,
    returning logits (no softmax), as ``training.train`` expects.

    ≈ 4.2 M params at ``alpha=1.0`` with 1000 classes; CIFAR-size input
    ``(32, 32, 3)`` is allowed (the smallest Keras accepts).
    """
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or alpha <= 0:
        raise ValueError(f"alpha={alpha!r} is invalid; must be a positive float (e.g. 1.0)")
    shape = _shape("input_shape", input_shape, 3, "(224, 224, 3) or (32, 32, 3)", min_size=32)
    return keras.applications.MobileNet(
        input_shape=shape, alpha=float(alpha), weights=None,
        classes=_pos_int("classes", classes), classifier_activation=None,
    )


def resnet50(input_shape: Sequence[int] = (224, 224, 3), classes: int = 1000) -> keras.Model:
    """ResNet-50 via ``keras.applications.ResNet50(weights=None)`` (≈ 25.6 M params),
    returning logits (no softmax)."""
    shape = _shape("input_shape", input_shape, 3, "(224, 224, 3)", min_size=32)
    return keras.applications.ResNet50(
        input_shape=shape, weights=None, classes=_pos_int("classes", classes),
        classifier_activation=None,
    )
