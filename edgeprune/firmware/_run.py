"""Running the firmware under QEMU and counting its instructions: SysTick under
``-icount shift=0``, or exactly from an execution trace read through a FIFO.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.firmware._errors import (
    BuildFailed,
    FirmwareCrashed,
    FirmwareHung,
)
from edgeprune.firmware._toolchain import CROSS, QEMU

#: Under ``-icount shift=0`` one instruction is 1 ns of virtual time; the mps2 processor
#: clock that SysTick counts is 25 MHz: one tick = 40 instructions.
INSTRUCTIONS_PER_TICK = 40


#: Above this many instructions per window (SysTick estimate) the exact trace is skipped.
EXACT_MAX_INSTRUCTIONS = 40_000_000


def symbol_address(elf: Path, symbol: str) -> int:
    """Address of a symbol in the ELF (Thumb bit cleared)."""
    out = subprocess.run(
        [CROSS + "nm", str(elf)], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == symbol:
            return int(parts[0], 16) & ~1
    raise BuildFailed(f"{elf}: symbol {symbol} not found")


def qemu_command(elf: Path, board: str, extra: Sequence[str] = ()) -> list[str]:
    """The QEMU command line: semihosting on, deterministic ``-icount shift=0``."""
    return [
        QEMU,
        "-M",
        board,
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-semihosting-config",
        "enable=on,target=native",
        "-icount",
        "shift=0",
        *extra,
        "-kernel",
        str(elf),
    ]


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def run_qemu(elf: Path, board: str, timeout_s: float) -> tuple[int, str, float]:
    """Run the firmware; return (exit status, output, wall seconds).

    Raises FirmwareHung (QEMU killed) when it runs past ``timeout_s``.
    """
    t0 = time.monotonic()
    proc = subprocess.Popen(
        qemu_command(elf, board),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc)
        raise FirmwareHung(
            f"firmware on {board} did not finish within {timeout_s:g} s; QEMU killed"
        ) from exc
    return proc.returncode, out, time.monotonic() - t0


def _one_insn_per_tb() -> list[str]:
    """QEMU's flag for one instruction per translation block (renamed in QEMU 8.1)."""
    try:
        out = subprocess.run([QEMU, "--version"], capture_output=True, text=True, timeout=30).stdout
        m = re.search(r"version (\d+)\.(\d+)", out)
        if m and (int(m.group(1)), int(m.group(2))) >= (8, 1):
            return ["-accel", "tcg,one-insn-per-tb=on"]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return ["-singlestep"]


@dataclass
class TraceCount:
    """Exact count of one window: total, per function and per source line (most first)."""

    instructions: int
    by_function: dict[str, int]
    by_line: dict[str, int]


