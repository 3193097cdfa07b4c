"""The firmware stage: the shipped model's firmware folders, and its run on the emulated
board (on the driver: it builds into the run folder with the local toolchain)."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

from edgeprune.pipeline.artifacts import replace_dir
from edgeprune.pipeline.measure import BOARD
from edgeprune.pipeline.progress import log
from edgeprune.pipeline.records import BoardRun, Candidate, Weights
from export import cmodel

if TYPE_CHECKING:
    from edgeprune.pipeline.driver import Driver


def _run_on_board(ctx: Any, out: Any) -> BoardRun:
    from edgeprune import firmware as fw

    windows, expected = fw.load_windows(out / fw.WINDOWS_FILE)
    return BoardRun(fw.build_and_run(out / "c_model", windows, expected, board=BOARD,
                                     out_dir=out / "firmware" / BOARD))


def write_test_windows(driver: Driver, model: Any) -> None:
    """``OUT/test_windows.npz``: the first test windows as the C model's integer input and
    the Python integer reference's classes. The board stage runs exactly these, and so
    does ``python -m edgeprune.firmware run --artifacts OUT``."""
    from edgeprune import firmware as fw

    ctx = driver.ctx
    int_model = ctx.family.quantize(model, ctx.ds)
    raw = ctx.ds.test.x[:ctx.config.settings.firmware_windows]
    fw.save_windows(driver.rd.root / fw.WINDOWS_FILE, cmodel.quantize_input(int_model, raw),
                    ctx.family.c_predict(int_model, raw))


def firmware(driver: Driver, shipped: Candidate, weights: Weights) -> dict[str, Any] | None:
    """Firmware folders (Arduino, TFLM), the board's test windows and, with the toolchain
    and unless ``--no-firmware``, the Cortex-M4 build run under QEMU on those windows
    (its ``mcu`` section; None when it did not run)."""
    from edgeprune import firmware as fw

    out = driver.rd.root
    replace_dir(out / "firmware" / "arduino", lambda d: fw.generate_arduino(out / "c_model", d))
    replace_dir(out / "firmware" / "tflm", lambda d: fw.generate_tflm(out / "tflm", d))
    write_test_windows(driver, driver.ctx.model(shipped.spec, weights))
    if not driver.config.firmware:
        return None
    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")):
        log("firmware: arm-none-eabi-gcc / qemu-system-arm not found; skipping "
            "the emulated board run")
        return None
    log(f"building the firmware and running it on an emulated Cortex-M4 (QEMU {BOARD})")
    record, _ = driver.collect(driver.run_here("firmware", BoardRun, _run_on_board, out))
    return record.mcu
