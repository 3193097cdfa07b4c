"""edgeprune.firmware: the generated C model as microcontroller firmware, run and measured.

Public door::

    from edgeprune.firmware import build_and_run, write_report, BOARDS
    mcu = build_and_run(c_model_dir, windows_int, expected_classes,
                        board="mps2-an386", out_dir=OUT / "firmware" / "mps2-an386",
                        timeout_s=60)
    write_report(OUT / "report.json", mcu)            # the "mcu" section
    # dense baseline of the same model: call again with its C model and another out_dir
    dense = build_and_run(dense_c_model_dir, windows_int, expected_dense, board=...,
                          out_dir=OUT / "firmware" / "mps2-an386-dense")
    write_report(OUT / "report.json", compare_builds(mcu, dense), key="mcu_dense_vs_sparse")

Templates live in ``firmware_templates/`` (cortex_m, arduino, tflm). Every failure is a
``FirmwareError`` subclass with a one-line message and the CLI exit code it maps to.
"""

from edgeprune.firmware._arduino import encode_frame, generate_arduino, parse_reply
from edgeprune.firmware._cortex_m import (
    BoardRun,
    build_and_run,
    build_firmware,
    compare_builds,
    run_on_board,
    write_report,
)
from edgeprune.firmware._errors import (
    BadOutputDir,
    BadReport,
    BadWindows,
    BuildFailed,
    FirmwareCrashed,
    FirmwareError,
    FirmwareHung,
    MissingCModel,
    ToolchainMissing,
    UnknownBoard,
)
from edgeprune.firmware._model import CModel, find_c_model
from edgeprune.firmware._run import INSTRUCTIONS_PER_TICK
from edgeprune.firmware._tflm import generate_tflm
from edgeprune.firmware._toolchain import BOARDS, check_board, check_toolchain, templates_dir
from edgeprune.firmware._windows import MAX_WINDOWS, WINDOWS_FILE, load_windows, save_windows

__all__ = [
    "BOARDS",
    "BoardRun",
    "INSTRUCTIONS_PER_TICK",
    "MAX_WINDOWS",
    "WINDOWS_FILE",
    "BadOutputDir",
    "BadReport",
    "BadWindows",
    "BuildFailed",
    "CModel",
    "FirmwareCrashed",
    "FirmwareError",
    "FirmwareHung",
    "MissingCModel",
    "ToolchainMissing",
    "UnknownBoard",
    "build_and_run",
    "run_on_board",
    "build_firmware",
    "encode_frame",
    "generate_arduino",
    "generate_tflm",
    "load_windows",
    "save_windows",
    "parse_reply",
    "check_board",
    "check_toolchain",
    "compare_builds",
    "find_c_model",
    "templates_dir",
    "write_report",
]
