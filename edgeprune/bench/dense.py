"""``python -m edgeprune.bench dense``: train a dense (unpruned) HAR-2 model and report it.

Trains FastGRNN (hidden 80, ranks 5/40, or the sizes ``--hidden/--w-rank/--u-rank``
give; JSON ``arch``) or the HAR CNN with the measured defaults of
``edgeprune.training``, selects the epoch on validation accuracy, and writes JSON with
``val_accuracy`` and ``test_accuracy`` of that checkpoint (fractions), ``params``,
``epochs``, ``selected_epoch``, ``seconds_per_epoch``, ``seconds_total``, ``dataset``.

With ``--refit`` it then trains a fresh model (same seed and recipe) on the training and
validation volunteers together for the selected number of epochs, following the same lr
schedule, and adds ``refit`` (``epochs``, ``n_train``, ``test_accuracy``,
``seconds_total``): every choice was made on validation, the refit only adds data. It has
no validation accuracy of its own. ``--refit-epochs E`` refits for E epochs instead (on the
same schedule), e.g. the ``cv_epoch`` a ``--folds`` run found.

With ``--folds K`` it cross-validates the recipe over volunteers instead, to tell a
recipe change from noise before trusting it: K models, fold k holding out the training
volunteers ``ids[k::K]`` (sorted ids), each selected on its own held-out volunteers. The
JSON has ``folds`` (``val_subjects``, ``val_accuracy``, ``selected_epoch``, ...), their
``val_accuracy_mean``/``val_accuracy_sd``, and ``cv_epoch``: the epoch whose validation
accuracy averaged over the folds is highest (earliest on ties), a steadier choice of
training length than one split's peak. Test is never loaded into a model.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Any

from edgeprune import machine
from edgeprune._cli import whole_number
from edgeprune.executor import add_executor_arguments
from edgeprune.pipeline.cli import MAX_SEEDS

MODELS = ("fastgrnn", "cnn")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``dense`` subcommand (``func`` runs it and returns an exit code)."""
    p = subparsers.add_parser("dense", help="train a dense HAR-2 model, write JSON",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=MODELS, required=True, help="network family")
    p.add_argument("--data", choices=("uci", "hapt"), default="uci",
                   help="'uci' = official archive (the benchmark); 'hapt' = offline demo")
    p.add_argument("--data-path", default=None,
                   help="UCI HAR archive: zip, folder or parent (default: the download "
                        "stored by python -m har_data download)")
    p.add_argument("--json", required=True, help="output JSON path")
    p.add_argument("--epochs", type=int, default=None, help="default: the model's default")
    p.add_argument("--batch-size", type=int, default=None,
                   help="default: the model's default")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: the model's default)")
    p.add_argument("--augment", type=float, default=None,
                   help="jitter scale (noise = scale/2); 0 = off; default: the model's default")
    p.add_argument("--rotate", type=float, default=None,
                   help="random 3-D rotation augmentation, max degrees (0 = off; default: "
                        "the model's default)")
    p.add_argument("--warmup-epochs", type=int, default=None,
                   help="linear lr warm-up epochs before the cosine decay (default: the "
                        "model's default)")
    p.add_argument("--hidden", type=int, default=None,
                   help="FastGRNN hidden units (default 80, the paper's HAR-2 size)")
    p.add_argument("--w-rank", type=int, default=None, help="FastGRNN rank of W (default 5)")
    p.add_argument("--u-rank", type=int, default=None, help="FastGRNN rank of U (default 40)")
    p.add_argument("--seed", type=int, default=0, help="training seed (init, shuffle)")
    p.add_argument("--seeds", type=whole_number(1, MAX_SEEDS), default=1, metavar="K",
                   help="train K models in parallel (seeds as the pipeline's --seeds: the "
                        "first is --seed) and report each and their mean-logit ensemble "
                        "(default 1)")
    p.add_argument("--split-seed", type=int, default=0,
                   help="seed drawing the validation volunteers (har_data default 0)")
    p.add_argument("--val-subjects", type=int, default=None,
                   help="training volunteers held out for validation (har_data default)")
    p.add_argument("--cache-dir", default=None, help="har_data cache (default its own)")
    p.add_argument("--checkpoint-dir", default=None,
                   help="resume from / checkpoint into (default: none)")
    p.add_argument("--save-model", default=None,
                   help="save the selected model (.keras; default: not saved)")
    p.add_argument("--plot", default=None,
                   help="save the training curves (PNG; default: not saved)")
    p.add_argument("--refit", action="store_true",
                   help="also refit on train + validation for the selected epochs; "
                        "report its test accuracy beside the selected model's")
    p.add_argument("--refit-epochs", type=int, default=None,
                   help="refit for this many epochs instead of the selected number "
                        "(e.g. a --folds run's cv_epoch); needs --refit (default: the selected)")
    p.add_argument("--folds", type=int, default=None,
                   help="cross-validate over training volunteers in this many folds "
                        "(validation accuracies only, no test; default: no folds)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_executor_arguments(p)
    p.set_defaults(func=run)
    return p


def _recipe(args: argparse.Namespace, ds: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's training defaults with the command line's overrides, and the
    ``training.train`` keyword arguments they make."""
    from edgeprune import training

    defaults = dict(training.FASTGRNN_DEFAULTS if args.model == "fastgrnn"
                    else training.CNN_DEFAULTS)
    for key in ("epochs", "batch_size", "lr", "augment", "rotate", "warmup_epochs"):
        if getattr(args, key) is not None:
            defaults[key] = getattr(args, key)
    recipe = dict(
        schedule_epochs=int(defaults["epochs"]), batch_size=int(defaults["batch_size"]),
        lr=float(defaults["lr"]), schedule=defaults["schedule"],
        weight_decay=float(defaults["weight_decay"]), seed=args.seed,
        progress=not args.no_progress, warmup_epochs=int(defaults.get("warmup_epochs", 0)),
        augment=training.augment_from(defaults, ds.mean, ds.std),
    )
    return defaults, recipe


def _write_json(path: str, out: dict[str, Any]) -> None:
    """Write the result (with the machine it ran on) as indented JSON, creating folders."""
    out["machine"] = machine.describe()
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=1))


ARCH_FLAGS = ("hidden", "w_rank", "u_rank")


def _arch_error(args: argparse.Namespace) -> str | None:
    """Why the FastGRNN size flags are unusable, or None."""
    given = {k: getattr(args, k) for k in ARCH_FLAGS if getattr(args, k, None) is not None}
    if given and args.model != "fastgrnn":
        return "--hidden, --w-rank and --u-rank apply to --model fastgrnn only"
    if bad := [f"--{k.replace('_', '-')}={v}" for k, v in given.items() if v <= 0]:
        return f"{', '.join(bad)}: sizes must be positive"
    return None


def _arch(args: argparse.Namespace) -> dict[str, int] | None:
    """FastGRNN's sizes: the flags given, ``fastgrnn_classifier``'s defaults (the paper's
    80 / 5 / 40) otherwise; None for the CNN."""
    import inspect

    from edgeprune import models

    if args.model != "fastgrnn":
        return None
    params = inspect.signature(models.fastgrnn_classifier).parameters
    return {k: getattr(args, k, None) or params[k].default for k in ARCH_FLAGS}


def _builder(args: argparse.Namespace) -> Any:
    """``build(input_shape, classes=, seed=)`` for the model and its size flags."""
    import functools

    from edgeprune import models

    if args.model != "fastgrnn":
        return models.har_cnn
    return functools.partial(models.fastgrnn_classifier, **_arch(args))


def run(args: argparse.Namespace) -> int:
    """Train, evaluate the validation-selected checkpoint on val and test, write JSON
    (or with ``--folds`` cross-validate over volunteers, see ``run_folds``)."""
    import numpy as np

    import har_data
    from edgeprune import training

    if args.epochs is not None and args.epochs <= 0:
        print(f"--epochs={args.epochs} must be positive", file=sys.stderr)
        return 2
    if args.refit_epochs is not None and not (args.refit and args.refit_epochs > 0):
        print(f"--refit-epochs={args.refit_epochs} needs --refit and must be positive",
              file=sys.stderr)
        return 2
    if error := _arch_error(args):
        print(error, file=sys.stderr)
        return 2
    if args.folds is not None:
        return run_folds(args)
    if args.seeds > 1:
        return run_seeds(args)
    extra: dict[str, Any] = {}
    if args.val_subjects is not None:
        extra["val_subjects"] = args.val_subjects
    ds = har_data.load(args.data, path=args.data_path, seed=args.split_seed,
                       cache_dir=args.cache_dir, **extra)
    xtr, xv, xte = (ds.normalize(s.x) for s in (ds.train, ds.val, ds.test))
    builder = _builder(args)
    defaults, recipe = _recipe(args, ds)
    if (args.refit_epochs or 0) > int(defaults["epochs"]):
        print(f"--refit-epochs={args.refit_epochs} exceeds the {defaults['epochs']} "
              "training epochs", file=sys.stderr)
        return 2
    model = builder(xtr.shape[1:], classes=2, seed=args.seed)
    result = training.train(model, (xtr, ds.train.y), (xv, ds.val.y),
                            epochs=int(defaults["epochs"]),
                            checkpoint_dir=args.checkpoint_dir, **recipe)

    def accuracy(x: np.ndarray, y: np.ndarray, net: Any = model) -> float:
        logits = net.predict(x, batch_size=512, verbose=0)
        return float(np.mean(np.argmax(logits, axis=1) == y))

    out = {
        "model": args.model,
        "dataset": ds.name,
        "val_subjects": [int(s) for s in getattr(ds, "val_subjects", ())],
        "n_train": len(xtr), "n_val": len(xv), "n_test": len(xte),
        "params": int(model.count_params()), "arch": _arch(args),
        "val_accuracy": accuracy(xv, ds.val.y),
        "test_accuracy": accuracy(xte, ds.test.y),
        "epochs": result.epochs,
        "selected_epoch": result.selected_epoch,
        "seconds_per_epoch": result.seconds_per_epoch,
        "seconds_total": result.seconds_total,
        "seed": args.seed,
        "split_seed": args.split_seed,
        "settings": defaults,
        "training_warning": training.loss_rise(result),
        "history": result.history,
    }
    if args.refit:
        refit = builder(xtr.shape[1:], classes=2, seed=args.seed)
        xall = np.concatenate([xtr, xv])
        yall = np.concatenate([ds.train.y, ds.val.y])
        ckpt = None if args.checkpoint_dir is None else pathlib.Path(args.checkpoint_dir, "refit")
        done = training.train(refit, (xall, yall), None,
                              epochs=args.refit_epochs or result.selected_epoch,
                              checkpoint_dir=ckpt, **recipe)
        out["refit"] = {"epochs": done.epochs, "n_train": len(xall),
                        "test_accuracy": accuracy(xte, ds.test.y, refit),
                        "seconds_total": done.seconds_total}
    _write_json(args.json, out)
    if args.save_model:
        model.save(args.save_model)
    if args.plot:
        training.plot_history(result, args.plot)
    if out["training_warning"]:
        print(f"WARNING {out['training_warning']}", file=sys.stderr)
    print(f"{args.model} on {ds.name}: val {out['val_accuracy']:.4f} test "
          f"{out['test_accuracy']:.4f} (epoch {out['selected_epoch']}/{out['epochs']}, "
          f"{out['seconds_per_epoch']:.2f} s/epoch)"
          + (f"; refit on train + val: test {out['refit']['test_accuracy']:.4f}"
             if args.refit else ""))
    return 0


def _in_parallel(args: argparse.Namespace, stage: Any,
                 inputs: list[tuple[Any, ...]]) -> list[Any] | None:
    """``stage(args, *each)`` for every tuple of ``inputs``, in parallel on the executor
    of ``--workers``/``--ray-address``; their values in order, or None (after one
    ``error:`` line) when the executor cannot start."""
    from edgeprune.executor import ExecutorError, open_executor

    try:
        executor = open_executor(args.workers, args.ray_address)
    except ExecutorError as err:
        print(f"error: {err}", file=sys.stderr)
        return None
    with executor as ex:
        handles = [ex.submit(stage, args, *each) for each in inputs]
        return [ex.result(h).value for h in handles]


def train_fold(args: argparse.Namespace, k: int, val_subjects: list[int]) -> dict[str, Any]:
    """Fold ``k``: the recipe trained on the training volunteers but ``val_subjects``,
    selected on those (a stage: runs in any process)."""
    import har_data
    from edgeprune import training

    ds = har_data.load(args.data, path=args.data_path, cache_dir=args.cache_dir,
                       val_subjects=val_subjects)
    xtr, xv = ds.normalize(ds.train.x), ds.normalize(ds.val.x)
    defaults, recipe = _recipe(args, ds)
    model = _builder(args)(xtr.shape[1:], classes=2, seed=args.seed)
    ckpt = None if args.checkpoint_dir is None else pathlib.Path(args.checkpoint_dir, f"fold{k}")
    result = training.train(model, (xtr, ds.train.y), (xv, ds.val.y),
                            epochs=int(defaults["epochs"]), checkpoint_dir=ckpt,
                            **{**recipe, "progress": False})
    return {"fold": k, "val_subjects": list(ds.val_subjects), "n_train": len(xtr),
            "n_val": len(xv), "val_accuracy": result.best_val_accuracy,
            "selected_epoch": result.selected_epoch, "seconds_total": result.seconds_total,
            "training_warning": training.loss_rise(result),
            "val_accuracy_curve": result.history["val_accuracy"],
            "loss_curve": result.history["loss"]}


def run_folds(args: argparse.Namespace) -> int:
    """``--folds K``: one validation-selected model per fold of the training volunteers;
    writes the folds' validation accuracies and their mean and sd (never test)."""
    import numpy as np

    import har_data

    if (args.folds < 2 or args.refit or args.val_subjects is not None or args.save_model
            or args.plot):
        print("--folds needs K >= 2 and excludes --refit, --val-subjects, --save-model "
              "and --plot", file=sys.stderr)
        return 2
    base = har_data.load(args.data, path=args.data_path, cache_dir=args.cache_dir,
                         val_subjects=0)
    ids = sorted({int(v) for v in np.concatenate([base.train.subject, base.val.subject])})
    if args.folds > len(ids):
        print(f"--folds={args.folds}: only {len(ids)} training volunteers", file=sys.stderr)
        return 2
    folds = _in_parallel(args, train_fold, [(k, ids[k::args.folds]) for k in range(args.folds)])
    if folds is None:
        return 2
    for fold in folds:
        print(f"fold {fold['fold']} (volunteers {fold['val_subjects']}): val "
              f"{fold['val_accuracy']:.4f} (epoch {fold['selected_epoch']})"
              + (f"; WARNING {fold['training_warning']}" if fold["training_warning"] else ""))
    defaults = _recipe(args, base)[0]
    accs = np.array([f["val_accuracy"] for f in folds])
    mean_curve = np.mean([f["val_accuracy_curve"] for f in folds], axis=0)
    out = {"model": args.model, "dataset": base.name, "arch": _arch(args), "folds": folds,
           "val_accuracy_mean": float(accs.mean()), "val_accuracy_sd": float(accs.std(ddof=1)),
           "cv_epoch": int(np.argmax(mean_curve)) + 1,
           "val_accuracy_curve_mean": [float(v) for v in mean_curve],
           "epochs": int(defaults["epochs"]), "seed": args.seed, "settings": defaults}
    _write_json(args.json, out)
    print(f"{args.model}, {args.folds} volunteer folds: val {out['val_accuracy_mean']:.4f} "
          f"(sd {out['val_accuracy_sd']:.4f}); mean curve highest at epoch {out['cv_epoch']} "
          f"({mean_curve.max():.4f})")
    return 0


def train_member(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One member of ``--seeds``: the recipe with training seed ``seed``, selected on
    validation; returns its record and its validation and test logits (a stage: runs in
    any process)."""
    import har_data
    from edgeprune import training

    extra = {} if args.val_subjects is None else {"val_subjects": args.val_subjects}
    ds = har_data.load(args.data, path=args.data_path, seed=args.split_seed,
                       cache_dir=args.cache_dir, **extra)
    xtr, xv, xte = (ds.normalize(s.x) for s in (ds.train, ds.val, ds.test))
    defaults, recipe = _recipe(args, ds)
    model = _builder(args)(xtr.shape[1:], classes=2, seed=seed)
    result = training.train(model, (xtr, ds.train.y), (xv, ds.val.y),
                            epochs=int(defaults["epochs"]),
                            **{**recipe, "seed": seed, "progress": False})
    return {"seed": seed, "selected_epoch": result.selected_epoch,
            "seconds_total": result.seconds_total,
            "training_warning": training.loss_rise(result),
            "val_logits": model.predict(xv, batch_size=512, verbose=0),
            "test_logits": model.predict(xte, batch_size=512, verbose=0),
            "labels": (ds.val.y, ds.test.y), "dataset": ds.name, "settings": defaults,
            "val_subjects": [int(v) for v in ds.val_subjects]}


def run_seeds(args: argparse.Namespace) -> int:
    """``--seeds K``: K models trained in parallel; writes each member's validation and
    test accuracy, the member best on validation and the mean-logit ensemble of all K."""
    import numpy as np

    from edgeprune import training

    if args.refit or args.save_model or args.plot or args.checkpoint_dir:
        print("--seeds K excludes --refit, --save-model, --plot and --checkpoint-dir",
              file=sys.stderr)
        return 2
    members = _in_parallel(args, train_member,
                           [(s,) for s in training.member_seeds(args.seed, args.seeds)])
    if members is None:
        return 2
    y_val, y_test = members[0]["labels"]

    def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(np.argmax(logits, axis=1) == y))

    rows = [{"seed": m["seed"], "val_accuracy": accuracy(m["val_logits"], y_val),
             "test_accuracy": accuracy(m["test_logits"], y_test),
             "selected_epoch": m["selected_epoch"], "seconds_total": m["seconds_total"],
             "training_warning": m["training_warning"]} for m in members]
    val = [r["val_accuracy"] for r in rows]
    best = rows[val.index(max(val))]
    out = {"model": args.model, "dataset": members[0]["dataset"],
           "val_subjects": members[0]["val_subjects"], "arch": _arch(args),
           "members": rows,
           "member_mean": {k: float(np.mean([r[k] for r in rows]))
                           for k in ("val_accuracy", "test_accuracy")},
           "best_on_val": {"seed": best["seed"], "val_accuracy": best["val_accuracy"],
                           "test_accuracy": best["test_accuracy"]},
           "ensemble": {"val_accuracy": accuracy(np.mean([m["val_logits"] for m in members],
                                                         axis=0), y_val),
                        "test_accuracy": accuracy(np.mean([m["test_logits"] for m in members],
                                                          axis=0), y_test)},
           "seed": args.seed, "settings": members[0]["settings"]}
    _write_json(args.json, out)
    for r in rows:
        print(f"seed {r['seed']}: val {r['val_accuracy']:.4f} test {r['test_accuracy']:.4f} "
              f"(epoch {r['selected_epoch']})")
    print(f"{args.seeds} members: mean val {out['member_mean']['val_accuracy']:.4f} test "
          f"{out['member_mean']['test_accuracy']:.4f}; best on val: test "
          f"{best['test_accuracy']:.4f}; ensemble (mean logits): val "
          f"{out['ensemble']['val_accuracy']:.4f} test {out['ensemble']['test_accuracy']:.4f}")
    return 0
