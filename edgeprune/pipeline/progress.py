"""The run's log on stderr: one line per stage event, a quiet terminal otherwise."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    """One stage-log line on stderr."""
    print(f"[edgeprune] {message}", file=sys.stderr, flush=True)
