"""``python -m edgeprune.bench peers``: one trained model, three firmware builds, one board.

The same trained FastGRNN (``--keras`` a saved model, e.g. a pipeline run's
``model.keras``; else trained here for ``--epochs`` on the HAR-2 data) is built three
ways for QEMU mps2-an386 (Cortex-M4F) and run on the same real test windows:

- ``c_model``: edgeprune's integer C model (``export.cmodel``, smallest storage per
  matrix, int16 input), as the pipeline's firmware stage builds it;
- ``tflm_ref`` / ``tflm_cmsis_nn``: the pipeline's TFLM export (int16x8, per-tensor
  weights: ``export.tflite.tflm_per_tensor``) with ``firmware/tflm/main.cc`` on
  TensorFlow Lite Micro with its reference kernels / CMSIS-NN (needs the TFLM tree,
  ``../shared/tflm``), arena measured on the board.

Each entry has ``instructions_per_window`` (exact count of window 0 from a QEMU trace;
the C model's ``predict()`` on int16 windows, TFLM's ``EpTflmPredict()`` on float
windows: its 1152 input quantisations are included), ``flash_bytes`` (vectors, code,
constants, data; no test windows), ``ram_bytes`` (data + bss + stack high-water),
``arena_bytes`` (TFLM's tensor arenas; the C model's scratch), ``agreement`` (classes
equal to the build's own host reference: the numpy integer model, or the host
``tflite-micro`` runtime), ``scores_agreement`` (TFLM: quantised logits equal),
``agreement_with_c_model``. ``ratios`` gives TFLM+CMSIS-NN over the C model and
``targets`` whether the C model keeps >= 4x fewer instructions, >= 4x less flash and
>= 7x less RAM.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import tempfile
from typing import Any

import numpy as np

from edgeprune._cli import whole_number

TARGETS = {"instructions_per_window": 4.0, "flash_bytes": 4.0, "ram_bytes": 7.0}
KEYS = ("instructions_per_window", "instruction_method", "flash_bytes", "ram_bytes",
        "arena_bytes", "model_bytes", "code_bytes", "stack_max_bytes", "windows_run",
        "agreement")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``peers`` subcommand (``func`` runs it and returns an exit code)."""
    p = subparsers.add_parser("peers", help="C model vs TFLM (ref, CMSIS-NN) on the board",
                              description=__doc__.replace("``", ""),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", required=True, help="output JSON path (required)")
    p.add_argument("--keras", default=None,
                   help="trained FastGRNN .keras (default: train one here)")
    p.add_argument("--data", choices=("uci", "hapt"), default="uci",
                   help="data set (default uci)")
    p.add_argument("--data-path", default=None,
                   help="UCI HAR archive: zip, folder or parent (default: the one "
                        "python -m har_data download stored in the cache)")
    p.add_argument("--epochs", type=whole_number(1, 1000), default=5,
                   help="training epochs without --keras (default 5)")
    p.add_argument("--hidden", type=whole_number(1, 4096), default=80,
                   help="hidden units (default 80)")
    p.add_argument("--w-rank", type=whole_number(1, 4096), default=5,
                   help="rank of W (default 5)")
    p.add_argument("--u-rank", type=whole_number(1, 4096), default=40,
                   help="rank of U (default 40)")
    p.add_argument("--windows", type=whole_number(1, 4096), default=16,
                   help="test windows run on the board (default 16)")
    p.add_argument("--tflm-dir", default=None,
                   help="TFLM tree (default $EDGEPRUNE_TFLM_DIR, else ../shared/tflm)")
    p.add_argument("--no-trace", action="store_true",
                   help="SysTick counts, no exact trace (default: off)")
    p.add_argument("--work-dir", default=None,
                   help="keep the models and firmware here (default: a temporary folder)")
    p.set_defaults(func=run)
    return p


def _model(args: argparse.Namespace, ds: Any) -> Any:
    from edgeprune import models, training

    if args.keras:
        return models.load_model(args.keras)
    model = models.fastgrnn_classifier((128, 9), 2, hidden=args.hidden, w_rank=args.w_rank,
                                       u_rank=args.u_rank, seed=0)
    d = training.FASTGRNN_DEFAULTS
    training.train(model, (ds.normalize(ds.train.x), ds.train.y),
                   (ds.normalize(ds.val.x), ds.val.y), epochs=args.epochs,
                   batch_size=d["batch_size"], lr=d["lr"], progress=False)
    return model


def _entry(rep: dict[str, Any], arena: int, c_classes: list[int] | None) -> dict[str, Any]:
    out = {k: rep.get(k) for k in KEYS}
    out["arena_bytes"] = arena
    out["scores_agreement"] = rep.get("scores_agreement")
    if c_classes is not None:
        out["agreement_with_c_model"] = float(np.mean(np.asarray(rep["predictions"])
                                                      == np.asarray(c_classes)))
    return out


def measure(args: argparse.Namespace, work: pathlib.Path) -> dict[str, Any]:
    """Train or load, export, build and run the three firmwares; the JSON document."""
    import har_data
    from edgeprune import firmware, models
    from edgeprune.pipeline.families import FAMILIES, write_c_model
    from export import cmodel
    from export import tflite as tfl

    ds = har_data.load(args.data, path=args.data_path)
    model = _model(args, ds)
    fam = FAMILIES["fastgrnn"]
    raw = ds.test.x[: args.windows]
    exact = not args.no_trace

    int_model = fam.quantize(model, ds)
    write_c_model(int_model, work / "c_model", {"bench": "peers"})
    c_rep = firmware.build_and_run(work / "c_model", cmodel.quantize_input(int_model, raw),
                                   fam.c_predict(int_model, raw), out_dir=work / "fw_c",
                                   exact=exact, timeout_s=120)
    builds = {"c_model": _entry(c_rep, c_rep["scratch_bytes"], None)}

    quant = fam.tflm_quantization
    bundle = fam.tflite(model, ds, quant, per_tensor=tfl.tflm_per_tensor(quant))
    (work / "tflm").mkdir(parents=True, exist_ok=True)
    tfl.write_tflm_array(bundle, work / "tflm")
    folder = firmware.generate_tflm(work / "tflm", work / "firmware_tflm")["dir"]
    windows = firmware.on_input_grid(bundle, ds.normalize(raw))
    classes, scores = firmware.host_reference(bundle, windows)
    for variant in firmware.VARIANTS:
        rep = firmware.tflm_build_and_run(folder, windows, classes, scores, variant=variant,
                                          out_dir=work / f"fw_tflm_{variant}",
                                          tree=args.tflm_dir, exact=exact, timeout_s=300)
        builds[f"tflm_{variant}"] = _entry(rep, rep["arena_bytes"], c_rep["predictions"])
        builds[f"tflm_{variant}"]["commands"] = rep["commands"]
    c, t = builds["c_model"], builds["tflm_cmsis_nn"]
    ratios = {k: round(t[k] / c[k], 2) for k in TARGETS}
    params = models.fastgrnn_params(model)
    return {
        "board": c_rep["board"],
        "model": {"family": "fastgrnn", "hidden": int(np.shape(params["bias_gate"])[0]),
                  "w_rank": int(np.shape(params["W1"])[1]) if "W1" in params else None,
                  "u_rank": int(np.shape(params["U1"])[1]) if "U1" in params else None,
                  "tflm_quantization": f"{quant}, per-tensor weights"
                  if tfl.tflm_per_tensor(quant) else quant,
                  "keras": args.keras, "epochs_trained": None if args.keras else args.epochs},
        "dataset": ds.name,
        "windows": int(len(raw)),
        "builds": builds,
        "ratios_tflm_cmsis_nn_over_c_model": ratios,
        "targets": {k: {"min": v, "measured": ratios[k], "met": ratios[k] >= v}
                    for k, v in TARGETS.items()},
        "toolchain": c_rep["toolchain"],
    }


def run(args: argparse.Namespace) -> int:
    """Measure and write ``--json``; exit 1 when a build disagrees with its reference."""
    if args.work_dir:
        work = pathlib.Path(args.work_dir)
        work.mkdir(parents=True, exist_ok=True)
        doc = measure(args, work)
    else:
        with tempfile.TemporaryDirectory(prefix="edgeprune-peers-") as tmp:
            doc = measure(args, pathlib.Path(tmp))
    path = pathlib.Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    rows = [f"{'build':<14} {'instr/window':>13} {'flash':>8} {'RAM':>7} {'arena':>7} agree"]
    for name, b in doc["builds"].items():
        rows.append(f"{name:<14} {b['instructions_per_window']:>13,} {b['flash_bytes']:>8,} "
                    f"{b['ram_bytes']:>7,} {b['arena_bytes']:>7,} {b['agreement']}")
    print("\n".join(rows))
    print(json.dumps(doc["targets"]))
    ok = all(b["agreement"] == 1.0 for b in doc["builds"].values())
    return 0 if ok else 1
