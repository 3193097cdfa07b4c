"""``python -m edgeprune.bench peer-edgeml --seeds N``: EdgeML's own FastGRNN trainer on our split.

Trains Microsoft EdgeML's TensorFlow FastGRNN (``FastTrainer``, MIT; loaded unmodified
from ``../shared/peers/edgeml`` at run time, never copied here) with its driver's
defaults - 300 epochs, batch 100, Adam lr 0.01 decayed x0.1 every 200 epochs, hidden 80,
ranks 5/40, dense (``--sparse``: the FastGRNN paper's HAR-2 sW 0.2, sU 0.3) - on the
training volunteers of our split for seeds 0..N-1 (validation volunteers drawn with the
seed, as the pipeline does), seeding TensorFlow and numpy with the seed where EdgeML's
driver uses 42. Each epoch it evaluates the official test split (EdgeML's own loop) and
our validation volunteers, and reports three test accuracies per seed: EdgeML's own pick
(its best *test* epoch, its "Maximum Test accuracy"), its last epoch, and the epoch best on
validation (ties to lower validation loss, then the earlier epoch, as ours).

Each seed runs in a process of its own (EdgeML needs ``tensorflow.compat.v1`` with v2
behaviour off, process-wide), ``--workers`` of them at once, TensorFlow on one thread
each, as edgeprune's stages. Writes ``OUT/seed-<s>.json`` per seed (a finished seed is
not trained again: the benchmark resumes), ``OUT/peer_edgeml.json`` (per seed the picks,
epochs, validation accuracy and seconds per training epoch; mean, sd, min, max) and
``OUT/peer_edgeml.md``; with ``--ours OUT/seeds.json`` of ``bench seeds``, a table of ours
(test C int8) against EdgeML per seed, with margins.

Exit codes: 0 done; 1 a seed's training failed (its log is named); 2 bad input (one
``error:`` line); 4 ``--out`` holds something else; 5 skipped: EdgeML's sources are absent
(one ``skipped:`` line); 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
from typing import Any

from edgeprune import machine
from edgeprune._cli import whole_number
from edgeprune.bench import _peer_table as table
from edgeprune.bench._edgeml_run import Settings
from edgeprune.bench._outdir import MARKER, holds_another

EXIT_FAILED, EXIT_USAGE, EXIT_OUT_DIR, EXIT_SKIPPED, EXIT_INTERRUPTED = 1, 2, 4, 5, 130
DEFAULT_EDGEML = pathlib.Path(__file__).resolve().parents[3] / "shared" / "peers" / "edgeml"
PAPER_SPARSITY = {"sparsity_w": 0.2, "sparsity_u": 0.3}  # FastGRNN paper, HAR-2
MAX_SEEDS = 1000  # as bench seeds


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``peer-edgeml`` subcommand (``func`` runs it and returns an exit code)."""
    p = subparsers.add_parser("peer-edgeml", help="EdgeML's own FastGRNN trainer on our split",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=whole_number(1, MAX_SEEDS), required=True, metavar="N",
                   help="seeds 0..N-1")
    p.add_argument("--data", choices=("hapt", "uci"), default="uci",
                   help="uci: the official archive (default); hapt: demo data")
    p.add_argument("--data-path", type=pathlib.Path, default=None,
                   help="'UCI HAR Dataset.zip' or its folder (with --data uci)")
    p.add_argument("--out", type=pathlib.Path, required=True, help="output folder (resumable)")
    p.add_argument("--epochs", type=whole_number(1, 100_000), default=Settings.epochs,
                   help="training epochs (default 300, EdgeML's; lr decays every 200)")
    p.add_argument("--sparse", action="store_true",
                   help="the FastGRNN paper's HAR-2 sparsity (sW 0.2, sU 0.3; default dense)")
    p.add_argument("--workers", type=whole_number(1, 1024), default=1, metavar="N",
                   help="seeds trained at once, one process each (default 1)")
    p.add_argument("--ours", type=pathlib.Path, default=None, metavar="SEEDS_JSON",
                   help="bench seeds' seeds.json: add the side-by-side table")
    p.add_argument("--edgeml", type=pathlib.Path, default=DEFAULT_EDGEML, metavar="DIR",
                   help="EdgeML's sources (default ../shared/peers/edgeml)")
    p.set_defaults(func=run)
    return p


