"""``python -m edgeprune.firmware build|run|arduino|tflm --artifacts OUT [--board B]``.

build: copy the cortex_m template and the C model (``OUT/c_model/``) into
       ``OUT/firmware/<board>/`` and compile it; print flash/model bytes.
run:   build, run under qemu-system-arm (semihosting, -icount shift=0) with a timeout,
       compare the predictions with the Python integer reference, and merge an ``mcu``
       section into ``OUT/report.json``.
arduino: write the Arduino sketch folder ``OUT/firmware/arduino/edgeprune_har/``.
tflm:  write ``OUT/firmware/tflm/`` (main.cc + export.tflite's model_data.*). With
       ``--board-run`` (needs a TFLM tree: ``--tflm-tree``, ``$EDGEPRUNE_TFLM_DIR`` or
       ../shared/tflm) also build it for mps2-an386 with each ``--variant`` (ref,
       cmsis_nn; default both), run it under QEMU on the all-zero normalised window, write
       the arena measured there into ``firmware/tflm/model_data.h`` (the largest over the
       variants) and flash/RAM/arena/instructions into ``report.json`` (``tflm_mcu``).

Windows: ``--windows-file F.npz`` (arrays ``windows`` (N,128,9) int in the model's input
type and ``expected`` (N,) reference classes), else ``OUT/c_model/test_windows.npz`` or
``OUT/test_windows.npz``; ``--synthetic`` runs random windows without a reference
(``build`` without windows embeds one all-zero window).

Exit codes: 0 ok (run: every prediction agrees); 2 bad input (unknown board, no C model,
bad windows, usage); 3 toolchain missing; 4 build failed; 5 firmware hung (timeout) or
crashed; 6 ran, but some predictions differ from the reference; 1 anything else.
Errors are one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edgeprune.firmware._arduino import generate_arduino
from edgeprune.firmware._cortex_m import (
    BOARDS,
    build_and_run,
    build_firmware,
    check_board,
    find_c_model,
    write_report,
)
from edgeprune.firmware._errors import BadWindows, FirmwareError, MissingCModel
from edgeprune.firmware._tflm import generate_tflm
from edgeprune.firmware._tflm_board import (
    TFLM_BOARD,
    VARIANTS,
    folder_info,
    set_arena,
    tflm_build_and_run,
)

EXIT_DISAGREE = 6


def _load_windows(args: argparse.Namespace, c_model: Path) -> tuple[np.ndarray, np.ndarray | None]:
    if args.synthetic:
        model = find_c_model(c_model)
        hi = 127 if model.input_type == "int8_t" else 4096
        rng = np.random.default_rng(args.seed)
        return rng.integers(-hi, hi + 1, size=(args.windows, 128, 9)), None
    candidates = (
        [Path(args.windows_file)]
        if args.windows_file
        else [c_model / "test_windows.npz", Path(args.artifacts) / "test_windows.npz"]
    )
    for f in candidates:
        if f.is_file():
            try:
                data = np.load(f)
                w = data["windows"]
                e = data["expected"] if "expected" in data.files else None
            except (OSError, ValueError, KeyError) as exc:
                raise BadWindows(f"cannot read windows from {f}: {exc}") from exc
            n = args.windows if args.windows else len(w)
            return w[:n], (None if e is None else e[:n])
    if args.command == "build":  # building needs no reference: one all-zero window
        return np.zeros((1, 128, 9), dtype=np.int64), None
    raise BadWindows(
        "no test windows: expected "
        + " or ".join(str(c) for c in candidates)
        + " (arrays 'windows', 'expected'), or pass --synthetic"
    )


def _tflm_board_run(args: argparse.Namespace, folder: Path, out: Path) -> dict:
    """Each variant on the board; the measured arena into model_data.h; report.json."""
    keys = ("flash_bytes", "ram_bytes", "arena_bytes", "arena", "model_bytes",
            "instructions_per_window", "instruction_method")
    zero = np.zeros((1, folder_info(folder)["window_len"]), np.float32)
    section = {}
    for variant in args.variant or VARIANTS:
        rep = tflm_build_and_run(folder, zero, variant=variant, tree=args.tflm_tree,
                                 out_dir=out / "firmware" / f"tflm-{TFLM_BOARD}-{variant}",
                                 timeout_s=args.timeout, exact=not args.no_trace)
        section[variant] = {k: rep[k] for k in keys}
    arena = {k: max(s["arena"][k] for s in section.values()) for k in ("step", "head")}
    note = f"smallest that runs on {TFLM_BOARD} ({', '.join(section)}), largest taken"
    set_arena(folder, arena, note)
    write_report(out / "report.json", {"board": TFLM_BOARD, **section}, key="tflm_mcu")
    return section


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code documented in the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m edgeprune.firmware",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=("build", "run", "arduino", "tflm"))
    parser.add_argument("--artifacts", required=True, help="pipeline output folder OUT")
    parser.add_argument("--board", default="mps2-an386", help=f"one of {', '.join(BOARDS)}")
    parser.add_argument("--c-model", help="C model folder (default OUT/c_model)")
    parser.add_argument("--windows", type=int, default=16, help="windows to run (default 16)")
    parser.add_argument("--tflm-dir", help="tflm: folder of model_data.h/.cc (default OUT/tflm)")
    parser.add_argument("--windows-file", help="npz with 'windows' and 'expected'")
    parser.add_argument("--synthetic", action="store_true", help="random windows, no reference")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per QEMU run")
    parser.add_argument(
        "--no-trace",
        action="store_true",
        help="count instructions with SysTick only (skip the exact trace)",
    )
    parser.add_argument("--report-key", default="mcu", help="section name in report.json")
    parser.add_argument("--board-run", action="store_true",
                        help="tflm: build and run the folder on mps2-an386 with TFLM")
    parser.add_argument("--variant", choices=VARIANTS, action="append",
                        help="tflm --board-run: kernel set (repeatable; default both)")
    parser.add_argument("--tflm-tree", help="TFLM tree (default ../shared/tflm)")
    args = parser.parse_args(argv)
    prog = "edgeprune.firmware"
    try:
        if args.windows < 1:
            raise BadWindows(f"--windows must be >= 1, got {args.windows}")
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
            if args.board_run:
                res["board"] = _tflm_board_run(args, Path(res["dir"]), out)
            print(json.dumps(res, indent=2))
            return 0
        if args.command == "arduino":
            sketch = generate_arduino(c_model, out / "firmware" / "arduino")
            print(sketch)
            return 0
        windows, expected = _load_windows(args, c_model)
        fw_dir = out / "firmware" / args.board
        if args.command == "build":
            res = build_firmware(c_model, windows, expected, args.board, fw_dir)
            print(json.dumps(res, indent=2))
            return 0
        mcu = build_and_run(
            c_model,
            windows,
            expected,
            args.board,
            fw_dir,
            timeout_s=args.timeout,
            exact=not args.no_trace,
        )
        write_report(out / "report.json", mcu, key=args.report_key)
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
                f"{prog}: error: predictions differ from the reference on "
                f"{round((1 - mcu['agreement']) * mcu['windows_run'])} of "
                f"{mcu['windows_run']} windows",
                file=sys.stderr,
            )
            return EXIT_DISAGREE
        return 0
    except FirmwareError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
