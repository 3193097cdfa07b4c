"""The int8 ranges TFLite's calibrator records: what a quantisation-aware twin reproduces.

The float forward pass (:meth:`export.fastgrnn_params.FastGRNNParams.forward`, which
records the activations of :func:`export.tflite._fastgrnn.tf_step`) runs over the
windows; every tensor the converter quantises gets the min/max the calibrator would
record (zero included).  ``edgeprune.qat`` trains on these ranges.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from export.fastgrnn_params import ACTIVATIONS, FastGRNNParams, sigmoid

STEP_ACTIVATIONS = ACTIVATIONS
"""The step's quantised activations in graph order (``tf_step``), then the logits."""


def calibration_range(lo: float, hi: float) -> tuple[float, float]:
    """The int8 range TFLite's calibrator uses for observed [lo, hi]: zero included."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    return lo, hi


def step_activation_ranges(
    params: FastGRNNParams | Mapping[str, Any], windows: np.ndarray
) -> dict[str, tuple[float, float]]:
    """(min, max) of every quantised step activation (and the logits) over the float model
    on ``windows`` (normalised, ``(N, T, d)``) - what the calibrator records; keys
    :data:`STEP_ACTIVATIONS`."""
    p = FastGRNNParams.of(params)
    seen = p.forward(np.asarray(windows, np.float64), record=True).ranges
    lo = {k: seen[k][0] for k in STEP_ACTIVATIONS}
    hi = {k: seen[k][1] for k in STEP_ACTIVATIONS}
    # what TF 2.21's calibrator records for the SUB and its operand (measured against the
    # converted step): coef gets a symmetric range, szz the range of the constant sz + sn
    hi["szz"] = max(hi["szz"], float(sigmoid(p.zeta)) + float(sigmoid(p.nu)))
    lo["coef"], hi["coef"] = -max(abs(lo["coef"]), hi["coef"]), max(abs(lo["coef"]), hi["coef"])
    return {k: calibration_range(lo[k], hi[k]) for k in STEP_ACTIVATIONS}
