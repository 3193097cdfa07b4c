"""One seed of EdgeML's own FastGRNN trainer on our volunteer split, in its own process.

``python -m edgeprune.bench._edgeml_run --edgeml DIR --seed S --out RESULT.json ...``
(started by ``bench peer-edgeml``; not a user command). It loads EdgeML's unmodified
sources from ``DIR`` with ``tensorflow`` resolving to ``tensorflow.compat.v1`` and v2
behaviour disabled, which is process-wide: hence a process of its own per seed, never a
Ray worker or the driver that also runs edgeprune's Keras code.

It runs EdgeML's ``FastTrainer.train`` itself (its batches, shuffle, lr decay, IHT phases
and "Maximum Test accuracy" pick untouched) in a session whose ``run`` is wrapped: when
``train`` evaluates the test split at the end of an epoch, the wrapper also evaluates our
validation volunteers (a forward pass: it draws no random numbers, so training is the
same as without it) and times the epoch. Writes a ``SeedRun`` as JSON, atomically.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import pathlib
import re
import sys
import tempfile
import time
import types
from dataclasses import dataclass
from typing import Any

import numpy as np

# The line EdgeML's FastTrainer.train prints after its last epoch (its own pick, 1-based).
OWN_PICK = re.compile(r"Maximum Test accuracy at compressed model size\(including early "
                      r"stopping\): (\S+) at Epoch: (\d+)")


@dataclass(frozen=True)
class Settings:
    """EdgeML's driver defaults (examples/tf/FastCells/helpermethods.py) with the FastGRNN
    paper's HAR-2 size: hidden 80, ranks 5/40, input 9 channels x 128 steps."""

    epochs: int = 300
    batch_size: int = 100
    learning_rate: float = 0.01
    decay_step: int = 200
    decay_rate: float = 0.1
    hidden_dim: int = 80
    input_dim: int = 9
    w_rank: int = 5
    u_rank: int = 40
    sparsity_w: float = 1.0  # 1.0: dense (the driver's default); the paper's HAR-2: 0.2
    sparsity_u: float = 1.0  # the paper's HAR-2: 0.3
    update_nl: str = "tanh"
    gate_nl: str = "sigmoid"


@dataclass(frozen=True)
class Pick:
    """One way of choosing an epoch: the epoch (1-based) and its test accuracy."""

    epoch: int
    test_accuracy: float


@dataclass(frozen=True)
class SeedRun:
    """A seed's result: the three picks, the validation accuracy of the validation pick,
    per-epoch curves and seconds per training epoch (evaluations excluded)."""

    seed: int
    val_subjects: list[int]
    windows: dict[str, int]
    own_pick: Pick  # EdgeML's "Maximum Test accuracy" (best test epoch; its log's line)
    last_epoch: Pick
    val_pick: Pick  # highest validation accuracy, ties to lower loss, then earlier
    val_accuracy: float
    seconds_per_epoch: float  # mean training epoch (wall), as EdgeML's loop runs it
    cpu_seconds_per_epoch: float  # the same epochs' CPU time (this process, all threads)
    eval_seconds_per_epoch: float  # test + validation forward passes
    threads: int
    val_accuracy_curve: list[float]
    test_accuracy_curve: list[float]
    train_loss_curve: list[float]
    train_seconds_curve: list[float]
    train_cpu_seconds_curve: list[float]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class _Epochs:
    """What the session wrapper records at each end-of-epoch test evaluation."""

    train_seconds: list[float] = dataclasses.field(default_factory=list)
    train_cpu_seconds: list[float] = dataclasses.field(default_factory=list)
    eval_seconds: list[float] = dataclasses.field(default_factory=list)
    test_accuracy: list[float] = dataclasses.field(default_factory=list)
    val_accuracy: list[float] = dataclasses.field(default_factory=list)
    val_loss: list[float] = dataclasses.field(default_factory=list)


