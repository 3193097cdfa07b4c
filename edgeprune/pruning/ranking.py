"""Global magnitude ranking and the Minimum Threshold: pure numpy, no Keras.

Contract (DESIGN.md, "Global MP" and "Minimum Threshold"):

* ``k = round(s * N)`` (half up) of the ``N`` prunable weights are pruned, exactly; the
  pruned ones are those with the smallest scores (``|w|`` for Global MP), ties broken
  deterministically by position in the concatenation (lower index is pruned first).
  One ``np.partition`` over the concatenated scores selects them.
* Minimum Threshold (MT): every layer keeps at least ``floor = min(f, n_l)`` weights,
  ``f = ceil(mt * N)`` for a fraction ``0 <= mt < 1`` (a ``float``) or ``f = mt`` for a
  count (an ``int``). Layers smaller than ``f`` stay dense. Keep-counts come from the
  global ranking; any layer pushed below its floor is clamped to it (keeping its
  largest-score weights) and the remaining budget is re-ranked globally over the other
  layers, repeating until no layer is below its floor. The target ``k`` always holds.
  If ``sum(floors) > N - k`` no assignment exists: ``ValueError`` naming the highest
  feasible sparsity ``(N - sum(floors)) / N``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np

__all__ = [
    "DEFAULT_MIN_THRESHOLD",
    "allocate",
    "check_feasible",
    "check_sparsity",
    "floors",
    "global_keep_masks",
    "global_threshold",
    "num_pruned",
    "select_smallest",
]

DEFAULT_MIN_THRESHOLD = 0.0005  # the paper's 0.05 % of all prunable weights


def check_sparsity(sparsity: float, what: str = "sparsity") -> float:
    """Return ``sparsity`` as a float, or raise ``ValueError`` unless ``0 <= s < 1``."""
    if isinstance(sparsity, np.ndarray) and sparsity.ndim == 0:
        sparsity = sparsity[()]
    if isinstance(sparsity, np.floating) and sparsity.dtype.itemsize < 8:
        # float32 targets (tfmot schedules) read as their shortest decimal: 0.9, not
        # 0.8999999762, so round(s*N) is the k the user meant
        sparsity = float(str(sparsity))
    if isinstance(sparsity, bool) or not isinstance(sparsity, Real):
        raise ValueError(f"{what} must be a number in [0, 1), got {sparsity!r}")
    s = float(sparsity)
    if not (0.0 <= s < 1.0):  # also rejects NaN
        raise ValueError(f"{what} must be in [0, 1), got {sparsity!r}")
    return s


def num_pruned(sparsity: float, total: int) -> int:
    """``k = round(sparsity * total)``, rounding halves up (deterministic)."""
    s = check_sparsity(sparsity)
    return min(int(math.floor(s * total + 0.5)), total)


def floors(sizes: Sequence[int], min_threshold: float | int) -> np.ndarray:
    """Per-layer floor ``min(f, n_l)`` of the Minimum Threshold (see module docstring).

    ``min_threshold`` is a fraction of all weights (``float`` in ``[0, 1)``) or a count
    (``int >= 0``); anything else raises ``ValueError``.
    """
    sizes_a = np.asarray(sizes, dtype=np.int64)
    total = int(sizes_a.sum())
    if isinstance(min_threshold, bool):
        raise ValueError(f"min_threshold must be a fraction or a count, got {min_threshold!r}")
    if isinstance(min_threshold, Integral):
        if min_threshold < 0:
            raise ValueError(f"min_threshold count must be >= 0, got {min_threshold}")
        f = int(min_threshold)
    elif isinstance(min_threshold, Real):
        mt = float(min_threshold)
        if not (0.0 <= mt < 1.0):
            raise ValueError(
                f"min_threshold as a fraction of all prunable weights must be in [0, 1), "
                f"got {min_threshold!r} (pass an int for a count)"
            )
        f = math.ceil(mt * total - 1e-9)
    else:
        raise ValueError(f"min_threshold must be a float fraction or an int count, "
                         f"got {min_threshold!r}")
    return np.minimum(sizes_a, f)


def select_smallest(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean array marking exactly ``k`` smallest entries of 1-D ``scores``.

    Ties at the k-th value are broken by index (lower first). O(n): one ``np.partition``.
    """
    n = scores.shape[0]
    out = np.zeros(n, dtype=bool)
    if k <= 0:
        return out
    if k >= n:
        out[:] = True
        return out
    v = np.partition(scores, k - 1)[k - 1]
    np.less(scores, v, out=out)
    need = k - int(np.count_nonzero(out))
    if need > 0:
        out[np.flatnonzero(scores == v)[:need]] = True
    return out