def _source_lines(elf: Path, pcs: dict[int, int], top: int) -> dict[str, int]:
    """Instructions per ``file:line`` (addr2line on the -g build), the ``top`` largest."""
    addrs = sorted(pcs)
    try:
        out = subprocess.run(
            [CROSS + "addr2line", "-e", str(elf), *(hex(a) for a in addrs)],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return {}
    lines: dict[str, int] = {}
    for addr, loc in zip(addrs, out, strict=False):
        key = Path(loc.split(" ")[0]).name or "?"
        lines[key] = lines.get(key, 0) + pcs[addr]
    return dict(sorted(lines.items(), key=lambda kv: -kv[1])[:top])


def exact_instructions(elf: Path, board: str, timeout_s: float, top_lines: int = 25) -> TraceCount:
    """Exact instructions of the first window's predict(), from a QEMU execution trace.

    Runs ``-singlestep -d exec,nochain`` (one trace line per executed instruction) with the
    log written to a FIFO, counts lines from the first ``ep_mark_begin`` to the first
    ``ep_mark_end`` and stops QEMU there (the count includes the ~3 instructions of the
    markers). Also attributes them to functions (the trace's symbol) and to source lines.
    Raises FirmwareHung past ``timeout_s``, FirmwareCrashed if no window completes.
    """
    begin = symbol_address(elf, "ep_mark_begin")
    end = symbol_address(elf, "ep_mark_end")
    killed = threading.Event()

    def unblock(fifo: Path) -> None:
        # a reader blocked in open() (QEMU died before opening its log) gets EOF
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass

    def kill(proc: subprocess.Popen[Any], fifo: Path) -> None:
        killed.set()
        _kill_group(proc)
        unblock(fifo)

    def watch(proc: subprocess.Popen[Any], fifo: Path) -> None:
        proc.wait()
        unblock(fifo)

    with tempfile.TemporaryDirectory(prefix="ep_trace_") as tmp:
        fifo = Path(tmp) / "exec.log"
        os.mkfifo(fifo)
        proc = subprocess.Popen(
            qemu_command(elf, board, [*_one_insn_per_tb(), "-d", "exec,nochain", "-D", str(fifo)]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        timer = threading.Timer(timeout_s, kill, args=(proc, fifo))
        timer.start()
        threading.Thread(target=watch, args=(proc, fifo), daemon=True).start()
        count = None
        pcs: dict[int, int] = {}
        names: dict[int, bytes] = {}
        try:
            with open(fifo, "rb") as log:
                started = False
                n = 0
                pat = re.compile(rb"\[[0-9a-f]+/([0-9a-f]+)/")
                for line in log:
                    m = pat.search(line)
                    if m is None:
                        continue
                    pc = int(m.group(1), 16)
                    if not started:
                        started = pc == begin
                        continue
                    n += 1
                    if pc == end:
                        count = n
                        break
                    if pc not in pcs:
                        pcs[pc] = 0
                        names[pc] = line.rsplit(b"] ", 1)[-1].strip() or b"?"
                    pcs[pc] += 1
        finally:
            timer.cancel()
            if proc.poll() is None:
                _kill_group(proc)
    if count is None:
        if killed.is_set():
            raise FirmwareHung(
                f"exact instruction trace on {board} did not finish within {timeout_s:g} s; "
                "QEMU killed"
            )
        raise FirmwareCrashed(f"exact instruction trace on {board} found no complete window")
    by_fn: dict[str, int] = {}
    for pc, c in pcs.items():
        key = names[pc].decode(errors="replace")
        by_fn[key] = by_fn.get(key, 0) + c
    return TraceCount(
        instructions=count,
        by_function=dict(sorted(by_fn.items(), key=lambda kv: -kv[1])),
        by_line=_source_lines(elf, pcs, top_lines),
    )


@dataclass(frozen=True)
class InstructionCount:
    """Instructions per window and how they were counted; ``profile``/``profile_lines``
    (per function / source line) and ``per_tick`` only from an exact trace."""

    per_window: int
    method: str
    profile: dict[str, int] | None = None
    profile_lines: dict[str, int] | None = None
    per_tick: float | None = None

    def as_report(self) -> dict[str, Any]:
        """The report's keys (``instructions_per_window``, ``instruction_method``, and
        when traced ``instruction_profile``, ``instruction_profile_lines``,
        ``instructions_per_tick``)."""
        out: dict[str, Any] = {"instructions_per_window": self.per_window,
                               "instruction_method": self.method}
        if self.profile is not None:
            out.update(instruction_profile=self.profile,
                       instruction_profile_lines=self.profile_lines,
                       instructions_per_tick=self.per_tick)
        return out


def count_instructions(
    elf: Path, board: str, ticks: Sequence[int], timeout_s: float, exact: bool
) -> InstructionCount:
    """Instructions per window: SysTick ``ticks`` x 40 (mean), or with ``exact`` the exact
    count of window 0 from a QEMU trace (and its profile) unless it would be too long."""
    systick_instr = [t * INSTRUCTIONS_PER_TICK for t in ticks]
    systick = InstructionCount(
        int(round(float(np.mean(systick_instr)))),
        f"systick: SysTick ticks x {INSTRUCTIONS_PER_TICK} under -icount shift=0 "
        "(25 MHz clock, 1 ns per instruction), mean over windows (+-40 per window)",
    )
    estimate = max(systick_instr)
    if not exact:
        return systick
    if estimate > EXACT_MAX_INSTRUCTIONS:
        return replace(systick, method=systick.method + (
            f"; exact trace skipped ({estimate / 1e6:.0f} M instructions > "
            f"{EXACT_MAX_INSTRUCTIONS / 1e6:.0f} M)"))
    # the trace runs ~1.5 s per million instructions: give it room beyond timeout_s
    trace_timeout = max(timeout_s, 10.0 + 3.0 * estimate / 1e6)
    try:
        trace = exact_instructions(elf, board, trace_timeout)
    except FirmwareHung:
        return replace(systick, method=systick.method
                       + f"; exact trace gave up after {trace_timeout:.0f} s")
    return InstructionCount(
        trace.instructions,
        "exact: QEMU -singlestep -d exec,nochain trace of window 0, instructions from "
        "ep_mark_begin to ep_mark_end (instruction count, not cycles)",
        trace.by_function,
        trace.by_line,
        round(trace.instructions / ticks[0], 3) if ticks[0] else None,
    )