class _EvalHookSession:
    """``tf.Session`` stand-in for ``FastTrainer.train``: passes every call through, and
    when ``train`` runs its per-epoch test evaluation (fetches ``[accuracy, lossOp]``)
    also evaluates the validation split and times the epoch."""

    def __init__(self, sess: Any, trainer: Any, xval: np.ndarray, yval: np.ndarray):
        self._sess, self._trainer = sess, trainer
        self._xval, self._yval = xval, yval
        self.epochs = _Epochs()
        self._mark, self._cpu_mark = time.perf_counter(), time.process_time()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sess, name)

    def run(self, fetches: Any, feed_dict: Any = None, **kwargs: Any) -> Any:
        t = self._trainer
        if not (isinstance(fetches, list) and len(fetches) == 2
                and fetches[0] is t.accuracy and fetches[1] is t.lossOp):
            return self._sess.run(fetches, feed_dict=feed_dict, **kwargs)
        start = time.perf_counter()
        self.epochs.train_seconds.append(start - self._mark)
        self.epochs.train_cpu_seconds.append(time.process_time() - self._cpu_mark)
        result = self._sess.run(fetches, feed_dict=feed_dict, **kwargs)
        val_acc, val_loss = self._sess.run(fetches, feed_dict={t.X: self._xval, t.Y: self._yval})
        self.epochs.test_accuracy.append(float(result[0]))
        self.epochs.val_accuracy.append(float(val_acc))
        self.epochs.val_loss.append(float(val_loss))
        self._mark, self._cpu_mark = time.perf_counter(), time.process_time()
        self.epochs.eval_seconds.append(self._mark - start)
        return result


class _PercentileCompat(types.ModuleType):
    """numpy, except ``percentile(..., interpolation=m)`` is ``percentile(..., method=m)``
    (numpy 2.4 removed the old name; EdgeML's ``utils.hardThreshold`` still passes it)."""

    def __init__(self) -> None:
        super().__init__("numpy")

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    @staticmethod
    def percentile(a: Any, q: Any, *args: Any, interpolation: str | None = None,
                   **kwargs: Any) -> Any:
        if interpolation is not None:
            kwargs["method"] = interpolation
        return np.percentile(a, q, *args, **kwargs)


def import_edgeml(root: pathlib.Path, sparse: bool) -> types.SimpleNamespace:
    """Import EdgeML's FastGRNN cell, trainer and example helpers from ``root`` unmodified,
    with ``tensorflow`` = ``tensorflow.compat.v1`` (v2 behaviour off) for the whole process.
    ``sparse``: rebind the ``np`` name inside ``edgeml_tf.utils`` only (its IHT path) to
    numpy with ``percentile(interpolation=)`` translated; global numpy is untouched."""
    import tensorflow as tf2

    tf1 = tf2.compat.v1
    tf1.disable_v2_behavior()
    sys.modules["tensorflow"] = tf1
    for path in (root / "tf", root / "examples" / "tf" / "FastCells"):
        sys.path.insert(0, str(path))
    import helpermethods
    from edgeml_tf import utils
    from edgeml_tf.graph.rnn import FastGRNNCell
    from edgeml_tf.trainer.fastTrainer import FastTrainer

    if sparse:
        utils.np = _PercentileCompat()
    return types.SimpleNamespace(tf=tf1, helpermethods=helpermethods,
                                 FastGRNNCell=FastGRNNCell, FastTrainer=FastTrainer)


def _edgeml_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """EdgeML's .npy layout: [label, features], features = steps x channels flattened
    across the time axis (step 0's channels first)."""
    return np.concatenate([y[:, None].astype(np.float32), x.reshape(len(x), -1)], axis=1)


def _pick_val(epochs: _Epochs) -> int:
    """0-based epoch with the highest validation accuracy, ties to the lower validation
    loss, then the earlier epoch (edgeprune's own selection rule)."""
    best = 0
    for i in range(1, len(epochs.val_accuracy)):
        if (epochs.val_accuracy[i], -epochs.val_loss[i]) > (epochs.val_accuracy[best],
                                                            -epochs.val_loss[best]):
            best = i
    return best


