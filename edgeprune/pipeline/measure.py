"""Measurements of a Keras model as the board would get it: the compiled C model's bytes,
its C int8 validation accuracy, the encoding shipped, and instructions per window."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import har_data
from edgeprune.pipeline.families import write_c_model
from export import cmodel

# --max-instructions: candidates are built for this board and run under QEMU on this many
# validation windows (SysTick count; the firmware stage counts the selected one exactly).
BOARD = "mps2-an386"
SPEED_WINDOWS = 4


@dataclass(frozen=True)
class Measured:
    """A model's compiled C size and its C int8 validation accuracy."""

    model_bytes: int
    code_bytes: int
    ram_bytes: int
    toolchain: str
    val_accuracy: float


def toolchain() -> str:
    """Bytes are measured with the Cortex-M4 compiler when present, else the host gcc."""
    return "arm-cortex-m4" if shutil.which("arm-none-eabi-gcc") else "host-gcc"


def c_size(int_model: Any, c_dir: Path, provenance: dict[str, Any],
           kernels: str = "fast") -> cmodel.ByteReport:
    """Generate the C model (``kernels`` build) into ``c_dir`` and measure its compiled
    bytes."""
    return cmodel.measure_bytes(write_c_model(int_model, c_dir, provenance, kernels),
                                toolchain())


def c_bytes(family: Any, ds: har_data.HarDataset, model: Any) -> int:
    """Exact bytes of the model's C build (smallest encoding)."""
    with tempfile.TemporaryDirectory(prefix="edgeprune-size-") as tmp:
        return c_size(family.quantize(model, ds), Path(tmp), {"model": family.name}).model_bytes


def measure(family: Any, ds: har_data.HarDataset, model: Any,
            kernels: str = "fast") -> Measured:
    """Exact bytes of the model's C build (``kernels``), and its C int8 validation
    accuracy."""
    int_model = family.quantize(model, ds)
    with tempfile.TemporaryDirectory(prefix="edgeprune-measure-") as tmp:
        size = c_size(int_model, Path(tmp), {"model": family.name}, kernels)
    val_pred = family.c_predict(int_model, ds.val.x)
    return Measured(size.model_bytes, size.code_bytes, size.ram_bytes, size.toolchain,
                    float(np.mean(val_pred == ds.val.y)))


def fastest_fitting(family: Any, ds: har_data.HarDataset, model: Any, budget: int,
                    c_dir: Path, provenance: dict[str, Any],
                    kernels: str = "fast") -> tuple[Any, Any, int]:
    """The C model to ship, written to ``c_dir`` with its ``kernels`` build: for ``fast``,
    the budget the smallest encoding leaves unused is spent on faster storage formats
    (same integer arithmetic, so the same predictions), kept only when its measured bytes
    still fit; ``small`` keeps the smallest encoding (its portable loops gain little from
    other formats, and each format adds code). Returns ``(int_model, size,
    smallest_bytes)``."""
    with tempfile.TemporaryDirectory(prefix="edgeprune-ship-") as tmp:
        int_model = family.quantize(model, ds)
        size = c_size(int_model, Path(tmp) / "smallest", provenance, kernels)
        smallest_bytes = size.model_bytes
        spare = budget - size.model_bytes
        matrices = getattr(int_model, "matrices", None)
        if spare > 0 and matrices and kernels == "fast":
            matrix_bytes = sum(m.nbytes for m in matrices.values() if m is not None)
            faster = family.quantize(model, ds, matrix_budget=matrix_bytes + spare)
            fast_size = c_size(faster, Path(tmp) / "faster", provenance, kernels)
            if fast_size.model_bytes <= budget:
                int_model, size = faster, fast_size
    write_c_model(int_model, c_dir, provenance, kernels)
    return int_model, size, smallest_bytes


def instructions(family: Any, ds: har_data.HarDataset, model: Any, budget: int,
                 kernels: str = "fast") -> int:
    """Instructions per window of the C model a run would ship for ``model``
    (``fastest_fitting``, ``kernels`` build), built for ``BOARD`` and run under QEMU on
    ``SPEED_WINDOWS`` validation windows (SysTick count); the board must agree with the
    Python integer reference on every one of them."""
    from edgeprune import firmware as fw

    n = SPEED_WINDOWS
    with tempfile.TemporaryDirectory(prefix="edgeprune-speed-") as tmp:
        c_dir = Path(tmp) / "c_model"
        int_model, _, _ = fastest_fitting(family, ds, model, budget, c_dir,
                                          {"model": family.name}, kernels)
        x16 = cmodel.quantize_input(int_model, ds.val.x[:n])
        expected = family.c_predict(int_model, ds.val.x[:n])
        mcu = fw.build_and_run(c_dir, x16, expected, board=BOARD,
                               out_dir=Path(tmp) / "firmware", exact=False, kernels=kernels)
    if mcu["agreement"] != 1.0:
        raise RuntimeError(f"the {BOARD} build disagrees with the integer reference "
                           f"({mcu['agreement']:.0%} of {n} validation windows)")
    return int(mcu["instructions_per_window"])
