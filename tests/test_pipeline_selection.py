"""The pipeline's selection rule (fast; the end-to-end runs are in test_pipeline.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeprune.executor import InProcess
from edgeprune.pipeline import measure, stages
from edgeprune.pipeline.config import RunConfig
from edgeprune.pipeline.driver import Driver
from edgeprune.pipeline.records import (
    Arch,
    Candidate,
    CandidateSpeed,
    DenseResult,
    SizeProbes,
    SpeedProbe,
    SpeedProbes,
)
from edgeprune.pipeline.run import search as run_search
from edgeprune.pipeline.rundir import RunDir
from edgeprune.pipeline.search import (
    bisect_sparsity,
    finetune_sparsities,
    prune_until_fits,
    select,
    try_smaller,
)

PAPER_ARCH = Arch(80, 5, 40)


def _cand(acc: float, size: int, sparsity: float, arch: Arch = PAPER_ARCH,
          *, tuned: bool = True, fits: bool = True) -> Candidate:
    return Candidate(arch=arch.label, hidden=arch.hidden, w_rank=arch.w_rank,
                     u_rank=arch.u_rank, filters=arch.filters, sparsity=sparsity,
                     finetuned=tuned, fits=fits, model_bytes=size, code_bytes=0, ram_bytes=0,
                     toolchain="host-gcc", val_accuracy=acc,
                     weights=f"{arch.label}-{sparsity}" if tuned else None)


def test_prefers_the_smallest_candidate_within_one_standard_error():
    tuned = [_cand(0.950, 7000, 0.0), _cand(0.947, 4700, 0.5), _cand(0.946, 1500, 0.9)]
    best, tol = select(tuned, n_val=2000)
    assert tol == pytest.approx(math.sqrt(0.95 * 0.05 / 2000))  # 0.0049
    assert best.sparsity == 0.9


def test_a_clearly_worse_small_candidate_is_not_selected():
    tuned = [_cand(0.950, 7000, 0.0), _cand(0.947, 4700, 0.5), _cand(0.930, 1500, 0.9)]
    best, _ = select(tuned, n_val=2000)
    assert best.sparsity == 0.5


def test_more_validation_data_narrows_the_tie():
    tuned = [_cand(0.950, 7000, 0.0), _cand(0.947, 4700, 0.5)]
    assert select(tuned, n_val=2000)[0].sparsity == 0.5
    assert select(tuned, n_val=200_000)[0].sparsity == 0.0


def test_equal_size_prefers_the_more_accurate():
    tuned = [_cand(0.940, 3000, 0.7), _cand(0.942, 3000, 0.7)]
    assert select(tuned, n_val=2000)[0].val_accuracy == 0.942


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


def test_finetune_sparsities_are_the_lowest_fit_the_next_grid_steps_and_the_fast_one():
    full, quick = _settings(False), _settings(True)
    assert finetune_sparsities([0.5, 0.7, 0.8, 0.9], full) == [0.5, 0.7, 0.9]
    assert finetune_sparsities([0.93, 0.95], full) == [0.93, 0.95]  # 0.9 does not fit
    assert finetune_sparsities([0.5, 0.7], quick) == [0.5]
    assert finetune_sparsities([0.5, 0.7, 0.9], quick, fast_enough=[0.82, 0.9]) == [0.5, 0.82]


def test_a_smaller_architecture_is_worth_training_only_at_high_sparsity_or_for_speed():
    assert not try_smaller(0.5, speed_budget=False)
    assert not try_smaller(0.9, speed_budget=False)
    assert try_smaller(0.91, speed_budget=False)
    assert try_smaller(None, speed_budget=False)  # nothing fits
    assert try_smaller(0.0, speed_budget=True)


def _settings(quick: bool):
    from edgeprune.pipeline.config import Settings

    return Settings.for_mode(quick)


def _config(out, max_instructions=None) -> RunConfig:
    """A full-size FastGRNN run at 8 KiB (hapt data, no firmware) into ``out``."""
    return RunConfig(model="fastgrnn", budget_kb=8.0, data="hapt", data_path=None, out=out,
                     seed=0, min_threshold=0.0005, max_instructions=max_instructions,
                     refit=False, quick=False, firmware=False, workers=1, ray_address=None)


class _SearchOnly:
    """The driver's search, in process, with its stages replaced by measurements made
    up: architecture ``a`` fits the byte budget from sparsity ``fit[a]`` and runs fast
    enough from ``fast[a]``; validation accuracy falls with sparsity. Records the
    architectures trained."""

    def __init__(self, tmp_path, monkeypatch, fit: dict, fast: dict, max_instructions):
        config = _config(tmp_path / "run", max_instructions)
        ds = type("DS", (), {"val": range(2000)})()
        self.driver = Driver(config, RunDir(config.out, config.identity()).open(),
                             InProcess(), stages.StageContext(config, ds))
        self.fit, self.fast, self.trained = fit, fast, []
        self.driver.load_weights = lambda tag: [np.zeros(1)]

        def train_dense(ctx, arch, member=0):
            self.trained.append(arch.label)
            return DenseResult(arch.label, 0.9, 1, 1, 1, None), [np.zeros(1)]

        def probe_speed(ctx, arch, dense, fitting):
            return SpeedProbes(tuple(SpeedProbe(arch.label, s, self._count(arch.label, s))
                                            for s in fitting))

        monkeypatch.setattr(stages, "train_dense", train_dense)
        monkeypatch.setattr(stages, "probe_sizes", lambda ctx, arch, dense: SizeProbes(tuple(
            self._row(arch, s, False) for s in (0.0, 0.5, 0.7, 0.8, 0.9, 0.95))))
        monkeypatch.setattr(stages, "probe_speed", probe_speed)
        monkeypatch.setattr(stages, "finetune", lambda ctx, arch, dense, s, teachers=None: (
            self._row(arch, s, True), [np.zeros(1)]))
        monkeypatch.setattr(stages, "candidate_speed", lambda ctx, c, w: CandidateSpeed(
            c.weights, self._count(c.arch, c.sparsity)))

    def _count(self, arch: str, s: float) -> int:
        return 9 if s >= self.fast[arch] else 11

    def _row(self, arch, s, tuned):
        return _cand(0.96 - 0.05 * s - (0.05 if arch.hidden < 80 else 0), int(8000 * (1 - s)),
                     s, arch, tuned=tuned, fits=s >= self.fit[arch.label])

    def search(self):
        found = run_search(self.driver)
        return found.candidates, found.best


def test_a_smaller_architecture_is_tried_when_the_byte_budget_needs_high_sparsity(
        tmp_path, monkeypatch):
    big, small = "h80-w5-u40", "h48-w5-u16"
    search = _SearchOnly(tmp_path, monkeypatch, {big: 0.5, small: 0.0}, {big: 0.0, small: 0.0},
                         None)
    search.search()
    assert search.trained == [big]  # fits at 50%: the smaller one is not trained
    search = _SearchOnly(tmp_path / "a", monkeypatch, {big: 0.95, small: 0.0},
                         {big: 0.0, small: 0.0}, None)
    candidates, _ = search.search()
    assert search.trained == [big, small]  # fits only at 95%: the smaller one is tried too
    assert any(c.arch == small and c.finetuned for c in candidates)


def test_under_a_speed_budget_every_architecture_is_tried_and_only_fast_ones_win(
        tmp_path, monkeypatch):
    big, small = "h80-w5-u40", "h48-w5-u16"
    search = _SearchOnly(tmp_path, monkeypatch, {big: 0.5, small: 0.0}, {big: 0.95, small: 0.0},
                         10)
    candidates, best = search.search()
    assert search.trained == [big, small]
    assert 0.95 in {c.sparsity for c in candidates if c.arch == big and c.finetuned}
    assert best.instructions_per_window <= 10  # big is fast only at 95%
    assert all(c.instructions_per_window > 10 for c in candidates
               if c.arch == big and c.finetuned and c.sparsity < 0.95)
    assert sum(c.selected for c in candidates) == 1
    search = _SearchOnly(tmp_path / "b", monkeypatch, {big: 0.5, small: 0.0},
                         {big: 0.5, small: 0.0}, 10)
    _, best = search.search()
    assert search.trained == [big, small]
    assert best.arch == big and best.sparsity == 0.5  # the most accurate fast one


def test_a_finetuned_candidate_over_the_budget_is_pruned_on_until_it_fits(tmp_path,
                                                                          monkeypatch):
    """Real model and masks; only the C build's byte count is replaced by one that grows
    with the nonzero weights (4 bytes short of fitting at 73%)."""
    import dataclasses

    from edgeprune import pruning

    arch = Arch(hidden=80, w_rank=5, u_rank=40)
    config = _config(tmp_path / "run")
    ctx = stages.StageContext(config, None)
    dense = ctx.model(arch).get_weights()

    def nonzeros(model) -> int:
        weights = pruning.collect_prunable(model)
        return int(sum(np.count_nonzero(w.variable.numpy()) for w in weights))

    total = sum(w.size for w in pruning.collect_prunable(ctx.model(arch)))
    budget_kb = (int(total * (1 - 0.73)) - 4) / 1024  # 73% is just over, 74% fits
    ctx = stages.StageContext(dataclasses.replace(config, budget_kb=budget_kb), None)

    def one_shot(ctx, model, teacher, sparsity, *a, **k):
        ctx.prune(model, sparsity)
        return 3

    monkeypatch.setattr(stages, "_prune_and_finetune", one_shot)
    monkeypatch.setattr(stages.StageContext, "xy", lambda self, *splits: (None, None))
    monkeypatch.setattr(measure, "c_bytes", lambda family, ds, model: nonzeros(model))
    monkeypatch.setattr(measure, "measure", lambda family, ds, model, kernels="fast": (
        measure.Measured(nonzeros(model), 0, 0, "host-gcc", nonzeros(model) / total)))
    row, weights = stages.finetune(ctx, arch, dense, 0.73)
    assert row.finetuned_sparsity == 0.73 and row.sparsity == 0.74
    assert row.fits and row.model_bytes <= ctx.config.budget_bytes
    shipped = ctx.model(arch, weights)  # the shipped weights are the pruned-on ones
    assert nonzeros(shipped) == row.model_bytes
    assert row.val_accuracy == pytest.approx(nonzeros(shipped) / total)  # measured again
    ctx = stages.StageContext(dataclasses.replace(config, budget_kb=total / 1024), None)
    row, _ = stages.finetune(ctx, arch, dense, 0.5)  # one that fits is left as it is
    assert row.sparsity == row.finetuned_sparsity == 0.5


def test_kernels_option_reaches_the_config_and_identity(tmp_path):
    """``--kernels small`` is part of the run's identity (a fast run's folder is not
    resumed as a small one); the default fast leaves the identity as before."""
    import dataclasses

    from edgeprune.pipeline.cli import build_parser

    args = build_parser().parse_args(["--kernels", "small", "--out", str(tmp_path)])
    config = RunConfig.from_args(args)
    assert config.kernels == "small" and config.identity()["kernels"] == "small"
    fast = RunConfig.from_args(build_parser().parse_args(["--out", str(tmp_path)]))
    assert fast.kernels == "fast" and "kernels" not in fast.identity()
    assert dataclasses.replace(_config(tmp_path), kernels="fast").identity() == \
        _config(tmp_path).identity()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--kernels", "tiny"])
