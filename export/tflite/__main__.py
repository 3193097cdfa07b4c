"""``python -m export.tflite``: checks on exported .tflite files.

check-runtime214 MODEL.tflite ...   run int8 models in tflite-runtime 2.14 (own venv);
                                    exit 1 if any fails to run
arena MODEL.tflite ...              TFLM arena: reported and minimal bytes
carray MODEL OUT_DIR [--name model_data] [--arena N]
                                    write <name>.h / <name>.cc for TFLite Micro;
                                    MODEL is a .tflite or a FastGRNN bundle's .json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    ap = argparse.ArgumentParser(
        prog="python -m export.tflite",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check-runtime214", help="run models in tflite-runtime 2.14")
    c.add_argument("models", nargs="+")
    c.add_argument("--cache", default=None, help="venv folder (default: ~/.cache/edgeprune/…)")
    a = sub.add_parser("arena", help="TFLM arena bytes")
    a.add_argument("models", nargs="+")
    w = sub.add_parser("carray", help="write a TFLite Micro C array")
    w.add_argument("model")
    w.add_argument("out_dir")
    w.add_argument("--name", default="model_data")
    w.add_argument("--arena", type=int, default=None)
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
