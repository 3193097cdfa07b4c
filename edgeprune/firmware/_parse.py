"""Parsing the firmware's semihosting lines (``EP BEGIN``, ``EP W``, ``EP END``,
``EP FAULT``) into a typed record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgeprune.firmware._errors import (
    FirmwareCrashed,
)

_LINE_W = re.compile(
    r"^EP W (\d+) class=(-?\d+) expected=(-?\d+) ticks=(\d+) stack=(\d+) scores=([-\d,]*)$"
)


_LINE_END = re.compile(r"^EP END windows=(\d+) mismatches=(\d+) stack_max=(\d+)$")


_LINE_BEGIN = re.compile(r"^EP BEGIN .*scratch=(\d+) stack_size=(\d+)$")


@dataclass(frozen=True)
class BoardOutput:
    """What the firmware printed: per window its class, SysTick ticks, stack bytes of the
    predict call and int32 scores; the stack high-water, the scratch and stack sizes."""

    classes: list[int]
    ticks: list[int]
    stack: list[int]
    scores: list[list[int]]
    stack_max: int
    scratch: int
    stack_size: int


def parse_output(text: str, n_windows: int, board: str, rc: int) -> BoardOutput:
    """Parse the firmware's lines; raise FirmwareCrashed on a fault or incomplete output."""
    lines = [x.strip() for x in text.splitlines()]
    for line in lines:
        if line.startswith("EP FAULT"):
            raise FirmwareCrashed(f"firmware on {board} crashed: {line} (exit status {rc})")
    rows = [m for m in (_LINE_W.match(x) for x in lines) if m]
    end = next((m for m in (_LINE_END.match(x) for x in lines) if m), None)
    begin = next((m for m in (_LINE_BEGIN.match(x) for x in lines) if m), None)
    if rc != 0 or end is None or begin is None or len(rows) != n_windows:
        last = next((x for x in reversed(lines) if x), "(no output)")
        raise FirmwareCrashed(
            f"firmware on {board} exited with status {rc} after {len(rows)}/{n_windows} windows; "
            f"last output: {last[:200]}"
        )
    return BoardOutput(
        classes=[int(m.group(2)) for m in rows],
        ticks=[int(m.group(4)) for m in rows],
        stack=[int(m.group(5)) for m in rows],
        scores=[[int(v) for v in m.group(6).split(",") if v] for m in rows],
        stack_max=int(end.group(3)),
        scratch=int(begin.group(1)),
        stack_size=int(begin.group(2)),
    )
