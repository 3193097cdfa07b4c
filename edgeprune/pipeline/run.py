"""A pipeline run: the search composed from stages, then refit, export and report.

Selection reads validation accuracy of the C int8 model only; the test split is
evaluated once, for the shipped model (``artifacts.export_model``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

import har_data
from edgeprune import pruning, training
from edgeprune.executor import Executor, open_executor
from edgeprune.pipeline import artifacts, board, floor, stages
from edgeprune.pipeline import report as rpt
from edgeprune.pipeline import search as rules
from edgeprune.pipeline.config import RunConfig
from edgeprune.pipeline.driver import Driver, Pending
from edgeprune.pipeline.progress import log
from edgeprune.pipeline.records import (
    Arch,
    Candidate,
    CandidateSpeed,
    DenseRefit,
    DenseResult,
    ExportResult,
    RefitResult,
    SizeProbes,
    SpeedProbe,
    SpeedProbes,
    Weights,
)
from edgeprune.pipeline.reportfile import REPORT_JSON, UnreadableReport, read_report
from edgeprune.pipeline.rundir import OutDirError, RunDir
from edgeprune.pipeline.search import NoFitError
from edgeprune.pipeline.stages import StageContext

__all__ = ["NoFitError", "SearchResult", "run", "search"]


@dataclass(frozen=True)
class SearchResult:
    """What the search found: every candidate (probes and fine-tunes, the selected one
    marked), the selected one, the selection's tolerance, the speed probes and the
    dense members of each architecture trained (the parent: ``search.best_member``)."""

    candidates: list[Candidate]
    best: Candidate
    tolerance: float
    speed_probes: list[SpeedProbe]
    members: dict[str, list[DenseResult]]  # per architecture, every dense member


def _subset(ds: har_data.HarDataset, n: int | None, seed: int) -> har_data.HarDataset:
    if n is None:
        return ds
    rng = np.random.default_rng(seed)

    def pick(split: har_data.Split) -> har_data.Split:
        idx = np.sort(rng.choice(len(split), size=min(n, len(split)), replace=False))
        return split.take(idx)

    return dataclasses.replace(ds, train=pick(ds.train), val=pick(ds.val), test=pick(ds.test))



def _dense(driver: Driver, arch: Arch) -> list[Pending]:
    k = driver.config.seeds
    log(f"training dense {driver.ctx.family.name} {arch.label}"
        + (f" from {k} seeds" if k > 1 else ""))
    tags = [stages.dense_tag(arch, m) for m in range(k)]
    return [driver.submit(tag, DenseResult, stages.train_dense, arch, m, weights=tag)
            for m, tag in enumerate(tags)]


def _trained(driver: Driver, archs: tuple[Arch, ...],
             speed: bool) -> Iterator[tuple[Arch, list[tuple[DenseResult, Weights]]]]:
    """Each architecture with its trained dense members. Under a speed budget every
    architecture trains at once and comes back as soon as its members finish; otherwise
    one at a time, in order, each submitted only when the search asks for it."""
    if speed:
        yield from driver.collect_groups({a: _dense(driver, a) for a in archs})
        return
    for arch in archs:
        yield arch, driver.collect_all(_dense(driver, arch))


def search(driver: Driver) -> SearchResult:
    """Dense models, size (and speed) probes, fine-tunes, selection: independent stages
    are submitted together and run in parallel on the driver's executor; each result is
    used as soon as it is in (the records are put back in architecture order)."""
    cfg, family = driver.config, driver.ctx.family
    archs = family.archs_quick if cfg.quick else family.archs_full
    speed = cfg.max_instructions is not None
    candidates: list[Candidate] = []
    speed_probes: list[SpeedProbe] = []
    members: dict[str, list[DenseResult]] = {}
    finetunes: list[Pending] = []
    for arch, trained in _trained(driver, archs, speed):
        members[arch.label] = [r for r, _ in trained]
        dense, dense_weights = trained[rules.best_member(members[arch.label])]
        teachers = [w for _, w in trained] if len(trained) > 1 else None
        if teachers:
            log(f"{arch.label}: pruning the member best on validation (seed {dense.seed}), "
                f"distilling from the mean of {len(trained)}")
        if dense.training_warning:
            driver.warn(f"dense {arch.label}: {dense.training_warning}")
        log(f"measuring C model sizes of {arch.label} over sparsities")
        probes, _ = driver.collect(driver.submit(f"probe-{arch.label}", SizeProbes,
                                                 stages.probe_sizes, arch, dense_weights))
        candidates += probes.rows
        fitting = sorted({r.sparsity for r in probes.rows if r.fits})
        if not fitting:
            log(f"{arch.label}: no sparsity up to {rules.PROBE_SPARSITIES[-1]:.0%} fits")
            continue
        fast: list[float] = []
        if speed:
            log(f"measuring instructions per window of {arch.label} on {board.BOARD}")
            rows, _ = driver.collect(driver.submit(f"speed-{arch.label}", SpeedProbes,
                                                   stages.probe_speed, arch, dense_weights,
                                                   fitting))
            speed_probes += rows.rows
            fast = [r.sparsity for r in rows.rows
                    if r.instructions_per_window <= cfg.max_instructions]
        for s in rules.finetune_sparsities(fitting, cfg.settings, fast):
            tag = stages.finetune_tag(arch, s)
            log(f"pruning {arch.label} to {100 * s:.1f}% and fine-tuning")
            finetunes.append(driver.submit(tag, Candidate, stages.finetune, arch,
                                           dense_weights, s, teachers, weights=tag))
        if not rules.try_smaller(fitting[0], speed):
            break
    timings: list[Pending] = []

    def time_on_board(run: tuple[Candidate, Weights]) -> None:
        tuned, weights = run  # under a speed budget, timed while others still fine-tune
        if speed and tuned.fits:
            timings.append(driver.submit(f"speed-{tuned.weights}", CandidateSpeed,
                                         stages.candidate_speed, tuned, weights))

    candidates += [c for c, _ in driver.collect_all(finetunes, then=time_on_board)]
    counts = {r.weights: r.instructions_per_window for r, _ in driver.collect_all(timings)}
    candidates = [dataclasses.replace(c, instructions_per_window=counts[c.weights])
                  if c.weights in counts else c for c in candidates]
    order = {a.label: i for i, a in enumerate(archs)}
    candidates.sort(key=lambda c: (c.finetuned, order[c.arch], c.finetuned_sparsity
                                   if c.finetuned_sparsity is not None else c.sparsity))
    speed_probes.sort(key=lambda r: (order[r.arch], r.sparsity))
    fitting_tuned = [c for c in candidates if c.finetuned and c.fits]
    if not fitting_tuned:
        raise rules.no_fit(candidates, cfg.budget_bytes)
    if speed:
        fitting_tuned = rules.within_speed_budget(fitting_tuned, cfg.max_instructions,
                                                  cfg.budget_bytes, board.BOARD)
    best, tolerance = rules.select(fitting_tuned, len(driver.ctx.ds.val))
    within = " (within the speed budget)" if speed else ""
    log(f"selected {best.arch} at {best.sparsity:.0%}: the smallest fine-tuned "
        f"candidate{within} within {100 * tolerance:.2f} pp (one standard error) of "
        "the best validation accuracy")
    candidates = [dataclasses.replace(c, selected=c.finetuned and c.weights == best.weights)
                  for c in candidates]
    best = dataclasses.replace(best, selected=True)
    return SearchResult(candidates, best, tolerance, speed_probes,
                        {a: members[a] for a in sorted(members, key=order.__getitem__)})


def refit_stage(driver: Driver, best: Candidate,
                members: list[DenseResult]) -> tuple[RefitResult, Weights]:
    """The refit: every dense member trained again on training + validation (in
    parallel), then the selected candidate's pruning and fine-tuning from the selected
    member's refit, distilling from all of them."""
    log(f"refitting {best.arch} at {best.sparsity:.0%} on the training and validation "
        "volunteers together")
    tag, arch = f"refit-{best.weights}", best.spec
    parent = rules.best_member(members)
    denses: list[Weights] = []
    if driver.rd.stored(tag) is None:  # a finished refit needs none of its inputs
        tags = [f"refit-{stages.dense_tag(arch, m)}" for m in range(len(members))]
        denses = [w for _, w in driver.collect_all([
            driver.submit(tag_m, DenseRefit, stages.refit_dense, arch, m, members[m],
                          weights=tag_m) for m, tag_m in enumerate(tags)])]
    return driver.collect(driver.submit(
        tag, RefitResult, stages.refit, best, members[parent],
        denses[parent] if denses else None, denses, weights=tag))


