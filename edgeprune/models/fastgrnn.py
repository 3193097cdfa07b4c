"""FastGRNN (Kusupati et al. 2018) as a Keras 2 cell, a HAR classifier and its parameters.

Equations (EdgeML, row-vector convention), with shared ``W`` (or ``W1 @ W2``) and ``U``
(or ``U1 @ U2``)::

    pre = x_t W + h_{t-1} U
    z   = gate(pre + bias_gate)
    c   = update(pre + bias_update)
    h_t = z * h_{t-1} + (sigmoid(zeta) * (1 - z) + sigmoid(nu)) * c

Initialisation: weight factors N(0, 0.1^2), biases 1.0, zeta 1.0, nu -4.0, h_0 = 0.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from export.fastgrnn_params import FastGRNNParams

NONLINEARITIES = ("sigmoid", "tanh", "quantSigm", "quantTanh")
"""Names accepted for ``gate`` and ``update`` (EdgeML definitions)."""


def quant_tanh(x: tf.Tensor) -> tf.Tensor:
    """EdgeML ``quantTanh``: clip(x, -1, 1)."""
    return tf.clip_by_value(x, -1.0, 1.0)


def quant_sigm(x: tf.Tensor) -> tf.Tensor:
    """EdgeML ``quantSigm``: clip((x + 1) / 2, 0, 1)."""
    return tf.clip_by_value((x + 1.0) / 2.0, 0.0, 1.0)


_NONLIN = {
    "sigmoid": tf.sigmoid,
    "tanh": tf.tanh,
    "quantSigm": quant_sigm,
    "quantTanh": quant_tanh,
}


def _check_nonlinearity(name: str, value: Any) -> str:
    if not isinstance(value, str) or value not in _NONLIN:
        raise ValueError(f"{name}={value!r} is not a known nonlinearity; allowed: {NONLINEARITIES}")
    return value


def _check_positive_int(name: str, value: Any, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        allowed = "a positive int or None (full rank)" if allow_none else "a positive int"
        raise ValueError(f"{name}={value!r} is invalid; must be {allowed}")
    return int(value)


@keras.saving.register_keras_serializable(package="edgeprune")
class FastGRNNCell(keras.layers.Layer, tfmot.sparsity.keras.PrunableLayer):
    """One FastGRNN step for ``keras.layers.RNN``: state is ``[h]`` of size ``hidden``.

    ``w_rank``/``u_rank`` = None means full rank (``W``, ``U``); an int ``r`` factors the
    matrix as ``W1 (d, r) @ W2 (r, H)`` (likewise ``U1 @ U2``). A rank may not exceed the
    smaller dimension of the matrix it factors. ``seed`` seeds the weight initialisers.
    """

    def __init__(
        self,
        hidden: int,
        w_rank: int | None = None,
        u_rank: int | None = None,
        gate: str = "sigmoid",
        update: str = "tanh",
        seed: int | None = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden = _check_positive_int("hidden", hidden)
        self.w_rank = _check_positive_int("w_rank", w_rank, allow_none=True)
        self.u_rank = _check_positive_int("u_rank", u_rank, allow_none=True)
        if self.u_rank is not None and self.u_rank > self.hidden:
            raise ValueError(
                f"u_rank={u_rank} is larger than hidden={hidden}, the dimension it factors; "
                f"allowed: 1..{hidden} or None"
            )
        self.gate = _check_nonlinearity("gate", gate)
        self.update = _check_nonlinearity("update", update)
        self.seed = seed
        self.state_size = self.hidden
        self.output_size = self.hidden

    # -- weights ---------------------------------------------------------------------
    def _init(self, k: int) -> keras.initializers.Initializer:
        seed = None if self.seed is None else int(self.seed) * 16 + k
        return keras.initializers.RandomNormal(mean=0.0, stddev=0.1, seed=seed)

    def build(self, input_shape: Any) -> None:
        d = input_shape[-1]
        if d is None:
            raise ValueError("FastGRNNCell needs a known input feature dimension")
        d = int(d)
        h = self.hidden
        if self.w_rank is not None and self.w_rank > min(d, h):
            raise ValueError(
                f"w_rank={self.w_rank} is larger than min(input_dim={d}, hidden={h}), the "
                f"dimensions it factors; allowed: 1..{min(d, h)} or None"
            )
        if self.w_rank is None:
            self.W = self.add_weight(name="W", shape=(d, h), initializer=self._init(0))
        else:
            self.W1 = self.add_weight(
                name="W1", shape=(d, self.w_rank), initializer=self._init(1)
            )
            self.W2 = self.add_weight(
                name="W2", shape=(self.w_rank, h), initializer=self._init(2)
            )
        if self.u_rank is None:
            self.U = self.add_weight(name="U", shape=(h, h), initializer=self._init(3))
        else:
            self.U1 = self.add_weight(
                name="U1", shape=(h, self.u_rank), initializer=self._init(4)
            )
            self.U2 = self.add_weight(
                name="U2", shape=(self.u_rank, h), initializer=self._init(5)
            )
        ones = keras.initializers.Constant(1.0)
        self.bias_gate = self.add_weight(name="bias_gate", shape=(h,), initializer=ones)
        self.bias_update = self.add_weight(name="bias_update", shape=(h,), initializer=ones)
        self.zeta = self.add_weight(
            name="zeta", shape=(), initializer=keras.initializers.Constant(1.0)
        )
        self.nu = self.add_weight(
            name="nu", shape=(), initializer=keras.initializers.Constant(-4.0)
        )
        super().build(input_shape)

    def get_prunable_weights(self) -> list[tf.Variable]:
        """The W/U factors (``W1, W2, U1, U2`` or ``W, U``); never biases, zeta, nu."""
        out = [self.W] if self.w_rank is None else [self.W1, self.W2]
        out += [self.U] if self.u_rank is None else [self.U1, self.U2]
        return out

    # -- maths -----------------------------------------------------------------------
    def input_projection(self, x: tf.Tensor) -> tf.Tensor:
        """``x W`` (or ``(x W1) W2``) for any leading shape."""
        if self.w_rank is None:
            return tf.matmul(x, self.W) if x.shape.rank == 2 else tf.tensordot(x, self.W, 1)
        if x.shape.rank == 2:
            return tf.matmul(tf.matmul(x, self.W1), self.W2)
        return tf.tensordot(tf.tensordot(x, self.W1, 1), self.W2, 1)

    def step(self, wx: tf.Tensor, h: tf.Tensor) -> tf.Tensor:
        """One step given the input projection ``wx = x_t W`` and the state ``h``."""
        if self.u_rank is None:
            uh = tf.matmul(h, self.U)
        else:
            uh = tf.matmul(tf.matmul(h, self.U1), self.U2)
        pre = wx + uh
        z = _NONLIN[self.gate](pre + self.bias_gate)
        c = _NONLIN[self.update](pre + self.bias_update)
        return z * h + (tf.sigmoid(self.zeta) * (1.0 - z) + tf.sigmoid(self.nu)) * c

    def call(self, inputs: tf.Tensor, states: Sequence[tf.Tensor]) -> tuple[tf.Tensor, list]:
        h = states[0] if isinstance(states, list | tuple) else states
        h_new = self.step(self.input_projection(inputs), h)
        return h_new, [h_new]

    def get_initial_state(self, inputs=None, batch_size=None, dtype=None):  # noqa: D102
        if batch_size is None:
            batch_size = tf.shape(inputs)[0]
        return [tf.zeros((batch_size, self.hidden), dtype=dtype or self.compute_dtype)]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            hidden=self.hidden,
            w_rank=self.w_rank,
            u_rank=self.u_rank,
            gate=self.gate,
            update=self.update,
            seed=self.seed,
        )
        return config


def _check_input_shape(input_shape: Any) -> tuple[int | None, int]:
    ok = (
        isinstance(input_shape, Sequence)
        and len(input_shape) == 2
        and (input_shape[0] is None or _is_pos_int(input_shape[0]))
        and _is_pos_int(input_shape[1])
    )
    if not ok:
        raise ValueError(
            f"input_shape={input_shape!r} is invalid; must be (timesteps, features) with "
            "positive ints (timesteps may be None), e.g. (128, 9)"
        )
    return (None if input_shape[0] is None else int(input_shape[0]), int(input_shape[1]))


def _is_pos_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0


def fastgrnn_classifier(
    input_shape: Sequence[int | None] = (128, 9),
    classes: int = 2,
    hidden: int = 80,
    w_rank: int | None = 5,
    u_rank: int | None = 40,
    gate: str = "sigmoid",
    update: str = "tanh",
    seed: int = 0,
) -> keras.Model:
    """``Input(input_shape) -> RNN(FastGRNNCell) -> Dense(classes)`` returning logits.

    Layers are named ``fastgrnn`` (the RNN) and ``logits`` (the Dense). The model is not
    compiled. Raises ``ValueError`` for a bad shape, size, rank or nonlinearity.
    """
    shape = _check_input_shape(input_shape)
    classes = _check_positive_int("classes", classes)
    hidden = _check_positive_int("hidden", hidden)
    if w_rank is not None:
        _check_positive_int("w_rank", w_rank, allow_none=True)
        if w_rank > min(shape[1], hidden):
            raise ValueError(
                f"w_rank={w_rank} is larger than min(features={shape[1]}, hidden={hidden}), "
                f"the dimensions it factors; allowed: 1..{min(shape[1], hidden)} or None"
            )
    cell = FastGRNNCell(hidden, w_rank, u_rank, gate, update, seed=seed, name="fastgrnn_cell")
    inputs = keras.Input(shape=shape, name="window")
    h = keras.layers.RNN(cell, name="fastgrnn")(inputs)
    dense_seed = None if seed is None else int(seed) * 16 + 7
    logits = keras.layers.Dense(
        classes,
        name="logits",
        kernel_initializer=keras.initializers.GlorotUniform(seed=dense_seed),
    )(h)
    return keras.Model(inputs, logits, name="fastgrnn_classifier")


def fastgrnn_params(model: keras.Model) -> dict[str, Any]:
    """The FastGRNN classifier's parameters as the float32 numpy dict of docs/CONTRACTS.md
    (``FastGRNNParams.from_keras(model).to_dict()``; the validated type itself is
    ``edgeprune.models.FastGRNNParams``).

    Keys: ``W`` or ``W1``/``W2``; ``U`` or ``U1``/``U2``; ``bias_gate``, ``bias_update``,
    ``zeta``, ``nu`` (0-d, raw), ``dense_kernel`` (H, C), ``dense_bias`` (C,),
    ``gate_nonlinearity``, ``update_nonlinearity``. Works on pruned (wrapped or stripped)
    models: values are read from the variables as they are.
    """
    return FastGRNNParams.from_keras(model).to_dict()


def custom_objects() -> dict[str, Any]:
    """Objects needed to deserialise edgeprune models (also registered globally)."""
    return {"FastGRNNCell": FastGRNNCell, "edgeprune>FastGRNNCell": FastGRNNCell}


def load_model(path: str, **kwargs: Any) -> keras.Model:
    """``keras.models.load_model`` with edgeprune's custom objects (and tfmot's scope)."""
    with tfmot.sparsity.keras.prune_scope():
        return keras.models.load_model(
            path, custom_objects={**custom_objects(), **kwargs.pop("custom_objects", {})},
            **kwargs,
        )
