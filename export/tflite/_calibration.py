"""The int8 ranges TFLite's calibrator records: what a quantisation-aware twin reproduces.

The float step of :func:`export.tflite._fastgrnn.tf_step` is replayed in numpy over the
(x_t, h_t) pairs the model visits; every tensor the converter quantises gets the min/max
the calibrator would record (zero included).  ``edgeprune.qat`` trains on these ranges.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from export.tflite import _fastgrnn as fg

#: The step's quantised activations in graph order (``tf_step``): name -> what it is.
STEP_ACTIVATIONS = (
    "x",  # input
    "xw1",  # x W1
    "xw",  # x W1 W2
    "hu1",  # h U1
    "hu",  # h U1 U2
    "pre",  # xw + hu
    "g",  # pre + bias_gate
    "v",  # pre + bias_update
    "zh",  # z * h
    "szz",  # sigmoid(zeta) * z
    "coef",  # sigmoid(zeta) + sigmoid(nu) - szz
    "upd",  # coef * c
    "h",  # h_next (and h: one grid, see _convert._unify_state)
    "logits",
)


def calibration_range(lo: float, hi: float) -> tuple[float, float]:
    """The int8 range TFLite's calibrator uses for observed [lo, hi]: zero included."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    return lo, hi


def step_activation_ranges(
    params: dict[str, Any], windows: np.ndarray
) -> dict[str, tuple[float, float]]:
    """(min, max) of every quantised step activation (and the logits) over the float model
    on ``windows`` (normalised, ``(N, T, d)``) - what the calibrator records; keys
    :data:`STEP_ACTIVATIONS`."""
    p = fg.check_params(params)
    x = np.asarray(windows, np.float64)
    n, t, _ = x.shape
    w1 = p["W1"] if "W1" in p else p["W"]
    w2 = p["W2"] if "W1" in p else None
    u1 = p["U1"] if "U1" in p else p["U"]
    u2 = p["U2"] if "U1" in p else None
    sz, sn = float(fg._sigmoid(p["zeta"])), float(fg._sigmoid(p["nu"]))
    lo = {k: np.inf for k in STEP_ACTIVATIONS}
    hi = {k: -np.inf for k in STEP_ACTIVATIONS}

    def see(k: str, v: np.ndarray) -> np.ndarray:
        lo[k], hi[k] = min(lo[k], float(v.min())), max(hi[k], float(v.max()))
        return v

    h = np.zeros((n, p["H"]))
    see("x", x)
    for i in range(t):
        xw1 = see("xw1", x[:, i] @ w1)
        xw = see("xw", xw1 @ w2) if w2 is not None else xw1
        hu1 = see("hu1", h @ u1)
        hu = see("hu", hu1 @ u2) if u2 is not None else hu1
        pre = see("pre", xw + hu)
        z = fg._gate(p, see("g", pre + p["bias_gate"]))
        c = fg._update(p, see("v", pre + p["bias_update"]))
        zh = see("zh", z * h)
        coef = see("coef", (sz + sn) - see("szz", sz * z))
        h = see("h", zh + see("upd", coef * c))
    see("logits", h @ p["dense_kernel"] + p["dense_bias"])
    # what TF 2.21's calibrator records for the SUB and its operand (measured against the
    # converted step): coef gets a symmetric range, szz the range of the constant sz + sn
    hi["szz"] = max(hi["szz"], sz + sn)
    lo["coef"], hi["coef"] = -max(abs(lo["coef"]), hi["coef"]), max(abs(lo["coef"]), hi["coef"])
    if w2 is None:
        lo["xw"], hi["xw"] = lo["xw1"], hi["xw1"]
    if u2 is None:
        lo["hu"], hi["hu"] = lo["hu1"], hi["hu1"]
    return {k: calibration_range(lo[k], hi[k]) for k in STEP_ACTIVATIONS}
