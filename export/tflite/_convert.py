"""Keras / FastGRNN -> TFLite flatbuffers: float, full-integer int8, and sparse-encoded.

Contracts
- Every converter returns ``bytes`` (a .tflite flatbuffer) or, for the FastGRNN step export
  (workaround B), a :class:`FastGRNNTFLite` bundle of two flatbuffers.  Same inputs give
  byte-identical output (the TFLite converter and calibrator are deterministic; checked in
  the tests).
- ``representative`` is an array of *normalised* windows ``(N, T, d)`` drawn from the
  training split; a wrong shape, a non-finite value or an empty set is a one-line
  ValueError.  int8 needs it; float ignores it.
- int8 is full-integer: int8 weights and activations, int8 inputs and outputs
  (``inference_input_type = inference_output_type = tf.int8``), builtin int8 ops only.
- int16x8 is TFLite's 16x8 mode: int8 weights, int16 activations and int16 in/out (ops
  ``EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8``); TFLM runs it.  Use it
  for FastGRNN: its recurrent state in int8 loses accuracy over 128 steps (measured on
  UCI HAR-2, 90%-pruned (80, 5/40): int8 agrees with float on 80% of test windows, int16x8
  on 99.8%; see export/tflite/README.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from export.fastgrnn_params import FastGRNNParams
from export.tflite import _fastgrnn as fg
from har_data.atomic import atomic_write

QUANTIZATIONS = ("float", "int8", "int16x8")

#: Keras layer classes the CNN export accepts (all convert to TFLM-supported builtins).
SUPPORTED_LAYERS = frozenset(
    {
        "InputLayer",
        "Conv1D",
        "Conv2D",
        "DepthwiseConv2D",
        "SeparableConv1D",
        "SeparableConv2D",
        "MaxPooling1D",
        "MaxPooling2D",
        "AveragePooling1D",
        "AveragePooling2D",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "Dense",
        "Flatten",
        "Reshape",
        "Dropout",
        "SpatialDropout1D",
        "BatchNormalization",
        "Activation",
        "ReLU",
        "Softmax",
        "Add",
        "Concatenate",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "Permute",
        "GaussianNoise",
    }
)


@dataclass(frozen=True)
class FastGRNNTFLite:
    """FastGRNN as two TFLite models run with the time loop outside (workaround B).

    ``step``: inputs ``x`` ``(1, input_dim)`` and ``h`` ``(1, hidden)`` (batch dimension
    resizable), output ``h_next`` ``(1, hidden)``.  TFLite orders the inputs by name
    (``[h, x]``): resolve them by tensor name (``serving_default_x:0`` /
    ``serving_default_h:0``), never by position.  ``head``: ``h_T -> logits``.
    For int8, inputs/outputs are int8 and ``h_next``'s quantisation may differ from
    ``h``'s: requantise between steps (``predict_tflite`` and the C header do).
    ``h_0`` is the float zero vector (quantised: the ``h`` zero point).
    """

    step: bytes
    head: bytes
    seq_len: int
    input_dim: int
    hidden: int
    num_classes: int
    quantization: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def size_bytes(self) -> int:
        """Flash of both flatbuffers together."""
        return len(self.step) + len(self.head)

    @classmethod
    def load(cls, meta_path: str | os.PathLike[str]) -> FastGRNNTFLite:
        """Read a bundle written by :meth:`save` from its ``<name>.json``."""
        meta = json.loads(open(meta_path, encoding="utf-8").read())
        base = os.fspath(meta_path)[: -len(".json")]
        with open(f"{base}_step.tflite", "rb") as f:
            step = f.read()
        with open(f"{base}_head.tflite", "rb") as f:
            head = f.read()
        keys = ("seq_len", "input_dim", "hidden", "num_classes", "quantization")
        return cls(step=step, head=head, **{k: meta.pop(k) for k in keys}, meta=meta)

    def save(self, out_dir: str | os.PathLike[str], name: str = "fastgrnn") -> dict[str, str]:
        """Write ``<name>_step.tflite``, ``<name>_head.tflite`` and ``<name>.json`` atomically."""
        paths = {
            "step": os.path.join(out_dir, f"{name}_step.tflite"),
            "head": os.path.join(out_dir, f"{name}_head.tflite"),
            "meta": os.path.join(out_dir, f"{name}.json"),
        }
        meta = {
            "seq_len": self.seq_len,
            "input_dim": self.input_dim,
            "hidden": self.hidden,
            "num_classes": self.num_classes,
            "quantization": self.quantization,
            **dict(self.meta),
        }
        try:
            atomic_write(paths["step"], self.step)
            atomic_write(paths["head"], self.head)
            atomic_write(paths["meta"],
                         (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
        except OSError as exc:
            raise OSError(f"cannot write {exc.filename}: {exc.strerror or exc}") from None
        return paths


# ------------------------------------------------------------------ validation


def check_windows(
    windows: Any, shape: tuple[int | None, ...], what: str = "representative set"
) -> np.ndarray:
    """Return ``windows`` as float32 ``(N, *shape)``; one-line ValueError if it is not that.

    ``None`` entries of ``shape`` match any length.
    """
    if windows is None:
        raise ValueError(f"{what} is required for int8 (an array of normalised windows)")
    try:
        arr = np.asarray(windows, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not a numeric array: {exc}") from None
    want = "(N, " + ", ".join("?" if s is None else str(s) for s in shape) + ")"
    if arr.ndim != len(shape) + 1 or any(
        s is not None and a != s for a, s in zip(arr.shape[1:], shape, strict=True)
    ):
        raise ValueError(f"{what} has shape {arr.shape}, expected {want}")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} is empty, expected {want} with N >= 1")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} holds NaN or Inf")
    return arr


def check_keras_model(model: Any) -> None:
    """Raise ValueError (one line) unless ``model`` is a built Keras model of supported layers
    with finite weights."""
    import tf_keras as keras

    if not isinstance(model, keras.Model):
        raise ValueError(f"expected a tf_keras Model, got {type(model).__name__}")
    if not model.built or not model.inputs and not getattr(model, "_build_input_shape", None):
        raise ValueError(
            f"model {model.name!r} is not built: call it on data or build(input_shape) first"
        )
    if len(model.inputs or [None]) != 1 or len(model.outputs or [None]) != 1:
        raise ValueError(f"model {model.name!r} must have exactly one input and one output")
    for layer in _walk_layers(model):
        cls = type(layer).__name__
        if cls not in SUPPORTED_LAYERS:
            hint = ""
            if isinstance(layer, keras.layers.RNN) or "RNN" in cls:
                hint = " (for FastGRNN use fastgrnn_to_tflite(params))"
            elif cls == "PruneLowMagnitude":
                hint = " (call tfmot.sparsity.keras.strip_pruning(model) first)"
            raise ValueError(f"unsupported layer {layer.name!r} of type {cls}{hint}")
    for w in model.weights:
        if not np.all(np.isfinite(w.numpy())):
            raise ValueError(f"model weight {w.name!r} holds NaN or Inf")


def _walk_layers(model: Any) -> Iterator[Any]:
    import tf_keras as keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _walk_layers(layer)
        else:
            yield layer


def _input_shape(model: Any) -> tuple[int | None, ...]:
    shape = model.inputs[0].shape if model.inputs else model._build_input_shape
    return tuple(None if s is None else int(s) for s in list(shape)[1:])


# ------------------------------------------------------------------ conversion core


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the converter's chatter: Python warnings and prints, and the calibrator's C++
    lines on file descriptors 1 and 2 (restored afterwards, also on error; errors still
    surface as exceptions)."""
    import sys
    import warnings

    sys.stdout.flush()
    sys.stderr.flush()
    saved: dict[int, int] = {}
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            saved[fd] = os.dup(fd)
            os.dup2(devnull, fd)
        os.close(devnull)
    except OSError:  # no usable fds: leave them alone
        pass
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for fd, old in saved.items():
            os.dup2(old, fd)
            os.close(old)


