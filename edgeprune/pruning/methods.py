"""Mask allocation methods, pure numpy: Global MP (+MT) and the baselines.

Every method maps per-layer weight arrays to per-layer keep-masks (``True`` = kept) at
one global target sparsity ``s`` over the ``N`` prunable weights:

``global``     one ranking of ``|w|`` over all layers, exactly ``round(s*N)`` pruned.
``global_mt``  the same with the Minimum Threshold (default 0.05 % of ``N`` per layer).
``uniform``    every layer pruned to ``s`` by its own magnitude, with tfmot's rule
               ``keep = max(round_half_even(n_l * (1 - s)), 1)`` (the masks equal
               ``prune_low_magnitude``'s when no magnitudes tie; see
               :func:`edgeprune.pruning.uniform_masks_tfmot`).
``erk``        Erdős–Rényi-Kernel densities (Evci et al. 2020, RigL's
               ``get_sparsities_erdos_renyi``, power 1): ``d_l = eps * sum(shape) /
               prod(shape)``, layers whose ``d_l`` would exceed 1 are made dense and eps
               re-solved; keep-counts rounded (largest remainder) to sum to exactly
               ``N - round(s*N)``; within a layer the largest ``|w|`` are kept.
``lamp``       LAMP scores (Lee et al. 2021): in each layer, sorted by ``|w|`` ascending,
               ``score(u) = w_u^2 / sum_{v >= u} w_v^2``; one global ranking of the
               scores (optional MT).
``random``     seeded random scores, one global ranking (optional MT): a random mask
               with exactly ``round(s*N)`` pruned. Scores depend only on ``seed`` and
               the layer sizes, so gradual random pruning nests.
``iht``        EdgeML's hard threshold: per-matrix top-k, each matrix keeps its
               ``n_l - round(s*n_l)`` largest ``|w|``. The dense -> IHT -> sparse
               retraining dynamics live in :class:`GlobalPruningCallback`.

``min_threshold=None`` means the method's default: ``DEFAULT_MIN_THRESHOLD`` for
``global_mt``, none for the rest. A floor only makes sense with a global ranking, so a
non-zero ``min_threshold`` with ``global``, ``uniform``, ``erk`` or ``iht`` raises.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgeprune.pruning.ranking import (
    DEFAULT_MIN_THRESHOLD,
    check_sparsity,
    global_keep_masks,
    num_pruned,
    select_smallest,
)

__all__ = [
    "METHODS",
    "allocate_erk",
    "allocate_uniform",
    "keep_masks",
    "lamp_scores",
    "resolve_min_threshold",
    "topk_keep_masks",
]

METHODS = ("global", "global_mt", "uniform", "erk", "lamp", "random", "iht")
_RANKED = ("global_mt", "lamp", "random")


def resolve_min_threshold(method: str, min_threshold: float | int | None) -> float | int:
    """The floor a method uses; ``ValueError`` for unknown methods or a floor it can't use."""
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}; expected one of {METHODS}")
    if min_threshold is None:
        return DEFAULT_MIN_THRESHOLD if method == "global_mt" else 0
    if method not in _RANKED and min_threshold != 0:
        raise ValueError(
            f"method {method!r} has no Minimum Threshold (got min_threshold="
            f"{min_threshold!r}); use 'global_mt' for Global MP with a floor"
        )
    return min_threshold


def allocate_uniform(sizes: Sequence[int], sparsity: float) -> np.ndarray:
    """Per-layer keep-counts of uniform pruning, tfmot's rounding (see module doc)."""
    s = np.float32(check_sparsity(sparsity))
    n = np.asarray(sizes, dtype=np.float32)
    keep = np.maximum(np.round(n * (np.float32(1.0) - s)), 1).astype(np.int64)
    return np.minimum(keep, np.asarray(sizes, dtype=np.int64))


