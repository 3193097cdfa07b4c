"""Command-line door to the benchmarks:
``python -m edgeprune.bench {dense,sparsity,kernels,seeds,peers}``."""

import importlib
import sys

import edgeprune  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from edgeprune._cli import OneLineParser

SUBCOMMANDS = ("dense", "sparsity", "kernels", "seeds", "peers", "peer_edgeml")


def main(argv: list[str] | None = None) -> int:
    """Run a benchmark; its exit code. Bad input (arguments, data, board) is one
    ``error:`` line on stderr and exit 2 (a firmware failure: its documented code)."""
    parser = OneLineParser(prog="python -m edgeprune.bench", description=__doc__)
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
    from edgeprune.firmware import FirmwareError

    try:
        return int(args.func(args) or 0)
    except FirmwareError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except (ValueError, OSError) as err:  # har_data.HarDataError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
