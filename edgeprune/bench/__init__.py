"""Benchmarks that write machine-readable results: ``python -m edgeprune.bench SUBCOMMAND``.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``; the parser
it adds sets ``func`` to a callable taking the parsed arguments and returning an exit code.
"""
