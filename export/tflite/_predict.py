"""Run exported models with ai-edge-litert: whole windows, the step loop in Python for B.

Contract: ``predict_tflite(model, windows)`` takes a .tflite ``bytes`` (or a path) or a
:class:`FastGRNNTFLite` bundle and normalised windows ``(N, T, d)``; it returns float32
logits ``(N, C)`` (int8 outputs dequantised), or int64 classes with ``classes=True``.
Default delegates (XNNPACK) are off by default: builtin kernels only, which sparse-encoded
models need and which makes results reproducible.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from export.tflite._convert import FastGRNNTFLite, check_windows


def make_interpreter(
    model: bytes, default_delegates: bool = False, reference_kernels: bool = False
) -> Any:
    """An ai-edge-litert Interpreter on ``model``: builtin (optimised) kernels without default
    delegates; ``reference_kernels`` picks TFLite's reference kernels (closest to TFLM),
    ``default_delegates`` the default XNNPACK delegate."""
    from ai_edge_litert import interpreter as litert

    if reference_kernels:
        kind = litert.OpResolverType.BUILTIN_REF
    elif default_delegates:
        kind = litert.OpResolverType.AUTO
    else:
        kind = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        return litert.Interpreter(model_content=bytes(model), experimental_op_resolver_type=kind)
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"not a loadable TFLite model: {str(exc).splitlines()[0]}") from None


def allocate(it: Any) -> None:
    """``it.allocate_tensors()`` with litert's RuntimeError turned into a one-line ValueError
    (e.g. a kernel that cannot prepare a node of this model)."""
    try:
        it.allocate_tensors()
    except RuntimeError as exc:
        lines = [t for t in str(exc).splitlines() if t.strip()] or [type(exc).__name__]
        raise ValueError(f"ai-edge-litert cannot run this model: {lines[-1]}") from None


def io_index(details: Sequence[Mapping[str, Any]], key: str) -> int:
    """Position of the tensor called ``key`` (``serving_default_<key>:0``, ``<key>`` or
    ``.../<key>``) in ``details``; ValueError if none or several match."""
    hits = [
        i
        for i, d in enumerate(details)
        if d["name"] in (key, f"serving_default_{key}:0", f"{key}:0")
        or d["name"].split(":")[0].endswith(f"_{key}")
    ]
    if len(hits) != 1:
        names = [d["name"] for d in details]
        raise ValueError(f"cannot resolve tensor {key!r} by name among {names}")
    return hits[0]


def quant_params(detail: Mapping[str, Any]) -> tuple[float, int]:
    """(scale, zero_point) of an int8 tensor; (0.0, 0) for float."""
    scale, zp = detail["quantization"]
    return float(scale), int(zp)


def quantize(x: np.ndarray, detail: Mapping[str, Any]) -> np.ndarray:
    """Float -> the tensor's dtype (int8: round half to even, clip to [-128, 127])."""
    if detail["dtype"] == np.float32:
        return np.asarray(x, np.float32)
    scale, zp = quant_params(detail)
    info = np.iinfo(detail["dtype"])
    q = np.round(np.asarray(x, np.float64) / scale) + zp
    return np.clip(q, info.min, info.max).astype(detail["dtype"])


def dequantize(q: np.ndarray, detail: Mapping[str, Any]) -> np.ndarray:
    """The tensor's values as float32."""
    if detail["dtype"] == np.float32:
        return np.asarray(q, np.float32)
    scale, zp = quant_params(detail)
    return ((np.asarray(q, np.float64) - zp) * scale).astype(np.float32)


def requantize(q: np.ndarray, src: Mapping[str, Any], dst: Mapping[str, Any]) -> np.ndarray:
    """Move a tensor from ``src``'s quantisation to ``dst``'s (identity when they agree)."""
    if src["dtype"] == dst["dtype"] and quant_params(src) == quant_params(dst):
        return q
    return quantize(dequantize(q, src), dst)


def _load(model: Any) -> Any:
    if isinstance(model, FastGRNNTFLite):
        return model
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    if isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as f:
            return f.read()
    raise ValueError(
        f"expected .tflite bytes, a path or a FastGRNNTFLite, got {type(model).__name__}"
    )


