"""Per-layer pruning report and the layer-collapse warning.

Contract: :func:`pruning_report` returns one row per prunable weight tensor (a "layer"
in the Minimum Threshold sense) with ``name, layer, shape, weights, nonzeros, sparsity,
floor, dead_units``; :func:`format_report` renders the rows and a total as a text table.
A :class:`LayerCollapseWarning` is issued (once per call, naming every such layer)
when a layer keeps fewer non-zeros than its MT floor, or when an output unit/channel
lost all its weights (last axis; for a depthwise kernel, each input channel x
multiplier).
"""

from __future__ import annotations

import warnings

import numpy as np
import tf_keras as keras

from edgeprune.pruning.policy import collect_prunable
from edgeprune.pruning.ranking import DEFAULT_MIN_THRESHOLD, floors

__all__ = ["LayerCollapseWarning", "collapsed_layers", "format_report", "pruning_report"]


class LayerCollapseWarning(UserWarning):
    """A layer kept fewer weights than its Minimum Threshold floor, or lost a whole unit."""


def _dead_units(w: np.ndarray, kind: str) -> int:
    if w.ndim < 2:
        return 0
    nz = w != 0
    if kind == "depthwise":  # (kh, kw, in, mult) or (k, in, mult): per output channel
        per_unit = nz.reshape(-1, w.shape[-2] * w.shape[-1]).any(axis=0)
    else:
        per_unit = nz.reshape(-1, w.shape[-1]).any(axis=0)
    return int(np.count_nonzero(~per_unit))


def pruning_report(
    model: keras.Model,
    min_threshold: float | int = DEFAULT_MIN_THRESHOLD,
    warn: bool = True,
) -> list[dict]:
    """Rows ``{name, layer, shape, weights, nonzeros, sparsity, floor, dead_units}``.

    ``floor`` is the MT floor of each layer for ``min_threshold`` (fraction of all
    prunable weights, or a count). With ``warn``, collapsed layers raise a
    :class:`LayerCollapseWarning` (see module docstring).
    """
    prunable = collect_prunable(model)
    floor = floors([p.size for p in prunable], min_threshold)
    rows = []
    for p, f in zip(prunable, floor, strict=True):
        w = p.variable.numpy()
        nz = int(np.count_nonzero(w))
        rows.append({
            "name": p.key,
            "layer": p.layer.name,
            "shape": p.shape,
            "weights": p.size,
            "nonzeros": nz,
            "sparsity": 1.0 - nz / p.size,
            "floor": int(f),
            "dead_units": _dead_units(w, p.kind),
        })
    if warn and (bad := collapsed_layers(rows)):
        warnings.warn("layer collapse: " + "; ".join(bad), LayerCollapseWarning, stacklevel=2)
    return rows


def collapsed_layers(rows: list[dict]) -> list[str]:
    """One message per :func:`pruning_report` row below its MT floor or with a dead unit."""
    return [
        f"{r['name']} (keeps {r['nonzeros']} < floor {r['floor']})"
        if r["nonzeros"] < r["floor"] else f"{r['name']} ({r['dead_units']} dead units)"
        for r in rows
        if r["nonzeros"] < r["floor"] or r["dead_units"] > 0
    ]


def format_report(rows: list[dict]) -> str:
    """A plain-text table of :func:`pruning_report` rows with a total line."""
    head = ("layer weight", "shape", "weights", "nonzeros", "sparsity", "floor", "dead")
    body = [
        (r["name"], "x".join(map(str, r["shape"])), str(r["weights"]), str(r["nonzeros"]),
         f"{r['sparsity']:.4f}", str(r["floor"]), str(r["dead_units"]))
        for r in rows
    ]
    n = sum(r["weights"] for r in rows)
    nz = sum(r["nonzeros"] for r in rows)
    body.append(("TOTAL", "", str(n), str(nz), f"{1 - nz / n if n else 0:.4f}", "",
                 str(sum(r["dead_units"] for r in rows))))
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*x) for x in body[:-1]]
    lines += [fmt.format(*["-" * w for w in widths]), fmt.format(*body[-1])]
    return "\n".join(lines)
