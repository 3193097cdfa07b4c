"""``python -m edgeprune.bench sparsity``: Global MP (+MT) against the baselines, one harness.

Reproduces the claims of Gupta et al., "Is Complexity Required for Neural Network
Pruning? A Case Study on Global Magnitude Pruning", on microcontroller-sized models:
FastGRNN (80, ranks 5/40) and the HAR CNN on official UCI HAR-2, and MobileNet-V1
(alpha 0.25) on scikit-learn's digits (see ``_sparsity_setup``).

Protocol (identical for every method, sparsity and seed):

1. Dense: train once per (model, seed) with ``edgeprune.training.train`` (Adam, cosine
   decay, ``global_clipnorm=1.0``, seeded), keeping the epoch with the best validation
   accuracy. Weights are cached in ``OUT/dense/`` and reused by every method (a rerun or
   an interrupted run resumes, mid-training too).
2. Prune one-shot to the target global sparsity from the dense weights with
   ``edgeprune.pruning.make_masks(model, method, s)`` (the paper's protocol).
   ``iht`` is EdgeML's schedule instead, inside the same budget: the fine-tuning starts
   dense, hard-thresholds each matrix every 15 steps during the middle third
   (``iht_schedule``), then freezes the support.
3. Fine-tune a fixed budget of epochs (Adam, cosine decay from ``ft_lr``, fresh optimizer
   state, the same shuffling for every method of a seed) with the masks held after every
   step (``GlobalPruningCallback(None, masks=...)``).
4. Select the fine-tune epoch on validation accuracy (ties: lower validation loss, then
   the earlier epoch), among epochs where the model is at its target sparsity (for
   ``iht``: after the freeze); evaluate the test split once, on that epoch only.

Methods: ``global, global_mt, uniform, erk, lamp, random, iht``; sparsities
``0.5 0.8 0.9 0.95 0.98 0.99``. Outputs in ``OUT``: ``results.csv`` (columns
``model, method, sparsity, seed, val_accuracy, test_accuracy`` then extras),
``results.json`` (rows, dense baselines, per-layer keep counts of Global MP with and
without MT, pruning overhead, timings), ``accuracy_vs_sparsity.png``,
``layer_sparsity.png``, ``summary.md``. Each finished run also leaves
``runs/<model>__<method>__<sparsity>__s<seed>.json``; a rerun skips finished rows.
``--quick`` is a smoke run: 2 + 1 epochs, sparsities 0.5 and 0.9, 1 seed, a small
seeded subset of the windows/images.

Extra CSV columns: ``achieved_sparsity`` (zeros over all prunable weights after
fine-tuning); ``min_layer_keep``/``min_layer`` (fewest kept weights in one prunable tensor
/ the tensor with the lowest kept fraction); ``empty_layers`` (tensors with no weight
left); ``below_floor`` (tensors keeping fewer than the MT floor ``ceil(mt * N)`` of the
model, whatever the method); ``dead_units`` (output units/channels with no weight left,
summed); ``at_chance`` (test accuracy within 2 points of the majority-class rate
``chance``); ``collapsed`` = ``below_floor > 0 and at_chance`` (layer collapse: a layer
with zero or near-zero kept weights and a network at chance); ``prune_seconds`` (one-shot
mask computation + application + time inside the pruning callback's hooks) and
``finetune_seconds`` (the fine-tuning ``fit``); ``diverged`` (the fine-tuning loss went
NaN: training stops, the best earlier eligible epoch is kept).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import pathlib
import shutil
import sys
import time
from typing import Any

from edgeprune import machine
from edgeprune.bench._sparsity_setup import MODELS, SPECS
from edgeprune.executor import add_executor_arguments
from har_data.atomic import atomic_write

METHODS = ("global", "global_mt", "uniform", "erk", "lamp", "random", "iht")
SPARSITIES = (0.5, 0.8, 0.9, 0.95, 0.98, 0.99)
QUICK_SPARSITIES = (0.5, 0.9)
QUICK_LIMIT = {"train": 640, "val": 256, "test": 256}
QUICK_DIGITS_LIMIT = {"train": 320, "val": 160, "test": 160}
COLUMNS = ("model", "method", "sparsity", "seed", "val_accuracy", "test_accuracy")
EXTRA_COLUMNS = (
    "achieved_sparsity", "min_layer_keep", "min_layer", "empty_layers", "below_floor",
    "dead_units", "collapsed", "at_chance", "chance", "selected_epoch", "ft_epochs", "diverged",
    "min_threshold", "dense_val_accuracy", "dense_test_accuracy", "prune_seconds",
    "finetune_seconds", "run_seconds",
)
FIELDS = COLUMNS + EXTRA_COLUMNS


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sparsity`` subcommand (``func`` runs it and returns an exit code)."""
    p = subparsers.add_parser(
        "sparsity", help="accuracy vs sparsity of Global MP (+MT) and baselines",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", choices=("uci", "hapt"), default="uci",
                   help="HAR-2 source: 'uci' = official archive (the benchmark)")
    p.add_argument("--data-path", default=None,
                   help="UCI HAR archive: zip, folder or parent (default: the download "
                        "stored by python -m har_data download)")
    p.add_argument("--out", required=True, help="output folder (resumable)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: few epochs, 2 sparsities, 1 seed, data subset")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                   help="models to benchmark")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                   help="pruning methods compared")
    p.add_argument("--sparsities", nargs="+", type=float, default=None,
                   help=f"default {' '.join(map(str, SPARSITIES))} (quick: 0.5 0.9)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default 2; quick 1)")
    p.add_argument("--split-seed", type=int, default=0, help="validation/test split seed")
    p.add_argument("--val-subjects", type=int, default=None,
                   help="HAR training volunteers held out for validation (har_data default)")
    p.add_argument("--cache-dir", default=None, help="har_data cache (default its own)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    add_executor_arguments(p)
    p.set_defaults(func=run)
    return p


# ----------------------------------------------------------------------------- results I/O
def run_key(model: str, method: str, sparsity: float, seed: int) -> tuple:
    """The identity of one row."""
    return (model, method, f"{float(sparsity):g}", int(seed))


def read_rows(path: pathlib.Path) -> list[dict[str, str]]:
    """Rows of an existing ``results.csv`` (empty list if absent)."""
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(path: pathlib.Path, rows: list[dict[str, Any]]) -> None:
    """Write all rows atomically (temp file + rename), sorted by model/method/s/seed."""
    order = {m: i for i, m in enumerate(MODELS)}
    morder = {m: i for i, m in enumerate(METHODS)}
    rows = sorted(rows, key=lambda r: (order.get(r["model"], 99), morder.get(r["method"], 99),
                                       float(r["sparsity"]), int(r["seed"])))
    text = io.StringIO(newline="")
    w = csv.DictWriter(text, fieldnames=list(FIELDS), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(r.get(k, "")) for k in FIELDS})
    atomic_write(path, text.getvalue().encode())


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def _write_json(path: pathlib.Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=1).encode())


