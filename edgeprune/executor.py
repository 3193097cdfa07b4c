"""Where independent stages run: in this process, or as Ray tasks on local cores or a cluster.

``open_executor(workers, address)`` returns an ``Executor``:

- ``workers=1`` and no address: ``InProcess``, every stage runs here, in submission order,
  and Ray is never started (debugging, the smallest machines);
- otherwise ``RayTasks``: a quiet local Ray sized to ``workers`` (default: every core),
  or, with ``address`` (``HOST:PORT``), an existing cluster joined as a client.

A stage is a plain function of values (weights as arrays, records as dataclasses) that
returns values; it never writes the caller's folders, so workers need no shared
filesystem. Every result comes back as a ``StageRun``: the value, the stage's seconds and
the node it ran on. Ray retries a task whose worker died (``MAX_RETRIES``); an exception
raised by the stage itself is not retried.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

MAX_RETRIES = 3  # a worker killed mid-stage (OOM, SIGKILL, lost node) is run again
CONNECT_TIMEOUT_S = 10.0
# What every node must be able to import to run the stages (checked when a cluster is joined).
REQUIRED_MODULES = ("edgeprune", "export", "har_data", "tensorflow", "tf_keras",
                    "tensorflow_model_optimization")
LOCAL_NODE = "local"


class ExecutorError(RuntimeError):
    """The executor cannot be started or the cluster cannot run the stages (says why)."""


@dataclass(frozen=True)
class StageRun(Generic[T]):
    """One finished stage: its value, how long it ran, and the node it ran on."""

    value: T
    seconds: float
    node: str


def run_timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> StageRun[T]:
    """Call ``fn`` and wrap its value with its duration and this process's node (in a
    process whose TensorFlow runs on one thread: ``training.pin_threads``)."""
    from edgeprune.training import pin_threads

    pin_threads()
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return StageRun(value, time.perf_counter() - start, _node_id())


def run_as_task(inter_op: int | None, fn: Callable[..., T], *args: Any,
                **kwargs: Any) -> StageRun[T]:
    """``run_timed`` in a Ray worker whose TensorFlow takes ``inter_op`` inter-op threads
    (None: its default; see ``training.pin_threads``)."""
    from edgeprune.training import pin_threads

    pin_threads(inter_op=inter_op)
    return run_timed(fn, *args, **kwargs)


def _node_id() -> str:
    try:
        import ray
    except ImportError:
        return LOCAL_NODE
    if not ray.is_initialized():
        return LOCAL_NODE
    return ray.get_runtime_context().get_node_id()


class Executor:
    """Runs stage functions; ``submit`` returns a handle, ``result`` its ``StageRun``."""

    workers: int
    startup_seconds: float = 0.0

    def put(self, value: Any) -> Any:
        """A handle for a large value passed to many stages (stored once)."""
        return value

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def result(self, handle: Any) -> StageRun:
        raise NotImplementedError

    def as_completed(self, handles: Sequence[Any]) -> Iterator[Any]:
        """The handles in the order their stages finish."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where stages run, for the log and the report."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the workers (a local Ray is shut down)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcess(Executor):
    """Every stage runs at ``submit``, in this process; no Ray."""

    workers = 1

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> StageRun[T]:
        return run_timed(fn, *args, **kwargs)

    def result(self, handle: StageRun) -> StageRun:
        return handle

    def as_completed(self, handles: Sequence[Any]) -> Iterator[Any]:
        return iter(list(handles))

    def describe(self) -> str:
        return "in this process (--workers 1, no Ray)"


