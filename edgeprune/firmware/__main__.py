"""python -m edgeprune.firmware build|run|arduino|tflm --artifacts OUT [--board B]

build:   copy the cortex_m template and the C model (OUT/c_model/) into
         OUT/firmware/<board>/ and compile it; print flash/model bytes.
run:     build, run under qemu-system-arm (semihosting, -icount shift=0) with a timeout,
         compare the predictions with the Python integer reference, and merge the result
         into a report (see "where a run's result goes").
arduino: write the Arduino sketch folder OUT/firmware/arduino/edgeprune_har/.
tflm:    write OUT/firmware/tflm/ (main.cc + export.tflite's model_data.*, not compiled).

Windows: --windows-file F.npz (arrays 'windows' (N,128,9) int in the model's input type
and 'expected' (N,) reference classes), else OUT/test_windows.npz (the pipeline writes
it: the windows its board stage runs) or OUT/c_model/test_windows.npz; --synthetic runs
random windows without a reference (build without windows embeds one all-zero window).

Where a run's result goes: in a pipeline's run folder (it holds run.json), only a run of
the pipeline's own measurement (its C model and all its test windows on mps2-an386,
exact count, key mcu) updates report.json and report.md together; any other run
(--synthetic, --windows, --windows-file, --c-model, --board, --no-trace, --kernels,
--report-key)
is merged into OUT/firmware/board_runs.json instead. Elsewhere it is merged into
OUT/report.json. A report that exists but cannot be read is never replaced (exit 2).

Exit codes: 0 ok (run: every prediction agrees); 2 bad input (unknown board, no C model,
bad windows, unreadable report, usage); 3 toolchain missing; 4 build failed; 5 firmware
hung (timeout) or crashed; 6 ran, but some predictions differ from the reference;
130 interrupted. Errors are one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune._cli import OneLineParser, bounded_float, whole_number
from edgeprune.firmware._arduino import generate_arduino
from edgeprune.firmware._cortex_m import build_and_run, build_firmware, write_report
from edgeprune.firmware._errors import BadReport, BadWindows, FirmwareError, MissingCModel
from edgeprune.firmware._model import find_c_model
from edgeprune.firmware._tflm import generate_tflm
from edgeprune.firmware._toolchain import BOARDS, check_board
from edgeprune.firmware._windows import MAX_WINDOWS, WINDOWS_FILE, load_windows

EXIT_DISAGREE = 6
PROG = "edgeprune.firmware"
PIPELINE_BOARD = "mps2-an386"  # the board of the pipeline's firmware stage
BOARD_RUNS = Path("firmware") / "board_runs.json"
SYNTHETIC_WINDOWS = 16
MAX_TIMEOUT_S = 24 * 3600.0


def _load_windows(args: argparse.Namespace, c_model: Path) -> tuple[np.ndarray, np.ndarray | None]:
    if args.synthetic:
        model = find_c_model(c_model)
        hi = 127 if model.input_type == "int8_t" else 4096
        rng = np.random.default_rng(args.seed)
        return rng.integers(-hi, hi + 1, size=(args.windows or SYNTHETIC_WINDOWS, 128, 9)), None
    candidates = (
        [Path(args.windows_file)]
        if args.windows_file
        else [Path(args.artifacts) / WINDOWS_FILE, c_model / WINDOWS_FILE]
    )
    for f in candidates:
        if args.windows_file or f.exists():
            return load_windows(f, args.windows)
    if args.command == "build":  # building needs no reference: one all-zero window
        return np.zeros((1, 128, 9), dtype=np.int64), None
    raise BadWindows(
        "no test windows: expected "
        + " or ".join(str(c) for c in candidates)
        + " (arrays 'windows', 'expected'), or pass --synthetic"
    )


def _not_the_pipelines(args: argparse.Namespace, out: Path, c_model: Path) -> list[str]:
    """Why this run is not the pipeline's own measurement (empty: it is)."""
    reasons = [text for flag, text in (
        (args.synthetic, "synthetic windows"),
        (args.windows is not None, f"--windows {args.windows}"),
        (args.windows_file, "windows from --windows-file"),
        (c_model.resolve() != (out / "c_model").resolve(), "another C model (--c-model)"),
        (args.board != PIPELINE_BOARD, f"board {args.board}"),
        (args.no_trace, "--no-trace"),
        (args.kernels is not None, f"--kernels {args.kernels}"),
        (args.report_key != "mcu", f"--report-key {args.report_key}"),
        (not (out / "report.json").exists(), "the run has not finished (no report.json)"),
    ) if flag]
    return reasons


