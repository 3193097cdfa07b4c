"""A pipeline run: the stages composed on an executor, their results kept in the run folder.

The driver (this module) is the only writer of ``--out``: each stage returns its record
(and weights or files) as values, which are stored as ``stages/<name>.json`` and
``models/<tag>.npz`` the moment the stage finishes, in whatever order stages finish. A
rerun of the same command reuses every stored stage. Selection reads validation accuracy
of the C int8 model only; the test split is evaluated once, for the shipped model.
"""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import har_data
from edgeprune import pruning, training
from edgeprune.executor import Executor, StageRun, open_executor, run_timed
from edgeprune.pipeline import artifacts, board, search, stages
from edgeprune.pipeline import report as rpt
from edgeprune.pipeline.config import RunConfig
from edgeprune.pipeline.progress import log
from edgeprune.pipeline.records import (
    Candidate,
    CandidateSpeed,
    DenseResult,
    ExportResult,
    Record,
    RefitResult,
    SizeProbes,
    SpeedProbe,
    SpeedProbes,
    StageInfo,
    StageLog,
    Weights,
)
from edgeprune.pipeline.reportfile import REPORT_JSON, UnreadableReport, read_report
from edgeprune.pipeline.rundir import OutDirError, RunDir, atomic_write_bytes
from edgeprune.pipeline.search import NoFitError
from edgeprune.pipeline.stages import StageContext

__all__ = ["NoFitError", "run"]


@dataclass
class Pending:
    """A submitted stage (``handle`` None: its result is stored from an earlier run)."""

    name: str
    record_type: type[Record]
    handle: Any
    weights: str | None  # models/<weights>.npz holds its weights
    files: bool  # it returns files for the run folder
    done: StageRun | None = None  # run on the driver (``run_here``)


def _subset(ds: har_data.HarDataset, n: int | None, seed: int) -> har_data.HarDataset:
    if n is None:
        return ds
    rng = np.random.default_rng(seed)

    def pick(split: har_data.Split) -> har_data.Split:
        idx = np.sort(rng.choice(len(split), size=min(n, len(split)), replace=False))
        return split.take(idx)

    return dataclasses.replace(ds, train=pick(ds.train), val=pick(ds.val), test=pick(ds.test))