# ----------------------------------------------------------------------------- training
def _timed_callback_class():
    from edgeprune.pruning import GlobalPruningCallback

    class TimedPruningCallback(GlobalPruningCallback):
        """GlobalPruningCallback that adds the seconds spent in its hooks to ``seconds``."""

        seconds = 0.0

        def _timed(self, hook, *a):
            t0 = time.perf_counter()
            try:
                return hook(*a)
            finally:
                self.seconds += time.perf_counter() - t0

        def on_train_begin(self, logs=None):
            return self._timed(super().on_train_begin, logs)

        def on_train_batch_begin(self, batch, logs=None):
            return self._timed(super().on_train_batch_begin, batch, logs)

        def on_train_batch_end(self, batch, logs=None):
            return self._timed(super().on_train_batch_end, batch, logs)

        def on_train_end(self, logs=None):
            return self._timed(super().on_train_end, logs)

    return TimedPruningCallback


def _select_callback(eligible):
    import tf_keras as keras

    class SelectEpoch(keras.callbacks.Callback):
        """Keep the weights of the best eligible epoch (val accuracy, then -val loss)."""

        def __init__(self) -> None:
            super().__init__()
            self.best: tuple | None = None
            self.epoch = 0
            self.weights = None

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            if not eligible() or not math.isfinite(float(logs.get("val_loss", math.nan))):
                return
            key = (float(logs["val_accuracy"]), -float(logs["val_loss"]))
            if self.best is None or key > self.best:
                self.best, self.epoch, self.weights = key, epoch + 1, self.model.get_weights()

    return SelectEpoch()


