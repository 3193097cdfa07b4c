"""What a pipeline run shows a person: report.md, a summary table, and plots (three, and a
speed frontier with --max-instructions)."""

from __future__ import annotations

import json
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
    ExportResult,
    RefitResult,
    SpeedProbe,
    StageLog,
)
from edgeprune.pipeline.rundir import atomic_write_bytes  # noqa: E402


def _save(fig: plt.Figure, path: pathlib.Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    tmp.replace(path)


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
    _save(fig, path)


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
    _save(fig, path)


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
    _save(fig, path)


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
    _save(fig, path)


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The run's headline figures as (what, value) pairs."""
    acc, size, sel = report["accuracy"], report["bytes"], report["selected"]

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.2f}%"

    rows = [
        ("data set", report["dataset"]["name"]),
        ("budget", f"{report['budget_bytes']} B ({report['budget_bytes'] / 1024:g} KiB)"),
        ("fits budget", "yes" if report["fits_budget"] else "NO"),
    ]
    if report.get("budget_instructions") is not None:
        rows.append(("instruction budget",
                     f"{report['budget_instructions']} per window on the emulated board: "
                     + ("met" if report.get("fits_instruction_budget") else "NOT met")))
    rows += [
        ("selected", ", ".join(f"{k}={v}" for k, v in sel.items())),
    ]
    refit = report.get("refit")
    if refit:
        rows.append(("refit on train + validation",
                     (f"shipped: {refit['n_train']} windows, dense {refit['dense_epochs']} "
                      f"epochs, fine-tuning {refit['finetune_epochs'] or 0} epochs"
                      + ("" if refit.get("sparsity") == refit.get("selected_sparsity") else
                         f", pruned on from {refit['selected_sparsity']:.0%} to fit"))
                     if refit["shipped"] else
                     f"not shipped: its C model ({refit['model_bytes']} B) does not fit"))
    shipped_refit = bool(refit and refit["shipped"])
    rows += [
        ("model bytes (C, measured)", f"{size['model']} B"),
        ("kernel code bytes", f"{size['code']} B"),
        ("RAM (state + scratch)", f"{size['ram']} B"),
        ("int8 .tflite / sparse .tflite (size only)",
         f"{size['tflite_int8']} B / {size['tflite_sparse']} B"),
        ("val accuracy (C int8" + (", the model before the refit)" if shipped_refit else ")"),
         pct(acc["val"])),
        ("test accuracy: float / TFLite int8 / C int8",
         f"{pct(acc['test_float'])} / {pct(acc['test_tflite_int8'])} / {pct(acc['test_c_int8'])}"),
    ]
    if "test_tflite_int16x8" in acc:
        rows.append(("test accuracy: TFLite int16x8 (shipped to TFLM)",
                     f"{pct(acc['test_tflite_int16x8'])} ({size['tflite_int16x8']} B)"))
    if report.get("mcu"):
        mcu = report["mcu"]
        rows.append((f"MCU ({mcu['board']})",
                     f"flash {mcu['flash_bytes']} B, RAM {mcu['ram_bytes']} B, "
                     f"{mcu['instructions_per_window']} instructions/window, "
                     f"agreement {pct(mcu['agreement'])}"))
    return rows


def summary_table(report: dict[str, Any]) -> str:
    """A plain-text table of the headline figures and the run's warnings, for its end."""
    rows = summary_rows(report)
    width = max(len(k) for k, _ in rows)
    return "\n".join([*(f"  {k.ljust(width)}  {v}" for k, v in rows),
                      *(f"  WARNING {w}" for w in report.get("warnings", []))])


def write_report_md(report: dict[str, Any], path: pathlib.Path) -> None:
    """A readable report.md: headline table, candidates, per-layer table, plots."""
    lines = [f"# edgeprune run: {report['model']} under {report['budget_bytes'] / 1024:g} KiB", ""]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in summary_rows(report)]
    for warning in report.get("warnings", []):
        lines += ["", f"**Warning:** {warning}"]
    lines += ["", "Accuracies say their split: selection used the validation split only; the",
              "test split was evaluated once, for the selected model.", "",
              "## Candidates", "",
              "| architecture | sparsity | fine-tuned | model bytes | val acc. (C int8) "
              "| instructions/window | fits |",
              "|---|---|---|---|---|---|---|"]
    for c in report["candidates"]:
        mark = " (selected)" if c.get("selected") else ""
        count = c.get("instructions_per_window") or ""
        lines.append(f"| {c['arch']} | {c['sparsity']:.3f} | {'yes' if c['finetuned'] else 'no'} "
                     f"| {c['model_bytes']} | {100 * c['val_accuracy']:.2f}% | {count} "
                     f"| {'yes' if c['fits'] else 'no'}{mark} |")
    lines += ["", "## Per-layer sparsity", "",
              "| layer | weights | nonzeros | sparsity | MT floor | dead units |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['weights']} | {r['nonzeros']} | {100 * r['sparsity']:.1f}% "
              f"| {r['floor']} | {r['dead_units']} |" for r in report["per_layer"]]
    lines += ["", "## Plots", "", "![frontier](frontier.png)", "",
              *(["![speed frontier](speed_frontier.png)", ""]
                if report.get("budget_instructions") is not None else []),
              "![per-layer sparsity](per_layer_sparsity.png)", "",
              "![confusion matrix](confusion_matrix.png)", "",
              "## Stages", "",
              f"Run on {report['executor']['description']}.", "",
              "| stage | seconds | node |", "|---|---|---|"]
    nodes = report.get("stage_nodes", {})
    lines += [f"| {k} | {v:.1f} | {nodes.get(k, 'driver')} |"
              for k, v in report["seconds"].items()]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def build_report(*, config: RunConfig, ds: Any, candidates: list[Candidate],
                 shipped: Candidate, tolerance: float, speed_probes: list[SpeedProbe],
                 exported: ExportResult, refit: RefitResult | None,
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
    """The plots, ``report.json`` and ``report.md`` of a finished run."""
    plot_frontier(report["candidates"], report["budget_bytes"], out / "frontier.png")
    if report["budget_instructions"] is not None:
        plot_speed_frontier(report["candidates"], report["budget_instructions"],
                            out / "speed_frontier.png")
    plot_per_layer(report["per_layer"], out / "per_layer_sparsity.png")
    plot_confusion(np.array(report["confusion_test_c_int8"]), ["0", "1"],
                   "HAR-2 test, C int8 model", out / "confusion_matrix.png")
    atomic_write_bytes(out / "report.json", (json.dumps(report, indent=2) + "\n").encode())
    write_report_md(report, out / "report.md")


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
