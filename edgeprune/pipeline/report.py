"""What a pipeline run shows a person: report.md, a summary table, and plots (three, and a
speed frontier with --max-instructions)."""

from __future__ import annotations

import pathlib
import platform
import shutil
from importlib import metadata
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from edgeprune import machine  # noqa: E402
from edgeprune.pipeline.config import RunConfig  # noqa: E402
from edgeprune.pipeline.families import FAMILIES  # noqa: E402
from edgeprune.pipeline.records import (  # noqa: E402
    Candidate,
    DenseResult,
    ExportResult,
    RefitResult,
    SpeedProbe,
    StageLog,
)
from edgeprune.pipeline.reportfile import (  # noqa: E402,F401  (summary_*: re-exported)
    REPORT_JSON,
    REPORT_MD,
    read_report,
    summary_rows,
    summary_table,
    write_json,
    write_report_md,
)
from edgeprune.pipeline.search import best_member  # noqa: E402
from har_data.atomic import atomic_open  # noqa: E402


def save_figure(fig: plt.Figure, path: pathlib.Path) -> None:
    """Write ``fig`` as a PNG (120 dpi, no software tag: same figure, same bytes),
    atomically, and close it."""
    try:
        with atomic_open(path) as handle:
            fig.savefig(handle, format="png", dpi=120, bbox_inches="tight",
                        metadata={"Software": None})
    finally:
        plt.close(fig)


def plot_frontier(candidates: list[dict[str, Any]], budget_bytes: int, path: pathlib.Path) -> None:
    """Validation accuracy against measured model bytes, the budget as a vertical line."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    kinds = ((False, "x", "one-shot probe"), (True, "o", "pruned + fine-tuned"))
    for tuned, marker, label in kinds:
        for fits, color in ((True, "tab:blue"), (False, "tab:grey")):
            pts = [c for c in candidates if c["finetuned"] == tuned and c["fits"] == fits]
            if pts:
                ax.scatter([c["model_bytes"] / 1024 for c in pts],
                           [100 * c["val_accuracy"] for c in pts], marker=marker, color=color,
                           label=f"{label}{'' if fits else ' (over budget)'}")
    chosen = [c for c in candidates if c.get("selected")]
    if chosen:
        ax.scatter([chosen[0]["model_bytes"] / 1024], [100 * chosen[0]["val_accuracy"]],
                   s=160, facecolors="none", edgecolors="red", label="selected")
    ax.axvline(budget_bytes / 1024, color="grey", linestyle="--", label="budget")
    ax.set_xlabel("model bytes in flash (KiB, measured from the compiled C model)")
    ax.set_ylabel("validation accuracy (%, C int8 model)")
    ax.set_title("Size–accuracy frontier of the candidates")
    ax.legend()
    save_figure(fig, path)


def plot_speed_frontier(candidates: list[dict[str, Any]], max_instructions: int,
                        path: pathlib.Path) -> None:
    """Validation accuracy against measured instructions per window of the fine-tuned
    candidates that fit the byte budget, the instruction budget as a vertical line."""
    timed = [c for c in candidates if c.get("instructions_per_window") is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for fast, color in ((True, "tab:blue"), (False, "tab:grey")):
        pts = [c for c in timed if (c["instructions_per_window"] <= max_instructions) == fast]
        if pts:
            ax.scatter([c["instructions_per_window"] / 1e6 for c in pts],
                       [100 * c["val_accuracy"] for c in pts], color=color,
                       label="within the budget" if fast else "too slow")
        for c in pts:
            ax.annotate(f"{c['sparsity']:.0%}", (c["instructions_per_window"] / 1e6,
                                                 100 * c["val_accuracy"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=8)
    chosen = [c for c in timed if c.get("selected")]
    if chosen:
        ax.scatter([chosen[0]["instructions_per_window"] / 1e6],
                   [100 * chosen[0]["val_accuracy"]], s=160, facecolors="none",
                   edgecolors="red", label="selected")
    ax.axvline(max_instructions / 1e6, color="grey", linestyle="--", label="instruction budget")
    ax.set_xlabel("million instructions per window (emulated Cortex-M4, measured)")
    ax.set_ylabel("validation accuracy (%, C int8 model)")
    ax.set_title("Speed–accuracy of the fine-tuned candidates")
    ax.legend()
    save_figure(fig, path)


def plot_per_layer(per_layer: list[dict[str, Any]], path: pathlib.Path) -> None:
    """Bars of each prunable layer's sparsity, annotated with the weights it keeps."""
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * max(len(per_layer), 1)))
    names = [row["name"] for row in per_layer]
    sparsity = [100 * row["sparsity"] for row in per_layer]
    ax.barh(names, sparsity)
    for i, row in enumerate(per_layer):
        ax.text(min(sparsity[i] + 1, 90), i, f"{row['nonzeros']}/{row['weights']}", va="center")
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("sparsity (%)")
    ax.set_title("Per-layer sparsity of the selected model")
    save_figure(fig, path)


