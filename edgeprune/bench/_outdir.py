"""A benchmark's output folder: its ``bench.json`` marks whose it is."""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

MARKER = "bench.json"


def holds_another(out: pathlib.Path, identity: dict[str, Any]) -> bool:
    """Whether ``out`` holds something else than the benchmark ``identity`` (anything in
    it but a ``bench.json`` equal to ``identity``); if so, says so in one error line."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return False
    try:
        previous = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        previous = None
    if previous == identity:
        return False
    print(f"error: --out {out} holds something else than this benchmark: choose a new "
          "folder (nothing was overwritten)", file=sys.stderr)
    return True
