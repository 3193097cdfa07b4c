"""FastGRNN from the CONTRACTS.md parameter dict: validation, numpy reference, Keras graphs.

Everything here works from the plain parameter dict (``edgeprune.models.fastgrnn_params``),
so the TFLite export does not depend on the training-side Keras classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

GATES = ("sigmoid", "quantSigm")
UPDATES = ("tanh", "quantTanh")


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a FastGRNN parameter dict and return a float32 copy with full ``W``/``U`` added.

    Raises ValueError (one line) for a missing key, a shape mismatch, a non-finite value or
    an unknown nonlinearity.  The returned dict keeps the low-rank factors (``W1``/``W2``,
    ``U1``/``U2``) when given, and always has ``W`` and ``U`` too, plus ``d``, ``H``, ``C``.
    """
    if not isinstance(params, Mapping):
        raise ValueError(f"FastGRNN params must be a dict, got {type(params).__name__}")
    p: dict[str, Any] = {}
    for k, v in params.items():
        if k in ("gate_nonlinearity", "update_nonlinearity"):
            p[k] = str(v)
        else:
            p[k] = np.asarray(v, dtype=np.float32)
    for k in ("bias_gate", "bias_update", "zeta", "nu", "dense_kernel", "dense_bias"):
        if k not in p:
            raise ValueError(f"FastGRNN params: missing key {k!r}")
    p.setdefault("gate_nonlinearity", "sigmoid")
    p.setdefault("update_nonlinearity", "tanh")
    if p["gate_nonlinearity"] not in GATES:
        raise ValueError(f"unsupported gate_nonlinearity {p['gate_nonlinearity']!r}; use {GATES}")
    if p["update_nonlinearity"] not in UPDATES:
        raise ValueError(
            f"unsupported update_nonlinearity {p['update_nonlinearity']!r}; use {UPDATES}"
        )
    for full, a, b in (("W", "W1", "W2"), ("U", "U1", "U2")):
        if a in p or b in p:
            if a not in p or b not in p:
                raise ValueError(f"FastGRNN params: {a!r} and {b!r} must be given together")
            if p[a].ndim != 2 or p[b].ndim != 2 or p[a].shape[1] != p[b].shape[0]:
                raise ValueError(
                    f"FastGRNN params: {a}{p[a].shape} @ {b}{p[b].shape} is not a matrix product"
                )
            p[full] = p[a] @ p[b]
        elif full not in p:
            raise ValueError(f"FastGRNN params: missing {full!r} (or {a!r}, {b!r})")
    if p["W"].ndim != 2 or p["U"].ndim != 2:
        raise ValueError("FastGRNN params: W and U must be 2-D")
    d, hidden = p["W"].shape
    if p["U"].shape != (hidden, hidden):
        raise ValueError(
            f"FastGRNN params: U has shape {p['U'].shape}, expected {(hidden, hidden)}"
        )
    for k in ("bias_gate", "bias_update"):
        if p[k].shape != (hidden,):
            raise ValueError(f"FastGRNN params: {k} has shape {p[k].shape}, expected ({hidden},)")
    for k in ("zeta", "nu"):
        if p[k].size != 1:
            raise ValueError(f"FastGRNN params: {k} must be a scalar, got shape {p[k].shape}")
        p[k] = p[k].reshape(())
    dk = p["dense_kernel"]
    if dk.ndim != 2 or dk.shape[0] != hidden:
        raise ValueError(
            f"FastGRNN params: dense_kernel has shape {dk.shape}, expected ({hidden}, C)"
        )
    if p["dense_bias"].shape != (dk.shape[1],):
        raise ValueError(
            f"FastGRNN params: dense_bias has shape {p['dense_bias'].shape}, "
            f"expected ({dk.shape[1]},)"
        )
    for k, v in p.items():
        if isinstance(v, np.ndarray) and not np.all(np.isfinite(v)):
            raise ValueError(f"FastGRNN params: {k!r} holds NaN or Inf")
    p["d"], p["H"], p["C"] = int(d), int(hidden), int(dk.shape[1])
    return p