def export(driver: Driver, shipped: Candidate, weights: Weights) -> ExportResult:
    log("exporting the shipped model (Keras, TFLite int8/sparse, TFLM array, C model)")
    result, _ = driver.collect(driver.submit("export", ExportResult, artifacts.export_model,
                                             shipped, weights, files=True))
    return result


def run(config: RunConfig, executor: Executor | None = None) -> dict[str, Any]:
    """Run the pipeline; returns the report (also written to ``--out``). The stages go
    to ``executor`` when given (it stays open), else to one opened for ``config``. The
    run folder is locked while it runs; a rerun resumes only on the same arguments and
    the same data (``har_data.fingerprint``: what the files hold, wherever they are)."""
    start = time.perf_counter()
    config = dataclasses.replace(
        config, data_fingerprint=har_data.fingerprint(config.data, config.data_path))
    with RunDir(config.out, config.identity(), config.legacy_identity()).open() as rd:
        try:
            return _run(config, rd, start, executor)
        except BaseException:  # bad data, Ctrl-C, SIGTERM before any stage finished:
            rd.discard_unstarted()  # --out as it was found (a started run stays resumable)
            raise


def _run(config: RunConfig, rd: RunDir, start: float,
         executor: Executor | None) -> dict[str, Any]:
    if rd.resumed:
        try:  # the run ends by merging into its report: refuse now, not after training
            read_report(rd.root / REPORT_JSON)
        except UnreadableReport as err:
            raise OutDirError(f"--out {rd.root}: {err}: move it away to resume "
                              "(nothing was overwritten)") from None
        log(f"resuming the run in {rd.root}")
    training.pin_threads()  # the same bytes whatever the worker count (see pin_threads)
    ds = har_data.load(config.data, path=config.data_path, seed=config.seed)
    ds = _subset(ds, config.settings.subset, config.seed)
    sizes = {s: len(getattr(ds, s)) for s in ("train", "val", "test")}
    log(f"data: {ds.name} {sizes} (validation volunteers {list(ds.val_subjects)})")
    floor.check_budget(config, ds)  # an impossible budget is refused before any training
    data_seconds = time.perf_counter() - start
    with contextlib.ExitStack() as stack:
        # one inter-op thread per worker where dense models train side by side (a speed
        # budget trains every architecture at once); the default run's lone dense model
        # keeps TensorFlow's default (219 s alone, 263 s with one inter-op thread)
        ex = executor or stack.enter_context(open_executor(
            config.workers, config.ray_address,
            inter_op=1 if config.max_instructions is not None else None))
        log(f"stages run {ex.describe()}")
        driver = Driver(config, rd, ex, StageContext(config, ds))
        found = search(driver)
        selected = found.best
        shipped, shipped_weights, refit = selected, driver.load_weights(selected.weights), None
        if config.refit:
            refit, refit_weights = refit_stage(driver, selected, found.members[selected.arch])
            if refit.fits:
                shipped = dataclasses.replace(
                    selected, weights=refit.weights, sparsity=refit.sparsity,
                    model_bytes=refit.model_bytes,
                    instructions_per_window=refit.instructions_per_window)
                shipped_weights = refit_weights
                if refit.sparsity != selected.sparsity:
                    log(f"the refit model was pruned on to {refit.sparsity:.0%} to fit")
            else:
                log("the refit model does not fit the budget(s): shipping the "
                    "validation-selected model")
        exported = export(driver, shipped, shipped_weights)
        executor_info = {"workers": ex.workers, "description": ex.describe(),
                         "startup_seconds": round(ex.startup_seconds, 2)}
    if collapsed := pruning.collapsed_layers(exported.per_layer):
        driver.warn("layer collapse: " + "; ".join(collapsed))
    mcu = board.firmware(driver, shipped, shipped_weights)
    report = rpt.build_report(
        config=config, ds=ds, candidates=found.candidates, shipped=shipped,
        tolerance=found.tolerance, speed_probes=found.speed_probes, exported=exported,
        members=found.members,
        refit=refit, mcu=mcu,
        stage_log=driver.log, data_seconds=data_seconds, executor=executor_info,
        warnings=driver.warnings)
    rpt.write_all(report, rd.root)
    print(rpt.summary_table(report))
    print(f"everything is in {rd.root}")
    return report
