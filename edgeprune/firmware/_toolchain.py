"""The boards the firmware templates support and the tools that build and run them
(arm-none-eabi-gcc, make, qemu-system-arm): checks and versions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from edgeprune.firmware._errors import (
    FirmwareError,
    ToolchainMissing,
    UnknownBoard,
)

#: QEMU boards the templates support (the Makefile holds each one's gcc flags).
BOARDS: dict[str, dict[str, str]] = {
    "mps2-an386": {"cpu": "cortex-m4", "description": "ARM MPS2 AN386, Cortex-M4F"},
    "mps2-an385": {"cpu": "cortex-m3", "description": "ARM MPS2 AN385, Cortex-M3"},
}


QEMU = "qemu-system-arm"


CROSS = "arm-none-eabi-"


_REPO_ROOT = Path(__file__).resolve().parents[2]


def templates_dir() -> Path:
    """The ``firmware_templates`` folder: ``$EDGEPRUNE_FIRMWARE_TEMPLATES`` or the checkout's."""
    env = os.environ.get("EDGEPRUNE_FIRMWARE_TEMPLATES")
    candidates = [Path(env)] if env else []
    candidates += [
        _REPO_ROOT / "firmware_templates",  # the checkout, or site-packages when installed
        Path(__file__).resolve().parent / "templates",
    ]
    for c in candidates:
        if (c / "cortex_m" / "main.c").is_file():
            return c
    raise FirmwareError(
        "firmware templates not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); set EDGEPRUNE_FIRMWARE_TEMPLATES"
    )


def check_board(board: str) -> dict[str, str]:
    """Return the board's description, or raise UnknownBoard listing the known boards."""
    if board not in BOARDS:
        raise UnknownBoard(f"unknown board {board!r}; known boards: {', '.join(BOARDS)}")
    return BOARDS[board]


def check_toolchain(need_qemu: bool = True) -> None:
    """Raise ToolchainMissing naming every missing program (and the Debian packages)."""
    progs = [CROSS + "gcc", CROSS + "size", "make"] + ([QEMU] if need_qemu else [])
    missing = [p for p in progs if shutil.which(p) is None]
    if missing:
        raise ToolchainMissing(
            f"missing {', '.join(missing)} on PATH; install the Debian packages gcc-arm-none-eabi "
            "libnewlib-arm-none-eabi binutils-arm-none-eabi qemu-system-arm make"
        )


def toolchain_versions() -> dict[str, str]:
    """First line of ``--version`` of the compiler and of QEMU (for the report)."""
    out = {}
    for key, prog in (("gcc", CROSS + "gcc"), ("qemu", QEMU)):
        try:
            text = subprocess.run(
                [prog, "--version"], capture_output=True, text=True, timeout=30
            ).stdout
            out[key] = text.splitlines()[0].strip() if text else "?"
        except (OSError, subprocess.TimeoutExpired):
            out[key] = "?"
    return out
