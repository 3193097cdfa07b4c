"""The search's decisions as pure functions: which sparsities to probe and fine-tune, the
bisection, pruning on until a model fits, and the selection rule. No training, no files."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from edgeprune.pipeline.config import Settings
from edgeprune.pipeline.records import Candidate, DenseResult

PROBE_SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
REFINE_STEP = 0.01
# Architectures are tried largest first; the next, smaller one is trained only when the
# larger needs more than this sparsity to fit the budget. With --max-instructions every
# architecture is tried: a speed budget favours smaller networks (UCI HAR-2, 8 KiB, 1 M
# instructions: FastGRNN 48/5/16 at 50% 95.55% validation, 80/5/40 at 92% 94.55%).
TRY_SMALLER_ABOVE = 0.9
# --refit: a refit model's C encoding can come out a few bytes larger than the selected
# one's at the same sparsity (UCI HAR-2, 3 KiB, 73%: 3080 B against 3072 B); it is then
# pruned further, one REFINE_STEP at a time, at most this many steps. The same holds for a
# fine-tuned candidate whose one-shot probe fitted (3 KiB, 73%: 3076 B against 3064 B).
REFIT_EXTRA_STEPS = 3


class NoFitError(RuntimeError):
    """No configuration's measured C model fits the budget(s) (message: the nearest one)."""


def probe_grid(highest: float) -> list[float]:
    """The one-shot sparsities probed first: ``PROBE_SPARSITIES`` up to ``highest``."""
    return [s for s in PROBE_SPARSITIES if s <= highest]


def bisect_sparsity(lo: float, hi: float, passes: Callable[[float], bool]) -> float:
    """The lowest sparsity on the ``REFINE_STEP`` grid in ``(lo, hi]`` that ``passes``,
    given that ``lo`` fails and ``hi`` passes (a monotone test: fits the budget, runs fast
    enough); ``passes`` is called once per midpoint tried."""
    while hi - lo > REFINE_STEP + 1e-9:
        mid = round(round((lo + hi) / 2 / REFINE_STEP) * REFINE_STEP, 4)
        if mid in (lo, hi):
            break
        lo, hi = (lo, mid) if passes(mid) else (mid, hi)
    return hi


def prune_until_fits(sparsity: float, size_at: Callable[[float], int], budget: int,
                     highest: float, steps: int = REFIT_EXTRA_STEPS) -> tuple[float, int]:
    """``(s, size_at(s))`` for the first of ``sparsity``, then up to ``steps`` further
    ``REFINE_STEP``s (not beyond ``highest``), whose size fits ``budget``, or the last
    one tried. ``size_at`` is called in increasing order (pruning a model in place)."""
    size = size_at(sparsity)
    for _ in range(steps):
        if size <= budget or sparsity + REFINE_STEP > highest + 1e-9:
            break
        sparsity = round(sparsity + REFINE_STEP, 4)
        size = size_at(sparsity)
    return sparsity, size


def finetune_sparsities(fitting: Sequence[float], settings: Settings,
                        fast_enough: Sequence[float] = ()) -> list[float]:
    """The sparsities of one architecture to fine-tune, ascending: the lowest that fits,
    the next ``settings.extra_candidates`` probe-grid sparsities above it, the high
    sparsity when it fits, and the lowest of ``fast_enough`` (speed budget)."""
    lowest = min(fitting)
    coarse_above = [s for s in PROBE_SPARSITIES if s > lowest]
    chosen = {lowest, *coarse_above[: settings.extra_candidates]}
    if settings.high_sparsity is not None and settings.high_sparsity in fitting:
        chosen.add(settings.high_sparsity)
    chosen.update(sorted(fast_enough)[:1])
    return sorted(chosen)


def try_smaller(lowest_fitting: float | None, speed_budget: bool) -> bool:
    """Whether the next, smaller architecture is worth training."""
    return speed_budget or lowest_fitting is None or lowest_fitting > TRY_SMALLER_ABOVE


def tolerance(best_accuracy: float, n_val: int) -> float:
    """One standard error of a validation accuracy: ``sqrt(p (1 - p) / n_val)``."""
    return float(np.sqrt(best_accuracy * (1 - best_accuracy) / max(n_val, 1)))


def select(tuned: Sequence[Candidate], n_val: int) -> tuple[Candidate, float]:
    """The selection rule: the smallest model (C bytes) among the fine-tuned candidates
    whose validation accuracy is within one standard error of the best one's
    (``tolerance``): differences below it are validation noise, while fewer bytes also
    mean fewer multiply-accumulates on the board. Returns ``(candidate, tolerance)``."""
    best_acc = max(c.val_accuracy for c in tuned)
    tol = tolerance(best_acc, n_val)
    tied = [c for c in tuned if c.val_accuracy >= best_acc - tol - 1e-12]
    return min(tied, key=lambda c: (c.model_bytes, -c.val_accuracy)), tol


def within_speed_budget(tuned: Sequence[Candidate], max_instructions: int, budget: int,
                        board: str) -> list[Candidate]:
    """The candidates within ``max_instructions``; raises ``NoFitError`` naming the
    fastest when none is."""
    fast = [c for c in tuned if c.instructions_per_window <= max_instructions]
    if not fast:
        quickest = min(tuned, key=lambda c: c.instructions_per_window)
        raise NoFitError(
            f"no fine-tuned configuration that fits {budget} B runs within "
            f"{max_instructions} instructions per window on {board}; the fastest is "
            f"{quickest.arch} at {quickest.sparsity:.0%} sparsity: "
            f"{quickest.instructions_per_window} instructions, validation accuracy "
            f"{100 * quickest.val_accuracy:.2f}%")
    return fast


def no_fit(candidates: Sequence[Candidate], budget: int) -> NoFitError:
    """The error when no candidate fits ``budget``, naming the smallest one reached."""
    smallest = min(candidates, key=lambda c: c.model_bytes)
    return NoFitError(
        f"no configuration fits {budget} B; the smallest C model reached is "
        f"{smallest.model_bytes} B ({smallest.arch} at {smallest.sparsity:.0%} sparsity, "
        f"validation accuracy {100 * smallest.val_accuracy:.2f}% one-shot, not fine-tuned)")


def best_member(members: Sequence[DenseResult]) -> int:
    """Index of the dense member best on validation (float); the first on a tie."""
    scores = [m.val_accuracy_float for m in members]
    return scores.index(max(scores))