def tflm_per_tensor(quantization: str) -> bool:
    """Whether a TFLite Micro export of ``quantization`` needs per-tensor weight scales.

    CMSIS-NN's int16 FULLY_CONNECTED accepts per-channel weights only with int8 input
    (TFLM 90b983c, ``kernels/cmsis_nn/fully_connected.cc``): an int16x8 model with
    per-channel weights fails to prepare there, so int16x8 goes per tensor for TFLM (it
    runs on both kernel sets); int8 keeps per-channel scales.
    """
    return quantization == "int16x8"


def _convert(
    keras_model: Any,
    quantization: str,
    rep: Any | None,
    sparse: bool,
    per_tensor: bool = False,
) -> bytes:
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    conv = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    opts: list[Any] = []
    if quantization in ("int8", "int16x8"):
        opts.append(tf.lite.Optimize.DEFAULT)
        conv.representative_dataset = rep
        if quantization == "int8":
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = conv.inference_output_type = tf.int8
        else:
            conv.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
            conv.inference_input_type = conv.inference_output_type = tf.int16
        if per_tensor:
            conv._experimental_disable_per_channel = True
    if sparse:
        opts.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    conv.optimizations = opts
    with _quiet():
        try:
            return bytes(conv.convert())
        except Exception as exc:  # converter errors are long; keep one line
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"TFLite conversion failed: {msg}") from exc


