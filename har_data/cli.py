"""``python -m har_data``: ``info`` (windows and HAR-2 counts per split) and ``download``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from edgeprune._cli import OneLineParser, whole_number

from .dataset import DEFAULT_VAL_SUBJECTS
from .download import SHA256, URL, download
from .errors import HarDataError
from .loader import load


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m har_data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="windows and HAR-2 class counts per split")
    info.add_argument("--source", choices=["uci", "hapt"], default="hapt",
                      help="uci: the official UCI HAR archive; hapt: the offline demo data "
                           "(default hapt)")
    info.add_argument("--path", help="UCI archive (zip, folder or parent) or HAPT.pkl.gz "
                                     "(default: the stored download / the installed package)")
    info.add_argument("--val-subjects", type=whole_number(0, 10_000), default=DEFAULT_VAL_SUBJECTS,
                      help="training volunteers held out for validation "
                           f"(default {DEFAULT_VAL_SUBJECTS})")
    info.add_argument("--seed", type=whole_number(0, 2**32 - 1), default=0,
                      help="seed that draws the validation volunteers (default 0)")
    info.add_argument("--cache-dir", help="default: $EDGEPRUNE_CACHE or ~/.cache/edgeprune")
    info.add_argument("--no-cache", action="store_true",
                      help="parse the archive again, do not read or write the cache")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    down = sub.add_parser("download", help="fetch the official UCI HAR archive (checksummed)")
    down.add_argument("--cache-dir", help="default: $EDGEPRUNE_CACHE or ~/.cache/edgeprune")
    down.add_argument("--url", default=URL, help="where to fetch it from (default: UCI's)")
    down.add_argument("--sha256", default=SHA256,
                      help="the SHA-256 the file must have (default: the official archive's)")
    down.add_argument("--force", action="store_true", help="download even if already stored")
    return parser


def _info(args: argparse.Namespace) -> None:
    ds = load(
        args.source,
        path=args.path,
        val_subjects=args.val_subjects,
        seed=args.seed,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
    )
    parts = {"train": ds.train, "val": ds.val, "test": ds.test}
    report = {name: {"windows": len(p), "har2": p.har2_counts()} for name, p in parts.items()}
    if args.json:
        print(json.dumps({"name": ds.name, "val_subjects": list(ds.val_subjects), **report}))
        return
    print(f"{ds.name}: validation volunteers {list(ds.val_subjects)}")
    for name, row in report.items():
        zero, one = row["har2"]
        print(f"{name:5s} {row['windows']:6d} windows  HAR-2 label 0: {zero:5d}  label 1: {one:5d}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; errors print one line ``error: ...`` to stderr and return 2."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "info":
            _info(args)
        else:
            print(download(args.cache_dir, url=args.url, sha256=args.sha256, force=args.force))
    except (HarDataError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
