"""Integer-only sparse C model of a 1-D CNN (edgeprune.models.har_cnn): quantise, reference, C.

Supported layers, in any order that ends with a Dense (the logits): Conv1D ('valid' or
'same', any stride, dilation 1, ReLU or linear), MaxPooling1D ('valid'),
GlobalAveragePooling1D, Dense (ReLU or linear); InputLayer and Dropout are skipped.
A layer list is plain numpy (see ``cnn_layers_from_keras``), so the quantiser needs no
Keras. Number formats and the input stage are those of the FastGRNN model (quant.py):
int16 raw input with in-model fixed-point normalisation, int16 activations with one
scale per layer output, int8 per-tensor weights in the cheapest sparse format, int32
accumulators and biases, Q31 multiplier + shift requantisers, int32 logits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from export.cmodel.quant import Requant, _quant_matrix
from export.cmodel.sparse import SparseMatrix, encode

_I32 = (-(2**31), 2**31 - 1)


@dataclass
class IntLayer:
    """One integer layer; per-window shapes: input ``(t_in, c_in)``, output ``(t_out, c_out)``."""

    kind: str  # conv1d | maxpool1d | gap1d | dense
    name: str
    t_in: int
    c_in: int
    t_out: int
    c_out: int
    matrix: SparseMatrix | None = None
    bias: np.ndarray | None = None
    rq: Requant | None = None
    relu: bool = False
    kernel: int = 1
    stride: int = 1
    pad_left: int = 0
    logits: bool = False


@dataclass
class IntCNN:
    """An integer-only 1-D CNN: the input stage plus ``IntLayer``s (last = int32 logits)."""

    steps: int
    input_dim: int
    classes: int
    layers: list[IntLayer]
    in_scale: np.ndarray
    in_mult: np.ndarray
    in_mean: np.ndarray
    in_shift: int
    score_scale: float
    meta: dict = field(default_factory=dict)


def _arr(layer: Mapping, key: str, ndim: int) -> np.ndarray:
    a = np.asarray(layer.get(key), dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"layer {layer.get('name')!r}: {key} must be {ndim}-D, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"layer {layer.get('name')!r}: {key} holds NaN or inf")
    return a


def cnn_layers_from_keras(model) -> list[dict]:
    """The CNN's layers as plain dicts (numpy weights); ``ValueError`` names an unsupported layer.

    Reads the (pruned, stripped or wrapped) Keras 2 model without importing TensorFlow
    here: only layer class names, configs and ``get_weights()`` are used.
    """
    out: list[dict] = []
    for layer in model.layers:
        inner = layer
        while hasattr(inner, "layer") and hasattr(inner.layer, "get_config"):
            inner = inner.layer  # tfmot wrapper
        kind = type(inner).__name__
        cfg = inner.get_config()
        name = cfg.get("name", kind)
        act = cfg.get("activation", "linear")
        if kind in ("InputLayer", "Dropout"):
            continue
        if kind in ("Conv1D", "Dense") and act not in ("relu", "linear"):
            raise ValueError(f"layer {name!r} ({kind}): activation {act!r} is not supported "
                             "(relu or linear)")
        w = [np.asarray(v) for v in inner.get_weights()
             if not getattr(v, "name", "").endswith("mask")]
        if kind == "Conv1D":
            if tuple(cfg.get("dilation_rate", (1,))) != (1,) or cfg.get("groups", 1) != 1 or \
                    cfg.get("data_format", "channels_last") != "channels_last":
                raise ValueError(f"layer {name!r} (Conv1D): only dilation 1, groups 1, "
                                 "channels_last are supported")
            if cfg.get("padding") not in ("valid", "same"):
                raise ValueError(f"layer {name!r} (Conv1D): padding {cfg.get('padding')!r} "
                                 "is not supported")
            kernel = w[0]
            bias = w[1] if cfg.get("use_bias", True) else np.zeros(kernel.shape[2])
            out.append({"type": "conv1d", "name": name, "kernel": kernel, "bias": bias,
                        "stride": int(cfg["strides"][0]), "padding": cfg["padding"],
                        "relu": act == "relu"})
        elif kind == "MaxPooling1D":
            if cfg.get("padding", "valid") != "valid":
                raise ValueError(f"layer {name!r} (MaxPooling1D): only 'valid' padding")
            pool = int(np.ravel(cfg["pool_size"])[0])
            stride = cfg.get("strides") or pool
            out.append({"type": "maxpool1d", "name": name, "pool": pool,
                        "stride": int(np.ravel(stride)[0])})
        elif kind == "GlobalAveragePooling1D":
            out.append({"type": "gap1d", "name": name})
        elif kind == "Dense":
            bias = w[1] if cfg.get("use_bias", True) else np.zeros(w[0].shape[1])
            out.append({"type": "dense", "name": name, "kernel": w[0], "bias": bias,
                        "relu": act == "relu"})
        else:
            raise ValueError(f"layer {name!r} ({kind}) is not supported by the integer C "
                             "model (Conv1D, MaxPooling1D, GlobalAveragePooling1D, Dense)")
    return out


def _shapes(layers: Sequence[Mapping], steps: int, d: int) -> list[dict]:
    """Validate the layer list and annotate every layer with its shapes (``_t/_c`` in/out)."""
    if not layers:
        raise ValueError("the CNN has no layers")
    t, c, flat = steps, d, False
    info = []
    for i, lay in enumerate(layers):
        kind, name = lay.get("type"), lay.get("name", f"layer{i}")
        e = {"kind": kind, "name": name, "t_in": t, "c_in": c}
        if kind == "conv1d":
            if flat:
                raise ValueError(f"layer {name!r}: Conv1D after a flattening layer")
            k = _arr(lay, "kernel", 3)
            if k.shape[1] != c:
                raise ValueError(f"layer {name!r}: kernel {k.shape} does not take {c} channels")
            b = _arr(lay, "bias", 1)
            if b.shape != (k.shape[2],):
                raise ValueError(f"layer {name!r}: bias shape {b.shape}, expected ({k.shape[2]},)")
            ks, s = k.shape[0], int(lay.get("stride", 1))
            if s < 1:
                raise ValueError(f"layer {name!r}: stride {s} < 1")
            if lay.get("padding", "valid") == "same":
                t_out = -(-t // s)
                pad_left = max((t_out - 1) * s + ks - t, 0) // 2
            elif lay.get("padding", "valid") == "valid":
                t_out, pad_left = (t - ks) // s + 1, 0
            else:
                raise ValueError(f"layer {name!r}: padding {lay.get('padding')!r} unsupported")
            if t_out < 1:
                raise ValueError(f"layer {name!r}: input of {t} steps is too short")
            e.update(kernel=ks, stride=s, pad_left=pad_left, t_out=t_out, c_out=k.shape[2],
                     w=k.reshape(ks * c, k.shape[2]), b=b, relu=bool(lay.get("relu", False)))
            t, c = t_out, k.shape[2]
        elif kind == "maxpool1d":
            pool, s = int(lay.get("pool", 2)), int(lay.get("stride", lay.get("pool", 2)))
            if flat or pool < 1 or s < 1 or t < pool:
                raise ValueError(f"layer {name!r}: MaxPooling1D({pool}, {s}) on {t} steps")
            t = (t - pool) // s + 1
            e.update(kernel=pool, stride=s, t_out=t, c_out=c)
        elif kind == "gap1d":
            if flat:
                raise ValueError(f"layer {name!r}: GlobalAveragePooling1D after flattening")
            e.update(t_out=1, c_out=c)
            t, flat = 1, True
        elif kind == "dense":
            if not flat:
                raise ValueError(f"layer {name!r}: Dense needs a GlobalAveragePooling1D first")
            k = _arr(lay, "kernel", 2)
            b = _arr(lay, "bias", 1)
            if k.shape[0] != c or b.shape != (k.shape[1],):
                raise ValueError(f"layer {name!r}: kernel {k.shape} / bias {b.shape} do not "
                                 f"fit {c} inputs")
            e.update(t_out=1, c_out=k.shape[1], w=k, b=b, relu=bool(lay.get("relu", False)))
            c = k.shape[1]
        else:
            raise ValueError(f"layer {name!r}: type {kind!r} is not supported "
                             "(conv1d, maxpool1d, gap1d, dense)")
        info.append(e)
    if info[-1]["kind"] != "dense":
        raise ValueError(f"the last layer ({info[-1]['name']!r}) must be a Dense (the logits)")
    return info


def cnn_float_forward(layers: Sequence[Mapping], x_norm: np.ndarray, *, record: bool = False):
    """Float64 forward of the layer list on normalised windows ``(N, T, d)`` -> logits."""
    x = np.asarray(x_norm, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"windows must have shape (N, T, d), got {x.shape}")
    info = _shapes(layers, x.shape[1], x.shape[2])
    maxes = [float(np.abs(x).max(initial=0.0))]
    for e in info:
        if e["kind"] == "conv1d":
            pad_r = max(0, (e["t_out"] - 1) * e["stride"] + e["kernel"] - e["pad_left"]
                        - e["t_in"])
            xp = np.pad(x, ((0, 0), (e["pad_left"], pad_r), (0, 0)))
            idx = np.arange(e["t_out"])[:, None] * e["stride"] + np.arange(e["kernel"])
            x = xp[:, idx, :].reshape(len(x), e["t_out"], -1) @ e["w"] + e["b"]
        elif e["kind"] == "maxpool1d":
            idx = np.arange(e["t_out"])[:, None] * e["stride"] + np.arange(e["kernel"])
            x = x[:, idx, :].max(axis=2)
        elif e["kind"] == "gap1d":
            x = x.mean(axis=1)
        else:
            x = x @ e["w"] + e["b"]
        if e.get("relu"):
            x = np.maximum(x, 0)
        maxes.append(float(np.abs(x).max(initial=0.0)))
    return (x, maxes) if record else x


def quantize_cnn(layers: Sequence[Mapping], mean, std, calibration: np.ndarray, *,
                 normalized: bool = False, in_scale=None, margin: float = 1.25,
                 formats: Mapping[str, str] | None = None) -> IntCNN:
    """Quantise a CNN layer list (``cnn_layers_from_keras``) into an ``IntCNN``.

    Arguments as ``quantize_fastgrnn``; ``formats`` maps layer names to a forced storage
    format. Raises ``ValueError`` (one line) naming the offending layer.
    """
    from export.cmodel.quant import _input_stage

    cal = np.asarray(calibration, dtype=np.float64)
    if cal.ndim != 3 or cal.shape[0] == 0 or not np.all(np.isfinite(cal)):
        raise ValueError(f"calibration windows must be finite (N, T, d), got {cal.shape}")
    steps, d = cal.shape[1], cal.shape[2]
    info = _shapes(layers, steps, d)
    stage = _input_stage(mean, std, cal[:512], normalized, in_scale, d)
    x_norm = (stage["raw"] - stage["mean"]) / stage["std"]
    _, maxes = cnn_float_forward(layers, x_norm, record=True)
    s_in = max(maxes[0], 1e-6) * margin / 32767.0
    stage.update(stage["fit"](s_in))
    formats = dict(formats or {})
    out: list[IntLayer] = []
    score_scale = 1.0
    for i, e in enumerate(info):
        lay = IntLayer(kind=e["kind"], name=e["name"], t_in=e["t_in"], c_in=e["c_in"],
                       t_out=e["t_out"], c_out=e["c_out"], kernel=e.get("kernel", 1),
                       stride=e.get("stride", 1), pad_left=e.get("pad_left", 0),
                       relu=e.get("relu", False))
        s_out = max(maxes[i + 1], 1e-6) * margin / 32767.0
        if e["kind"] in ("conv1d", "dense"):
            wq, s_w = _quant_matrix(e["w"].T)
            if int(np.abs(wq.astype(np.int64)).sum(axis=1).max(initial=0)) * 32768 >= 2**31:
                raise ValueError(f"layer {e['name']!r} could overflow the int32 accumulator")
            lay.matrix = encode(wq, formats.get(e["name"]))
            bias = np.rint(e["b"] / (s_in * s_w))
            if np.abs(bias).max(initial=0) >= 2**31 - 1:
                raise ValueError(f"layer {e['name']!r}: bias does not fit int32")
            lay.bias = bias.astype(np.int32)
            if i == len(info) - 1:
                lay.logits, lay.rq = True, Requant(1 << 30, 30)
                score_scale = s_in * s_w
            else:
                lay.rq = Requant.from_real(s_in * s_w / s_out, f"layer {e['name']}")
                s_in = s_out
        elif e["kind"] == "gap1d":
            lay.rq = Requant.from_real(1.0 / e["t_in"], f"layer {e['name']}")
        out.append(lay)
    bad = set(formats) - {lay.name for lay in out if lay.matrix is not None}
    if bad:
        raise ValueError(f"formats names unknown layers {sorted(bad)}")
    weights = [np.asarray(e["w"]) for e in info if "w" in e]
    total = sum(w.size for w in weights)
    nnz = sum(int(np.count_nonzero(w)) for w in weights)
    return IntCNN(steps=steps, input_dim=d, classes=info[-1]["c_out"], layers=out,
                  in_scale=stage["in_scale"], in_mult=stage["in_mult"],
                  in_mean=stage["in_mean"], in_shift=stage["in_shift"],
                  score_scale=score_scale,
                  meta={"sparsity": 1 - nnz / total if total else 0.0, "weights": total,
                        "nnz_float": nnz,
                        "nnz_int8": sum(lay.matrix.nnz for lay in out if lay.matrix)})


def cnn_scratch_layout(m: IntCNN) -> dict[str, int]:
    """Byte offsets in the scratch: int32 acc, two int16 activation buffers, int16 patch."""
    acc = max([lay.c_out for lay in m.layers if lay.matrix is not None] + [1])
    act = max([m.steps * m.input_dim] + [lay.t_out * lay.c_out for lay in m.layers])
    patch = max([lay.kernel * lay.c_in for lay in m.layers if lay.kind == "conv1d"] + [1])
    a = 4 * acc
    b = a + 2 * act
    p = b + 2 * act
    return {"acc": 0, "a": a, "b": b, "patch": p, "total": p + 2 * patch, "act": act}


def reference_predict_cnn(m: IntCNN, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bit-exact generated ``ep_<name>_predict`` of a CNN: ``(classes, int32 logits)``."""
    from export.cmodel import reference as ref

    w = np.asarray(windows)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3 or w.shape[1:] != (m.steps, m.input_dim) or w.dtype != np.int16:
        raise ValueError(f"integer windows must be int16 (N, {m.steps}, {m.input_dim}), "
                         f"got {w.dtype} {w.shape}")
    x = ref._sat16(((w.astype(np.int64) - m.in_mean.astype(np.int64))
                    * m.in_mult.astype(np.int64) + (1 << (m.in_shift - 1))) >> m.in_shift)
    for lay in m.layers:
        if lay.kind == "conv1d":
            x = ref.conv1d(x, lay.matrix, lay.bias, lay.rq.mult, lay.rq.shift, lay.relu,
                           lay.kernel, lay.stride, lay.pad_left, lay.t_out)
        elif lay.kind == "maxpool1d":
            x = ref.maxpool1d(x, lay.kernel, lay.stride)
        elif lay.kind == "gap1d":
            x = ref.gap1d(x, lay.rq.mult, lay.rq.shift)
        else:
            x = ref.dense(x, lay.matrix, lay.bias, lay.rq.mult, lay.rq.shift, lay.relu,
                          logits=lay.logits)
    return np.argmax(x, axis=1), x

