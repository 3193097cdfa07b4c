"""``python -m edgeprune.pipeline`` (or ``edgeprune``): a flash budget in, the best model out.

Exit codes (documented in the README):
  0  a model fits the budget; everything is in --out
  2  bad arguments or bad input data (one line on stderr says what)
  3  no configuration fits the budget (the smallest size reached is reported), or none
     runs within --max-instructions (the fastest is reported)
  4  --out cannot be used (not empty and not this run, or not writable)
  130 interrupted (Ctrl-C), 143 terminated (SIGTERM): run the same command again to resume;
     before any stage finished, --out is left as it was found
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import signal
import sys

import edgeprune  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from edgeprune._cli import OneLineParser, positive_float, whole_number
from edgeprune.executor import add_executor_arguments

EXIT_OK, EXIT_USAGE, EXIT_NO_FIT, EXIT_OUT_DIR, EXIT_INTERRUPTED = 0, 2, 3, 4, 130
EXIT_TERMINATED = 143  # 128 + SIGTERM

DESCRIPTION = """\
Train a HAR-2 activity model, prune it with Global Magnitude Pruning guarded by a Minimum
Threshold, quantise it to int8 and pick the most accurate configuration whose C model,
measured from the compiled object, fits your flash budget. Writes the model, TFLite files,
C headers, a firmware folder, report.json, report.md and plots into --out.

examples:
  python -m edgeprune.pipeline --model fastgrnn --budget-kb 8
  python -m edgeprune.pipeline --model cnn --budget-kb 16 \\
      --data uci --data-path "UCI HAR Dataset.zip"
  python -m edgeprune.pipeline --quick --out runs/smoke        # a fast smoke run
"""


MAX_BUDGET_KB = 1024.0 * 1024.0  # 1 GiB: far beyond any microcontroller's flash


def budget_kb(text: str) -> float:
    """argparse type: a flash budget in KiB, > 0 and at most ``MAX_BUDGET_KB``."""
    value = positive_float(text)
    if value > MAX_BUDGET_KB:
        raise argparse.ArgumentTypeError(
            f"{text} KiB is not a microcontroller flash budget (at most {MAX_BUDGET_KB:g})")
    return value


def min_threshold_value(text: str) -> float | int:
    """argparse type: a fraction in [0, 1) or a whole count >= 1 of weights kept per layer."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (0 <= value < 1 or (value >= 1 and value.is_integer())):
        raise argparse.ArgumentTypeError(
            f"must be a fraction in [0, 1) or a whole count of weights, got {text}")
    if value >= 2**31:
        raise argparse.ArgumentTypeError(f"a count of {text} weights is beyond any model")
    return int(value) if value >= 1 else value


MAX_INSTRUCTIONS = 1e12  # beyond any single-window inference on a microcontroller


def instruction_budget(text: str) -> int:
    """argparse type: instructions per window, a whole number >= 1 (``1e6`` is accepted)."""
    value = positive_float(text)
    if value > MAX_INSTRUCTIONS or value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of instructions in 1 .. {MAX_INSTRUCTIONS:g}, got {text}")
    return int(value)