def _run_single(
    model: bytes, x: np.ndarray, default_delegates: bool, batch: int, reference: bool = False
) -> np.ndarray:
    it = make_interpreter(model, default_delegates, reference)
    ind, outd = it.get_input_details(), it.get_output_details()
    if len(ind) != 1 or len(outd) != 1:
        raise ValueError(f"expected one input and one output, model has {len(ind)}/{len(outd)}")
    sig = ind[0]["shape_signature"]
    want = tuple(int(s) for s in ind[0]["shape"][1:])
    if x.shape[1:] != want:
        dims = ", ".join(map(str, want))
        raise ValueError(f"windows have shape {x.shape}, model expects (N, {dims})")
    bs = batch if int(sig[0]) == -1 else int(ind[0]["shape"][0])
    outs = []
    cur = None
    for i in range(0, len(x), bs):
        chunk = x[i : i + bs]
        n = len(chunk)
        if int(sig[0]) == -1 and cur != n:
            it.resize_tensor_input(ind[0]["index"], [n, *want])
            allocate(it)
            cur = n
        elif cur is None:
            allocate(it)
            cur = n
        if int(sig[0]) != -1 and n != bs:
            raise ValueError(f"model has a fixed batch of {bs}")
        it.set_tensor(ind[0]["index"], quantize(chunk, ind[0]))
        it.invoke()
        outs.append(dequantize(it.get_tensor(outd[0]["index"]), outd[0]))
    return np.concatenate(outs).reshape(len(x), -1)


class StepRunner:
    """The FastGRNN step + head models in ai-edge-litert, batch ``n``, loop in Python."""

    def __init__(
        self, bundle: FastGRNNTFLite, default_delegates: bool = False, reference: bool = False
    ) -> None:
        self.b = bundle
        self.step = make_interpreter(bundle.step, default_delegates, reference)
        self.head = make_interpreter(bundle.head, default_delegates, reference)
        ind = self.step.get_input_details()
        self.x_d = ind[io_index(ind, "x")]
        self.h_d = ind[io_index(ind, "h")]
        self.out_d = self.step.get_output_details()[0]
        self.hi_d = self.head.get_input_details()[0]
        self.lo_d = self.head.get_output_details()[0]
        self.n = -1

    def _resize(self, n: int) -> None:
        if n == self.n:
            return
        self.step.resize_tensor_input(self.x_d["index"], [n, self.b.input_dim])
        self.step.resize_tensor_input(self.h_d["index"], [n, self.b.hidden])
        allocate(self.step)
        self.head.resize_tensor_input(self.hi_d["index"], [n, self.b.hidden])
        allocate(self.head)
        self.n = n

    def run(self, x: np.ndarray) -> np.ndarray:
        """Logits (float32) for windows ``x`` ``(n, T, d)``."""
        n = len(x)
        self._resize(n)
        h = quantize(np.zeros((n, self.b.hidden), np.float32), self.h_d)
        xq = quantize(x, self.x_d)
        for t in range(x.shape[1]):
            self.step.set_tensor(self.x_d["index"], np.ascontiguousarray(xq[:, t]))
            self.step.set_tensor(self.h_d["index"], h)
            self.step.invoke()
            h = requantize(self.step.get_tensor(self.out_d["index"]), self.out_d, self.h_d)
        self.head.set_tensor(self.hi_d["index"], requantize(h, self.h_d, self.hi_d))
        self.head.invoke()
        return dequantize(self.head.get_tensor(self.lo_d["index"]), self.lo_d)


def predict_tflite(
    model: FastGRNNTFLite | bytes | str | os.PathLike[str],
    windows: Any,
    *,
    classes: bool = False,
    default_delegates: bool = False,
    reference_kernels: bool = False,
    batch_size: int = 256,
) -> np.ndarray:
    """Run whole windows through a TFLite model (or the FastGRNN step bundle) in litert.

    ``windows``: normalised ``(N, T, d)`` float32.  Returns logits ``(N, C)`` float32, or
    the argmax classes ``(N,)`` int64 with ``classes=True``.  For a bundle the time loop
    runs here: quantise ``x_t``, feed ``h`` (requantised from the previous ``h_next``),
    ``h_0 = 0``; then the head on ``h_T``.  Fixed-batch models (workaround A) run one
    window at a time.  ``reference_kernels`` uses TFLite's reference kernels.
    """
    m = _load(model)
    if isinstance(m, FastGRNNTFLite):
        x = check_windows(windows, (m.seq_len, m.input_dim), what="windows")
        runner = StepRunner(m, default_delegates, reference_kernels)
        logits = np.concatenate(
            [runner.run(c) for c in np.array_split(x, max(1, -(-len(x) // batch_size)))]
        )
    else:
        x = check_windows(windows, (None,) * (np.ndim(windows) - 1), what="windows")
        logits = _run_single(m, x, default_delegates, batch_size, reference_kernels)
    return logits.argmax(-1).astype(np.int64) if classes else logits
