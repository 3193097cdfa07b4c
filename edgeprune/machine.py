"""The machine a benchmark or run is measured on, in one line for its JSON.

Floats (and so trained models) can differ between CPUs with the same seed and the same
library versions, so every measured figure names its machine.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe() -> str:
    """``'<arch>, <CPU model>, <n> cpus'``, e.g. ``'x86_64, AMD EPYC 7B13, 2 cpus'``."""
    return f"{platform.machine()}, {cpu_model()}, {os.cpu_count()} cpus"