def edgeml_missing(root: pathlib.Path) -> str | None:
    """Why ``root`` cannot serve as EdgeML's sources, or None when it can."""
    needed = ("tf/edgeml_tf/trainer/fastTrainer.py", "tf/edgeml_tf/graph/rnn.py",
              "examples/tf/FastCells/helpermethods.py")
    absent = [n for n in needed if not (root / n).is_file()]
    return f"EdgeML's sources not found at {root} ({absent[0]} absent)" if absent else None


def _identity(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return {"benchmark": "peer-edgeml", "data": args.data,
            "data_path": None if args.data_path is None else str(args.data_path),
            "settings": dataclasses.asdict(settings)}


def _train_seed(args: argparse.Namespace, settings: Settings, seed: int) -> str | None:
    """Train one seed in its own process; None on success, else why it failed."""
    result = args.out / f"seed-{seed}.json"
    (args.out / f"seed-{seed}").mkdir(parents=True, exist_ok=True)
    log = args.out / f"seed-{seed}" / "stderr.log"
    cmd = [sys.executable, "-m", "edgeprune.bench._edgeml_run", "--edgeml", str(args.edgeml),
           "--data", args.data, "--seed", str(seed), "--out", str(result),
           "--settings", json.dumps(dataclasses.asdict(settings))]
    if args.data_path is not None:
        cmd += ["--data-path", str(args.data_path)]
    root = str(pathlib.Path(__file__).resolve().parents[2])  # this edgeprune, not another
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    with open(log, "w") as handle:
        code = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env).returncode
    if code != 0 or not result.exists():
        return f"exit {code}, see {log}"
    print(f"seed {seed}: done", file=sys.stderr)
    return None


def _load_runs(out: pathlib.Path, seeds: int) -> list[dict[str, Any]]:
    runs = []
    for s in range(seeds):
        path = out / f"seed-{s}.json"
        if path.exists():
            runs.append(json.loads(path.read_text()))
    return runs


def run(args: argparse.Namespace) -> int:
    """Train (or resume) every seed, then write peer_edgeml.json and peer_edgeml.md."""
    import har_data
    from edgeprune.pipeline.rundir import atomic_write_json
    from har_data.atomic import atomic_write

    why = edgeml_missing(args.edgeml)
    if why is not None:
        print(f"skipped: {why}; nothing was run", file=sys.stderr)
        return EXIT_SKIPPED
    if args.data == "uci" and args.data_path is None:
        print("error: --data uci needs --data-path", file=sys.stderr)
        return EXIT_USAGE
    ours = table.read_ours(args.ours) if args.ours is not None else None
    if ours is not None and ours["data"] != args.data:
        print(f"error: --ours {args.ours} was measured on {ours['data']!r} data, this run on "
              f"{args.data!r}", file=sys.stderr)
        return EXIT_USAGE
    har_data.load(args.data, path=args.data_path, seed=0)  # bad data: one error line, exit 2
    settings = Settings(epochs=args.epochs, **(PAPER_SPARSITY if args.sparse else {}))
    out, identity = args.out, _identity(args, settings)
    marker = out / MARKER
    if holds_another(out, identity):
        return EXIT_OUT_DIR
    atomic_write_json(marker, identity)
    todo = [s for s in range(args.seeds) if not (out / f"seed-{s}.json").exists()]
    if len(todo) < args.seeds:
        print(f"seeds {sorted(set(range(args.seeds)) - set(todo))} reused from an earlier run",
              file=sys.stderr)
    failed: dict[int, str] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max(1, min(args.workers, len(todo) or 1)))
    try:
        futures = {pool.submit(_train_seed, args, settings, s): s for s in todo}
        for future in concurrent.futures.as_completed(futures):
            reason = future.result()
            if reason is not None:
                failed[futures[future]] = reason
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume (finished seeds are kept)",
              file=sys.stderr)
        os._exit(EXIT_INTERRUPTED)  # the seed processes got the same SIGINT
    pool.shutdown()
    runs = _load_runs(out, args.seeds)
    if runs:
        summary: dict[str, Any] = {
            "benchmark": identity, "machine": machine.describe(), "n_seeds": len(runs),
            "seeds": [table.per_seed(r) for r in runs], "summary": table.summarize(runs),
            "failed": {str(s): why for s, why in sorted(failed.items())}}
        if ours is not None:
            summary["comparison"] = table.compare(runs, ours)
        atomic_write_json(out / "peer_edgeml.json", summary)
        text = table.markdown(summary)
        atomic_write(out / "peer_edgeml.md", text.encode())
        print(text, end="")
    for seed, why in sorted(failed.items()):
        print(f"seed {seed} failed: {why}", file=sys.stderr)
    return EXIT_FAILED if failed else 0
