"""Parse the archive's whitespace-separated ASCII matrices into numpy arrays (C parser)."""

from __future__ import annotations

import io
import warnings

import numpy as np

from .errors import HarDataError
from .files import describe_format


def _line_of_row(data: bytes, row: int) -> int:
    """The 1-based line number of data row ``row`` (blank lines are not rows)."""
    rows = (n for n, line in enumerate(data.splitlines(), start=1) if line.strip())
    return next(n for i, n in enumerate(rows) if i == row)


def _first_bad_line(data: bytes, ncols: int | None) -> str:
    """Slow path, only for the error message: describe the first malformed line."""
    width = ncols
    for number, line in enumerate(data.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if width is None:
            width = len(fields)
        if len(fields) != width:
            return f"line {number} has {len(fields)} values, expected {width}"
        for field in fields:
            try:
                float(field)
            except ValueError:
                shown = field[:20].decode("ascii", "replace")
                return f"line {number} has a non-numeric value {shown!r}"
    return "unreadable numeric data"


def parse_matrix(data: bytes, name: str, ncols: int | None = None) -> np.ndarray:
    """Parse ``data`` into a 2-D float64 array; every row must have ``ncols`` finite values.

    Raises HarDataError naming ``name`` for an empty file, rows of the wrong length,
    non-numeric or non-finite values.
    """
    found = describe_format(data[:4])
    if found in ("UTF-16 text", "UTF-8 text with a byte-order mark") or b"\x00" in data[:64]:
        found = "binary data" if found == "plain text" else found
        raise HarDataError(f"{name}: {found}, expected plain ASCII numbers (save it as ASCII "
                           "without a byte-order mark)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            values = np.loadtxt(io.BytesIO(data), dtype=np.float64, ndmin=2)
    except ValueError:
        raise HarDataError(f"{name}: {_first_bad_line(data, ncols)}") from None
    if values.shape[0] == 0:
        raise HarDataError(f"{name}: no data rows")
    if ncols is not None and values.shape[1] != ncols:
        raise HarDataError(f"{name}: rows have {values.shape[1]} values, expected {ncols}")
    if not np.isfinite(values).all():
        row, col = np.argwhere(~np.isfinite(values))[0]
        raise HarDataError(
            f"{name}: non-finite value {values[row, col]} at line "
            f"{_line_of_row(data, int(row))}, column {col + 1}"
        )
    return values


def parse_int_column(data: bytes, name: str, low: int, high: int) -> np.ndarray:
    """Parse a one-column file of integers in ``low..high`` into an int64 vector."""
    values = parse_matrix(data, name, ncols=1)[:, 0]
    as_int = values.astype(np.int64)
    bad = (as_int != values) | (as_int < low) | (as_int > high)
    if bad.any():
        row = int(np.argmax(bad))
        raise HarDataError(
            f"{name}: value {values[row]:g} at line {row + 1} is not an integer in {low}..{high}"
        )
    return as_int
