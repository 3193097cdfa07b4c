"""The pipeline's selection rule (fast; the end-to-end runs are in test_pipeline.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeprune.pipeline.run import bisect_sparsity, prune_until_fits, select


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


def test_prune_until_fits_steps_up_the_grid_only_as_far_as_needed():
    calls = []

    def size_at(s: float) -> int:
        calls.append(s)
        return int(round(3100 - 1000 * (s - 0.73)))  # 3100 B at 73%, 10 B less per step

    assert prune_until_fits(0.73, size_at, 3100, 0.99) == (0.73, 3100) and calls == [0.73]
    calls.clear()
    assert prune_until_fits(0.73, size_at, 3085, 0.99) == (0.75, 3080)
    assert calls == [0.73, 0.74, 0.75]  # increasing, on the grid
    calls.clear()
    assert prune_until_fits(0.73, size_at, 3000, 0.99, steps=3) == (0.76, 3070)  # gives up
    calls.clear()
    assert prune_until_fits(0.73, size_at, 3000, 0.745) == (0.74, 3090)  # MT's ceiling


def test_bisection_finds_the_lowest_passing_sparsity_on_the_grid():
    tried = []

    def passes(s: float) -> bool:
        tried.append(s)
        return s >= 0.934

    assert bisect_sparsity(0.9, 0.95, passes) == 0.94
    assert all(round(s, 2) == s for s in tried)  # grid points only
    assert len(tried) <= 4
    assert bisect_sparsity(0.9, 0.91, passes) == 0.91 and len(tried) <= 4  # nothing between


def _pipeline(out, max_instructions=None):
    """A full-size FastGRNN ``Pipeline`` at 8 KiB (hapt data, no firmware) into ``out``."""
    import argparse

    from edgeprune.pipeline.run import Pipeline

    return Pipeline(argparse.Namespace(
        model="fastgrnn", budget_kb=8.0, data="hapt", data_path=None, seed=0,
        min_threshold=0.0005, quick=False, max_instructions=max_instructions, out=out,
        no_firmware=True))


class _SearchOnly:
    """The search's decisions with its measurements replaced: architecture ``a`` fits
    the byte budget from sparsity ``fit[a]`` and runs fast enough from ``fast[a]``;
    validation accuracy falls with sparsity. Records the architectures trained."""

    def __init__(self, tmp_path, fit: dict, fast: dict, max_instructions):
        self.p = _pipeline(tmp_path / "run", max_instructions)
        self.fit, self.fast, self.trained = fit, fast, []
        self.p.ds = type("DS", (), {"val": range(2000)})()
        self.p.train_dense = lambda arch: self.trained.append(arch.label)
        self.p.probe_sizes = lambda arch: {"rows": [
            self._row(arch, s, False) for s in (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)]}
        self.p.probe_speed = lambda arch, fitting: {"rows": [
            {"sparsity": s, "instructions_per_window": 9 if s >= self.fast[arch.label] else 11}
            for s in fitting]}
        self.p.finetune = lambda arch, s: self._row(arch, s, True)
        self.p.candidate_speed = lambda c: 9 if c["sparsity"] >= self.fast[c["arch"]] else 11

    def _row(self, arch, s, tuned):
        return {"arch": arch.label, **arch.as_dict(), "sparsity": s, "finetuned": tuned,
                "fits": s >= self.fit[arch.label], "model_bytes": int(8000 * (1 - s)),
                "val_accuracy": 0.96 - 0.05 * s - (0.05 if arch.hidden < 80 else 0),
                "weights": f"{arch.label}-{s}"}


def test_a_smaller_architecture_is_tried_when_the_byte_budget_needs_high_sparsity(tmp_path):
    big, small = "h80-w5-u40", "h48-w5-u16"
    search = _SearchOnly(tmp_path, {big: 0.5, small: 0.0}, {big: 0.0, small: 0.0}, None)
    search.p.search()
    assert search.trained == [big]  # fits at 50%: the smaller one is not trained
    search = _SearchOnly(tmp_path / "a", {big: 0.95, small: 0.0}, {big: 0.0, small: 0.0}, None)
    candidates, _ = search.p.search()
    assert search.trained == [big, small]  # fits only at 95%: the smaller one is tried too
    assert any(c["arch"] == small and c["finetuned"] for c in candidates)


def test_under_a_speed_budget_every_architecture_is_tried_and_only_fast_ones_win(tmp_path):
    big, small = "h80-w5-u40", "h48-w5-u16"
    search = _SearchOnly(tmp_path, {big: 0.5, small: 0.0}, {big: 0.95, small: 0.0}, 10)
    candidates, best = search.p.search()
    assert search.trained == [big, small]
    assert 0.95 in {c["sparsity"] for c in candidates if c["arch"] == big and c["finetuned"]}
    assert best["instructions_per_window"] <= 10  # big is fast only at 95%
    assert all(c["instructions_per_window"] > 10 for c in candidates
               if c["arch"] == big and c["finetuned"] and c["sparsity"] < 0.95)
    search = _SearchOnly(tmp_path / "b", {big: 0.5, small: 0.0}, {big: 0.5, small: 0.0}, 10)
    _, best = search.p.search()
    assert search.trained == [big, small]
    assert best["arch"] == big and best["sparsity"] == 0.5  # the most accurate fast one


def test_a_finetuned_candidate_over_the_budget_is_pruned_on_until_it_fits(tmp_path):
    """Real model, masks and weight files; only the C build's byte count is replaced by
    one that grows with the nonzero weights (4 bytes short of fitting at 73%)."""
    from edgeprune import pruning
    from edgeprune.pipeline.families import Arch

    p = _pipeline(tmp_path / "run")
    arch = Arch(hidden=80, w_rank=5, u_rank=40)
    p._save_weights(p.family.build(arch, 0), f"dense-{arch.label}")

    def nonzeros(model) -> int:
        weights = pruning.collect_prunable(model)
        return int(sum(np.count_nonzero(w.variable.numpy()) for w in weights))

    total = sum(w.size for w in pruning.collect_prunable(p.family.build(arch, 0)))
    p.budget = int(total * (1 - 0.73)) - 4  # 73% is just over, 74% fits

    def one_shot(model, teacher, sparsity, *a, **k):
        pruning.apply_masks(model, pruning.make_masks(model, "global_mt", sparsity,
                                                      p.args.min_threshold, 0))
        return 3

    p._prune_and_finetune = one_shot
    p._xy = lambda *splits: (None, None)  # one_shot trains on nothing
    p._c_bytes = lambda model, workdir: nonzeros(model)
    p._measure = lambda model, workdir: {"model_bytes": nonzeros(model),
                                         "val_accuracy": nonzeros(model) / total}
    row = p.finetune(arch, 0.73)
    assert row["finetuned_sparsity"] == 0.73 and row["sparsity"] == 0.74
    assert row["fits"] and row["model_bytes"] <= p.budget
    saved = p._load(arch, row["weights"])  # the shipped weights are the pruned-on ones
    assert nonzeros(saved) == row["model_bytes"]
    assert row["val_accuracy"] == pytest.approx(nonzeros(saved) / total)  # measured again
    p.budget = total  # a candidate that fits is left as it is
    row = p.finetune(arch, 0.5)
    assert row["sparsity"] == row["finetuned_sparsity"] == 0.5
