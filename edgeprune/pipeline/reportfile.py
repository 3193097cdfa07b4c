"""A run's ``report.json`` and ``report.md``: read strictly, merged by section, written
atomically, the two always rewritten together (light: no TensorFlow, no matplotlib).

Every writer of a report goes through ``read_report``: a report that exists but cannot be
read as a JSON object raises ``UnreadableReport`` and is never replaced.
"""

from __future__ import annotations

import json
import os
import pathlib
import stat
from typing import Any

from har_data.atomic import atomic_write

REPORT_JSON, REPORT_MD = "report.json", "report.md"
MAX_REPORT_BYTES = 64 * 1024 * 1024  # far beyond any run's report


class UnreadableReport(ValueError):
    """A report file exists but is not a readable JSON object (the message names it)."""


def read_report(path: pathlib.Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when absent. Raises ``UnreadableReport`` for
    anything else (not a regular file, too large, not UTF-8, not JSON, not an object)."""
    path = pathlib.Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as err:
        raise UnreadableReport(f"{path}: cannot be read ({err.strerror})") from None
    if not stat.S_ISREG(mode):
        raise UnreadableReport(f"{path}: not a regular file")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_REPORT_BYTES + 1)
    except OSError as err:
        raise UnreadableReport(f"{path}: cannot be read ({err.strerror})") from None
    if len(data) > MAX_REPORT_BYTES:
        raise UnreadableReport(f"{path}: larger than {MAX_REPORT_BYTES} bytes")
    try:
        obj = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise UnreadableReport(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise UnreadableReport(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, "
                               f"column {err.colno})") from None
    if not isinstance(obj, dict):
        raise UnreadableReport(f"{path}: holds a JSON {type(obj).__name__}, not an object")
    return obj


def write_json(path: pathlib.Path, obj: dict[str, Any]) -> None:
    """Write ``obj`` as an indented JSON report, atomically."""
    atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode(), parents=True)


def merge_section(path: pathlib.Path, key: str, section: Any) -> dict[str, Any]:
    """Set ``key`` in the report at ``path`` (created when absent), keeping every other
    section; returns the merged report. An unreadable report raises, untouched."""
    report = read_report(path) or {}
    report[key] = section
    write_json(path, report)
    return report


def is_pipeline_report(report: dict[str, Any] | None) -> bool:
    """Whether ``report`` is a finished pipeline run's (it has the pipeline's sections)."""
    return report is not None and {"candidates", "budget_bytes", "accuracy"} <= set(report)


def merge_board_run(root: pathlib.Path, mcu: dict[str, Any]) -> dict[str, Any]:
    """Put a board run of the pipeline's own shipped C model and test windows into the
    run's report: its ``mcu`` section and what depends on it, then report.md again."""
    path = pathlib.Path(root) / REPORT_JSON
    report = read_report(path)
    if not is_pipeline_report(report):
        raise UnreadableReport(f"{path}: not a finished pipeline run's report")
    assert report is not None
    report["mcu"] = mcu
    if report.get("budget_instructions") is not None:
        report["fits_instruction_budget"] = (
            mcu["instructions_per_window"] <= report["budget_instructions"])
    write_json(path, report)
    write_report_md(report, pathlib.Path(root) / REPORT_MD)
    return report


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
    atomic_write(path, ("\n".join(lines) + "\n").encode(), parents=True)