def _probe_outputs(model: bytes, seed: int = 0, batch: int = 8) -> list[np.ndarray]:
    """Outputs of ``model`` (litert, builtin kernels) on seeded random inputs."""
    from export.tflite._predict import allocate, make_interpreter

    rng = np.random.default_rng(seed)
    it = make_interpreter(model)
    ind = it.get_input_details()
    fixed = any(int(d["shape_signature"][0]) != -1 for d in ind)
    n = 1 if fixed else batch
    for d in ind:
        it.resize_tensor_input(d["index"], [n, *[int(v) for v in d["shape"][1:]]])
    allocate(it)
    for d in sorted(ind, key=lambda d: d["name"]):
        shape = [n, *[int(v) for v in d["shape"][1:]]]
        if np.issubdtype(d["dtype"], np.integer):
            info = np.iinfo(d["dtype"])
            lo, hi = max(info.min, -128), min(info.max, 127)
            if d["dtype"] == np.int16:
                lo, hi = -8192, 8191
            val = rng.integers(lo, hi + 1, size=shape).astype(d["dtype"])
        else:
            val = rng.normal(size=shape).astype(np.float32)
        it.set_tensor(d["index"], val)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def verify_sparse(sparse_model: bytes, dense_model: bytes) -> float:
    """Max |difference| between a sparse-encoded model and its dense twin on random inputs
    (int LSBs for integer outputs).  ValueError (one line) if an integer model differs by
    more than 1 LSB or a float one by more than 1e-4 relative: ai-edge-litert's sparse
    integer FULLY_CONNECTED kernels return wrong values for some layouts (measured: the
    FastGRNN step, ranks 5/40)."""
    worst = 0.0
    for a, b in zip(_probe_outputs(sparse_model), _probe_outputs(dense_model), strict=True):
        diff = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())
        if np.issubdtype(a.dtype, np.integer):
            bad = diff > 1.0
        else:
            bad = diff > 1e-4 * max(1.0, float(np.abs(b).max()))
        if bad:
            raise ValueError(
                f"sparse-encoded model disagrees with the dense one in ai-edge-litert (max "
                f"diff {diff:g}{' LSB' if np.issubdtype(a.dtype, np.integer) else ''}); "
                "its sparse integer kernels mishandle this model: use the dense integer model "
                "or float sparse"
            )
        worst = max(worst, diff)
    return worst


VERIFY_MODES = ("warn", "raise", "off")


def _convert_checked(
    keras_model: Any,
    quantization: str,
    rep: Any,
    sparse: bool,
    per_tensor: bool,
    verify: str | bool,
) -> bytes:
    mode = {True: "raise", False: "off"}.get(verify, verify)  # type: ignore[call-overload]
    if mode not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
    out = _convert(keras_model, quantization, rep, sparse, per_tensor)
    if sparse and mode != "off":
        try:
            verify_sparse(out, _convert(keras_model, quantization, rep, False, per_tensor))
        except ValueError as exc:
            if mode == "raise":
                raise
            import warnings

            warnings.warn(f"{keras_model.name}: {exc}", RuntimeWarning, stacklevel=3)
    return out


