"""Build edgeprune's C model into bare-metal Cortex-M firmware, run it under QEMU, measure it.

The firmware is ``firmware_templates/cortex_m`` plus the generated C model plus two
generated headers (``ep_config.h``: names and sizes; ``windows.h``: the test windows and
the reference classes). It prints one line per window through semihosting; the result
compares them with the reference and measures flash, RAM and instructions. The jobs live
in their own modules: ``_toolchain`` (boards, tools), ``_model`` (finding the C model),
``_build`` (source tree, compile, sizes), ``_run`` (QEMU, instruction counts), ``_parse``
(the firmware's output); this one runs them in order and returns a ``BoardRun``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.firmware._build import FirmwareBuild, build_firmware_tree
from edgeprune.firmware._errors import BadReport
from edgeprune.firmware._parse import BoardOutput, parse_output
from edgeprune.firmware._run import (
    INSTRUCTIONS_PER_TICK,
    InstructionCount,
    count_instructions,
    run_qemu,
)
from edgeprune.firmware._toolchain import check_board, check_toolchain, toolchain_versions


@dataclass(frozen=True)
class BoardRun:
    """One board run of a C model: its build, what the firmware printed, the instruction
    count, the reference classes (-1: unknown), the share of windows that agree with them
    (None without a reference), QEMU's wall seconds and the tool versions."""

    build: FirmwareBuild
    output: BoardOutput
    count: InstructionCount
    expected: list[int]
    agreement: float | None
    qemu_wall_s: float
    toolchain: dict[str, str]

    def report(self) -> dict[str, Any]:
        """The report's ``mcu`` section (the keys ``build_and_run`` documents)."""
        b, o = self.build, self.output
        systick = [t * INSTRUCTIONS_PER_TICK for t in o.ticks]
        return {
            "board": b.board,
            "cpu": b.cpu,
            "flash_bytes": b.flash_bytes,
            "ram_bytes": b.static_ram_bytes + o.stack_max,
            "model_bytes": b.model_bytes,
            "instructions_per_window": self.count.per_window,
            "instruction_method": self.count.method,
            "windows_run": len(o.classes),
            "agreement": self.agreement,
            "model": b.model,
            "code_bytes": b.code_bytes,
            "model_code_bytes": b.model_code_bytes,
            "kernels": b.kernels,
            "kernel_const_bytes": b.kernel_const_bytes,
            "static_ram_bytes": b.static_ram_bytes,
            "stack_max_bytes": o.stack_max,
            "scratch_bytes": o.scratch,
            "predict_stack_bytes": max(o.stack),
            "inference_ram_bytes": o.scratch + max(o.stack),
            "testdata_bytes": b.testdata_bytes,
            "sections": b.sections,
            "systick_ticks_per_window": o.ticks,
            "instructions_per_window_systick": float(np.mean(systick)),
            "predictions": o.classes,
            "expected": self.expected,
            "scores": o.scores,
            "qemu_wall_s": self.qemu_wall_s,
            "elf": b.elf,
            "toolchain": self.toolchain,
            **self.count.as_report(),
        }


def build_firmware(
    c_model_dir: str | os.PathLike[str],
    windows_int: Any,
    expected_classes: Any | None,
    board: str,
    out_dir: str | os.PathLike[str],
    kernels: str | None = None,
) -> dict[str, Any]:
    """Generate and compile the firmware (``kernels``: fast, small, or None: as the C
    model folder says); return its sizes (``FirmwareBuild``'s fields; no QEMU needed)."""
    return build_firmware_tree(c_model_dir, windows_int, expected_classes, board, out_dir,
                               kernels)[0].as_dict()


def run_on_board(
    c_model_dir: str | os.PathLike[str],
    windows_int: Any,
    expected_classes: Any | None,
    board: str = "mps2-an386",
    out_dir: str | os.PathLike[str] = "firmware",
    timeout_s: float = 60.0,
    exact: bool = True,
    kernels: str | None = None,
) -> BoardRun:
    """``build_and_run``, returning the typed ``BoardRun``."""
    check_board(board)
    check_toolchain(need_qemu=True)
    built, windows, expected = build_firmware_tree(c_model_dir, windows_int, expected_classes,
                                                   board, out_dir, kernels)
    elf = Path(built.elf)
    rc, out, wall = run_qemu(elf, board, timeout_s)
    res = parse_output(out, windows.shape[0], board, rc)
    known = expected >= 0
    agreement = (
        float(np.mean(np.asarray(res.classes)[known] == expected[known])) if known.any() else None
    )
    return BoardRun(
        build=built,
        output=res,
        count=count_instructions(elf, board, res.ticks, timeout_s, exact),
        expected=[int(v) for v in expected],
        agreement=agreement,
        qemu_wall_s=round(wall, 3),
        toolchain=toolchain_versions(),
    )


