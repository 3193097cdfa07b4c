"""The driver of a run: submits stages to the executor and keeps what they return.

It is the only writer of ``--out``: each stage returns its record (and weights or files)
as values, stored as ``stages/<name>.json`` and ``models/<tag>.npz`` the moment the stage
finishes, in whatever order stages finish. A stage whose record is stored is not run
again.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from edgeprune.executor import Executor, StageRun, run_timed
from edgeprune.pipeline import artifacts
from edgeprune.pipeline.config import RunConfig
from edgeprune.pipeline.progress import log
from edgeprune.pipeline.records import Record, StageInfo, StageLog, Weights
from edgeprune.pipeline.rundir import RunDir
from edgeprune.pipeline.stages import StageContext
from har_data.atomic import atomic_write

K = TypeVar("K")


@dataclass
class Pending:
    """A submitted stage (``handle`` None: its result is stored from an earlier run)."""

    name: str
    record_type: type[Record]
    handle: Any
    weights: str | None  # models/<weights>.npz holds its weights
    files: bool  # it returns files for the run folder
    done: StageRun | None = None  # run on the driver (``run_here``)


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
        atomic_write(self.rd.path("models", f"{tag}.npz"), buffer.getvalue(), parents=True)

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

    def collect_groups(self, groups: Mapping[K, Sequence[Pending]]
                       ) -> Iterator[tuple[K, list[tuple[Any, Any]]]]:
        """Each group with its stages' results (in the group's order) as soon as all of
        its stages have finished - groups whose results are stored first, then in the
        order they complete; each stage is stored as soon as it finishes."""
        results: dict[K, dict[int, tuple[Any, Any]]] = {k: {} for k in groups}
        owner = {id(p.handle): (k, i) for k, ps in groups.items()
                 for i, p in enumerate(ps) if p.handle is not None}

        def complete(k: K) -> tuple[K, list[tuple[Any, Any]]] | None:
            if len(results[k]) < len(groups[k]):
                return None
            return k, [results[k][i] for i in range(len(groups[k]))]

        for k, ps in groups.items():
            for i, p in enumerate(ps):
                if p.handle is None:
                    results[k][i] = self.collect(p)
        ready = [done for k in groups if (done := complete(k)) is not None]
        yield from ready
        for handle in self.ex.as_completed([h for h in (p.handle for ps in groups.values()
                                                        for p in ps) if h is not None]):
            k, i = owner[id(handle)]
            results[k][i] = self.collect(groups[k][i])
            if (done := complete(k)) is not None:
                yield done

    def collect_all(self, pendings: Sequence[Pending],
                    then: Callable[[tuple[Any, Any]], None] | None = None
                    ) -> list[tuple[Any, Any]]:
        """Every stage's result in submission order, each stored as soon as it finishes
        and handed to ``then`` (if given) in the order they finish."""
        results: dict[int, tuple[Any, Any]] = {}
        for i, (result,) in self.collect_groups({i: [p] for i, p in enumerate(pendings)}):
            results[i] = result
            if then is not None:
                then(result)
        return [results[i] for i in range(len(pendings))]

    def warn(self, message: str) -> None:
        """Log a warning once and keep it for the report."""
        if message not in self.warnings:
            log(f"WARNING {message}")
            self.warnings.append(message)