def _destination(args: argparse.Namespace, out: Path, c_model: Path) -> tuple[Path, str]:
    """The report a run's result is merged into, and a note when it is not report.json;
    checked readable before anything is built (BadReport otherwise)."""
    from edgeprune.pipeline.reportfile import UnreadableReport, is_pipeline_report, read_report

    target, note = out / "report.json", ""
    if (out / "run.json").exists():
        reasons = _not_the_pipelines(args, out, c_model)
        if reasons:
            target = out / BOARD_RUNS
            note = (f"{PROG}: note: result merged into {target} under {args.report_key!r}, "
                    f"not into the pipeline's report.json ({', '.join(reasons)})")
    try:
        report = read_report(target)
        if target.name == "report.json" and (out / "run.json").exists() \
                and not is_pipeline_report(report):
            raise UnreadableReport(f"{target}: not a pipeline run's report")
    except UnreadableReport as err:
        raise BadReport(f"{err}; nothing was built or written (move it away or repair "
                        "it)") from None
    return target, note


def _store(args: argparse.Namespace, out: Path, target: Path, mcu: dict[str, Any]) -> None:
    if target == out / "report.json" and (out / "run.json").exists():
        from edgeprune.pipeline.reportfile import UnreadableReport, merge_board_run

        try:
            merge_board_run(out, mcu)  # report.json and report.md together
        except UnreadableReport as err:
            raise BadReport(f"{err}; nothing was written") from None
    else:
        write_report(target, mcu, key=args.report_key)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m edgeprune.firmware",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        error_prefix=f"{PROG}: error: ",
    )
    parser.add_argument("command", choices=("build", "run", "arduino", "tflm"),
                        help="what to do (see above)")
    parser.add_argument("--artifacts", required=True,
                        help="the pipeline's output folder OUT (or any folder with c_model/)")
    parser.add_argument("--board", default=PIPELINE_BOARD,
                        help=f"one of {', '.join(BOARDS)} (default {PIPELINE_BOARD})")
    parser.add_argument("--c-model", help="C model folder (default OUT/c_model)")
    parser.add_argument("--windows", type=whole_number(1, MAX_WINDOWS), default=None,
                        help=f"windows to run, 1 .. {MAX_WINDOWS} (default: every window of "
                             f"the file; {SYNTHETIC_WINDOWS} with --synthetic)")
    parser.add_argument("--tflm-dir", help="tflm: folder of model_data.h/.cc (default OUT/tflm)")
    parser.add_argument("--windows-file",
                        help="npz with 'windows' and 'expected' (default OUT/test_windows.npz)")
    parser.add_argument("--synthetic", action="store_true",
                        help="random windows, no reference (default: off)")
    parser.add_argument("--seed", type=whole_number(0, 2**32 - 1), default=0,
                        help="seed of the --synthetic windows (default 0)")
    parser.add_argument("--timeout", type=bounded_float(0, MAX_TIMEOUT_S), default=60.0,
                        help="seconds per QEMU run, > 0 (default 60)")
    parser.add_argument(
        "--no-trace",
        action="store_true",
        help="count instructions with SysTick only (skip the exact trace; default: off)",
    )
    parser.add_argument("--kernels", choices=("fast", "small"), default=None,
                        help="C kernels: fast (Cortex-M fast paths) or small (portable, "
                             "-Os); default: the C model folder's (small when it holds "
                             "ep_kernels_config.h)")
    parser.add_argument("--report-key", default="mcu",
                        help="section name the result is merged under (default mcu)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code documented in the module docstring."""
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("build", "run"):
            check_board(args.board)
        out = Path(args.artifacts)
        c_model = Path(args.c_model) if args.c_model else out / "c_model"
        if not out.is_dir():
            raise MissingCModel(f"artifacts folder {out} does not exist")
        if not c_model.is_dir():
            raise MissingCModel(f"no C model: {c_model} does not exist (run the export first)")
        if args.command == "tflm":
            tflm = Path(args.tflm_dir) if args.tflm_dir else out / "tflm"
            res = generate_tflm(tflm, out / "firmware" / "tflm")
            print(json.dumps(res, indent=2))
            return 0
        if args.command == "arduino":
            sketch = generate_arduino(c_model, out / "firmware" / "arduino")
            print(sketch)
            return 0
        windows, expected = _load_windows(args, c_model)
        fw_dir = out / "firmware" / args.board
        if args.command == "build":
            res = build_firmware(c_model, windows, expected, args.board, fw_dir, args.kernels)
            print(json.dumps(res, indent=2))
            return 0
        target, note = _destination(args, out, c_model)
        mcu = build_and_run(
            c_model,
            windows,
            expected,
            args.board,
            fw_dir,
            timeout_s=args.timeout,
            exact=not args.no_trace,
            kernels=args.kernels,
        )
        _store(args, out, target, mcu)
        if note:
            print(note, file=sys.stderr)
        brief = {
            k: mcu[k]
            for k in (
                "board",
                "cpu",
                "flash_bytes",
                "ram_bytes",
                "model_bytes",
                "instructions_per_window",
                "windows_run",
                "agreement",
            )
        }
        print(json.dumps(brief, indent=2))
        if mcu["agreement"] is not None and mcu["agreement"] < 1.0:
            print(
                f"{PROG}: error: predictions differ from the reference on "
                f"{round((1 - mcu['agreement']) * mcu['windows_run'])} of "
                f"{mcu['windows_run']} windows",
                file=sys.stderr,
            )
            return EXIT_DISAGREE
        return 0
    except FirmwareError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