def run_seed(edgeml: pathlib.Path, data: str, data_path: str | None, seed: int,
             settings: Settings, work: pathlib.Path, threads: int = 1) -> SeedRun:
    """Train EdgeML's FastGRNN for one seed on the training volunteers of ``seed``'s
    split (edgeprune's ``har_data.load(..., seed=seed)``) in ``work`` (its logs and saved
    parameters); returns the picks. Seeds TF's graph and numpy with ``seed`` where
    EdgeML's driver uses 42."""
    import har_data

    ds = har_data.load(data, path=data_path, seed=seed)
    sparse = settings.sparsity_w < 0.99 or settings.sparsity_u < 0.99
    lib = import_edgeml(edgeml, sparse)
    tf = lib.tf
    tf.set_random_seed(seed)
    np.random.seed(seed)
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "train.npy", _edgeml_rows(ds.train.x, ds.train.y))
    np.save(work / "test.npy", _edgeml_rows(ds.test.x, ds.test.y))
    (dim, n_classes, xtrain, ytrain, xtest, ytest,
     mean, std) = lib.helpermethods.preProcessData(str(work))
    xval = ((ds.val.x.reshape(len(ds.val), -1) - mean) / std).reshape(
        -1, dim // settings.input_dim, settings.input_dim)
    yval = np.eye(n_classes)[ds.val.y]
    for name in ("train.npy", "test.npy"):
        (work / name).unlink()
    x_ph = tf.placeholder("float", [None, dim // settings.input_dim, settings.input_dim])
    y_ph = tf.placeholder("float", [None, n_classes])
    cell = lib.FastGRNNCell(settings.hidden_dim, gate_non_linearity=settings.gate_nl,
                            update_non_linearity=settings.update_nl,
                            wRank=settings.w_rank, uRank=settings.u_rank)
    log = work / "edgeml_log.txt"
    trainer = lib.FastTrainer(cell, x_ph, y_ph, sW=settings.sparsity_w,
                              sU=settings.sparsity_u, learningRate=settings.learning_rate,
                              outFile=str(log))
    config = tf.ConfigProto(intra_op_parallelism_threads=threads,
                            inter_op_parallelism_threads=threads)
    sess = tf.InteractiveSession(config=config)
    sess.run(tf.global_variables_initializer())
    params = work / "params"
    params.mkdir(exist_ok=True)
    hooked = _EvalHookSession(sess, trainer, xval, yval)
    with contextlib.redirect_stdout(sys.stderr):  # its "The Model Directory" line
        trainer.train(settings.batch_size, settings.epochs, hooked, xtrain, xtest, ytrain,
                      ytest, settings.decay_step, settings.decay_rate, str(work), str(params))
    sess.close()
    ep = hooked.epochs
    match = OWN_PICK.search(log.read_text())
    if match is None or len(ep.test_accuracy) != settings.epochs:
        raise RuntimeError(f"EdgeML's trainer did not finish as expected: see {log}")
    own_epoch = int(match.group(2))
    own = Pick(own_epoch, ep.test_accuracy[own_epoch - 1])
    if abs(own.test_accuracy - float(match.group(1))) > 1e-6:
        raise RuntimeError(f"{log}: its pick {match.group(0)!r} is not epoch {own_epoch}'s "
                           f"test accuracy {own.test_accuracy}")
    v = _pick_val(ep)
    history = trainer.getAccuracyLog()
    return SeedRun(
        seed=seed, val_subjects=list(ds.val_subjects),
        windows={"train": len(ds.train), "val": len(ds.val), "test": len(ds.test)},
        own_pick=own, last_epoch=Pick(len(ep.test_accuracy), ep.test_accuracy[-1]),
        val_pick=Pick(v + 1, ep.test_accuracy[v]), val_accuracy=ep.val_accuracy[v],
        seconds_per_epoch=float(np.mean(ep.train_seconds)),
        cpu_seconds_per_epoch=float(np.mean(ep.train_cpu_seconds)),
        eval_seconds_per_epoch=float(np.mean(ep.eval_seconds)), threads=threads,
        val_accuracy_curve=ep.val_accuracy, test_accuracy_curve=ep.test_accuracy,
        train_loss_curve=[float(h["trainLoss"]) for h in history],
        train_seconds_curve=ep.train_seconds, train_cpu_seconds_curve=ep.train_cpu_seconds)


def main(argv: list[str] | None = None) -> int:
    """Run one seed and write its ``SeedRun`` JSON to ``--out`` (atomically)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--edgeml", type=pathlib.Path, required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--data-path", default=None)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--settings", required=True, help="Settings as JSON")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=pathlib.Path, required=True)
    args = p.parse_args(argv)
    settings = Settings(**json.loads(args.settings))
    result = run_seed(args.edgeml, args.data, args.data_path, args.seed, settings,
                      args.out.parent / f"seed-{args.seed}", args.threads)
    fd, tmp = tempfile.mkstemp(prefix=f".{args.out.name}.", dir=args.out.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump(result.to_dict(), handle, indent=1)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
