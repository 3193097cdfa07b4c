"""``python -m edgeprune.bench kernels``: instructions, bytes and RAM of the C model kernels.

Trains nothing. For each sparsity it takes FastGRNN (hidden 80, ranks 5/40 unless
``--hidden/--w-rank/--u-rank`` say otherwise; HAR-2 shape: d 9, 2 classes) with
deterministic random weights (N(0, 0.3^2) for W1/W2, N(0, 0.1^2) for U1/U2, N(0, 1) for
the classifier: at 80/5/40 the ``tests/test_cmodel.py`` model), prunes it with Global MP
(``edgeprune.pruning.ranking.global_keep_masks`` over the five matrices, no Minimum
Threshold), quantises it with ``export.cmodel.quantize_fastgrnn`` (default
options unless given) on synthetic calibration windows, builds the firmware for the board
(arm-none-eabi-gcc -Os) and runs it under QEMU. The result must agree bit for bit with
the numpy reference, else the run fails. ``--kernels both`` (the default) builds the same
integer model twice, with the fast kernels and with the small (portable, only the
model's formats) ones, and shows them side by side.

JSON: ``rows`` (one per sparsity) with ``instructions_per_window`` (exact count of window
0 from a QEMU trace), ``instruction_profile`` (per function), ``model_bytes``,
``matrix_bytes``, ``formats`` ({matrix: [format, bytes]}), ``scratch_bytes``,
``predict_stack_bytes``, ``inference_ram_bytes`` (scratch + predict stack),
``ram_bytes`` (firmware static RAM + stack high-water), ``code_bytes`` (flash without the
model), ``model_code_bytes`` (.text of the model and kernel objects as linked: the
inference code), ``kernel_const_bytes``, ``kernels`` (the build); with ``--kernels both``
each row (the fast build's) also holds ``small``: the same keys for the small build. Plus
``model`` (the architecture), ``board``, ``settings``, ``toolchain``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
from typing import Any

import numpy as np

from edgeprune.firmware import BOARDS

SPARSITIES = (0.0, 0.5, 0.7, 0.9, 0.95)
HIDDEN, W_RANK, U_RANK, D, CLASSES = 80, 5, 40, 9, 2
SYN_MEAN = np.array([0, 0, 0, 0, 0, 0, 0.8, 0.0, 0.1])
SYN_STD = np.array([0.2, 0.2, 0.2, 0.4, 0.4, 0.3, 0.4, 0.3, 0.3])


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``kernels`` subcommand (``func`` runs it and returns an exit code)."""
    p = subparsers.add_parser("kernels", help="C model instructions/bytes/RAM per sparsity",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", required=True, help="output JSON path")
    p.add_argument("--sparsities", default=",".join(str(s) for s in SPARSITIES),
                   help="comma-separated global sparsities (default %(default)s)")
    p.add_argument("--seed", type=int, default=3, help="weight seed (default %(default)s)")
    p.add_argument("--board", default="mps2-an386", choices=tuple(BOARDS),
                   help="QEMU board (default %(default)s)")
    p.add_argument("--windows", type=int, default=2, help="windows run on the board")
    p.add_argument("--speed-slack", type=float, default=None,
                   help="quantize_fastgrnn speed_slack (default: its default)")
    p.add_argument("--matrix-budget", type=int, default=None,
                   help="quantize_fastgrnn matrix_budget in bytes (default: none)")
    p.add_argument("--hidden", type=int, default=HIDDEN, help="hidden size (default %(default)s)")
    p.add_argument("--w-rank", type=int, default=W_RANK,
                   help="rank of W = W1 W2 (default %(default)s; 0 = full rank)")
    p.add_argument("--u-rank", type=int, default=U_RANK,
                   help="rank of U = U1 U2 (default %(default)s; 0 = full rank)")
    p.add_argument("--kernels", choices=("both", "fast", "small"), default="both",
                   help="kernel builds measured (default %(default)s: side by side)")
    p.add_argument("--work-dir", default=None,
                   help="keep the C models and firmware here (default: a temporary folder)")
    p.set_defaults(func=run)
    return p


def synthetic_windows(n: int, seed: int) -> np.ndarray:
    """Raw windows ``(n, 128, 9)``: smooth AR(1) noise around SYN_MEAN with SYN_STD spread."""
    r = np.random.default_rng(seed)
    e = r.normal(0, 1, (n, 128, D))
    x = np.zeros_like(e)
    for t in range(128):
        x[:, t] = 0.8 * (x[:, t - 1] if t else 0) + 0.6 * e[:, t]
    amp = r.uniform(0.3, 2.0, (n, 1, D))
    return (SYN_MEAN + SYN_STD * x * amp).astype(np.float32)


def fastgrnn_params(sparsity: float, seed: int, hidden: int = HIDDEN, w_rank: int = W_RANK,
                    u_rank: int = U_RANK) -> dict[str, Any]:
    """FastGRNN hidden/w_rank/u_rank parameters (default 80/5/40; rank 0 = one full-rank
    matrix W or U), Global-MP-pruned to ``sparsity`` (deterministic)."""
    from edgeprune.pruning.ranking import global_keep_masks

    r = np.random.default_rng(seed)
    mats: dict[str, np.ndarray] = {}
    if w_rank:
        mats.update(W1=r.normal(0, 0.3, (D, w_rank)), W2=r.normal(0, 0.3, (w_rank, hidden)))
    else:
        mats["W"] = r.normal(0, 0.3, (D, hidden))
    if u_rank:
        mats.update(U1=r.normal(0, 0.1, (hidden, u_rank)), U2=r.normal(0, 0.1, (u_rank, hidden)))
    else:
        mats["U"] = r.normal(0, 0.1, (hidden, hidden))
    mats["dense_kernel"] = r.normal(0, 1.0, (hidden, CLASSES))
    keep = global_keep_masks([np.abs(v) for v in mats.values()], sparsity)
    p: dict[str, Any] = {k: np.where(m, v, 0.0).astype(np.float32)
                         for (k, v), m in zip(mats.items(), keep, strict=True)}
    p.update(bias_gate=(1 + r.normal(0, 0.5, hidden)).astype(np.float32),
             bias_update=r.normal(0, 0.5, hidden).astype(np.float32),
             zeta=np.float32(1.0), nu=np.float32(-4.0),
             dense_bias=np.zeros(CLASSES, np.float32),
             gate_nonlinearity="sigmoid", update_nonlinearity="tanh")
    return p


def measure(sparsity: float, seed: int, board: str, work: pathlib.Path, windows: int = 2,
            quant_options: dict[str, Any] | None = None,
            arch: tuple[int, int, int] = (HIDDEN, W_RANK, U_RANK),
            kernels: str = "fast") -> dict[str, Any]:
    """One row of the benchmark: build (``kernels``: fast or small), run (bit-exact check)
    and measure one model (``arch`` = hidden, w_rank, u_rank)."""
    from edgeprune import firmware
    from export import cmodel

    params = fastgrnn_params(sparsity, seed, *arch)
    cal = synthetic_windows(64, seed=seed)
    im = cmodel.quantize_fastgrnn(params, SYN_MEAN, SYN_STD, cal, **(quant_options or {}))
    tag = f"s{round(sparsity * 100):03d}_{kernels}"
    cdir = work / f"c_{tag}"
    cmodel.generate_c(im, cdir, "bench", provenance={"sparsity": sparsity, "seed": seed},
                      kernels=kernels)
    x16 = cmodel.quantize_input(im, synthetic_windows(windows, seed=seed + 1))
    classes, scores = cmodel.reference_predict(im, x16)
    mcu = firmware.build_and_run(cdir, x16, classes, board, work / f"fw_{tag}", 300.0,
                                 exact=True)
    if mcu["agreement"] != 1.0 or mcu["scores"] != scores.tolist():
        raise RuntimeError(f"sparsity {sparsity}: the firmware disagrees with the reference")
    if not str(mcu["instruction_method"]).startswith("exact"):
        raise RuntimeError(f"sparsity {sparsity}: no exact count ({mcu['instruction_method']})")
    mats = {k: s for k, s in im.matrices.items() if s is not None}
    return {
        "sparsity": sparsity,
        "achieved_sparsity": round(float(im.meta["sparsity"]), 6),
        "nnz_int8": int(im.meta["nnz_int8"]),
        "instructions_per_window": int(mcu["instructions_per_window"]),
        "instruction_profile": {k: int(v) for k, v in
                                sorted(mcu["instruction_profile"].items(), key=lambda kv: -kv[1])},
        "model_bytes": int(mcu["model_bytes"]),
        "matrix_bytes": sum(s.nbytes for s in mats.values()),
        "formats": {k: [s.format, s.nbytes] for k, s in mats.items()},
        "scratch_bytes": int(mcu["scratch_bytes"]),
        "predict_stack_bytes": int(mcu["predict_stack_bytes"]),
        "inference_ram_bytes": int(mcu["inference_ram_bytes"]),
        "ram_bytes": int(mcu["ram_bytes"]),
        "code_bytes": int(mcu["code_bytes"]),
        "model_code_bytes": int(mcu["model_code_bytes"]),
        "kernel_const_bytes": int(mcu["kernel_const_bytes"]),
        "kernels": kernels,
        "toolchain": mcu["toolchain"],
    }


def run(args: argparse.Namespace) -> int:
    """Measure every sparsity, write the JSON, print a table."""
    try:
        sparsities = [float(s) for s in args.sparsities.split(",") if s.strip()]
    except ValueError:
        print(f"--sparsities {args.sparsities!r}: expected comma-separated numbers",
              file=sys.stderr)
        return 2
    if not sparsities or any(not 0.0 <= s < 1.0 for s in sparsities):
        print("--sparsities must be in [0, 1)", file=sys.stderr)
        return 2
    options: dict[str, Any] = {}
    if args.speed_slack is not None:
        options["speed_slack"] = args.speed_slack
    if args.matrix_budget is not None:
        options["matrix_budget"] = args.matrix_budget
    arch = (args.hidden, args.w_rank, args.u_rank)
    if args.hidden < 1 or args.w_rank < 0 or args.u_rank < 0:
        print("--hidden must be >= 1 and --w-rank/--u-rank >= 0", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ep_bench_kernels_") as tmp:
        work = pathlib.Path(args.work_dir or tmp)
        rows = []
        for s in sparsities:
            builds = ("fast", "small") if args.kernels == "both" else (args.kernels,)
            row, *other = [measure(s, args.seed, args.board, work, args.windows, options, arch,
                                   k) for k in builds]
            if other:
                row["small"] = {k: v for k, v in other[0].items()
                                if k not in ("toolchain", "formats", "sparsity",
                                             "achieved_sparsity", "nnz_int8", "matrix_bytes",
                                             "model_bytes")}
            rows.append(row)
    out = {
        "benchmark": "kernels",
        "model": {"family": "fastgrnn", "hidden": args.hidden, "w_rank": args.w_rank,
                  "u_rank": args.u_rank,
                  "input_dim": D, "classes": CLASSES, "steps": 128,
                  "weights": "deterministic random N(0, 0.3/0.3/0.1/0.1/1.0), Global MP"},
        "board": args.board,
        "settings": {"seed": args.seed, "windows": args.windows, "quantize": options,
                     "kernels": args.kernels},
        "toolchain": rows[0]["toolchain"] if rows else {},
        "rows": [{k: v for k, v in r.items() if k != "toolchain"} for r in rows],
    }
    path = pathlib.Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{'sparsity':>8} {'build':>5} {'instr/window':>13} {'code B':>7} {'model B':>8} "
          f"{'RAM B':>6}  formats")
    for r in out["rows"]:
        fmts = " ".join(f"{k}:{f}" for k, (f, _) in r["formats"].items())
        for b in (r, r.get("small")):
            if b is not None:
                print(f"{r['sparsity']:8.2f} {b['kernels']:>5} {b['instructions_per_window']:13,d} "
                      f"{b['model_code_bytes']:7d} {r['model_bytes']:8d} "
                      f"{b['inference_ram_bytes']:6d}  {fmts}")
    return 0