class Harness:
    """One (model, seed): its dense training, and one-shot prune + fine-tune runs from the
    dense weights. Built afresh in each stage, so a run's result never depends on what
    ran before it in the same process (the same bytes whatever the worker count)."""

    def __init__(self, name: str, data, seed: int, quick: bool) -> None:
        self.name, self.data, self.seed = name, data, seed
        self.spec = SPECS[name]
        self.protocol = self.spec.protocol(quick)
        self.model = None
        self.dense: dict[str, Any] | None = None

    def _accuracy(self, x, y) -> float:
        import numpy as np

        logits = self.model.predict(x, batch_size=512, verbose=0)
        return float(np.mean(np.argmax(logits, axis=1) == y))

    def train_dense(self, checkpoint_dir: pathlib.Path) -> tuple[dict[str, Any], list]:
        """Train the dense model (epoch selected on validation); returns its record and
        weights. ``checkpoint_dir``: per-epoch checkpoints (a retried stage resumes)."""
        from edgeprune import training
        from edgeprune.bench._sparsity_setup import build_model

        d, p = self.data, self.protocol
        self.model = build_model(self.name, d, self.seed)
        res = training.train(
            self.model, (d.xtr, d.ytr), (d.xv, d.yv), epochs=int(p["dense_epochs"]),
            batch_size=int(p["batch_size"]), lr=float(p["lr"]), schedule="cosine",
            seed=self.seed, checkpoint_dir=checkpoint_dir, progress=False, verbose=0)
        dense = {
            "model": self.name, "seed": self.seed, "epochs": res.epochs,
            "selected_epoch": res.selected_epoch,
            "val_accuracy": self._accuracy(d.xv, d.yv),
            "test_accuracy": self._accuracy(d.xte, d.yte),
            "seconds_total": res.seconds_total, "seconds_per_epoch": res.seconds_per_epoch,
            "params": int(self.model.count_params()),
        }
        return dense, self.model.get_weights()

    def load_dense(self, dense: dict[str, Any], weights: list) -> None:
        """Build the model holding the dense ``weights``, compiled for fine-tuning."""
        import tf_keras as keras

        from edgeprune import training
        from edgeprune.bench._sparsity_setup import build_model, steps_per_epoch

        d, p = self.data, self.protocol
        self.model = build_model(self.name, d, self.seed)
        self.model.set_weights(weights)
        self.dense, self.dense_weights = dense, weights
        self.steps = steps_per_epoch(len(d.ytr), int(p["batch_size"]))
        total = self.steps * int(p["ft_epochs"])
        self.optimizer = keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(float(p["ft_lr"]), total),
            global_clipnorm=training.GLOBAL_CLIPNORM)
        self.model.compile(
            optimizer=self.optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        self.optimizer.build(self.model.trainable_variables)

    # -- one run ------------------------------------------------------------------------
    def run(self, method: str, sparsity: float) -> tuple[dict[str, Any], list[list]]:
        """One-shot prune + fine-tune + select on val + test once. Returns (row, layers)."""
        import numpy as np

        from edgeprune import training
        from edgeprune.pruning import apply_masks, iht_schedule, make_masks, pruning_report

        t_run = time.perf_counter()
        d, p, model = self.data, self.protocol, self.model
        training.set_seed(self.seed)  # same shuffling for every method of this seed
        epochs = int(p["ft_epochs"])
        mt = float(p["min_threshold"]) if method == "global_mt" else None
        Timed = _timed_callback_class()
        t0 = time.perf_counter()
        if method == "iht":
            cb = Timed(iht_schedule(self.steps * epochs, sparsity, frequency=15),
                       method="iht", seed=self.seed)
        else:
            masks = make_masks(model, method, sparsity, mt, self.seed)
            apply_masks(model, masks)
            cb = Timed(None, masks=masks, method=method, seed=self.seed)
        prune_one_shot = time.perf_counter() - t0
        sel = _select_callback(lambda: bool(cb.held))
        import tf_keras as keras

        t0 = time.perf_counter()
        hist = model.fit(d.xtr, d.ytr, batch_size=int(p["batch_size"]), epochs=epochs,
                         shuffle=True, validation_data=(d.xv, d.yv), verbose=0,
                         callbacks=[cb, keras.callbacks.TerminateOnNaN(), sel])
        diverged = bool(np.any(~np.isfinite(hist.history.get("loss", [0.0]))))
        fit_seconds = time.perf_counter() - t0
        if sel.weights is not None:
            model.set_weights(sel.weights)
        val_acc = self._accuracy(d.xv, d.yv)
        test_acc = self._accuracy(d.xte, d.yte)
        rows = pruning_report(model, min_threshold=float(p["min_threshold"]), warn=False)
        n = sum(r["weights"] for r in rows)
        nz = sum(r["nonzeros"] for r in rows)
        low = min(rows, key=lambda r: (r["nonzeros"] / r["weights"], r["nonzeros"]))
        below = [r["name"] for r in rows if r["nonzeros"] < r["floor"]]
        empty = [r["name"] for r in rows if r["nonzeros"] == 0]
        chance = d.chance
        row = {
            "model": self.name, "method": method, "sparsity": float(sparsity),
            "seed": self.seed, "val_accuracy": val_acc, "test_accuracy": test_acc,
            "achieved_sparsity": 1.0 - nz / n,
            "min_layer_keep": int(min(r["nonzeros"] for r in rows)),
            "min_layer": low["name"], "empty_layers": len(empty), "below_floor": len(below),
            "dead_units": int(sum(r["dead_units"] for r in rows)),
            "collapsed": int(bool(below) and test_acc <= chance + 0.02),
            "at_chance": int(test_acc <= chance + 0.02),
            "chance": chance, "selected_epoch": sel.epoch or epochs, "ft_epochs": epochs,
            "diverged": int(diverged),
            "min_threshold": mt if mt is not None else 0.0,
            "dense_val_accuracy": self.dense["val_accuracy"],
            "dense_test_accuracy": self.dense["test_accuracy"],
            "prune_seconds": prune_one_shot + cb.seconds,
            "finetune_seconds": fit_seconds,
            "run_seconds": time.perf_counter() - t_run,
        }
        layers = [[r["name"], r["weights"], r["nonzeros"], r["floor"], r["dead_units"]]
                  for r in rows]
        return row, layers


# ----------------------------------------------------------------------------- stages
def dense_stage(name: str, data, seed: int, quick: bool,
                checkpoint_key: str) -> tuple[dict[str, Any], list]:
    """The dense model of (``name``, ``seed``): its record and weights."""
    from edgeprune.training import scratch_checkpoint_dir

    ckpt = scratch_checkpoint_dir(checkpoint_key)
    result = Harness(name, data, seed, quick).train_dense(ckpt)
    shutil.rmtree(ckpt, ignore_errors=True)
    return result


def run_stage(name: str, data, seed: int, quick: bool, dense: dict[str, Any], weights: list,
              method: str, sparsity: float) -> tuple[dict[str, Any], list[list]]:
    """One (method, sparsity) run from the dense weights: its CSV row and layers."""
    harness = Harness(name, data, seed, quick)
    harness.load_dense(dense, weights)
    return harness.run(method, sparsity)


# ----------------------------------------------------------------------------- driver
def _config(args: argparse.Namespace, quick: bool) -> dict[str, Any]:
    return {
        "quick": quick, "split_seed": args.split_seed, "har_source": args.data,
        "val_subjects": args.val_subjects,
        "models": {m: SPECS[m].protocol(quick) for m in MODELS},
        "limit": {"har2": QUICK_LIMIT if quick else None,
                  "digits": QUICK_DIGITS_LIMIT if quick else None},
    }


def _check_config(out: pathlib.Path, cfg: dict[str, Any], models: list[str]) -> str | None:
    path = out / "config.json"
    if path.exists():
        old = json.loads(path.read_text())
        same = (old.get("quick") == cfg["quick"] and old.get("split_seed") == cfg["split_seed"]
                and old.get("har_source") == cfg["har_source"]
                and old.get("val_subjects") == cfg["val_subjects"]
                and all(old.get("models", {}).get(m) == cfg["models"][m] for m in models))
        if not same:
            return (f"{path} was written with other settings (quick/epochs/split); "
                    "use another --out folder")
    _write_json(path, cfg)
    return None


def run(args: argparse.Namespace) -> int:
    """Run the grid (skipping finished rows), then write CSV, JSON, plots and summary."""
    quick = bool(args.quick)
    sparsities = tuple(args.sparsities) if args.sparsities else (
        QUICK_SPARSITIES if quick else SPARSITIES)
    if any(not 0.0 < s < 1.0 for s in sparsities):
        print(f"--sparsities must be in (0, 1): {sparsities}", file=sys.stderr)
        return 2
    n_seeds = args.seeds if args.seeds is not None else (1 if quick else 2)
    if n_seeds < 1:
        print(f"--seeds={n_seeds} must be >= 1", file=sys.stderr)
        return 2
    models = [m for m in MODELS if m in args.models]
    methods = [m for m in METHODS if m in args.methods]
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    cfg = _config(args, quick)
    problem = _check_config(out, cfg, models)
    if problem:
        print(problem, file=sys.stderr)
        return 2

    from edgeprune.pruning import METHODS as PRUNING_METHODS

    assert set(METHODS) == set(PRUNING_METHODS), (METHODS, PRUNING_METHODS)
    csv_path = out / "results.csv"
    rows = read_rows(csv_path)
    done = {run_key(r["model"], r["method"], float(r["sparsity"]), int(r["seed"])) for r in rows}
    grid = [(seed, m, meth, s) for seed in range(n_seeds) for m in models for meth in methods
            for s in sparsities]
    todo = [g for g in grid if run_key(g[1], g[2], g[3], g[0]) not in done]
    print(f"sparsity benchmark -> {out}: {len(grid)} runs, {len(grid) - len(todo)} already "
          f"finished, {len(todo)} to run", flush=True)

    from tqdm.auto import tqdm

    from edgeprune.executor import ExecutorError, open_executor

    t_start = time.perf_counter()
    data_cache: dict[str, Any] = {}
    pairs = sorted({(g[0], g[1]) for g in todo}, key=lambda g: (g[0], MODELS.index(g[1])))
    try:
        executor = open_executor(args.workers, args.ray_address)
    except ExecutorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=args.no_progress)
    with executor as ex:
        tqdm.write(f"runs go {ex.describe()}")
        handles = {m: ex.put(_data(m, args, quick, data_cache)) for _, m in pairs}
        dense = _dense_models(ex, out, pairs, handles, quick)
        runs = [ex.submit(run_stage, m, handles[m], seed, quick, *dense[seed, m], meth, s)
                for seed, m, meth, s in todo]
        try:
            for handle in ex.as_completed(runs):
                row, layers = ex.result(handle).value
                key = run_key(row["model"], row["method"], row["sparsity"], row["seed"])
                _write_json(out / "runs" / f"{key[0]}__{key[1]}__{key[2]}__s{key[3]}.json",
                            {"row": row, "layers": layers})
                rows = [r for r in rows if run_key(r["model"], r["method"],
                                                   float(r["sparsity"]),
                                                   int(r["seed"])) != key]
                rows.append(row)
                write_rows(csv_path, rows)
                bar.update(1)
                tqdm.write(
                    f"{row['model']:12s} {row['method']:9s} s={row['sparsity']:<5g} seed "
                    f"{row['seed']}: val {row['val_accuracy']:.4f} test "
                    f"{row['test_accuracy']:.4f} (achieved {row['achieved_sparsity']:.4f}, "
                    f"min layer keeps {row['min_layer_keep']} [{row['min_layer']}]"
                    f"{', COLLAPSED' if row['collapsed'] else ''}, "
                    f"{row['run_seconds']:.1f} s)")
        finally:
            bar.close()
    elapsed = time.perf_counter() - t_start
    from edgeprune.bench import _sparsity_report as report

    report.write_all(out, read_rows(csv_path), cfg, seconds_this_call=elapsed,
                     machine=machine.describe())
    print(f"wrote {csv_path}, {out / 'results.json'}, plots and summary.md "
          f"({elapsed:.0f} s this call)", flush=True)
    return 0