class Driver:
    """Submits stages to the executor and stores what they return."""

    def __init__(self, config: RunConfig, rd: RunDir, executor: Executor,
                 ctx: StageContext):
        self.config, self.rd, self.ex, self.ctx = config, rd, executor, ctx
        self._ctx_handle = executor.put(ctx)
        self.log = StageLog()
        self.warnings: list[str] = []

    # ------------------------------------------------------------- storage
    def _save_weights(self, tag: str, weights: Weights) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, *weights)
        atomic_write_bytes(self.rd.path("models", f"{tag}.npz"), buffer.getvalue())

    def load_weights(self, tag: str) -> Weights:
        with np.load(self.rd.path("models", f"{tag}.npz")) as saved:
            return [saved[f"arr_{i}"] for i in range(len(saved.files))]

    def submit(self, name: str, record_type: type[Record], fn: Callable[..., Any], *args: Any,
               weights: str | None = None, files: bool = False) -> Pending:
        """Run ``fn(ctx, *args)`` as stage ``name`` unless its result is stored."""
        if self.rd.stored(name) is not None:
            return Pending(name, record_type, None, weights, files)
        return Pending(name, record_type, self.ex.submit(fn, self._ctx_handle, *args),
                       weights, files)

    def run_here(self, name: str, record_type: type[Record], fn: Callable[..., Any],
                 *args: Any) -> Pending:
        """Run ``fn(ctx, *args)`` as stage ``name`` on the driver, unless it is stored."""
        if self.rd.stored(name) is not None:
            return Pending(name, record_type, None, None, False)
        return Pending(name, record_type, None, None, False,
                       done=run_timed(fn, self.ctx, *args))

    def collect(self, pending: Pending) -> tuple[Any, Any]:
        """The stage's record and its weights (or files), stored on first sight."""
        if pending.handle is None and pending.done is None:
            stored = self.rd.stored(pending.name)
            info = StageInfo.from_json(stored["stage"])
            self.log.stages[pending.name] = info
            log(f"{pending.name}: reused from an earlier run ({info.seconds:.1f} s)")
            extra = self.load_weights(pending.weights) if pending.weights else None
            return pending.record_type.from_json(stored["record"]), extra
        run: StageRun = pending.done or self.ex.result(pending.handle)
        record, extra = run.value if isinstance(run.value, tuple) else (run.value, None)
        if pending.weights:
            self._save_weights(pending.weights, extra)
        if pending.files:
            artifacts.write_files(self.rd.root, extra)
        info = StageInfo(run.seconds, run.node)
        self.rd.store(pending.name, {"stage": info.to_json(), "record": record.to_json()})
        self.log.stages[pending.name] = info
        where = "" if info.node == "local" else f" on node {info.node[:8]}"
        log(f"{pending.name}: done ({info.seconds:.1f} s{where})")
        return record, extra

    def collect_all(self, pendings: Sequence[Pending]) -> list[tuple[Any, Any]]:
        """Every stage's result in submission order, each stored as soon as it finishes."""
        results: dict[int, tuple[Any, Any]] = {}
        running = {id(p.handle): i for i, p in enumerate(pendings) if p.handle is not None}
        for i, p in enumerate(pendings):
            if p.handle is None:
                results[i] = self.collect(p)
        for handle in self.ex.as_completed([p.handle for p in pendings if p.handle is not None]):
            i = running[id(handle)]
            results[i] = self.collect(pendings[i])
        return [results[i] for i in range(len(pendings))]

    def warn(self, message: str) -> None:
        """Log a warning once and keep it for the report."""
        if message not in self.warnings:
            log(f"WARNING {message}")
            self.warnings.append(message)

    # -------------------------------------------------------------- search
    def dense(self, arch: Any) -> Pending:
        tag = f"dense-{arch.label}"
        log(f"training dense {self.ctx.family.name} {arch.label}")
        return self.submit(tag, DenseResult, stages.train_dense, arch, weights=tag)

    def search(self) -> tuple[list[Candidate], Candidate, float, list[SpeedProbe],
                              dict[str, DenseResult]]:
        """Dense models, size (and speed) probes, fine-tunes, selection."""
        cfg, family = self.config, self.ctx.family
        archs = family.archs_quick if cfg.quick else family.archs_full
        speed = cfg.max_instructions is not None
        dense_runs = {a: self.dense(a) for a in (archs if speed else archs[:1])}
        candidates: list[Candidate] = []
        speed_probes: list[SpeedProbe] = []
        denses: dict[str, DenseResult] = {}
        finetunes: list[Pending] = []
        for arch in archs:
            if arch not in dense_runs:
                dense_runs[arch] = self.dense(arch)
            dense, dense_weights = self.collect(dense_runs[arch])
            denses[arch.label] = dense
            if dense.training_warning:
                self.warn(f"dense {arch.label}: {dense.training_warning}")
            log(f"measuring C model sizes of {arch.label} over sparsities")
            probes, _ = self.collect(self.submit(f"probe-{arch.label}", SizeProbes,
                                                 stages.probe_sizes, arch, dense_weights))
            candidates += probes.rows
            fitting = sorted({r.sparsity for r in probes.rows if r.fits})
            if not fitting:
                log(f"{arch.label}: no sparsity up to {search.PROBE_SPARSITIES[-1]:.0%} fits")
                continue
            fast: list[float] = []
            if speed:
                log(f"measuring instructions per window of {arch.label} on {board.BOARD}")
                rows, _ = self.collect(self.submit(f"speed-{arch.label}", SpeedProbes,
                                                   stages.probe_speed, arch, dense_weights,
                                                   fitting))
                speed_probes += rows.rows
                fast = [r.sparsity for r in rows.rows
                        if r.instructions_per_window <= cfg.max_instructions]
            for s in search.finetune_sparsities(fitting, cfg.settings, fast):
                tag = stages.finetune_tag(arch, s)
                log(f"pruning {arch.label} to {100 * s:.1f}% and fine-tuning")
                finetunes.append(self.submit(tag, Candidate, stages.finetune, arch,
                                             dense_weights, s, weights=tag))
            if not search.try_smaller(fitting[0], speed):
                break
        tuned_runs = self.collect_all(finetunes)
        candidates += [c for c, _ in tuned_runs]
        tuned = [(c, w) for c, w in tuned_runs if c.fits]
        if tuned and speed:
            counts = self.collect_all([
                self.submit(f"speed-{c.weights}", CandidateSpeed, stages.candidate_speed, c, w)
                for c, w in tuned])
            by_tag = {r.weights: r.instructions_per_window for r, _ in counts}
            candidates = [dataclasses.replace(c, instructions_per_window=by_tag[c.weights])
                          if c.weights in by_tag else c for c in candidates]
        fitting_tuned = [c for c in candidates if c.finetuned and c.fits]
        if not fitting_tuned:
            raise search.no_fit(candidates, cfg.budget_bytes)
        if speed:
            fitting_tuned = search.within_speed_budget(fitting_tuned, cfg.max_instructions,
                                                       cfg.budget_bytes, board.BOARD)
        best, tolerance = search.select(fitting_tuned, len(self.ctx.ds.val))
        within = " (within the speed budget)" if speed else ""
        log(f"selected {best.arch} at {best.sparsity:.0%}: the smallest fine-tuned "
            f"candidate{within} within {100 * tolerance:.2f} pp (one standard error) of "
            "the best validation accuracy")
        candidates = [dataclasses.replace(c, selected=c.finetuned and c.weights == best.weights)
                      for c in candidates]
        best = dataclasses.replace(best, selected=True)
        return candidates, best, tolerance, speed_probes, denses

    def refit(self, best: Candidate, dense: DenseResult) -> tuple[RefitResult, Weights]:
        log(f"refitting {best.arch} at {best.sparsity:.0%} on the training and validation "
            "volunteers together")
        tag = f"refit-{best.weights}"
        return self.collect(self.submit(tag, RefitResult, stages.refit, best, dense,
                                        weights=tag))

    def export(self, shipped: Candidate, weights: Weights) -> ExportResult:
        log("exporting the shipped model (Keras, TFLite int8/sparse, TFLM array, C model)")
        result, _ = self.collect(self.submit("export", ExportResult, artifacts.export_model,
                                             shipped, weights, files=True))
        return result


