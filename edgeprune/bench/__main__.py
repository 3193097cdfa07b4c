"""Command-line door to the benchmarks: ``python -m edgeprune.bench
{dense,sparsity,kernels,peers}``."""

import argparse
import importlib
import sys

import edgeprune  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

SUBCOMMANDS = ("dense", "sparsity", "kernels", "peers")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgeprune.bench", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"edgeprune.bench.{name}")
        except ModuleNotFoundError as missing:
            if missing.name != f"edgeprune.bench.{name}":
                raise
            continue
        module.add_parser(subparsers)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
