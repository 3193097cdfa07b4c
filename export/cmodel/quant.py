"""Quantise a FastGRNN parameter dict (docs/CONTRACTS.md) into edgeprune's integer model.

Integer input (the C API's window): ``int16 raw[t][c] = round(x[t][c] / in_scale[c])`` where
``x`` is the *raw* (not normalised) float window and ``in_scale`` a per-channel power of
two chosen from the calibration set (or given by the caller, e.g. a sensor's LSB).
Normalisation runs in fixed point inside the model: ``x_q = sat16(((raw - in_mean) *
in_mult + 2^(in_shift-1)) >> in_shift)`` approximates ``(x - mean) / std / s_x``, with
``in_mean = round(mean / in_scale)``. ``quantize_input`` is the host helper.

Everything else follows ``export/c/ep_kernels.h``: int8 weights with one symmetric scale
per matrix, int32 accumulation, Q31 multiplier + shift requantisers, int16 low-rank
intermediates, pre-activations in Q``pre_frac``, gate/candidate in Q15 from a sigmoid table
with linear interpolation (or exact quantSigm/quantTanh), sigma(zeta)/sigma(nu) in Q15, and
an int16 state in Q``h_frac`` saturated to ``[-h_max - 1, h_max]`` (``state_bits=8``:
``[-128, 127]``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from export.cmodel.sparse import SparseMatrix, encode, pick_formats_within
from export.fastgrnn_params import FastGRNNParams, sigmoid

MATRICES = ("w1", "w2", "u1", "u2", "dense")
GATE_NL = {"sigmoid": 0, "quantSigm": 2}
UPDATE_NL = {"tanh": 1, "quantTanh": 3}
_LUT_XMAX = 8
SPEED_SLACK = 0.2
"""Default ``speed_slack`` of ``quantize_fastgrnn``: the fastest format within 20% of the
smallest (on the 90%-sparse HAR-2 model: U1 and U2 in csr8n, W2 in rowmask, +120 B,
~0.6 M fewer instructions per window on a Cortex-M4)."""


@dataclass(frozen=True)
class Requant:
    """``y = round(acc * mult / 2**shift)``; ``mult`` in [2^30, 2^31) and ``1 <= shift <= 62``
    (a gain below 2^-32 keeps ``shift = 62`` with a smaller ``mult``, possibly 0)."""

    mult: int
    shift: int

    @classmethod
    def from_real(cls, m: float, what: str) -> Requant:
        """The nearest fixed-point form of the positive real multiplier ``m``."""
        if not (math.isfinite(m) and m > 0):
            raise ValueError(f"requantiser {what}: multiplier {m!r} is not a positive number")
        e = math.floor(math.log2(m))
        mult = round(m / 2.0**e * 2**30)
        if mult >= 2**31:
            mult //= 2
            e += 1
        shift = 30 - e
        if shift > 62:  # tiny gain: fewer mantissa bits (down to 0: the path rounds to 0)
            return cls(int(round(m * 2.0**62)), 62)
        if shift < 1:
            raise ValueError(f"requantiser {what}: multiplier {m:g} out of fixed-point range")
        return cls(int(mult), int(shift))

    @property
    def real(self) -> float:
        return self.mult / 2.0**self.shift


@dataclass
class IntFastGRNN:
    """An integer-only FastGRNN: everything the C model holds, as numpy arrays and ints.

    Matrices are ``SparseMatrix`` in the kernel orientation (rows = outputs). Float fields
    (``in_scale``, ``score_scale``) are host-side documentation, never used at inference.
    """

    input_dim: int
    hidden: int
    w_rank: int
    u_rank: int
    classes: int
    matrices: dict[str, SparseMatrix | None]
    in_scale: np.ndarray
    in_mult: np.ndarray
    in_mean: np.ndarray
    in_shift: int
    rq_a: Requant
    rq_w: Requant
    rq_v: Requant
    rq_u: Requant
    bias_gate: np.ndarray
    bias_gate_shift: int
    bias_update: np.ndarray
    bias_update_shift: int
    dense_bias: np.ndarray
    zeta_q15: int
    nu_q15: int
    gate_nl: str
    update_nl: str
    pre_frac: int
    h_frac: int
    h_max: int
    lut: np.ndarray
    lut_shift: int
    score_scale: float
    meta: dict = field(default_factory=dict)


def sigmoid_lut(lut_shift: int) -> np.ndarray:
    """``round(sigmoid(i / 2**lut_shift) * 32768)`` for ``i = 0 .. 8 * 2**lut_shift`` (uint16)."""
    i = np.arange(_LUT_XMAX * 2**lut_shift + 1, dtype=np.float64)
    return np.rint(sigmoid(i / 2.0**lut_shift) * 32768).astype(np.uint16)


def _quant_matrix(w: np.ndarray) -> tuple[np.ndarray, float]:
    """Symmetric per-tensor int8 of the float matrix ``w`` (exact zeros stay zero)."""
    amax = float(np.abs(w).max(initial=0.0))
    scale = amax / 127.0 if amax > 0 else 1.0
    return np.clip(np.rint(w / scale), -127, 127).astype(np.int8), scale


def _pow2_bias(b: np.ndarray, pre_frac: int, what: str) -> tuple[np.ndarray, int]:
    """int8 bias with scale 2^-e (e <= pre_frac); returns (values, shift = pre_frac - e)."""
    amax = float(np.abs(b).max(initial=0.0))
    e = pre_frac if amax == 0 else min(pre_frac, math.floor(math.log2(127.0 / amax)))
    shift = pre_frac - e
    if shift > 23:
        raise ValueError(f"{what} is too large for the fixed-point pre-activation ({amax:g})")
    return np.clip(np.rint(b * 2.0**e), -127, 127).astype(np.int8), shift


def _input_stage(mean, std, cal: np.ndarray, normalized: bool, in_scale, d: int) -> dict:
    """Validate mean/std/in_scale; return raw calibration windows and a ``fit(s_x)`` that
    gives the fixed-point input stage (in_mult, in_mean, in_shift) for input scale ``s_x``."""
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    std = np.asarray(std, dtype=np.float64).reshape(-1)
    if mean.shape != (d,) or std.shape != (d,):
        raise ValueError(f"mean and std must have shape ({d},), got {mean.shape} and {std.shape}")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
        raise ValueError("mean/std must be finite and std > 0")
    raw = cal * std + mean if normalized else cal
    if in_scale is None:
        amax = np.maximum(np.abs(raw).max(axis=(0, 1)), 1e-6)
        in_scale = 2.0 ** np.ceil(np.log2(amax * 2.0 / 32767.0))
    in_scale = np.asarray(in_scale, dtype=np.float64).reshape(-1)
    if in_scale.shape != (d,) or not np.all(np.isfinite(in_scale) & (in_scale > 0)):
        raise ValueError(f"in_scale must be {d} positive finite numbers")

    def fit(s_x: float) -> dict:
        m_real = in_scale / (std * s_x)
        in_shift = min(30, math.floor(math.log2(16383.0 / m_real.max())))
        in_mean = np.rint(mean / in_scale)
        if in_shift < 1 or np.abs(in_mean).max() > 32767:
            raise ValueError("in_scale does not fit the fixed-point input stage (mean or "
                             "1/std out of range)")
        in_mult = np.rint(m_real * 2.0**in_shift).astype(np.int64)
        if in_mult.min() < 1:
            raise ValueError("in_scale spread across channels is too wide for the input stage")
        return {"in_mult": in_mult.astype(np.int16), "in_mean": in_mean.astype(np.int16),
                "in_shift": int(in_shift)}

    return {"raw": raw, "mean": mean, "std": std, "in_scale": in_scale, "fit": fit}


def quantize_fastgrnn(
    params: FastGRNNParams | Mapping,
    mean: np.ndarray,
    std: np.ndarray,
    calibration: np.ndarray,
    *,
    normalized: bool = False,
    in_scale: np.ndarray | None = None,
    state_bits: int = 16,
    lut_shift: int = 1,
    pre_frac: int = 12,
    formats: Mapping[str, str] | None = None,
    margin: float = 1.25,
    speed_slack: float = SPEED_SLACK,
    matrix_budget: int | None = None,
) -> IntFastGRNN:
    """Quantise FastGRNN ``params`` into an ``IntFastGRNN``.

    ``calibration``: windows ``(N, T, d)`` from the training split, raw unless
    ``normalized=True``; ranges of the input, intermediates and state come from a float
    forward over them (at most 512 windows are used). ``in_scale``: per-channel float
    value of one raw int16 step (default: a power of two per channel with 2x headroom
    over the calibration range). ``state_bits`` 16 (Q``h_frac`` int16) or 8 (limited to
    [-128, 127]). ``lut_shift``: the sigmoid table has ``8 * 2**lut_shift + 1`` uint16
    entries (the C kernels have a fast path for the defaults ``pre_frac=12, lut_shift=1``).
    ``formats``: force a storage format per matrix (``w1 w2 u1 u2 dense``); others are
    picked by exact byte count, except that the fastest format (``sparse.COST_MODEL``)
    costing at most ``1 + speed_slack`` times the smallest is taken (0 = smallest always;
    the classifier, run once per window, always gets its smallest).
    ``matrix_budget`` (bytes): instead pick the formats of the matrices not in
    ``formats`` together, the fastest combination (``sparse.estimate_instructions``, the
    classifier weighted 1/128: it runs once per window) whose matrix bytes (values +
    index, all five) fit the budget; the smallest formats when nothing fits.
    Raises ``ValueError`` with a one-line message.
    """
    p = FastGRNNParams.of(params)
    d, H, C = p.input_dim, p.hidden, p.classes
    rw, ru = p.w_rank or 0, p.u_rank or 0
    cal = np.asarray(calibration, dtype=np.float64)
    if cal.ndim != 3 or cal.shape[2] != d or cal.shape[0] == 0:
        raise ValueError(f"calibration windows must have shape (N, T, {d}), got {cal.shape}")
    if not np.all(np.isfinite(cal)):
        raise ValueError("calibration windows hold NaN or inf")
    if state_bits not in (8, 16):
        raise ValueError(f"state_bits must be 8 or 16, got {state_bits}")
    if not (1 <= pre_frac <= 14 and 0 <= lut_shift < pre_frac):
        raise ValueError(f"need 1 <= pre_frac <= 14 and 0 <= lut_shift < pre_frac, "
                         f"got {pre_frac}, {lut_shift}")
    formats = dict(formats or {})
    bad = set(formats) - set(MATRICES)
    if bad:
        raise ValueError(f"formats names unknown matrices {sorted(bad)}; expected {MATRICES}")
    stage = _input_stage(mean, std, cal[:512], normalized, in_scale, d)
    x_norm = (stage["raw"] - stage["mean"]) / stage["std"]
    seen = p.forward(x_norm, record=True).ranges
    rec = {"x": seen.absmax("x"), "a": seen.absmax("xw1") if rw else 0.0,
           "v": seen.absmax("hu1") if ru else 0.0, "pre": seen.absmax("pre"),
           "h": seen.absmax("h")}
    s_x = max(rec["x"], 1e-6) * margin / 32767.0
    stage.update(stage["fit"](s_x))
    in_scale, in_mult, in_mean, in_shift = (stage[k] for k in ("in_scale", "in_mult",
                                                               "in_mean", "in_shift"))

    mats: dict[str, np.ndarray | None] = {}
    scales: dict[str, float] = {}
    for name, w in (("w1", p.w1), ("w2", p.w2), ("u1", p.u1), ("u2", p.u2),
                    ("dense", p.dense_kernel)):
        mats[name], scales[name] = (None, 0.0) if w is None else _quant_matrix(w.T)

    h_max = 32767 if state_bits == 16 else 127
    h_frac = min(15, math.floor(math.log2(h_max / (max(rec["h"], 1e-3) * 1.1))))
    if h_frac < 0:
        raise ValueError(f"state range {rec['h']:g} does not fit a {state_bits}-bit state")
    s_h = 2.0**-h_frac
    two_p = 2.0**pre_frac
    if rw:
        s_a = max(rec["a"], 1e-6) * margin / 32767.0
        rq_a = Requant.from_real(s_x * scales["w1"] / s_a, "x.W1 -> a")
        rq_w = Requant.from_real(s_a * scales["w2"] * two_p, "a.W2 -> pre")
    else:
        rq_a = Requant(1 << 30, 30)
        rq_w = Requant.from_real(s_x * scales["w1"] * two_p, "x.W -> pre")
    if ru:
        s_v = max(rec["v"], 1e-6) * margin / 32767.0
        rq_v = Requant.from_real(s_h * scales["u1"] / s_v, "h.U1 -> v")
        rq_u = Requant.from_real(s_v * scales["u2"] * two_p, "v.U2 -> pre")
    else:
        rq_v = Requant(1 << 30, 30)
        rq_u = Requant.from_real(s_h * scales["u1"] * two_p, "h.U -> pre")
    for name, m in mats.items():
        if m is not None:
            worst = int(np.abs(m.astype(np.int64)).sum(axis=1).max(initial=0)) * 32768
            if worst >= 2**31:
                raise ValueError(f"matrix {name} could overflow the int32 accumulator")

    bg, bg_shift = _pow2_bias(p.bias_gate, pre_frac, "bias_gate")
    bu, bu_shift = _pow2_bias(p.bias_update, pre_frac, "bias_update")
    score_scale = s_h * scales["dense"]
    dense_bias = np.rint(p.dense_bias / score_scale)
    if np.abs(dense_bias).max(initial=0) >= 2**31:
        raise ValueError("dense_bias does not fit int32 score units")

    enc: dict[str, SparseMatrix | None] = {}
    if matrix_budget is not None:
        present = {k: v for k, v in mats.items() if v is not None}
        formats = pick_formats_within(present, int(matrix_budget), {"dense": 1.0 / 128},
                                      {k: f for k, f in formats.items() if k in present})
    for name in MATRICES:
        m = mats[name]
        # the classifier runs once per window: its smallest format
        enc[name] = None if m is None else encode(m, formats.get(name),
                                                  0.0 if name == "dense" else speed_slack)
    nnz_float = sum(int(np.count_nonzero(w)) for w in p.matrices().values())
    total = sum(int(w.size) for w in p.matrices().values())
    return IntFastGRNN(
        input_dim=d, hidden=H, w_rank=rw, u_rank=ru, classes=C, matrices=enc,
        in_scale=in_scale, in_mult=in_mult, in_mean=in_mean,
        in_shift=int(in_shift), rq_a=rq_a, rq_w=rq_w, rq_v=rq_v, rq_u=rq_u,
        bias_gate=bg, bias_gate_shift=bg_shift, bias_update=bu, bias_update_shift=bu_shift,
        dense_bias=dense_bias.astype(np.int32),
        zeta_q15=int(np.rint(sigmoid(p.zeta) * 32768)),
        nu_q15=int(np.rint(sigmoid(p.nu) * 32768)),
        gate_nl=p.gate, update_nl=p.update,
        pre_frac=pre_frac, h_frac=int(h_frac), h_max=h_max,
        lut=sigmoid_lut(lut_shift), lut_shift=lut_shift, score_scale=score_scale,
        meta={"sparsity": 1.0 - nnz_float / total if total else 0.0,
              "nnz_float": nnz_float, "weights": total,
              "nnz_int8": sum(s.nnz for s in enc.values() if s is not None),
              "state_bits": state_bits, "ranges": rec},
    )


def quantize_input(model: IntFastGRNN, windows: np.ndarray) -> np.ndarray:
    """Host helper: raw float windows ``(N, T, d)`` (or one ``(T, d)``) -> the int16 input.

    ``round(x / in_scale)`` per channel, saturated to int16 (row-major ``[t][c]``).
    """
    w = np.asarray(windows, dtype=np.float64)
    if w.ndim not in (2, 3) or w.shape[-1] != model.input_dim:
        raise ValueError(f"windows must have shape (N, T, {model.input_dim}), got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("windows hold NaN or inf")
    return np.clip(np.rint(w / model.in_scale), -32768, 32767).astype(np.int16)
