"""``python -m edgeprune.bench seeds --seeds N``: the accuracy benchmark.

Runs the whole pipeline for seeds 0..N-1 at one budget, the seeds in parallel on one
executor (their stages share the workers), each into ``OUT/seed-<s>/`` (a pipeline run
folder: an interrupted benchmark resumes every seed from its last finished stage, and a
finished seed is not trained again). Writes ``OUT/seeds.json`` - per seed the report's
``accuracy`` fields under their report names (``val``, ``test_float``, ``test_c_int8``),
the shipped model's bytes, configuration, instructions per window, each stage's seconds
and each dense member's validation accuracy, and for each accuracy the mean, sd (n - 1),
min and max over seeds - and ``OUT/seeds.png``, the distribution. ``OUT/bench.json``
holds the benchmark's arguments: a folder holding another benchmark is refused (exit 4).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import os
import pathlib
import statistics
import sys
from typing import Any

from edgeprune import machine
from edgeprune._cli import whole_number
from edgeprune.bench._outdir import MARKER, holds_another
from edgeprune.executor import add_executor_arguments
from edgeprune.pipeline.cli import MAX_SEEDS as MAX_DENSE_SEEDS
from edgeprune.pipeline.cli import budget_kb, instruction_budget, min_threshold_value

ACCURACIES = ("val", "test_float", "test_c_int8")
MAX_SEEDS = 1000
EXIT_USAGE, EXIT_NO_FIT, EXIT_OUT_DIR, EXIT_INTERRUPTED = 2, 3, 4, 130


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``seeds`` subcommand (``func`` runs it and returns an exit code)."""
    p = subparsers.add_parser("seeds", help="the pipeline over seeds 0..N-1: accuracy mean/sd",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=whole_number(1, MAX_SEEDS), required=True, metavar="N",
                   help=f"number of seeds N: runs of seeds 0 .. N-1 (1 .. {MAX_SEEDS})")
    p.add_argument("--model", choices=("fastgrnn", "cnn"), default="fastgrnn",
                   help="network family (default: fastgrnn)")
    p.add_argument("--budget-kb", type=budget_kb, default=8.0,
                   help="flash budget in KiB (default 8)")
    p.add_argument("--data", choices=("hapt", "uci"), default="uci",
                   help="uci: the official archive (the benchmark, default); hapt: demo data")
    p.add_argument("--data-path", type=pathlib.Path, default=None,
                   help="'UCI HAR Dataset.zip' or its folder (with --data uci; "
                        "default: the bundled demo data with --data hapt)")
    p.add_argument("--min-threshold", type=min_threshold_value, default=0.0005,
                   help="Minimum Threshold (default 0.0005, the paper's)")
    p.add_argument("--max-instructions", type=instruction_budget, default=None, metavar="N",
                   help="speed budget per window on the emulated Cortex-M4 (default: none)")
    p.add_argument("--refit", action="store_true",
                   help="refit the selected configuration on training + validation volunteers")
    p.add_argument("--dense-seeds", type=whole_number(1, MAX_DENSE_SEEDS), default=1,
                   metavar="K", help="each run's --seeds: dense members per architecture "
                   f"(1 .. {MAX_DENSE_SEEDS}, default 1)")
    p.add_argument("--quick", action="store_true", help="the pipeline's smoke-test mode")
    p.add_argument("--out", type=pathlib.Path, required=True, help="output folder (resumable)")
    add_executor_arguments(p)
    p.set_defaults(func=run)
    return p


def _identity(args: argparse.Namespace) -> dict[str, Any]:
    return {"benchmark": "seeds", "model": args.model, "budget_kb": args.budget_kb,
            "data": args.data, "data_path": None if args.data_path is None
            else str(args.data_path), "min_threshold": args.min_threshold,
            "max_instructions": args.max_instructions, "refit": args.refit,
            "quick": args.quick, **({"dense_seeds": args.dense_seeds}
                                    if args.dense_seeds != 1 else {})}