def _dense_models(ex: Any, out: pathlib.Path, pairs: list[tuple[int, str]],
                  data: dict[str, Any], quick: bool) -> dict[tuple[int, str], tuple]:
    """The dense (record, weights) of every (seed, model): stored ones from ``out/dense``,
    the others trained in parallel and stored as each finishes."""
    import numpy as np

    ddir = out / "dense"
    found, todo = {}, {}
    for seed, m in pairs:
        wpath, jpath = ddir / f"{m}_s{seed}.npz", ddir / f"{m}_s{seed}.json"
        if wpath.exists() and jpath.exists():
            with np.load(wpath) as saved:
                found[seed, m] = (json.loads(jpath.read_text()),
                                  [saved[f"arr_{i}"] for i in range(len(saved.files))])
        else:
            key = f"bench-sparsity {out.resolve()} {m} {seed} {quick}"
            handle = ex.submit(dense_stage, m, data[m], seed, quick, key)
            todo[id(handle)] = (handle, seed, m)
    for handle in ex.as_completed([h for h, _, _ in todo.values()]):
        _, seed, m = todo[id(handle)]
        found[seed, m] = dense, weights = ex.result(handle).value
        ddir.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, *weights)
        atomic_write(ddir / f"{m}_s{seed}.npz", buffer.getvalue(), parents=True)
        _write_json(ddir / f"{m}_s{seed}.json", dense)
        print(f"[dense] {m} seed {seed}: val {dense['val_accuracy']:.4f} test "
              f"{dense['test_accuracy']:.4f} (epoch {dense['selected_epoch']}/"
              f"{dense['epochs']}, {dense['seconds_total']:.0f} s)", flush=True)
    return found


def _data(model: str, args: argparse.Namespace, quick: bool, cache: dict[str, Any]):
    from edgeprune.bench._sparsity_setup import load_digits32, load_har2

    kind = SPECS[model].dataset
    if kind not in cache:
        if kind == "har2":
            cache[kind] = load_har2(args.data, args.data_path, split_seed=args.split_seed,
                                    cache_dir=args.cache_dir, val_subjects=args.val_subjects,
                                    limit=QUICK_LIMIT if quick else None)
        else:
            cache[kind] = load_digits32(split_seed=args.split_seed,
                                        limit=QUICK_DIGITS_LIMIT if quick else None)
    return cache[kind]