MAX_SEEDS = 32
DEFAULT_SEEDS = 1


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m edgeprune.pipeline", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 fits, 2 bad input (or a budget below the smallest C model\n"
               "possible), 3 nothing fits the budget(s), 4 --out unusable, 130 interrupted\n"
               "(Ctrl-C), 143 terminated (SIGTERM): rerun the same command to resume")
    parser.add_argument("--model", choices=("fastgrnn", "cnn"), default="fastgrnn",
                        help="network family (default: fastgrnn)")
    parser.add_argument("--budget-kb", type=budget_kb, default=8.0,
                        help="flash budget for the model's constant data, in KiB (1 KiB = 1024 B;"
                             " weights, indices, scales, biases, normalisation); default 8")
    parser.add_argument("--data", choices=("hapt", "uci"), default="hapt",
                        help="hapt: offline demo data hapt-har2 (default); uci: the official "
                             "UCI HAR archive, needs --data-path")
    parser.add_argument("--data-path", type=pathlib.Path,
                        help="'UCI HAR Dataset.zip' or its extracted folder (with --data uci); "
                             "with --data hapt a HAPT.pkl.gz (default: the bundled demo data)")
    parser.add_argument("--out", type=pathlib.Path, default=None,
                        help="output folder (default: runs/<model>-<budget>kb); an existing run "
                             "with the same arguments is resumed, anything else is refused")
    parser.add_argument("--seed", type=whole_number(0, 2**32 - 1), default=0,
                        help="random seed, 0 .. 4294967295 (default 0)")
    parser.add_argument("--seeds", type=whole_number(1, MAX_SEEDS), default=DEFAULT_SEEDS,
                        metavar="K",
                        help=f"dense models per architecture, trained in parallel from K "
                             f"seeds, 1 .. {MAX_SEEDS} (default {DEFAULT_SEEDS}): the one best "
                             "on validation is pruned, and the pruned models distil from the "
                             "mean logits of all K")
    parser.add_argument("--min-threshold", type=min_threshold_value, default=0.0005,
                        help="Minimum Threshold: weights every layer keeps, as a fraction of all "
                             "prunable weights or a count (default 0.0005 = 0.05%%, the paper's)")
    parser.add_argument("--max-instructions", type=instruction_budget, default=None,
                        metavar="N",
                        help="speed budget: instructions per 128-step window on the emulated "
                             "Cortex-M4 (QEMU mps2-an386), measured on each candidate's built "
                             "firmware; only candidates within it are selected (e.g. 1e6). "
                             "Needs arm-none-eabi-gcc and qemu-system-arm (default: none)")
    parser.add_argument("--refit", action="store_true",
                        help="after selection, train the selected configuration again on the "
                             "training and validation volunteers together (the epochs chosen "
                             "on validation) and ship it if it still fits; about doubles the "
                             "training time (default: off)")
    parser.add_argument("--kernels", choices=("fast", "small"), default="fast",
                        help="C kernels shipped with the model: fast (Cortex-M DSP/Thumb-2 "
                             "paths, default) or small (portable loops at -Os, only the "
                             "storage formats the model uses: the least flash)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke-test mode: few epochs, few candidates, few windows "
                             "(default: off)")
    parser.add_argument("--no-firmware", action="store_true",
                        help="skip building and running the firmware under QEMU (default: "
                             "built and run when arm-none-eabi-gcc and qemu-system-arm exist)")
    parser.add_argument("--verbose", action="store_true",
                        help="show everything TensorFlow logs (default: its start-up and "
                             "known harmless messages are hidden; errors always show)")
    add_executor_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline; returns the process exit code (see module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data == "uci" and args.data_path is None:
        parser.error("--data uci needs --data-path (the official archive; get it with "
                     "`python -m har_data download`)")
    if args.data_path is not None:  # before TensorFlow loads
        if not args.data_path.exists():
            parser.error(f"--data-path {args.data_path}: no such file or directory")
        if not (args.data_path.is_file() or args.data_path.is_dir()):
            from har_data.files import kind

            parser.error(f"--data-path {args.data_path}: not a regular file or folder "
                         f"({kind(args.data_path.stat().st_mode)})")
    if args.max_instructions is not None:
        if not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")):
            parser.error("--max-instructions measures candidates on an emulated board: install "
                         "arm-none-eabi-gcc and qemu-system-arm (see firmware_templates/README.md)")
    if args.out is None:
        args.out = pathlib.Path("runs") / f"{args.model}-{args.budget_kb:g}kb"

    from edgeprune._quiet import quiet_tensorflow
    from edgeprune._signals import stop_on_signals

    with stop_on_signals(), quiet_tensorflow(args.verbose):
        try:
            return _run(args)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (edgeprune._signals), imports too
            return _interrupted(args.out)


def _interrupted(out: pathlib.Path) -> int:
    """Say what a Ctrl-C or SIGTERM left; returns 130 or 143."""
    from edgeprune._signals import received
    from edgeprune.pipeline.rundir import RUN_FILE

    sigterm = received() == signal.SIGTERM
    what = "terminated (SIGTERM)" if sigterm else "interrupted"
    if (out / RUN_FILE).is_file():
        print(f"\n{what}: run the same command again to resume from the last finished stage",
              file=sys.stderr)
    else:
        print(f"\n{what} before any stage finished: --out {out} is as it was found",
              file=sys.stderr)
    return EXIT_TERMINATED if sigterm else EXIT_INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    """The run behind the parsed arguments; returns the exit code (Ctrl-C and SIGTERM
    propagate: ``_interrupted``)."""
    from edgeprune.executor import ExecutorError  # heavy imports after parsing
    from edgeprune.pipeline.config import RunConfig
    from edgeprune.pipeline.run import NoFitError, run
    from edgeprune.pipeline.rundir import OutDirError

    try:
        run(RunConfig.from_args(args))
    except OutDirError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_OUT_DIR
    except NoFitError as err:
        print(f"no fit: {err}", file=sys.stderr)
        return EXIT_NO_FIT
    except (ValueError, ExecutorError) as err:  # bad input or cluster found past parsing
        print(f"error: {err}", file=sys.stderr)  # (--out is put back by run)
        return EXIT_USAGE
    return EXIT_OK
