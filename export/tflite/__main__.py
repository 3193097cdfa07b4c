"""python -m export.tflite: checks on exported .tflite files.

  check-runtime214 MODEL.tflite ...   run int8 models in tflite-runtime 2.14 (own venv);
                                      exit 1 if any fails to run
  arena MODEL.tflite ...              TFLM arena: reported and minimal bytes
  carray MODEL OUT_DIR [--name model_data] [--arena N]
                                      write <name>.h / <name>.cc for TFLite Micro;
                                      MODEL is a .tflite or a FastGRNN bundle's .json

exit codes: 0 done, 1 a model failed in tflite-runtime 2.14, 2 bad arguments or a file
that is not a usable model (one line on stderr starting with "error: ")
"""

from __future__ import annotations

import argparse
import json
import re
import stat
import sys
from pathlib import Path
from typing import NoReturn

MAX_ARENA = 2**31 - 1  # kTensorArenaSize is an int in the generated C++


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (``error: ... (see --help)``), exit 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _model_file(text: str) -> str:
    """argparse type: an existing regular file."""
    path = Path(text)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise argparse.ArgumentTypeError(f"{text}: no such file") from None
    except OSError as err:
        raise argparse.ArgumentTypeError(f"{text}: cannot be read ({err.strerror})") from None
    if not stat.S_ISREG(mode):
        raise argparse.ArgumentTypeError(f"{text}: not a regular file")
    return text


def _arena(text: str) -> int:
    """argparse type: an arena size in bytes, a whole number in 1 .. MAX_ARENA."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_ARENA:
        raise argparse.ArgumentTypeError(f"must be in 1 .. {MAX_ARENA}, got {text}")
    return value


def _c_name(text: str) -> str:
    """argparse type: a C identifier (the array's and the files' name)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", text):
        raise argparse.ArgumentTypeError(f"not a C identifier: {text!r}")
    return text


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    ap = _Parser(
        prog="python -m export.tflite",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="command",
                            parser_class=_Parser)
    c = sub.add_parser("check-runtime214", help="run models in tflite-runtime 2.14")
    c.add_argument("models", nargs="+", type=_model_file, metavar="MODEL",
                   help="int8 .tflite files")
    c.add_argument("--cache", default=None,
                   help="folder of the tflite-runtime 2.14 venv (default: "
                        "tflite-runtime-2.14 under $EDGEPRUNE_CACHE or ~/.cache/edgeprune)")
    a = sub.add_parser("arena", help="TFLM arena bytes")
    a.add_argument("models", nargs="+", type=_model_file, metavar="MODEL",
                   help=".tflite files")
    w = sub.add_parser("carray", help="write a TFLite Micro C array")
    w.add_argument("model", type=_model_file, metavar="MODEL",
                   help="a .tflite file or a FastGRNN bundle's .json")
    w.add_argument("out_dir", metavar="OUT_DIR", help="folder for <name>.h and <name>.cc")
    w.add_argument("--name", type=_c_name, default="model_data",
                   help="C name of the array and the files (default: model_data)")
    w.add_argument("--arena", type=_arena, default=None, metavar="N",
                   help=f"kTensorArenaSize in bytes, 1 .. {MAX_ARENA} (default: the minimal "
                        "arena measured with the host TFLM runtime)")
    args = ap.parse_args(argv)

    import export.tflite as t

    try:
        if args.cmd == "check-runtime214":
            res = t.check_runtime214(args.models, cache=args.cache)
            for r in res:
                print(json.dumps(r))
            return 0 if all(r["ok"] for r in res) else 1
        if args.cmd == "arena":
            for m in args.models:
                print(json.dumps({"model": m, **t.tflm_arena_size(Path(m).read_bytes())}))
            return 0
        model = (
            t.FastGRNNTFLite.load(args.model)
            if args.model.endswith(".json")
            else Path(args.model).read_bytes()
        )
        paths = t.write_tflm_array(
            model, args.out_dir, args.name, args.arena, provenance=f"from {Path(args.model).name}"
        )
        print(json.dumps(paths))
        return 0
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