def run(config: RunConfig) -> dict[str, Any]:
    """Run the pipeline; returns the report (also written to ``--out``). The run folder is
    locked while it runs; a rerun resumes only on the same arguments and the same data
    (``har_data.fingerprint``: what the files hold, wherever they are)."""
    start = time.perf_counter()
    config = dataclasses.replace(
        config, data_fingerprint=har_data.fingerprint(config.data, config.data_path))
    with RunDir(config.out, config.identity(), config.legacy_identity()).open() as rd:
        return _run(config, rd, start)


def _run(config: RunConfig, rd: RunDir, start: float) -> dict[str, Any]:
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
    data_seconds = time.perf_counter() - start
    with open_executor(config.workers, config.ray_address) as ex:
        log(f"stages run {ex.describe()}")
        driver = Driver(config, rd, ex, StageContext(config, ds))
        candidates, selected, tolerance, speed_probes, denses = driver.search()
        shipped, shipped_weights, refit = selected, driver.load_weights(selected.weights), None
        if config.refit:
            refit, refit_weights = driver.refit(selected, denses[selected.arch])
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
        exported = driver.export(shipped, shipped_weights)
        executor_info = {"workers": ex.workers, "description": ex.describe(),
                         "startup_seconds": round(ex.startup_seconds, 2)}
    if collapsed := pruning.collapsed_layers(exported.per_layer):
        driver.warn("layer collapse: " + "; ".join(collapsed))
    mcu = board.firmware(driver, shipped, shipped_weights)
    report = rpt.build_report(
        config=config, ds=ds, candidates=candidates, shipped=shipped, tolerance=tolerance,
        speed_probes=speed_probes, exported=exported, refit=refit, mcu=mcu,
        stage_log=driver.log, data_seconds=data_seconds, executor=executor_info,
        warnings=driver.warnings)
    rpt.write_all(report, rd.root)
    print(rpt.summary_table(report))
    print(f"everything is in {rd.root}")
    return report