def _subsample(arr: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most ``n`` rows of ``arr``: all if it has no more, else a seeded random subset
    (kept in order), so a whole training split can be passed."""
    if len(arr) <= n:
        return arr
    idx = np.sort(np.random.default_rng(seed).choice(len(arr), size=n, replace=False))
    return arr[idx]


def representative_subset(
    model: Any, representative: Any, max_windows: int, seed: int = 0
) -> np.ndarray:
    """The windows an integer conversion of the Keras ``model`` calibrates on:
    ``representative`` checked against the model's input shape (:func:`check_windows`),
    at most ``max_windows`` of them (the seeded subset the converters draw with ``seed``)."""
    return _subsample(check_windows(representative, _input_shape(model)), max_windows, seed)


def _batches(arr: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(arr), size):
        yield arr[i : i + size]


def keras_to_tflite(
    model: Any,
    quantization: str = "int8",
    representative: Any | None = None,
    *,
    sparse: bool = False,
    max_samples: int = 500,
    per_tensor: bool = False,
    verify: str | bool = "warn",
    seed: int = 0,
) -> bytes:
    """Convert a built feed-forward Keras model (e.g. a HAR CNN) to a .tflite flatbuffer.

    ``quantization``: ``"float"``, ``"int8"`` (full integer, int8 in/out) or ``"int16x8"``
    (int8 weights, int16 activations and in/out); the integer modes need
    ``representative`` (normalised training windows of the model's input shape; at most
    ``max_samples`` of them, a random subset drawn with ``seed``, are used).
    ``sparse=True`` adds ``Optimize.EXPERIMENTAL_SPARSITY`` (sparse-encoded weights: run
    it with default delegates off; TFLM cannot run it); the result is checked against the
    dense conversion (:func:`verify_sparse`); on a mismatch ``verify="warn"`` (default)
    warns (RuntimeWarning) and returns the bytes, ``"raise"`` (or True) raises ValueError,
    ``"off"`` (or False) skips the check.
    ``per_tensor`` turns per-channel weight scales off.  Raises ValueError for an unbuilt
    model, an unsupported layer (named), NaN weights or a wrong representative set.
    """
    check_keras_model(model)
    rep = None
    if quantization != "float":
        arr = representative_subset(model, representative, max_samples, seed)

        def rep() -> Iterator[list[np.ndarray]]:
            for b in _batches(arr, 16):
                yield [b]

    return _convert_checked(model, quantization, rep, sparse, per_tensor, verify)


# ------------------------------------------------------------------ FastGRNN


def _step_keras(p: FastGRNNParams) -> Any:
    import tf_keras as keras

    xi = keras.Input((p.input_dim,), name="x")
    hi = keras.Input((p.hidden,), name="h")
    out = keras.layers.Lambda(lambda t: fg.tf_step(p, t[0], t[1]), name="h_next")([xi, hi])
    return keras.Model([xi, hi], out, name="fastgrnn_step")


def _head_keras(p: FastGRNNParams) -> Any:
    import tf_keras as keras

    hi = keras.Input((p.hidden,), name="h")
    out = keras.layers.Lambda(lambda t: fg.tf_head(p, t), name="logits")(hi)
    return keras.Model(hi, out, name="fastgrnn_head")


def _while_keras(p: FastGRNNParams, seq_len: int) -> Any:
    """Workaround A: the whole window in one ``tf.while_loop`` that rotates the sequence
    each step (so no loop input passes through unchanged, which crashes the calibrator)."""
    import tensorflow as tf
    import tf_keras as keras

    def run(x: Any) -> Any:
        h0 = tf.zeros([tf.shape(x)[0], p.hidden], dtype=tf.float32)

        def body(i: Any, seq: Any, h: Any) -> tuple[Any, Any, Any]:
            h = fg.tf_step(p, seq[:, 0, :], h)
            seq = tf.concat([seq[:, 1:, :], seq[:, :1, :]], axis=1)
            return i + 1, seq, h

        _, _, h = tf.while_loop(lambda i, s, h: i < seq_len, body, [tf.constant(0), x, h0])
        return fg.tf_head(p, h)

    xi = keras.Input((seq_len, p.input_dim), batch_size=1, name="x")
    out = keras.layers.Lambda(run, name="logits")(xi)
    return keras.Model(xi, out, name="fastgrnn_while")


def step_calibration_pairs(
    params: FastGRNNParams | Mapping[str, Any], windows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The real per-step pairs the float model visits: ``x (N, T, d)``, ``h (N, T, H)``
    (state entering each step) and the final states ``(N, H)``, all float32."""
    run = FastGRNNParams.of(params).forward(windows, states=True)
    return (np.asarray(windows, np.float32), run.states.astype(np.float32),
            run.state.astype(np.float32))


def _set_tensor_quant(model: bytes, pick: str, scale: float, zero_point: int) -> bytes:
    """``model`` with the quantisation of one tensor replaced: ``pick`` is ``"input:<key>"``
    (the input named ``<key>``, resolved as :func:`_predict.io_index`) or ``"output"``
    (the single output).  Kernels derive their multipliers from tensor scales when they
    prepare (TFLite and TFLM), so this is a valid model; bytes stay deterministic."""
    from tensorflow.lite.tools import flatbuffer_utils as fu

    from export.tflite._predict import io_index

    m = fu.convert_bytearray_to_object(bytearray(model))
    g = m.subgraphs[0]
    if pick == "output":
        idx = g.outputs[0]
    else:
        key = pick.split(":", 1)[1]
        names = [{"name": g.tensors[i].name.decode()} for i in g.inputs]
        idx = g.inputs[io_index(names, key)]
    q = g.tensors[idx].quantization
    q.scale, q.zeroPoint = [float(scale)], [int(zero_point)]
    return bytes(fu.convert_object_to_bytearray(m))


def _quant_of(model: bytes, pick: str) -> tuple[float, int]:
    from export.tflite._predict import io_index, make_interpreter, quant_params

    it = make_interpreter(model)
    if pick == "output":
        return quant_params(it.get_output_details()[0])
    ind = it.get_input_details()
    return quant_params(ind[io_index(ind, pick.split(":", 1)[1])])


def _unify_state(step: bytes, head: bytes) -> tuple[bytes, bytes]:
    """Give ``h`` (step input) and the head's input ``h_next``'s calibrated quantisation,
    so the state is not requantised from ``h_next``'s grid to ``h``'s between steps (an
    extra rounding each step; measured on UCI HAR-2 val, int8 (80, 5/40): agreement with
    float 95.4% -> 97.8% dense, 96.5% -> 98.0% at 50% sparsity)."""
    scale, zp = _quant_of(step, "output")
    step = _set_tensor_quant(step, "input:h", scale, zp)
    head = _set_tensor_quant(head, "input:h", scale, zp)
    return step, head


def fastgrnn_to_tflite(
    params: FastGRNNParams | Mapping[str, Any],
    quantization: str = "int8",
    representative: Any | None = None,
    *,
    seq_len: int = 128,
    method: str = "step",
    sparse: bool = False,
    max_windows: int = 200,
    per_tensor: bool = False,
    verify: str | bool = "warn",
    seed: int = 0,
) -> FastGRNNTFLite | bytes:
    """Convert a FastGRNN (:class:`FastGRNNParams` or the CONTRACTS.md dict) to TFLite.

    ``method="step"`` (workaround B, the default): returns a :class:`FastGRNNTFLite` with a
    one-step model ``(x_t, h) -> h'`` and the head ``h_T -> logits``; for int8 both are
    calibrated on the real ``(x_t, h_t)`` pairs / final states the float model visits on
    at most ``max_windows`` of ``representative`` (normalised training windows
    ``(N, seq_len, d)``).  ``quantization``: ``"float"``, ``"int8"`` or ``"int16x8"``
    (recommended for FastGRNN: int8 weights, int16 state).  ``method="while"``
    (workaround A): one flatbuffer holding a ``tf.while_loop`` over a rotating sequence,
    input ``(1, seq_len, d)`` -> logits.
    ``sparse`` adds ``EXPERIMENTAL_SPARSITY``, checked against the dense conversion as in
    :func:`keras_to_tflite` (``verify``): litert's sparse int8/int16x8 kernels compute this
    step wrongly, so integer sparse FastGRNN files are good for size tables only.
    At most ``max_windows`` representative windows (a random subset drawn with ``seed``)
    are used.  For the integer step bundle ``h``, ``h_next`` and the head's input share
    ``h_next``'s calibrated quantisation: no requantisation between steps.  ValueError for bad
    params (NaN included) or a bad representative set.
    """
    p = FastGRNNParams.of(params)
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if method not in ("step", "while"):
        raise ValueError(f"method must be 'step' or 'while', got {method!r}")
    if int(seq_len) < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    seq_len = int(seq_len)
    arr = None
    if quantization != "float":
        arr = _subsample(check_windows(representative, (seq_len, p.input_dim)), max_windows, seed)
    if method == "while":
        rep = None
        if arr is not None:
            data = arr

            def rep() -> Iterator[list[np.ndarray]]:
                for w in data:
                    yield [w[None]]

        return _convert_checked(
            _while_keras(p, seq_len), quantization, rep, sparse, per_tensor, verify
        )

    rep_step = rep_head = None
    if arr is not None:
        xs, hs, h_last = step_calibration_pairs(p, arr)

        def rep_step() -> Iterator[dict[str, np.ndarray]]:
            for i in range(len(xs)):  # one window's seq_len steps as one batch
                yield {"x": xs[i], "h": hs[i]}

        def rep_head() -> Iterator[dict[str, np.ndarray]]:
            for b in _batches(h_last, 16):
                yield {"h": b}

    step = _convert_checked(_step_keras(p), quantization, rep_step, sparse, per_tensor, verify)
    head = _convert_checked(_head_keras(p), quantization, rep_head, sparse, per_tensor, verify)
    if quantization != "float":
        step, head = _unify_state(step, head)
    return FastGRNNTFLite(
        step=step,
        head=head,
        seq_len=seq_len,
        input_dim=p.input_dim,
        hidden=p.hidden,
        num_classes=p.classes,
        quantization=quantization,
        meta={"method": "step", "sparse": bool(sparse)},
    )