def plot_confusion(matrix: np.ndarray, labels: list[str], title: str, path: pathlib.Path) -> None:
    """A confusion matrix with counts in the cells (rows: true class, columns: predicted)."""
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center",
                color="white" if count > matrix.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    save_figure(fig, path)


def build_report(*, config: RunConfig, ds: Any, candidates: list[Candidate],
                 shipped: Candidate, tolerance: float, speed_probes: list[SpeedProbe],
                 exported: ExportResult, refit: RefitResult | None,
                 members: dict[str, list[DenseResult]],
                 mcu: dict[str, Any] | None, stage_log: StageLog, data_seconds: float,
                 executor: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """``report.json``: assembled from the stages' records."""
    speed = config.max_instructions is not None
    report: dict[str, Any] = {
        "model": config.model,
        "dataset": {"name": ds.name,
                    "sizes": {s: len(getattr(ds, s)) for s in ("train", "val", "test")},
                    "val_subjects": list(ds.val_subjects)},
        "budget_bytes": config.budget_bytes,
        "fits_budget": exported.bytes["model"] <= config.budget_bytes,
        "selected": {**{k: v for k, v in shipped.spec.to_json().items() if v is not None},
                     "sparsity": shipped.sparsity, "min_threshold": config.min_threshold,
                     "quantisation": FAMILIES[config.model].c_quantisation,
                     "tflm_quantisation": exported.tflm_quantization},
        "selection": {"rule": "smallest fine-tuned candidate within one standard error of the "
                              "best validation accuracy (C int8)"
                              + (", among those within the instruction budget" if speed else ""),
                      "tolerance": round(tolerance, 5)},
        "budget_instructions": config.max_instructions,
        "speed_probes": [p.to_json() for p in speed_probes],
        "accuracy": exported.accuracy,
        "bytes": exported.bytes,
        "per_layer": exported.per_layer,
        "confusion_test_c_int8": exported.confusion_test_c_int8,
        "candidates": [c.to_json() for c in candidates],
        "dense_seeds": {arch: {"members": [m.to_json() for m in rows],
                               "parent": best_member(rows),
                               "teacher": "dense parent" if len(rows) == 1
                               else f"mean logits of {len(rows)} members"}
                        for arch, rows in members.items()},
        "seconds": {"data": round(data_seconds, 2), **stage_log.seconds()},
        "stage_nodes": stage_log.nodes(),
        "executor": executor,
        "versions": versions(),
        "seed": config.seed,
        "warnings": warnings,
    }
    if "filters" in report["selected"]:
        report["selected"]["filters"] = list(report["selected"]["filters"])
    if mcu is not None:
        report["mcu"] = mcu
    if refit is not None:
        report["refit"] = {**refit.to_json(), "shipped": refit.fits,
                           "note": "trained on the training and validation volunteers with "
                                   "the epochs chosen on validation; accuracy.val is the "
                                   "validation-selected model's"}
    if speed:
        counted = mcu["instructions_per_window"] if mcu else shipped.instructions_per_window
        report["fits_instruction_budget"] = counted <= config.max_instructions
    return report


def write_all(report: dict[str, Any], out: pathlib.Path) -> None:
    """The plots, ``report.json`` and ``report.md`` of a finished run; sections of an
    earlier report that this one does not set are kept (an unreadable one raises)."""
    plot_frontier(report["candidates"], report["budget_bytes"], out / "frontier.png")
    if report["budget_instructions"] is not None:
        plot_speed_frontier(report["candidates"], report["budget_instructions"],
                            out / "speed_frontier.png")
    plot_per_layer(report["per_layer"], out / "per_layer_sparsity.png")
    plot_confusion(np.array(report["confusion_test_c_int8"]), ["0", "1"],
                   "HAR-2 test, C int8 model", out / "confusion_matrix.png")
    previous = read_report(out / REPORT_JSON) or {}  # raises if unreadable: never replaced
    report = {**previous, **report}  # sections added by others (e.g. the API) are kept
    write_json(out / REPORT_JSON, report)
    write_report_md(report, out / REPORT_MD)


def versions() -> dict[str, str]:
    """Versions of Python, edgeprune, its main libraries and tools, and the machine."""
    names = ("tensorflow", "tf-keras", "tensorflow-model-optimization", "numpy",
             "ai-edge-litert", "tflite-micro", "ray")
    out = {"python": platform.python_version(), "edgeprune": metadata.version("edgeprune"),
           "machine": machine.describe()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    for tool in ("gcc", "arm-none-eabi-gcc", "qemu-system-arm"):
        out[tool] = "present" if shutil.which(tool) else "absent"
    return out