def _round_to_total(values: np.ndarray, total: int, caps: np.ndarray) -> np.ndarray:
    """Integers near ``values`` (each in [0, cap]) summing to ``total`` (largest remainder)."""
    base = np.minimum(np.floor(values).astype(np.int64), caps)
    base = np.maximum(base, 0)
    frac = values - base
    diff = total - int(base.sum())
    order = np.argsort(-frac, kind="stable")
    while diff != 0:
        step = 1 if diff > 0 else -1
        room = (base < caps) if step > 0 else (base > 0)
        cand = order[room[order]] if step > 0 else order[::-1][room[order[::-1]]]
        take = cand[: abs(diff)]
        base[take] += step
        diff -= step * take.size
    return base


def allocate_erk(shapes: Sequence[Sequence[int]], sparsity: float,
                 power_scale: float = 1.0) -> np.ndarray:
    """Per-layer keep-counts from Erdős–Rényi-Kernel densities; they sum to N - round(s*N)."""
    shapes = [tuple(int(d) for d in sh) for sh in shapes]
    sizes = np.array([int(np.prod(sh)) for sh in shapes], dtype=np.int64)
    total = int(sizes.sum())
    keep_total = total - num_pruned(sparsity, total)
    raw = np.array([(sum(sh) / np.prod(sh)) ** power_scale for sh in shapes], dtype=np.float64)
    dense = np.zeros(len(shapes), dtype=bool)
    while True:
        rhs = keep_total - sizes[dense].sum()
        divisor = float((raw[~dense] * sizes[~dense]).sum())
        if divisor <= 0:
            break
        eps = rhs / divisor
        dens = eps * raw
        over = ~dense & (dens > 1.0)
        if not over.any():
            break
        dense |= over & (raw == raw[~dense].max())
    density = np.where(dense, 1.0, np.clip(eps * raw, 0.0, 1.0))
    return _round_to_total(density * sizes, keep_total, sizes)


def lamp_scores(weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """LAMP score of every weight (Lee et al. 2021), same shapes as ``weights``."""
    out = []
    for w in weights:
        a = np.asarray(w)
        order = np.argsort(np.abs(a).ravel(), kind="stable")  # ties: by index
        sq = np.square(a.ravel().astype(np.float64))
        s_sorted = sq[order]
        tail = np.cumsum(s_sorted[::-1])[::-1]  # sum_{v >= u} w_v^2 in sorted order
        score = np.zeros_like(sq)
        with np.errstate(invalid="ignore", divide="ignore"):
            score[order] = np.where(tail > 0, s_sorted / tail, 0.0)
        out.append(score.reshape(np.shape(w)))
    return out


def topk_keep_masks(weights: Sequence[np.ndarray], keep: Sequence[int]) -> list[np.ndarray]:
    """Per layer, keep the ``keep[l]`` largest ``|w|`` (ties by index)."""
    out = []
    for w, kl in zip(weights, keep, strict=True):
        a = np.abs(np.asarray(w)).ravel()
        out.append(~select_smallest(a, a.size - int(kl)).reshape(np.shape(w)))
    return out


def keep_masks(
    method: str,
    weights: Sequence[np.ndarray],
    sparsity: float,
    min_threshold: float | int | None = None,
    seed: int = 0,
) -> list[np.ndarray]:
    """Keep-masks of ``method`` (one of :data:`METHODS`) for per-layer ``weights``."""
    mt = resolve_min_threshold(method, min_threshold)
    s = check_sparsity(sparsity)
    if len(weights) == 0:
        raise ValueError("nothing prunable: no weight tensors were given")
    sizes = [int(np.size(w)) for w in weights]
    if method in ("global", "global_mt"):
        return global_keep_masks([np.abs(w) for w in weights], s, mt)
    if method == "lamp":
        return global_keep_masks(lamp_scores(weights), s, mt)
    if method == "random":
        rng = np.random.default_rng(seed)
        scores = [rng.random(n).reshape(np.shape(w)) for n, w in zip(sizes, weights, strict=True)]
        return global_keep_masks(scores, s, mt)
    if method == "uniform":
        return topk_keep_masks(weights, allocate_uniform(sizes, s))
    if method == "erk":
        return topk_keep_masks(weights, allocate_erk([np.shape(w) for w in weights], s))
    # iht: per-matrix top-k at exactly round(s * n_l) pruned in each matrix
    return topk_keep_masks(weights, [n - num_pruned(s, n) for n in sizes])