def _concat(scores: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    if len(scores) == 0:
        raise ValueError("nothing prunable: no weight tensors were given")
    arrays = [np.asarray(s) for s in scores]
    dtype = np.result_type(np.float32, *[a.dtype for a in arrays])  # float32 stays float32
    flat = np.concatenate([a.ravel() for a in arrays]).astype(dtype, copy=False)
    if flat.size == 0:
        raise ValueError("nothing prunable: all weight tensors are empty")
    if np.isnan(flat).any():
        raise ValueError("weights/scores contain NaN: cannot rank them")
    sizes = np.array([a.size for a in arrays], dtype=np.int64)
    return flat, sizes


def _counts(keep: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Kept entries per layer."""
    return np.array([np.count_nonzero(keep[a:b]) for a, b in zip(offsets[:-1], offsets[1:],
                                                                     strict=True)],
                    dtype=np.int64)


def global_threshold(scores: Sequence[np.ndarray], sparsity: float) -> float:
    """The k-th smallest score over all layers (k = round(s*N)); ``-inf`` when k = 0.

    Plain Global MP (no floor) prunes exactly the k weights at or below it (ties by
    index).
    """
    flat, _ = _concat([np.abs(s) for s in scores])
    k = num_pruned(sparsity, flat.size)
    if k == 0:
        return float("-inf")
    return float(np.partition(flat, k - 1)[k - 1])


def check_feasible(sizes: Sequence[int], sparsity: float,
                   min_threshold: float | int) -> np.ndarray:
    """The per-layer floors, or ``ValueError`` naming the highest feasible sparsity."""
    floor = floors(sizes, min_threshold)
    n_total = int(np.sum(sizes))
    k = num_pruned(sparsity, n_total)
    if int(floor.sum()) > n_total - k:
        best = (n_total - int(floor.sum())) / n_total
        best_str = math.floor(best * 1e6) / 1e6
        raise ValueError(
            f"Minimum Threshold cannot be met: sparsity {sparsity} prunes {k} of {n_total} "
            f"weights but the per-layer floors (min_threshold={min_threshold!r}) keep "
            f"{int(floor.sum())}; the highest feasible sparsity is {best_str:.6f} "
            f"({n_total - int(floor.sum())} of {n_total} weights)"
        )
    return floor


def global_keep_masks(
    scores: Sequence[np.ndarray],
    sparsity: float,
    min_threshold: float | int = 0.0,
) -> list[np.ndarray]:
    """Keep-masks (``True`` = kept) from one global ranking of ``scores``, with MT.

    ``scores`` are per-layer arrays (``|w|`` for Global MP, LAMP scores, random
    numbers...); the result has their shapes. Exactly ``round(s*N)`` entries are
    pruned. See the module docstring for the Minimum Threshold loop and its error.
    """
    flat, sizes = _concat(scores)
    n_total = flat.size
    k = num_pruned(sparsity, n_total)
    keep_total = n_total - k
    floor = check_feasible(sizes, sparsity, min_threshold)
    n_layers = sizes.size
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    clamped = np.zeros(n_layers, dtype=bool)
    while True:
        budget = keep_total - int(floor[clamped].sum())
        if not clamped.any():  # common case: one selection over everything, no copy
            keep = ~select_smallest(flat, n_total - budget)
        else:
            keep = np.zeros(n_total, dtype=bool)
            free = np.flatnonzero(~clamped)
            sub = np.concatenate([flat[offsets[i]:offsets[i + 1]] for i in free])
            keep_sub = ~select_smallest(sub, sub.size - budget)
            pos = 0
            for i in free:
                keep[offsets[i]:offsets[i + 1]] = keep_sub[pos:pos + sizes[i]]
                pos += sizes[i]
        counts = _counts(keep, offsets)
        below = ~clamped & (counts < floor)
        if not below.any():
            break
        clamped |= below
    for i in np.flatnonzero(clamped):
        a, b = offsets[i], offsets[i + 1]
        keep[a:b] = ~select_smallest(flat[a:b], int(sizes[i] - floor[i]))
    return [keep[offsets[i]:offsets[i + 1]].reshape(np.shape(s)) for i, s in enumerate(scores)]


def allocate(
    magnitudes: Sequence[np.ndarray],
    sparsity: float,
    min_threshold: float | int = DEFAULT_MIN_THRESHOLD,
) -> np.ndarray:
    """Per-layer keep-counts of Global MP with a Minimum Threshold (pure function).

    ``magnitudes``: one array per layer (signs ignored). Returns an int64 array, one
    count per layer, summing to ``N - round(s*N)``, each at least its floor.
    ``min_threshold=0`` gives plain Global MP.
    """
    masks = global_keep_masks([np.abs(m) for m in magnitudes], sparsity, min_threshold)
    return np.array([int(np.count_nonzero(m)) for m in masks], dtype=np.int64)
