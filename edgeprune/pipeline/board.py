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


def _run_on_board(ctx: Any, model: Any, out: Any) -> BoardRun:
    from edgeprune import firmware as fw

    int_model = ctx.family.quantize(model, ctx.ds)
    n = ctx.config.settings.firmware_windows
    x16 = cmodel.quantize_input(int_model, ctx.ds.test.x[:n])
    expected = ctx.family.c_predict(int_model, ctx.ds.test.x[:n])
    return BoardRun(fw.build_and_run(out / "c_model", x16, expected, board=BOARD,
                                     out_dir=out / "firmware" / BOARD))


def firmware(driver: Driver, shipped: Candidate, weights: Weights) -> dict[str, Any] | None:
    """Firmware folders (Arduino, TFLM) and, with the toolchain and unless
    ``--no-firmware``, the Cortex-M4 build run under QEMU on the test windows (its
    ``mcu`` section; None when it did not run)."""
    from edgeprune import firmware as fw

    out, ctx = driver.rd.root, driver.ctx
    replace_dir(out / "firmware" / "arduino", lambda d: fw.generate_arduino(out / "c_model", d))
    replace_dir(out / "firmware" / "tflm", lambda d: fw.generate_tflm(out / "tflm", d))
    if not driver.config.firmware:
        return None
    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")):
        log("firmware: arm-none-eabi-gcc / qemu-system-arm not found; skipping "
                        "the emulated board run")
        return None
    log(f"building the firmware and running it on an emulated Cortex-M4 "
                    f"(QEMU {BOARD})")
    model = ctx.model(shipped.spec, weights)
    record, _ = driver.collect(driver.run_here("firmware", BoardRun, _run_on_board,
                                               model, out))
    return record.mcu
