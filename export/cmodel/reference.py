"""numpy reference of the C model's integer arithmetic (bit-exact with both kernel builds
of export/c: ep_kernels_fast*.c and ep_kernels_ref.c).

Vectorised over windows: int64 numpy arrays; matrix products run in float64, which is
exact here because every product and partial sum is an integer below 2^53.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from export.cmodel.quant import IntFastGRNN, Requant
from export.cmodel.sparse import SparseMatrix
from export.fastgrnn_params import FastGRNNParams

_I32 = (-(2**31), 2**31 - 1)
PRE_LIMIT = 1 << 24


def spmv(m: SparseMatrix | np.ndarray, x: np.ndarray) -> np.ndarray:
    """``y[n, r] = sum_c M[r, c] * x[n, c]`` as int64 (what ``ep_spmv`` computes).

    ``m`` is a ``SparseMatrix`` or its already decoded dense ``(rows, cols)`` matrix.
    """
    dense = (m.to_dense() if isinstance(m, SparseMatrix) else m).astype(np.float64)
    return np.rint(np.asarray(x, dtype=np.float64) @ dense.T).astype(np.int64)


def requant(acc: np.ndarray, rq: Requant) -> np.ndarray:
    """``ep_requant``: round(acc * mult / 2^shift) saturated to int32."""
    p = acc.astype(np.int64) * rq.mult + (1 << (rq.shift - 1))
    return np.clip(p >> rq.shift, *_I32)


def _sat16(v: np.ndarray) -> np.ndarray:
    return np.clip(v, -32768, 32767)


def _sigmoid_q15(x: np.ndarray, m: IntFastGRNN) -> np.ndarray:
    """sigmoid of Q``pre_frac`` values in Q15: the table over [-8, 8] (the stored half over
    [0, 8] mirrored as 32768 - y) interpolated at clamp(x, -8, 8 - 2^-pre_frac), rounding
    half up; computed from the stored half as in ``ep_kernels_ref.c``."""
    lim = 8 << m.pre_frac
    sb = m.pre_frac - m.lut_shift
    s = 1 << sb
    lut = m.lut.astype(np.int64)
    neg = x < 0
    a = np.minimum(np.abs(x), np.where(neg, lim, lim - 1))
    i = np.minimum(a >> sb, len(lut) - 2)
    f = a - (i << sb)
    p = lut[i] * (s - f) + lut[i + 1] * f
    return np.where(neg, 32768 - ((p + s // 2 - 1) >> sb), (p + s // 2) >> sb)


def nonlinearity(kind: str, pre: np.ndarray, m: IntFastGRNN) -> np.ndarray:
    """``ep_nonlinearity``: Q``pre_frac`` -> Q15 (int64 array)."""
    one = 1 << m.pre_frac
    if kind == "sigmoid":
        return _sigmoid_q15(pre, m)
    if kind == "tanh":
        return 2 * _sigmoid_q15(2 * np.clip(pre, -4 * one, 4 * one), m) - 32768
    if kind == "quantSigm":
        t = np.clip(pre, -2 * one, 2 * one) + one
        return np.clip(t * (1 << (14 - m.pre_frac)), 0, 32768)
    if kind == "quantTanh":
        return np.clip(pre, -one, one) * (1 << (15 - m.pre_frac))
    raise ValueError(f"unsupported nonlinearity {kind!r}")


def _check_windows(m: IntFastGRNN, windows: np.ndarray) -> np.ndarray:
    w = np.asarray(windows)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3 or w.shape[2] != m.input_dim:
        raise ValueError(f"integer windows must have shape (N, T, {m.input_dim}), got {w.shape}")
    if w.dtype != np.int16:
        raise ValueError(f"integer windows must be int16 (use quantize_input), got {w.dtype}")
    return w.astype(np.int64)


def _decoded(m: IntFastGRNN) -> dict[str, np.ndarray]:
    return {k: s.to_dense() for k, s in m.matrices.items() if s is not None}


def reference_step(m: IntFastGRNN, raw: np.ndarray, h: np.ndarray,
                   mt: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """``ep_fastgrnn_step`` on a batch: raw ``(N, d)`` int, h ``(N, H)`` int -> new h.

    ``mt``: the decoded matrices (``{name: dense int8}``), to skip decoding every step.
    """
    x = _sat16(((raw - m.in_mean.astype(np.int64)) * m.in_mult.astype(np.int64)
                + (1 << (m.in_shift - 1))) >> m.in_shift)
    mt = _decoded(m) if mt is None else mt
    if m.w_rank:
        a = _sat16(requant(spmv(mt["w1"], x), m.rq_a))
        acc = spmv(mt["w2"], a)
    else:
        acc = spmv(mt["w1"], x)
    pre = requant(acc, m.rq_w)
    if m.u_rank:
        v = _sat16(requant(spmv(mt["u1"], h), m.rq_v))
        acc = spmv(mt["u2"], v)
    else:
        acc = spmv(mt["u1"], h)
    pre = np.clip(pre + requant(acc, m.rq_u), -PRE_LIMIT, PRE_LIMIT - 1)
    g = pre + m.bias_gate.astype(np.int64) * (1 << m.bias_gate_shift)
    u = pre + m.bias_update.astype(np.int64) * (1 << m.bias_update_shift)
    z = nonlinearity(m.gate_nl, g, m)
    c = nonlinearity(m.update_nl, u, m)
    coef = ((m.zeta_q15 * (32768 - z) + 16384) >> 15) + m.nu_q15
    t1 = (z * h + 16384) >> 15
    t2 = (coef * c + (1 << (29 - m.h_frac))) >> (30 - m.h_frac)
    return np.clip(t1 + t2, -m.h_max - 1, m.h_max)


def reference_predict(m, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bit-exact generated ``ep_<name>_predict`` on int16 windows ``(N, T, d)``.

    ``m`` is an ``IntFastGRNN`` or an ``IntCNN``. Returns ``(classes (N,) int64,
    scores (N, C) int64)``; the class is the first argmax.
    """
    from export.cmodel.cnn import IntCNN, reference_predict_cnn

    if isinstance(m, IntCNN):
        return reference_predict_cnn(m, windows)
    w = _check_windows(m, windows)
    h = np.zeros((w.shape[0], m.hidden), dtype=np.int64)
    mt = _decoded(m)
    for t in range(w.shape[1]):
        h = reference_step(m, w[:, t, :], h, mt)
    scores = np.clip(spmv(mt["dense"], h) + m.dense_bias.astype(np.int64), *_I32)
    return np.argmax(scores, axis=1), scores


