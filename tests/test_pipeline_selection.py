"""The pipeline's selection rule (fast; the end-to-end runs are in test_pipeline.py)."""

from __future__ import annotations

import math

import pytest

from edgeprune.pipeline.run import bisect_sparsity, select


def _cand(acc: float, size: int, sparsity: float) -> dict:
    return {"val_accuracy": acc, "model_bytes": size, "sparsity": sparsity}


def test_prefers_the_smallest_candidate_within_one_standard_error():
    tuned = [_cand(0.950, 7000, 0.0), _cand(0.947, 4700, 0.5), _cand(0.946, 1500, 0.9)]
    best, tol = select(tuned, n_val=2000)
    assert tol == pytest.approx(math.sqrt(0.95 * 0.05 / 2000))  # 0.0049
    assert best["sparsity"] == 0.9


def test_a_clearly_worse_small_candidate_is_not_selected():
    tuned = [_cand(0.950, 7000, 0.0), _cand(0.947, 4700, 0.5), _cand(0.930, 1500, 0.9)]
    best, _ = select(tuned, n_val=2000)
    assert best["sparsity"] == 0.5


def test_more_validation_data_narrows_the_tie():
    tuned = [_cand(0.950, 7000, 0.0), _cand(0.947, 4700, 0.5)]
    assert select(tuned, n_val=2000)[0]["sparsity"] == 0.5
    assert select(tuned, n_val=200_000)[0]["sparsity"] == 0.0


def test_equal_size_prefers_the_more_accurate():
    tuned = [_cand(0.940, 3000, 0.7), _cand(0.942, 3000, 0.7)]
    assert select(tuned, n_val=2000)[0]["val_accuracy"] == 0.942


def test_bisection_finds_the_lowest_passing_sparsity_on_the_grid():
    tried = []

    def passes(s: float) -> bool:
        tried.append(s)
        return s >= 0.934

    assert bisect_sparsity(0.9, 0.95, passes) == 0.94
    assert all(round(s, 2) == s for s in tried)  # grid points only
    assert len(tried) <= 4
    assert bisect_sparsity(0.9, 0.91, passes) == 0.91 and len(tried) <= 4  # nothing between
