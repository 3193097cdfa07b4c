"""What every ``edgeprune`` command line shares: a parser whose usage errors are one line
on stderr (exit 2, no usage block), and argument types that refuse out-of-range values."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any, NoReturn


class OneLineParser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors print ``<error_prefix><message> (see --help)`` on
    stderr and exit 2. Sub-parsers (``add_subparsers``) inherit the prefix."""

    def __init__(self, *args: Any, error_prefix: str = "error: ", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.error_prefix = error_prefix

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", type(self))
        action = super().add_subparsers(**kwargs)
        prefix, make = self.error_prefix, action.add_parser

        def add_parser(name: str, **kw: Any) -> OneLineParser:
            parser = make(name, **kw)
            parser.error_prefix = prefix
            return parser

        action.add_parser = add_parser  # type: ignore[method-assign]
        return action

    def format_help(self) -> str:
        """The help as plain text (docstrings' ``literal`` markup dropped), every option's
        default stated (``with_default``)."""
        for action in self._actions:
            with_default(action)
        return plain(super().format_help())

    def error(self, message: str) -> NoReturn:
        print(f"{self.error_prefix}{message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def with_default(action: argparse.Action) -> None:
    """Append ``(default: ...)`` to an option's help unless it already names its default:
    ``off`` for a flag, the value otherwise (options without a default are left as
    they are, as are positional arguments and ``--help``)."""
    if not action.option_strings or action.help in (None, argparse.SUPPRESS):
        return
    if "default" in action.help or isinstance(action, argparse._HelpAction):
        return
    if isinstance(action, argparse._StoreTrueAction):
        shown = "off"
    elif isinstance(action, argparse._StoreFalseAction):
        shown = "on"
    elif action.default is None or action.default is argparse.SUPPRESS:
        return
    elif isinstance(action.default, (list, tuple)):
        shown = " ".join(str(v) for v in action.default)
    elif isinstance(action.default, float):
        shown = f"{action.default:g}"
    else:
        shown = str(action.default)
    action.help = f"{action.help} (default: {shown.replace('%', '%%')})"


def plain(text: str) -> str:
    """``text`` without reStructuredText literal markup (double backticks)."""
    return text.replace("``", "")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def bounded_float(low: float, high: float) -> Any:
    """argparse type: a finite number in ``low < x <= high``."""

    def parse(text: str) -> float:
        value = positive_float(text) if low == 0 else _number(text)
        if not low < value <= high:
            raise argparse.ArgumentTypeError(f"must be in ({low:g}, {high:g}], got {text}")
        return value

    return parse


def whole_number(low: int, high: int) -> Any:
    """argparse type: a whole number in ``low .. high`` (``1e3`` is accepted)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            number = _number(text, "not a whole number")
            if not number.is_integer():
                raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
            value = int(number)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in {low} .. {high}, got {text}")
        return value

    return parse


def _number(text: str, what: str = "not a number") -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{what}: {text!r}")
    return value
