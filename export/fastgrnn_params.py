"""FastGRNN's parameters and its one float forward pass (EdgeML equations, row vectors).

Every numpy FastGRNN in the code base runs through :meth:`FastGRNNParams.forward`: the C
model's calibration and float reference, the TFLite exporter's calibration pairs, the
quantisation-aware training ranges and the tests against the Keras cell::

    pre = x_t W + h_{t-1} U            (W = W1 W2, U = U1 U2 when low rank; factors kept)
    z   = gate(pre + bias_gate)        (sigmoid or quantSigm)
    c   = update(pre + bias_update)    (tanh or quantTanh)
    h_t = z * h_{t-1} + (sigmoid(zeta) * (1 - z) + sigmoid(nu)) * c,   h_0 = 0
    logits = h_T dense_kernel + dense_bias

The plain dict of docs/CONTRACTS.md converts both ways (:meth:`FastGRNNParams.of`,
:meth:`FastGRNNParams.to_dict`). ``export`` never imports ``edgeprune``: the Keras cell is
recognised by its weights, not its class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

GATES = ("sigmoid", "quantSigm")
UPDATES = ("tanh", "quantTanh")
ACTIVATIONS = ("x", "xw1", "xw", "hu1", "hu", "pre", "g", "v", "zh", "szz", "coef", "upd",
               "h", "logits")
"""What ``forward(record=True)`` records, in step order: the input, ``x W1``, ``x W``,
``h U1``, ``h U``, ``pre``, ``pre + bias_gate``, ``pre + bias_update``, ``z * h``,
``sigmoid(zeta) * z``, the candidate's coefficient, ``coef * c``, the new state, logits
(full rank: ``xw1`` is ``xw`` and ``hu1`` is ``hu``)."""
_MATRICES = ("W", "W1", "W2", "U", "U1", "U2", "dense_kernel")


def sigmoid(x: Any) -> np.ndarray:
    """``1 / (1 + exp(-x))`` in the float type of ``x`` (float64 for anything else)."""
    a = np.asarray(x)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    return 1.0 / (1.0 + np.exp(-a))


def nonlinearity(name: str, x: np.ndarray) -> np.ndarray:
    """EdgeML's ``sigmoid``, ``tanh``, ``quantSigm`` = clip((x + 1) / 2, 0, 1) and
    ``quantTanh`` = clip(x, -1, 1), in the dtype of ``x``."""
    if name == "sigmoid":
        return sigmoid(x)
    if name == "tanh":
        return np.tanh(x)
    if name == "quantSigm":
        return np.clip((x + 1) / 2, 0, 1)
    if name == "quantTanh":
        return np.clip(x, -1, 1)
    raise ValueError(f"unknown nonlinearity {name!r}")


@dataclass(frozen=True)
class ActivationRanges:
    """Observed ``(min, max)`` of each :data:`ACTIVATIONS` entry over a forward pass
    (``(0.0, 0.0)`` for one never computed, e.g. over zero steps)."""

    lo: Mapping[str, float]
    hi: Mapping[str, float]

    def __getitem__(self, name: str) -> tuple[float, float]:
        if self.lo[name] > self.hi[name]:
            return 0.0, 0.0
        return self.lo[name], self.hi[name]

    def absmax(self, name: str) -> float:
        """The largest ``|value|`` seen (0.0 when none was)."""
        lo, hi = self[name]
        return max(abs(lo), abs(hi), 0.0)


class _Recorder:
    def __init__(self) -> None:
        self.lo = dict.fromkeys(ACTIVATIONS, np.inf)
        self.hi = dict.fromkeys(ACTIVATIONS, -np.inf)

    def see(self, name: str, v: np.ndarray) -> None:
        if v.size:
            self.lo[name] = min(self.lo[name], float(v.min()))
            self.hi[name] = max(self.hi[name], float(v.max()))

    def ranges(self) -> ActivationRanges:
        return ActivationRanges(dict(self.lo), dict(self.hi))


@dataclass(frozen=True)
class FastGRNNOutput:
    """What :meth:`FastGRNNParams.forward` returns: ``logits (N, C)`` and the final state
    ``state (N, H)``; ``states (N, T, H)``, the state *entering* each step, when asked;
    ``ranges`` when ``record=True``."""

    logits: np.ndarray
    state: np.ndarray
    states: np.ndarray | None = None
    ranges: ActivationRanges | None = None


def _array(params: Mapping, key: str, ndim: int) -> np.ndarray:
    if key not in params:
        raise ValueError(f"FastGRNN parameters lack {key!r}")
    try:
        a = np.array(params[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"FastGRNN parameter {key!r} is not numeric") from None
    if a.ndim != ndim and not (ndim == 0 and a.size == 1):
        raise ValueError(f"FastGRNN parameter {key!r} has shape {a.shape}, expected "
                         f"{ndim} dimensions")
    return a


def _frozen(a: np.ndarray | None) -> np.ndarray | None:
    if a is not None:
        a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class FastGRNNParams:
    """A validated FastGRNN classifier: float64 arrays (float32 weights convert exactly),
    read-only. ``w2``/``u2`` are None at full rank (``w1`` is then ``W``, ``u1`` is ``U``).
    Construction validates (:meth:`validate`): ValueError with one line otherwise."""

    w1: np.ndarray
    w2: np.ndarray | None
    u1: np.ndarray
    u2: np.ndarray | None
    bias_gate: np.ndarray
    bias_update: np.ndarray
    zeta: float
    nu: float
    dense_kernel: np.ndarray
    dense_bias: np.ndarray
    gate: str = "sigmoid"
    update: str = "tanh"

    def __post_init__(self) -> None:
        for name in self.names:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _frozen(np.array(value, dtype=np.float64)))
        object.__setattr__(self, "zeta", float(self.zeta))
        object.__setattr__(self, "nu", float(self.nu))
        self.validate()

    @property
    def names(self) -> dict[str, str]:
        """Array field -> its CONTRACTS.md key (``w1`` is ``W`` at full rank)."""
        return {"w1": "W" if self.w2 is None else "W1", "w2": "W2",
                "u1": "U" if self.u2 is None else "U1", "u2": "U2",
                "bias_gate": "bias_gate", "bias_update": "bias_update",
                "dense_kernel": "dense_kernel", "dense_bias": "dense_bias"}

    # -- construction ------------------------------------------------------------------
    @classmethod
    def of(cls, params: FastGRNNParams | Mapping[str, Any]) -> FastGRNNParams:
        """``params`` itself, or the CONTRACTS.md dict validated into the type."""
        if isinstance(params, FastGRNNParams):
            return params
        if not isinstance(params, Mapping):
            raise ValueError(f"FastGRNN parameters must be a dict, got {type(params).__name__}")
        factors = {}
        for full, a, b in (("W", "W1", "W2"), ("U", "U1", "U2")):
            if full in params:
                factors[full] = (_array(params, full, 2), None)
            elif a in params or b in params:
                factors[full] = (_array(params, a, 2), _array(params, b, 2))
            else:
                raise ValueError(f"FastGRNN parameters need {full!r} or {a!r} and {b!r}")
        return cls(
            w1=factors["W"][0], w2=factors["W"][1], u1=factors["U"][0], u2=factors["U"][1],
            bias_gate=_array(params, "bias_gate", 1),
            bias_update=_array(params, "bias_update", 1),
            zeta=_array(params, "zeta", 0).reshape(()), nu=_array(params, "nu", 0).reshape(()),
            dense_kernel=_array(params, "dense_kernel", 2),
            dense_bias=_array(params, "dense_bias", 1),
            gate=params.get("gate_nonlinearity", "sigmoid"),
            update=params.get("update_nonlinearity", "tanh"),
        )

    @classmethod
    def from_keras(cls, model: Any) -> FastGRNNParams:
        """The parameters of a Keras FastGRNN classifier: its one ``RNN`` layer whose cell
        has FastGRNN's weights (``edgeprune.models.FastGRNNCell`` and subclasses) and the
        ``Dense`` layer after it. Pruned models (wrapped or stripped) give their weights as
        they are. ValueError when the model is no FastGRNN classifier."""
        import tf_keras as keras

        rnn = dense = None
        for layer in model.layers:
            while isinstance(getattr(layer, "layer", None), keras.layers.Layer):
                layer = layer.layer  # tfmot PruneLowMagnitude and other wrappers
            if isinstance(layer, keras.layers.RNN) and _is_fastgrnn_cell(layer.cell):
                if rnn is not None:
                    raise ValueError("model has more than one FastGRNN layer")
                rnn = layer
            elif isinstance(layer, keras.layers.Dense) and rnn is not None:
                dense = layer
        if rnn is None or dense is None:
            raise ValueError("model is not a FastGRNN classifier: need RNN(FastGRNNCell) "
                             "then Dense")
        cell = rnn.cell

        def arr(name: str) -> np.ndarray | None:
            v = getattr(cell, name, None)
            return None if v is None else np.asarray(v.numpy(), dtype=np.float32)

        full_w, full_u = cell.w_rank is None, cell.u_rank is None
        return cls(
            w1=arr("W" if full_w else "W1"), w2=None if full_w else arr("W2"),
            u1=arr("U" if full_u else "U1"), u2=None if full_u else arr("U2"),
            bias_gate=arr("bias_gate"), bias_update=arr("bias_update"),
            zeta=arr("zeta").reshape(()), nu=arr("nu").reshape(()),
            dense_kernel=np.asarray(dense.kernel.numpy(), np.float32),
            dense_bias=np.asarray(dense.bias.numpy(), np.float32),
            gate=cell.gate, update=cell.update,
        )

    def to_dict(self) -> dict[str, Any]:
        """The CONTRACTS.md dict: float32 arrays (``zeta``/``nu`` 0-d), nonlinearity names."""
        out: dict[str, Any] = {}
        for attr, key in self.names.items():
            value = getattr(self, attr)
            if value is not None:
                out[key] = value.astype(np.float32)
        out["zeta"] = np.array(self.zeta, dtype=np.float32)
        out["nu"] = np.array(self.nu, dtype=np.float32)
        out["gate_nonlinearity"], out["update_nonlinearity"] = self.gate, self.update
        return out

    def validate(self) -> None:
        """Shapes that chain (``W1 (d, rw) @ W2 (rw, H)``, ``U (H, H)``, biases ``(H,)``,
        ``dense_kernel (H, C)``, ``dense_bias (C,)``), finite values, supported
        nonlinearities; ValueError naming the first problem."""
        for attr in ("w1", "w2", "u1", "u2", "dense_kernel"):
            value = getattr(self, attr)
            if value is not None and value.ndim != 2:
                raise ValueError(f"FastGRNN parameter {self.names[attr]!r} has shape "
                                 f"{value.shape}, expected a matrix")
        hidden, classes = self.dense_kernel.shape
        d = self.w1.shape[0]
        rw = self.w1.shape[1] if self.w2 is not None else hidden
        ru = self.u1.shape[1] if self.u2 is not None else hidden
        expected = {"w1": (d, rw), "w2": (rw, hidden), "u1": (hidden, ru),
                    "u2": (ru, hidden), "bias_gate": (hidden,), "bias_update": (hidden,),
                    "dense_kernel": (hidden, classes), "dense_bias": (classes,)}
        for attr, shape in expected.items():
            value = getattr(self, attr)
            if value is None:
                continue
            key = self.names[attr]
            if value.shape != shape:
                raise ValueError(f"FastGRNN parameter {key!r} has shape {value.shape}, "
                                 f"expected {shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"FastGRNN parameter {key!r} holds NaN or inf")
        for key in ("zeta", "nu"):
            if not np.isfinite(getattr(self, key)):
                raise ValueError(f"FastGRNN parameter {key!r} holds NaN or inf")
        if self.gate not in GATES:
            raise ValueError(f"unsupported gate nonlinearity {self.gate!r} "
                             f"(supported: {', '.join(GATES)})")
        if self.update not in UPDATES:
            raise ValueError(f"unsupported update nonlinearity {self.update!r} "
                             f"(supported: {', '.join(UPDATES)})")

    # -- sizes -------------------------------------------------------------------------
    @property
    def input_dim(self) -> int:
        return int(self.w1.shape[0])

    @property
    def hidden(self) -> int:
        return int(self.dense_kernel.shape[0])

    @property
    def classes(self) -> int:
        return int(self.dense_kernel.shape[1])

    @property
    def w_rank(self) -> int | None:
        """The rank of ``W = W1 W2``; None at full rank."""
        return None if self.w2 is None else int(self.w1.shape[1])

    @property
    def u_rank(self) -> int | None:
        """The rank of ``U = U1 U2``; None at full rank."""
        return None if self.u2 is None else int(self.u1.shape[1])

    def matrices(self) -> dict[str, np.ndarray]:
        """The weight matrices by CONTRACTS.md name (``W1``, ``W2``, ``U1``, ``U2`` or
        ``W``, ``U``; ``dense_kernel``)."""
        out = {self.names[a]: getattr(self, a) for a in ("w1", "w2", "u1", "u2")
               if getattr(self, a) is not None}
        return {k: out[k] for k in _MATRICES if k in out} | {"dense_kernel": self.dense_kernel}

    # -- the forward pass --------------------------------------------------------------
    def forward(self, x: np.ndarray, *, dtype: type = np.float64, record: bool = False,
                states: bool = False) -> FastGRNNOutput:
        """Run normalised windows ``x (N, T, d)`` through the equations in ``dtype``
        (float64, or float32 as the Keras cell computes). ``record``: the ranges of every
        :data:`ACTIVATIONS` entry; ``states``: the state entering each step."""
        dt = np.dtype(dtype)
        if dt not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dt}")
        x = np.asarray(x, dtype=dt)
        if x.ndim != 3 or x.shape[2] != self.input_dim:
            raise ValueError(f"windows must have shape (N, T, {self.input_dim}), got "
                             f"{x.shape}")
        n, steps, _ = x.shape

        def cast(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a.astype(dt, copy=False)

        w1, w2, u1, u2 = cast(self.w1), cast(self.w2), cast(self.u1), cast(self.u2)
        bg, bu = cast(self.bias_gate), cast(self.bias_update)
        sz, sn = sigmoid(dt.type(self.zeta)), sigmoid(dt.type(self.nu))
        rec = _Recorder() if record else None
        trace = np.empty((n, steps, self.hidden), dtype=dt) if states else None
        h = np.zeros((n, self.hidden), dtype=dt)
        if rec:
            rec.see("x", x)
        for t in range(steps):
            if trace is not None:
                trace[:, t] = h
            xw1 = x[:, t, :] @ w1
            xw = xw1 if w2 is None else xw1 @ w2
            hu1 = h @ u1
            hu = hu1 if u2 is None else hu1 @ u2
            pre = xw + hu
            g, v = pre + bg, pre + bu
            z, c = nonlinearity(self.gate, g), nonlinearity(self.update, v)
            zh = z * h
            coef = sz * (1 - z) + sn
            upd = coef * c
            h = zh + upd
            if rec:
                for name, value in (("xw1", xw1), ("xw", xw), ("hu1", hu1), ("hu", hu),
                                    ("pre", pre), ("g", g), ("v", v), ("zh", zh),
                                    ("szz", sz * z), ("coef", coef), ("upd", upd), ("h", h)):
                    rec.see(name, value)
        logits = h @ cast(self.dense_kernel) + cast(self.dense_bias)
        if rec:
            rec.see("logits", logits)
        return FastGRNNOutput(logits=logits, state=h, states=trace,
                              ranges=rec.ranges() if rec else None)


def _is_fastgrnn_cell(cell: Any) -> bool:
    """A FastGRNN cell by its attributes (export may not import edgeprune's class)."""
    return all(hasattr(cell, a) for a in ("hidden", "w_rank", "u_rank", "gate", "update",
                                           "bias_gate", "bias_update", "zeta", "nu"))