class RayTasks(Executor):
    """Stages as Ray tasks (one CPU each) on a local Ray or a joined cluster.

    ``inter_op``: TensorFlow's inter-op threads in each worker. 1 where stages run side by
    side (two FastGRNN trainings on 2 cores: 3.85 s/epoch each with TensorFlow's default,
    3.26 with 1); None where one long stage often runs alone (alone: 2.22 s/epoch with
    the default, 2.58 with 1). A worker keeps its first setting."""

    def __init__(self, workers: int | None, address: str | None, inter_op: int | None = 1):
        import ray

        self._ray = ray
        start = time.perf_counter()
        self._owns_ray = address is None
        self._address = address
        if address is not None:
            _check_reachable(address)
        logging.getLogger("ray").setLevel(logging.ERROR)
        try:
            ray.init(address=address, num_cpus=None if address else workers,
                     include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR, configure_logging=True,
                     ignore_reinit_error=True)
        except Exception as err:  # noqa: BLE001 (a node start-up timeout is a bare Exception)
            raise ExecutorError(f"cannot start Ray ({address or 'local'}): "
                                f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
                                ) from None
        finally:  # ray.init replaces the driver's SIGTERM handler with sys.exit
            from edgeprune import _signals

            _signals.install()
        if address is not None:
            _check_nodes(ray)
        total = int(ray.cluster_resources().get("CPU", 1))
        self.workers = min(workers, total) if workers else total
        # SPREAD: stages go round the nodes of a cluster rather than filling one first
        self._remote = ray.remote(run_as_task).options(
            num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False,
            scheduling_strategy="SPREAD")
        self._inter_op = inter_op
        self.startup_seconds = time.perf_counter() - start

    def put(self, value: Any) -> Any:
        return self._ray.put(value)

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Any:
        return self._remote.remote(self._inter_op, fn, *args, **kwargs)

    def result(self, handle: Any) -> StageRun:
        try:
            return self._ray.get(handle)
        except self._ray.exceptions.RayTaskError as err:
            raise err.as_instanceof_cause() from None

    def as_completed(self, handles: Sequence[Any]) -> Iterator[Any]:
        pending = list(handles)
        while pending:
            done, pending = self._ray.wait(pending, num_returns=1)
            yield done[0]

    def describe(self) -> str:
        nodes = sum(1 for n in self._ray.nodes() if n.get("Alive"))
        where = "a local Ray" if self._owns_ray else f"the Ray cluster at {self._address}"
        return (f"as Ray tasks on {where} ({self.workers} workers, {nodes} node"
                f"{'s' if nodes != 1 else ''}; started in {self.startup_seconds:.1f} s)")

    def close(self) -> None:
        if self._ray.is_initialized():  # a joined cluster is only disconnected from
            self._ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail fast (``CONNECT_TIMEOUT_S``) when ``HOST:PORT`` accepts no connection."""
    if address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise ExecutorError(f"--ray-address {address!r}: expected HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ExecutorError(f"--ray-address {address}: no Ray cluster answers there "
                            f"({reason})") from None


def _check_nodes(ray: Any) -> None:
    """Every alive node must import the project; raise naming what each node lacks."""

    def missing_modules(names: tuple[str, ...]) -> list[str]:  # runs on the node
        import importlib.util

        return [n for n in names if importlib.util.find_spec(n) is None]

    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0)(missing_modules)
    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
    refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False))
            .remote(REQUIRED_MODULES) for n in nodes]
    lacking = {n: m for n, m in zip(nodes, ray.get(refs, timeout=120), strict=True) if m}
    if lacking:
        ray.shutdown()
        where = "; ".join(f"node {n[:12]} lacks {', '.join(m)}" for n, m in lacking.items())
        raise ExecutorError(f"the cluster cannot run edgeprune's stages: {where} "
                            "(install edgeprune on every node: pip install edgeprune)")


def worker_count(text: str) -> int:
    """argparse type: a whole number of parallel workers >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """``--workers N`` and ``--ray-address HOST:PORT`` (see ``open_executor``)."""
    parser.add_argument("--workers", type=worker_count, default=None, metavar="N",
                        help="stages run in parallel as Ray tasks on at most N local workers "
                             "(default: one per CPU core); 1 runs every stage in this process "
                             "without starting Ray. The results are the same bytes either way")
    parser.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                        help="run the stages on an existing Ray cluster (its head's address; "
                             "default: $RAY_ADDRESS, else a local Ray). Every node needs "
                             "edgeprune installed")


def open_executor(workers: int | None, address: str | None = None, *,
                  inter_op: int | None = 1) -> Executor:
    """``InProcess`` for ``workers == 1`` without a cluster, else ``RayTasks`` (its
    workers' TensorFlow takes ``inter_op`` inter-op threads).

    ``address`` defaults to ``RAY_ADDRESS``; ``workers=None`` uses every core."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if workers == 1 and address is None:
        return InProcess()
    return RayTasks(workers, address, inter_op)