def _gate(p: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    if p["gate_nonlinearity"] == "quantSigm":
        return np.clip((x + 1.0) / 2.0, 0.0, 1.0)
    return _sigmoid(x)


def _update(p: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    if p["update_nonlinearity"] == "quantTanh":
        return np.clip(x, -1.0, 1.0)
    return np.tanh(x)


def reference_forward(
    params: Mapping[str, Any], windows: np.ndarray, return_states: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Float64 numpy FastGRNN on ``(N, T, d)`` normalised windows.

    Returns logits ``(N, C)``; with ``return_states`` also the states *entering* each step,
    ``(N, T, H)`` (``h_0 = 0`` first), i.e. the (x_t, h_t) pairs the float model visits.
    """
    p = check_params(params)
    x = np.asarray(windows, dtype=np.float64)
    n, t, _ = x.shape
    w, u = p["W"].astype(np.float64), p["U"].astype(np.float64)
    sz, sn = float(_sigmoid(p["zeta"])), float(_sigmoid(p["nu"]))
    h = np.zeros((n, p["H"]))
    states = np.empty((n, t, p["H"]), dtype=np.float32) if return_states else None
    for i in range(t):
        if states is not None:
            states[:, i] = h
        pre = x[:, i] @ w + h @ u
        z = _gate(p, pre + p["bias_gate"])
        c = _update(p, pre + p["bias_update"])
        h = z * h + (sz * (1.0 - z) + sn) * c
    logits = (h @ p["dense_kernel"] + p["dense_bias"]).astype(np.float32)
    if return_states:
        return logits, states
    return logits


def final_states(params: Mapping[str, Any], windows: np.ndarray) -> np.ndarray:
    """The last state ``h_T`` of the float model, ``(N, H)`` float32 (the head's input)."""
    p = check_params(params)
    _, states = reference_forward(p, windows, return_states=True)
    # one more step from the last stored state
    x_last = np.asarray(windows, dtype=np.float64)[:, -1]
    h = states[:, -1].astype(np.float64)
    pre = x_last @ p["W"] + h @ p["U"]
    z = _gate(p, pre + p["bias_gate"])
    c = _update(p, pre + p["bias_update"])
    sz, sn = float(_sigmoid(p["zeta"])), float(_sigmoid(p["nu"]))
    return (z * h + (sz * (1.0 - z) + sn) * c).astype(np.float32)


# ---------------------------------------------------------------- TensorFlow graphs


def tf_step(p: Mapping[str, Any], x: Any, h: Any) -> Any:
    """One FastGRNN step in TensorFlow ops (constants from ``p``), row-vector convention."""
    import tensorflow as tf

    def mat(name: str) -> Any:
        return tf.constant(p[name], dtype=tf.float32)

    if "W1" in p:
        xw = tf.matmul(tf.matmul(x, mat("W1")), mat("W2"))
    else:
        xw = tf.matmul(x, mat("W"))
    if "U1" in p:
        hu = tf.matmul(tf.matmul(h, mat("U1")), mat("U2"))
    else:
        hu = tf.matmul(h, mat("U"))
    pre = xw + hu
    g = pre + mat("bias_gate")
    v = pre + mat("bias_update")
    if p["gate_nonlinearity"] == "quantSigm":
        z = tf.clip_by_value((g + 1.0) * 0.5, 0.0, 1.0)
    else:
        z = tf.sigmoid(g)
    if p["update_nonlinearity"] == "quantTanh":
        c = tf.clip_by_value(v, -1.0, 1.0)
    else:
        c = tf.tanh(v)
    sz = float(_sigmoid(p["zeta"]))
    sn = float(_sigmoid(p["nu"]))
    return z * h + ((sz + sn) - sz * z) * c


def tf_head(p: Mapping[str, Any], h: Any) -> Any:
    """Classifier on the last state: ``h @ dense_kernel + dense_bias``."""
    import tensorflow as tf

    return tf.matmul(h, tf.constant(p["dense_kernel"])) + tf.constant(p["dense_bias"])
