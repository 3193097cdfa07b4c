"""Per-layer pruning report and the layer-collapse warning.

Contract: :func:`pruning_report` returns one row per prunable weight tensor (a "layer"
in the Minimum Threshold sense) with ``name, layer, shape, weights, nonzeros, sparsity,
floor, dead_units``; :func:`format_report` renders the rows and a total as a text table.
A :class:`LayerCollapseWarning` is issued (once per call, naming every such layer)
when a layer keeps fewer non-zeros than its MT floor, or when an output unit/channel
lost all its weights (the kernel's output axes, ``PrunableWeight.out_axes``: the last
for Dense/Conv/RNN, the second last for ``Conv*Transpose``, channel x multiplier for a
depthwise kernel, position x filter for ``LocallyConnected``). Given a ``target``, a
:class:`PruningShortfallWarning` says when the model's global sparsity is below it.
"""

from __future__ import annotations

import warnings

import numpy as np
import tf_keras as keras

from edgeprune.pruning.policy import collect_prunable
from edgeprune.pruning.ranking import DEFAULT_MIN_THRESHOLD, floors, num_pruned
from edgeprune.pruning.schedule import PruningSchedule, final_sparsity

__all__ = [
    "LayerCollapseWarning",
    "PruningShortfallWarning",
    "collapsed_layers",
    "format_report",
    "pruning_report",
    "warn_shortfall",
]


class LayerCollapseWarning(UserWarning):
    """A layer kept fewer weights than its Minimum Threshold floor, or lost a whole unit."""


class PruningShortfallWarning(UserWarning):
    """The model's global sparsity is below the target it was pruned to."""


def _dead_units(w: np.ndarray, out_axes: tuple[int, ...]) -> int:
    """Output units (indexed by ``out_axes``) whose every weight is zero."""
    axes = {a % w.ndim for a in out_axes} if w.ndim else set()
    if not axes:
        return 0
    alive = (w != 0).any(axis=tuple(i for i in range(w.ndim) if i not in axes))
    return int(np.count_nonzero(~alive))


def warn_shortfall(zeros: int, total: int, target: float, reason: str,
                   stacklevel: int = 3) -> bool:
    """Warn (:class:`PruningShortfallWarning`) if ``zeros`` of ``total`` prunable weights is
    fewer than ``target`` asks (``round(target * total)``); ``True`` if it warned."""
    k = num_pruned(target, total)
    if zeros >= k:
        return False
    warnings.warn(
        f"global sparsity {zeros / total:.4f} is short of the target {target:.4f} "
        f"({zeros} of {total} prunable weights are zero, {k} should be): {reason}",
        PruningShortfallWarning, stacklevel=stacklevel)
    return True


def pruning_report(
    model: keras.Model,
    min_threshold: float | int = DEFAULT_MIN_THRESHOLD,
    warn: bool = True,
    *,
    target: float | PruningSchedule | None = None,
) -> list[dict]:
    """Rows ``{name, layer, shape, weights, nonzeros, sparsity, floor, dead_units}``.

    ``floor`` is the MT floor of each layer for ``min_threshold`` (fraction of all
    prunable weights, or a count). With ``warn``, collapsed layers raise a
    :class:`LayerCollapseWarning` (see module docstring), and a global sparsity below
    ``target`` (a sparsity, or a schedule's final one) a :class:`PruningShortfallWarning`.
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
            "dead_units": _dead_units(w, p.out_axes),
        })
    if warn and (bad := collapsed_layers(rows)):
        warnings.warn("layer collapse: " + "; ".join(bad), LayerCollapseWarning, stacklevel=2)
    if isinstance(target, PruningSchedule):
        target = final_sparsity(target)
    if warn and target is not None:
        total = sum(r["weights"] for r in rows)
        warn_shortfall(total - sum(r["nonzeros"] for r in rows), total, target,
                       "pruned weights grew back: was the model trained (fit) without "
                       "GlobalPruningCallback after pruning? Fit again with the callback: "
                       "it re-prunes to the schedule's target")
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
