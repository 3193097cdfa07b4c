"""Quantisation-aware fine-tuning for the full-int8 TFLite export (FastGRNN step graph, HAR CNN).

Why: the int8 step model (workaround B) rounds 16 tensors per step to int8 grids, and the
state integrates slowly (``z`` near 1), so rounding errors pile up over 128 steps
(measured on UCI HAR-2 validation, (80, 5/40): 95-98% label agreement with float, see
export/tflite/README.md).  Here a Keras copy of the model runs exactly the int8 step graph
of :func:`export.tflite._fastgrnn.tf_step` with every tensor the converter quantises
fake-quantised (``tf.quantization.fake_quant_with_min_max_vars``, straight-through
gradients): per-output-channel symmetric int8 weights, per-tensor int8 activations on the
ranges the TFLite calibrator will find (``export.tflite.step_activation_ranges`` over the
``export.tflite.representative_subset`` windows; recomputed every epoch as the weights
move).

Contract: :func:`fastgrnn_int8_finetune` takes a trained (pruned) FastGRNN classifier and
returns a plain FastGRNN classifier (same layers and names, no fake-quant) with fine-tuned
weights; pruned zeros stay zero.  Export that with ``fastgrnn_to_tflite(params, "int8",
...)`` as usual.  Seeded and deterministic (``edgeprune.training.train``).
:func:`cnn_int8_finetune` does the same for the HAR CNN; :func:`fastgrnn_int8_reference`
/ :func:`cnn_int8_reference` are the fake-quantised Keras twins an int8 export is
compared with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from edgeprune import models, pruning, training
from edgeprune.models.fastgrnn import FastGRNNCell
from export import tflite as tfl


def _fake_quant_weights(w: Any) -> Any:
    """Symmetric int8 per-output-channel (last axis) fake quantisation, as the converter
    quantises kernels; straight-through gradient, the range itself not trained."""
    axes = list(range(len(w.shape) - 1))
    m = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(w), axis=axes), 1e-12))
    return tf.quantization.fake_quant_with_min_max_vars_per_channel(
        w, -m, m, num_bits=8, narrow_range=True
    )


def _qat_finetune(q: Any, recalibrate: Callable[[], None], train: Any, val: Any, *,
                  epochs: int, batch_size: int, lr: float,
                  augment: Callable[..., np.ndarray] | None, seed: int) -> Any:
    """Train the fake-quantised model ``q`` with its ranges recalibrated before every epoch
    and its zero weights held at zero; the ``edgeprune.training.train`` result."""
    masks = pruning.masks_from_weights(q)

    class Ranges(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            recalibrate()

    recalibrate()
    return training.train(
        q, train, val, epochs=epochs, batch_size=batch_size, lr=lr, schedule="cosine",
        seed=seed, augment=augment, progress=False,
        callbacks=[Ranges(), pruning.GlobalPruningCallback(None, masks=masks)],
    )


def _qat_classes() -> tuple[type, type]:
    fq_w = _fake_quant_weights

    class QATFastGRNNCell(FastGRNNCell):
        """FastGRNNCell whose step is the int8 TFLite step graph, fake-quantised."""

        def build(self, input_shape: Any) -> None:
            super().build(input_shape)
            self.ranges = {
                k: (
                    self.add_weight(name=f"{k}_min", shape=(), trainable=False,
                                    initializer="zeros"),
                    self.add_weight(name=f"{k}_max", shape=(), trainable=False,
                                    initializer="ones"),
                )
                for k in tfl.STEP_ACTIVATIONS
            }

        def fq(self, k: str, v: Any) -> Any:
            lo, hi = self.ranges[k]
            return tf.quantization.fake_quant_with_min_max_vars(v, lo, hi, num_bits=8)

        def call(self, inputs: Any, states: Sequence[Any]) -> tuple[Any, list]:
            h = states[0] if isinstance(states, list | tuple) else states
            q = self.fq
            x = q("x", inputs)
            if self.w_rank is None:
                xw = q("xw", tf.matmul(x, fq_w(self.W)))
            else:
                xw = q("xw", tf.matmul(q("xw1", tf.matmul(x, fq_w(self.W1))), fq_w(self.W2)))
            if self.u_rank is None:
                hu = q("hu", tf.matmul(h, fq_w(self.U)))
            else:
                hu = q("hu", tf.matmul(q("hu1", tf.matmul(h, fq_w(self.U1))), fq_w(self.U2)))
            pre = q("pre", xw + hu)
            g = q("g", pre + self.bias_gate)
            v = q("v", pre + self.bias_update)
            if self.gate == "quantSigm":
                z = tf.clip_by_value((g + 1.0) * 0.5, 0.0, 1.0)
            else:
                z = tf.sigmoid(g)
            # LOGISTIC / TANH outputs: fixed int8 grids 1/256 (zp -128) and 1/128 (zp 0)
            z = tf.quantization.fake_quant_with_min_max_args(z, 0.0, 255 / 256, num_bits=8)
            if self.update == "quantTanh":
                c = tf.clip_by_value(v, -1.0, 1.0)
            else:
                c = tf.tanh(v)
            c = tf.quantization.fake_quant_with_min_max_args(c, -1.0, 127 / 128, num_bits=8)
            sz, sn = tf.sigmoid(self.zeta), tf.sigmoid(self.nu)
            coef = q("coef", (sz + sn) - q("szz", sz * z))
            h_new = q("h", q("zh", z * h) + q("upd", coef * c))
            return h_new, [h_new]

    class QATDense(keras.layers.Dense):
        """Dense head on the int8 state: int8 per-channel weights, int8 logits."""

        def build(self, input_shape: Any) -> None:
            super().build(input_shape)
            self.lo = self.add_weight(name="logits_min", shape=(), trainable=False,
                                      initializer="zeros")
            self.hi = self.add_weight(name="logits_max", shape=(), trainable=False,
                                      initializer="ones")

        def call(self, inputs: Any) -> Any:
            out = tf.matmul(inputs, fq_w(self.kernel)) + self.bias
            return tf.quantization.fake_quant_with_min_max_vars(out, self.lo, self.hi, num_bits=8)

    return QATFastGRNNCell, QATDense


def _find(model: Any) -> tuple[Any, Any]:
    rnn = next(
        (layer for layer in model.layers
         if isinstance(layer, keras.layers.RNN) and isinstance(layer.cell, FastGRNNCell)),
        None,
    )
    dense = model.layers[-1]
    if rnn is None or not isinstance(dense, keras.layers.Dense):
        raise ValueError("expected a FastGRNN classifier: Input -> RNN(FastGRNNCell) -> Dense")
    return rnn, dense


def qat_model(model: Any) -> Any:
    """A Keras copy of a FastGRNN classifier (``fastgrnn_classifier`` layout) that computes
    the int8 step graph with fake quantisation; same weights, layer names and weight order
    (plus non-trainable range variables; set them with :func:`set_ranges`)."""
    rnn, dense = _find(model)
    cell_cls, dense_cls = _qat_classes()
    cfg = rnn.cell.get_config()
    inp = keras.Input(tuple(model.inputs[0].shape[1:]), name=model.inputs[0].name.split(":")[0])
    h = keras.layers.RNN(cell_cls(**cfg), name=rnn.name)(inp)
    out = dense_cls(dense.units, name=dense.name)(h)
    q = keras.Model(inp, out, name=f"{model.name}_int8qat")
    copy_weights(model, q)
    return q


def copy_weights(src: Any, dst: Any) -> None:
    """Copy the trainable FastGRNN and head weights between a plain and a QAT model."""
    (r1, d1), (r2, d2) = _find(src), _find(dst)
    for a, b in ((r1.cell, r2.cell), (d1, d2)):
        for wa in a.trainable_weights:
            name = wa.name.split("/")[-1]
            wb = [w for w in b.trainable_weights if w.name.split("/")[-1] == name]
            if len(wb) != 1:
                raise ValueError(f"cannot match weight {wa.name!r}")
            wb[0].assign(wa.numpy())


def set_ranges(q: Any, ranges: dict[str, tuple[float, float]]) -> None:
    """Load ``export.tflite.step_activation_ranges`` into a :func:`qat_model`."""
    rnn, dense = _find(q)
    for k, (lo_v, hi_v) in rnn.cell.ranges.items():
        lo_v.assign(ranges[k][0])
        hi_v.assign(ranges[k][1])
    dense.lo.assign(ranges["logits"][0])
    dense.hi.assign(ranges["logits"][1])


def fastgrnn_int8_reference(
    model: Any, representative: np.ndarray, *, max_windows: int = 200, seed: int = 0
) -> Any:
    """The fake-quantised Keras twin of a FastGRNN classifier (:func:`qat_model`, ranges
    from the same seeded ``representative`` subset ``fastgrnn_to_tflite`` calibrates on):
    the Keras model a full-int8 export of ``model`` is compared with (standard QAT)."""
    rep = tfl.representative_subset(model, representative, max_windows, seed)
    q = qat_model(model)
    set_ranges(q, tfl.step_activation_ranges(models.FastGRNNParams.from_keras(model), rep))
    return q


def fastgrnn_int8_finetune(
    model: Any,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    representative: np.ndarray,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 128,
    max_windows: int = 200,
    augment: Callable[..., np.ndarray] | None = None,
    seed: int = 0,
) -> tuple[Any, Any]:
    """Fine-tune ``model`` (trained FastGRNN classifier, maybe pruned) for the full-int8
    TFLite step export; returns ``(plain_model, train_result)``.

    ``train``/``val``: ``(normalised windows, labels)``; ``representative``: the normalised
    training windows the export will calibrate on (at most ``max_windows``, the same
    seeded subset ``fastgrnn_to_tflite`` draws with ``seed``).  Ranges are recomputed from
    the float model on them before every epoch.  Zero weights stay zero (the pruning mask
    is held).  The epoch is selected on validation accuracy of the fake-quantised model.
    ``model`` itself is not changed.
    """
    rep = tfl.representative_subset(model, representative, max_windows, seed)
    q = qat_model(model)
    params = models.FastGRNNParams.from_keras
    result = _qat_finetune(
        q, lambda: set_ranges(q, tfl.step_activation_ranges(params(q), rep)),
        train, val, epochs=epochs, batch_size=batch_size, lr=lr, augment=augment, seed=seed)
    plain = keras.models.clone_model(model)
    plain.set_weights(model.get_weights())
    copy_weights(q, plain)
    return plain, result


# ------------------------------------------------------------------ feed-forward CNNs

#: Layers :func:`cnn_int8_finetune` can mirror (the HAR CNN's; Dropout is the identity).
CNN_QAT_LAYERS = frozenset(
    {"InputLayer", "Conv1D", "MaxPooling1D", "GlobalAveragePooling1D", "Dense", "Dropout"}
)


def _cnn_qat_classes() -> dict[str, type]:
    fq_w = _fake_quant_weights

    class _Ranged:
        """Mixin: int8 fake quantisation of the layer's output (and, with
        ``quantize_input``, its input) on ranges held in non-trainable variables;
        ``q_on`` = 0 turns it off (calibration passes)."""

        def __init__(self, *a: Any, quantize_input: bool = False, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.quantize_input = quantize_input

        def build(self, input_shape: Any) -> None:
            super().build(input_shape)

            def var(name: str, init: str) -> Any:
                return self.add_weight(name=name, shape=(), trainable=False, initializer=init)

            self.q_on = var("q_on", "ones")
            self.out_lo, self.out_hi = var("out_min", "zeros"), var("out_max", "ones")
            self.in_lo = self.in_hi = None
            if self.quantize_input:
                self.in_lo, self.in_hi = var("in_min", "zeros"), var("in_max", "ones")

        def _fq(self, v: Any, lo: Any, hi: Any) -> Any:
            q = tf.quantization.fake_quant_with_min_max_vars(v, lo, hi, num_bits=8)
            return self.q_on * q + (1.0 - self.q_on) * v

    class QATConv1D(_Ranged, keras.layers.Conv1D):
        def convolution_op(self, inputs: Any, kernel: Any) -> Any:
            k = self.q_on * fq_w(kernel) + (1.0 - self.q_on) * kernel
            return super().convolution_op(inputs, k)

        def call(self, inputs: Any) -> Any:
            if self.in_lo is not None:
                inputs = self._fq(inputs, self.in_lo, self.in_hi)
            return self._fq(super().call(inputs), self.out_lo, self.out_hi)

    class QATDense(_Ranged, keras.layers.Dense):
        def call(self, inputs: Any) -> Any:
            if self.in_lo is not None:
                inputs = self._fq(inputs, self.in_lo, self.in_hi)
            k = self.q_on * fq_w(self.kernel) + (1.0 - self.q_on) * self.kernel
            out = tf.matmul(inputs, k) + self.bias
            if self.activation is not None:
                out = self.activation(out)
            return self._fq(out, self.out_lo, self.out_hi)

    class QATGlobalAveragePooling1D(_Ranged, keras.layers.GlobalAveragePooling1D):
        def call(self, inputs: Any, mask: Any = None) -> Any:
            return self._fq(super().call(inputs), self.out_lo, self.out_hi)

    return {
        "Conv1D": QATConv1D,
        "Dense": QATDense,
        "GlobalAveragePooling1D": QATGlobalAveragePooling1D,
    }


def cnn_qat_model(model: Any) -> Any:
    """A copy of a sequential 1-D CNN (``har_cnn`` layout: :data:`CNN_QAT_LAYERS`) whose
    Conv1D / Dense / GAP layers fake-quantise as the full-int8 TFLite model does
    (per-channel int8 weights, per-tensor int8 outputs, int8 input); same weights and
    layer names.  Ranges: :func:`calibrate_cnn`."""
    classes = _cnn_qat_classes()
    for layer in model.layers:
        if type(layer).__name__ not in CNN_QAT_LAYERS:
            raise ValueError(
                f"cnn_qat_model: unsupported layer {layer.name!r} of type "
                f"{type(layer).__name__}; supported: {sorted(CNN_QAT_LAYERS)}"
            )
    first = [True]

    def clone(layer: Any) -> Any:
        cls = classes.get(type(layer).__name__)
        if cls is None:
            return layer.__class__.from_config(layer.get_config())
        cfg = layer.get_config()
        if cls.__name__ != "QATGlobalAveragePooling1D":
            cfg["quantize_input"], first[0] = first[0], False
        return cls.from_config(cfg)

    q = keras.models.clone_model(model, clone_function=clone)
    q.set_weights(_with_ranges(q, model.get_weights()))
    return q


def _with_ranges(q: Any, plain_weights: list[np.ndarray]) -> list[np.ndarray]:
    """``q``'s weight list with the plain model's trainable values in order."""
    it = iter(plain_weights)
    return [
        next(it) if not _is_range_var(w) else w.numpy() for w in q.weights
    ]


def _is_range_var(w: Any) -> bool:
    return w.name.split("/")[-1].split(":")[0] in ("q_on", "out_min", "out_max", "in_min",
                                                    "in_max")


def calibrate_cnn(q: Any, windows: np.ndarray, batch_size: int = 256) -> None:
    """Set ``q``'s ranges to the float min/max of every quantised tensor on ``windows``
    (what the TFLite calibrator records; zero always included)."""
    ranged = [layer for layer in q.layers if hasattr(layer, "q_on")]
    for layer in ranged:
        layer.q_on.assign(0.0)
    probe = keras.Model(q.inputs, [layer.output for layer in ranged])
    outs = probe.predict(windows, batch_size=batch_size, verbose=0)
    outs = outs if isinstance(outs, list) else [outs]
    for layer, out in zip(ranged, outs, strict=True):
        lo, hi = tfl.calibration_range(out.min(), out.max())
        layer.out_lo.assign(lo)
        layer.out_hi.assign(hi)
        if layer.in_lo is not None:
            lo, hi = tfl.calibration_range(windows.min(), windows.max())
            layer.in_lo.assign(lo)
            layer.in_hi.assign(hi)
        layer.q_on.assign(1.0)


def cnn_int8_reference(
    model: Any, representative: np.ndarray, *, max_samples: int = 500, seed: int = 0
) -> Any:
    """The fake-quantised Keras twin of a HAR CNN (:func:`cnn_qat_model`, calibrated on the
    seeded ``representative`` subset ``keras_to_tflite`` uses): the Keras model a full-int8
    export of ``model`` is compared with (standard QAT)."""
    q = cnn_qat_model(model)
    calibrate_cnn(q, tfl.representative_subset(model, representative, max_samples, seed))
    return q


def cnn_int8_finetune(
    model: Any,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    representative: np.ndarray,
    *,
    epochs: int = 5,
    lr: float = 3e-4,
    batch_size: int = 64,
    max_samples: int = 500,
    augment: Callable[..., np.ndarray] | None = None,
    seed: int = 0,
) -> tuple[Any, Any]:
    """Fine-tune a HAR CNN (maybe pruned) for the full-int8 TFLite export, as
    :func:`fastgrnn_int8_finetune` does for FastGRNN; returns ``(plain_model, result)``.

    ``representative``: the normalised training windows ``keras_to_tflite`` will calibrate
    on (at most ``max_samples``, the same seeded subset).  Ranges are recomputed before
    every epoch; zero weights stay zero; the epoch is selected on validation accuracy of
    the fake-quantised model.  ``model`` itself is not changed.
    """
    rep = tfl.representative_subset(model, representative, max_samples, seed)
    q = cnn_qat_model(model)
    result = _qat_finetune(q, lambda: calibrate_cnn(q, rep), train, val, epochs=epochs,
                           batch_size=batch_size, lr=lr, augment=augment, seed=seed)
    plain = keras.models.clone_model(model)
    plain.set_weights([w.numpy() for w in q.weights if not _is_range_var(w)])
    return plain, result