def float_predict(params: FastGRNNParams | Mapping,
                  windows_norm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 forward of FastGRNN ``params`` on *normalised* windows: ``(classes, logits)``."""
    logits = FastGRNNParams.of(params).forward(windows_norm).logits
    return np.argmax(logits, axis=1), logits


# ---------------------------------------------------------------- CNN layers (ep_cnn.c)
def _out16(acc: np.ndarray, mult: int, shift: int, relu: bool) -> np.ndarray:
    v = requant(acc, Requant(mult, shift))
    return _sat16(np.maximum(v, 0) if relu else v)


def conv1d(x: np.ndarray, w: SparseMatrix | np.ndarray, bias: np.ndarray, mult: int, shift: int,
           relu: bool, kernel: int, stride: int, pad_left: int, t_out: int) -> np.ndarray:
    """``ep_conv1d`` on a batch: x ``(N, t_in, c_in)`` int -> ``(N, t_out, c_out)`` int64.

    ``w`` rows = c_out, cols = kernel * c_in with col = tap * c_in + ci.
    """
    x = np.asarray(x, dtype=np.int64)
    n, t_in, c_in = x.shape
    pad_right = max(0, (t_out - 1) * stride + kernel - pad_left - t_in)
    xp = np.pad(x, ((0, 0), (pad_left, pad_right), (0, 0)))
    idx = np.arange(t_out)[:, None] * stride + np.arange(kernel)[None, :]
    patches = xp[:, idx, :].reshape(n, t_out, kernel * c_in)
    acc = spmv(w, patches.reshape(-1, kernel * c_in)).reshape(n, t_out, -1)
    acc = np.clip(acc + np.asarray(bias, dtype=np.int64), *_I32)
    return _out16(acc, mult, shift, relu)


def maxpool1d(x: np.ndarray, pool: int, stride: int) -> np.ndarray:
    """``ep_maxpool1d`` ('valid') on ``(N, t_in, c)``."""
    x = np.asarray(x, dtype=np.int64)
    t_out = (x.shape[1] - pool) // stride + 1 if x.shape[1] >= pool else 0
    idx = np.arange(t_out)[:, None] * stride + np.arange(pool)[None, :]
    return x[:, idx, :].max(axis=2)


def gap1d(x: np.ndarray, mult: int, shift: int) -> np.ndarray:
    """``ep_gap1d`` on ``(N, t_in, c)`` -> ``(N, c)``: sat16(rq(sum over t))."""
    return _sat16(requant(np.asarray(x, dtype=np.int64).sum(axis=1), Requant(mult, shift)))


def dense(x: np.ndarray, w: SparseMatrix | np.ndarray, bias: np.ndarray, mult: int, shift: int,
          relu: bool, logits: bool = False) -> np.ndarray:
    """``ep_dense`` on ``(N, c)``: int16 outputs, or with ``logits=True`` the int32 sums."""
    acc = np.clip(spmv(w, x) + np.asarray(bias, dtype=np.int64), *_I32)
    return acc if logits else _out16(acc, mult, shift, relu)