def _stats(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def summarize(reports: dict[int, dict[str, Any]], identity: dict[str, Any]) -> dict[str, Any]:
    """``seeds.json``: each seed's shipped model and the statistics over seeds."""
    seeds = []
    for seed, report in sorted(reports.items()):
        mcu = report.get("mcu") or {}
        selected = [c for c in report["candidates"] if c.get("selected")]
        seeds.append({
            "seed": seed,
            "accuracy": {k: report["accuracy"][k] for k in ACCURACIES},
            "model_bytes": report["bytes"]["model"],
            "selected": report["selected"],
            "refit_shipped": bool(report.get("refit", {}).get("shipped")),
            "dense_val_float": {arch: [m["val_accuracy_float"] for m in entry["members"]]
                                for arch, entry in report.get("dense_seeds", {}).items()},
            "instructions_per_window": mcu.get("instructions_per_window",
                                               selected[0].get("instructions_per_window")
                                               if selected else None),
            "seconds": round(sum(report["seconds"].values()), 1),
            "stage_seconds": report["seconds"],
        })
    return {"benchmark": identity, "machine": machine.describe(), "n_seeds": len(seeds),
            "seeds": seeds,
            "summary": {k: _stats([s["accuracy"][k] for s in seeds]) for k in ACCURACIES}}


def plot(summary: dict[str, Any], path: pathlib.Path) -> None:
    """Each seed's validation and test (C int8) accuracy, with the means."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgeprune.pipeline.report import save_figure

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    rows = (("val", "validation (C int8)"), ("test_c_int8", "test (C int8, shipped)"))
    for row, (key, _) in enumerate(rows):
        values = [100 * s["accuracy"][key] for s in summary["seeds"]]
        ax.scatter(values, [row] * len(values), color="tab:blue", zorder=3)
        for s, v in zip(summary["seeds"], values, strict=True):
            ax.annotate(str(s["seed"]), (v, row), textcoords="offset points", xytext=(0, 6),
                        fontsize=8, ha="center")
        mean = 100 * summary["summary"][key]["mean"]
        ax.plot([mean, mean], [row - 0.25, row + 0.25], color="red")
        ax.annotate(f"mean {mean:.2f}", (mean, row - 0.3), fontsize=8, ha="center", va="top")
    ax.set_yticks([0, 1], [label for _, label in rows])
    ax.set_ylim(-0.7, 1.6)
    b = summary["benchmark"]
    ax.set_xlabel("accuracy (%), one dot per seed (labelled)")
    ax.set_title(f"{b['model']} at {b['budget_kb']:g} KiB on {b['data']}"
                 f"{' (refit)' if b['refit'] else ''}: {summary['n_seeds']} seeds")
    save_figure(fig, path)


def run(args: argparse.Namespace) -> int:
    """Run (or resume) every seed's pipeline, then write seeds.json and seeds.png."""
    from edgeprune.executor import ExecutorError, open_executor
    from edgeprune.pipeline.config import RunConfig
    from edgeprune.pipeline.run import NoFitError
    from edgeprune.pipeline.run import run as run_pipeline
    from edgeprune.pipeline.rundir import OutDirError, atomic_write_json
    from edgeprune.training import pin_threads

    if args.data == "uci" and args.data_path is None:
        print("error: --data uci needs --data-path", file=sys.stderr)
        return EXIT_USAGE
    out, identity = args.out, _identity(args)
    marker = out / MARKER
    if holds_another(out, identity):
        return EXIT_OUT_DIR
    try:
        executor = open_executor(args.workers, args.ray_address)
    except ExecutorError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    atomic_write_json(marker, identity)
    pin_threads()
    base = RunConfig(model=args.model, budget_kb=args.budget_kb, data=args.data,
                     data_path=identity["data_path"], out=out, seed=0,
                     min_threshold=args.min_threshold, max_instructions=args.max_instructions,
                     refit=args.refit, quick=args.quick, firmware=True,
                     workers=args.workers, ray_address=args.ray_address,
                     seeds=args.dense_seeds)
    configs = {s: dataclasses.replace(base, seed=s, out=out / f"seed-{s}")
               for s in range(args.seeds)}
    reports, failed = {}, {}
    with executor as ex:
        print(f"{args.seeds} seeds; stages run {ex.describe()}", file=sys.stderr)
        # one driver thread per seed (up to 4 per worker): every seed's stages are queued
        # for the workers at once; in process (--workers 1) the seeds run one by one
        pool = concurrent.futures.ThreadPoolExecutor(min(args.seeds, 4 * ex.workers))
        futures = {pool.submit(run_pipeline, cfg, ex): s for s, cfg in configs.items()}
        try:
            for future in concurrent.futures.as_completed(futures):
                seed = futures[future]
                try:
                    reports[seed] = future.result()
                except (NoFitError, OutDirError, ValueError) as err:
                    failed[seed] = str(err)
        except KeyboardInterrupt:
            print("\ninterrupted: run the same command again to resume every seed from its "
                  "last finished stage", file=sys.stderr)
            ex.close()
            os._exit(EXIT_INTERRUPTED)  # the seeds' driver threads cannot be joined
        pool.shutdown()
    if reports:
        summary = summarize(reports, identity)
        summary["failed"] = failed
        atomic_write_json(out / "seeds.json", summary)
        plot(summary, out / "seeds.png")
        for key in ACCURACIES:
            st = summary["summary"][key]
            print(f"{key}: mean {100 * st['mean']:.2f}% sd {100 * st['sd']:.2f} "
                  f"(min {100 * st['min']:.2f}, max {100 * st['max']:.2f})")
    for seed, why in sorted(failed.items()):
        print(f"seed {seed}: {why}", file=sys.stderr)
    return EXIT_NO_FIT if failed else 0
