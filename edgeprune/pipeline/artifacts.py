"""The shipped model's files and its one test evaluation, computed as values.

``export_model`` runs anywhere (it is a stage) and returns the ``ExportResult`` with every
file as bytes by its path in the run folder; the driver writes them (``write_files``).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune import pruning
from edgeprune.pipeline import measure
from edgeprune.pipeline.records import Candidate, ExportResult, Weights
from edgeprune.pipeline.stages import StageContext
from export import tflite as tfl
from har_data.atomic import atomic_write

Files = dict[str, bytes]  # path relative to the run folder -> content


def _read_tree(root: Path, prefix: str) -> Files:
    return {f"{prefix}/{p.relative_to(root).as_posix()}": p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def export_model(ctx: StageContext, best: Candidate,
                 weights: Weights) -> tuple[ExportResult, Files]:
    """Every artifact of the selected model (Keras, TFLite int8 / TFLM quantisation /
    sparse, TFLM array, C model), and its one test evaluation."""
    ds, fam, budget = ctx.ds, ctx.family, ctx.config.budget_bytes
    arch = best.spec
    model = ctx.model(arch, weights)
    files: Files = {}
    x_test = ds.normalize(ds.test.x)
    float_pred = np.argmax(model.predict(x_test, batch_size=256, verbose=0), axis=1)
    provenance = {"model": fam.name, **{k: v for k, v in arch.to_json().items()
                                        if v is not None},
                  "sparsity": best.sparsity, "dataset": ds.name,
                  "val_accuracy": round(best.val_accuracy, 4)}
    if provenance.get("filters") is not None:
        provenance["filters"] = list(provenance["filters"])
    with tempfile.TemporaryDirectory(prefix="edgeprune-export-") as tmp:
        keras_file = Path(tmp) / "model.keras"
        model.save(str(keras_file))
        files["model.keras"] = keras_file.read_bytes()
        int_model, c_size, smallest_bytes = measure.fastest_fitting(
            fam, ds, model, budget, Path(tmp) / "c_model", provenance, ctx.config.kernels)
        files.update(_read_tree(Path(tmp) / "c_model", "c_model"))
        c_pred = fam.c_predict(int_model, ds.test.x)

        shipped = {"int8": fam.tflite(model, ds, "int8")}
        if fam.tflm_quantization != "int8":  # per tensor where TFLM's CMSIS-NN needs it
            shipped[fam.tflm_quantization] = fam.tflite(
                model, ds, fam.tflm_quantization,
                per_tensor=tfl.tflm_per_tensor(fam.tflm_quantization))
        tfl_sizes, tfl_acc = {}, {}
        for quant, converted in shipped.items():
            parts = fam.tflite_files(converted)
            files.update({f"model_{quant}_{part}.tflite": blob for part, blob in parts.items()})
            tfl_sizes[f"tflite_{quant}"] = sum(len(b) for b in parts.values())
            pred = tfl.predict_tflite(converted, x_test, classes=True)
            tfl_acc[f"test_tflite_{quant}"] = float(np.mean(pred == ds.test.y))
        with warnings.catch_warnings():  # litert runs sparse int8 FastGRNN wrongly:
            warnings.simplefilter("ignore", RuntimeWarning)  # its size is what we report
            sparse = fam.tflite_files(fam.tflite(model, ds, "int8", sparse=True))
        files.update({f"model_sparse_{part}.tflite": blob for part, blob in sparse.items()})
        tfl_sizes["tflite_sparse"] = sum(len(b) for b in sparse.values())
        (Path(tmp) / "tflm").mkdir()
        tfl.write_tflm_array(shipped[fam.tflm_quantization], Path(tmp) / "tflm",
                             provenance=str(provenance))
        files.update(_read_tree(Path(tmp) / "tflm", "tflm"))

    layers = pruning.pruning_report(model, ctx.config.min_threshold, warn=False)
    per_layer = [{k: r[k] for k in ("name", "weights", "nonzeros", "sparsity", "floor",
                                    "dead_units")} for r in layers]
    y = ds.test.y
    confusion = np.zeros((2, 2), dtype=int)
    np.add.at(confusion, (y, c_pred), 1)
    result = ExportResult(
        accuracy={"val": best.val_accuracy, "test_float": float(np.mean(float_pred == y)),
                  **tfl_acc, "test_c_int8": float(np.mean(c_pred == y)),
                  "c_vs_float_agreement": float(np.mean(c_pred == float_pred))},
        bytes={"model": c_size.model_bytes, "model_smallest": smallest_bytes,
               "code": c_size.code_bytes, "ram": c_size.ram_bytes,
               "toolchain": c_size.toolchain, **tfl_sizes},
        tflm_quantization=fam.tflm_quantization, per_layer=per_layer,
        confusion_test_c_int8=confusion.tolist(),
        tflm_files=sorted(p for p in files if p.startswith("tflm/")))
    return result, files


def replace_dir(target: Path, write: Callable[[Path], Any]) -> None:
    """``write(folder)`` into a temporary sibling, then swap it in: a kill never leaves a
    half-written ``target`` (at worst none, and the rerun writes it)."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def write_files(root: Path, files: Files) -> None:
    """Write ``files`` under ``root``: single files atomically, folders (``c_model/``,
    ``tflm/``) replaced whole, so no stale file of an earlier export stays beside them."""
    folders: dict[str, Files] = {}
    for path, blob in files.items():
        top, sep, rest = path.partition("/")
        if sep:
            folders.setdefault(top, {})[rest] = blob
        else:
            atomic_write(root / path, blob, parents=True)
    for top, inner in folders.items():
        replace_dir(root / top, lambda d, inner=inner: write_files(d, inner))