def build_and_run(
    c_model_dir: str | os.PathLike[str],
    windows_int: Any,
    expected_classes: Any | None,
    board: str = "mps2-an386",
    out_dir: str | os.PathLike[str] = "firmware",
    timeout_s: float = 60.0,
    exact: bool = True,
    kernels: str | None = None,
) -> dict[str, Any]:
    """Build the C model in ``c_model_dir`` for ``board``, run it on ``windows_int`` under QEMU.

    Contract:
      * ``c_model_dir`` holds one generated ``<name>_model.h``/``.c`` and its manifest
        ``<name>_model.json`` (if it lacks the kernels, they come from ``export/c``).
      * ``windows_int``: (N, 128, 9) or (N, 1152) integers in the model's input type
        (int8/int16), exactly what the Python integer reference was given.
      * ``expected_classes``: (N,) classes from the Python integer reference, or None.
      * ``out_dir`` is replaced by the firmware sources and ``build/``; call again with a
        different ``out_dir`` (e.g. a dense build of the same model) to compare.
      * ``timeout_s`` bounds the QEMU run; a hang raises FirmwareHung.
      * ``exact``: count window 0 exactly from an execution trace (and profile it); else,
        or when the trace would be too long, SysTick x 40 (``instruction_method`` says).
      * ``kernels``: the C kernel build, ``fast`` or ``small`` (None: the C model folder's,
        small when it holds ``ep_kernels_config.h``); the report's ``kernels`` names it.

    Returns the ``mcu`` report section (``BoardRun.report()``; ``run_on_board`` returns the
    typed ``BoardRun``): ``board``, ``cpu``, ``flash_bytes``, ``ram_bytes`` (data + bss +
    measured stack high-water), ``model_bytes``, ``instructions_per_window``,
    ``instruction_method``, ``windows_run``, ``agreement`` (None without expected classes),
    plus details (per-window classes/instructions, scratch and stack bytes, code bytes).
    Raises a FirmwareError subclass (one-line message) on any failure.
    """
    return run_on_board(c_model_dir, windows_int, expected_classes, board, out_dir, timeout_s,
                        exact, kernels).report()


def write_report(
    report_path: str | os.PathLike[str], section: dict[str, Any], key: str = "mcu"
) -> Path:
    """Merge ``{key: section}`` into the JSON report ``report_path`` (created if absent),
    keeping its other sections. A report that exists but cannot be read is never
    replaced: BadReport names it."""
    from edgeprune.pipeline.reportfile import UnreadableReport, merge_section

    path = Path(report_path)
    try:
        merge_section(path, key, section)
    except UnreadableReport as err:
        raise BadReport(f"{err}; nothing was written (move it away or repair it)") from None
    return path


def compare_builds(sparse: dict[str, Any], dense: dict[str, Any]) -> dict[str, Any]:
    """Dense-vs-sparse summary of two ``build_and_run`` results of the same model.

    Ratios are dense / sparse (> 1: the sparse build is smaller or faster); the boards
    must match.
    """
    if sparse.get("board") != dense.get("board"):
        raise ValueError(
            f"compare builds on one board, got {sparse.get('board')} and {dense.get('board')}"
        )

    def ratio(key: str) -> float | None:
        a, b = sparse.get(key), dense.get(key)
        return round(b / a, 3) if a and b is not None else None

    keys = ("model_bytes", "flash_bytes", "ram_bytes", "instructions_per_window")
    return {
        "board": sparse["board"],
        "sparse": {k: sparse.get(k) for k in keys},
        "dense": {k: dense.get(k) for k in keys},
        "dense_over_sparse": {k: ratio(k) for k in keys},
    }
