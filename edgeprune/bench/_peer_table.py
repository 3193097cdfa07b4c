"""``peer_edgeml.json``'s summary and the side-by-side table against ``bench seeds``.

Pure functions of the per-seed records (``_edgeml_run.SeedRun`` dicts) and of a
``seeds.json``: no TensorFlow, no EdgeML.
"""

from __future__ import annotations

import json
import pathlib
import statistics
from dataclasses import asdict, dataclass
from typing import Any

PICKS = ("own_pick", "val_pick", "last_epoch")
PICK_NAMES = {"own_pick": "its pick (best test epoch)", "val_pick": "validation pick",
              "last_epoch": "last epoch"}
OURS_KEY = "test_c_int8"  # bench seeds: the shipped model's test accuracy


def stats(values: list[float]) -> dict[str, float]:
    """mean, sd (n - 1; 0 for one value), min, max."""
    return {"mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Statistics over seeds of each pick's test accuracy, the validation pick's
    validation accuracy and the seconds per training epoch."""
    out = {p: stats([r[p]["test_accuracy"] for r in runs]) for p in PICKS}
    out["val_accuracy"] = stats([r["val_accuracy"] for r in runs])
    out["seconds_per_epoch"] = stats([r["seconds_per_epoch"] for r in runs])
    return out


def per_seed(run: dict[str, Any]) -> dict[str, Any]:
    """A seed's record in ``peer_edgeml.json`` (its curves stay in ``seed-<s>.json``)."""
    return {k: v for k, v in run.items() if not k.endswith("_curve")}


@dataclass(frozen=True)
class Ours:
    """Our figures for one seed, from ``bench seeds``'s ``seeds.json``."""

    seed: int
    val: float
    test: float  # test_c_int8


def read_ours(path: pathlib.Path) -> dict[str, Any]:
    """``seeds.json`` of ``bench seeds``: ``{"data": ..., "budget_kb": ..., "seeds":
    {seed: Ours}}``. Raises ValueError (one line) when it is not one."""
    try:
        doc = json.loads(path.read_text())
        seeds = {int(s["seed"]): Ours(int(s["seed"]), float(s["accuracy"]["val"]),
                                      float(s["accuracy"][OURS_KEY])) for s in doc["seeds"]}
        bench = doc["benchmark"]
    except OSError as err:
        raise ValueError(f"--ours {path}: {err.strerror or err}") from None
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"--ours {path}: not a bench seeds seeds.json ({err!r})") from None
    return {"data": bench.get("data"), "budget_kb": bench.get("budget_kb"),
            "refit": bench.get("refit"), "seeds": seeds}


def compare(runs: list[dict[str, Any]], ours: dict[str, Any]) -> dict[str, Any]:
    """Per seed in both: ours (test C int8) against EdgeML's validation pick and its own
    pick, margins in points (ours minus EdgeML); and the mean margins."""
    rows = []
    for run in runs:
        mine = ours["seeds"].get(run["seed"])
        if mine is None:
            continue
        val_pick, own = run["val_pick"]["test_accuracy"], run["own_pick"]["test_accuracy"]
        rows.append({**asdict(mine), "edgeml_val_pick": val_pick, "edgeml_own_pick": own,
                     "margin_val_pick_pp": 100 * (mine.test - val_pick),
                     "margin_own_pick_pp": 100 * (mine.test - own)})
    out: dict[str, Any] = {"ours": {k: ours[k] for k in ("data", "budget_kb", "refit")},
                           "rows": rows}
    if rows:
        out["mean_margin_val_pick_pp"] = statistics.fmean(r["margin_val_pick_pp"] for r in rows)
        out["mean_margin_own_pick_pp"] = statistics.fmean(r["margin_own_pick_pp"] for r in rows)
        out["ahead_on_every_seed"] = {
            "val_pick": all(r["margin_val_pick_pp"] > 0 for r in rows),
            "own_pick": all(r["margin_own_pick_pp"] > 0 for r in rows)}
    return out


def markdown(summary: dict[str, Any]) -> str:
    """The per-seed table (and the comparison, when there is one) as Markdown."""
    lines = ["| seed | its pick (epoch) | validation pick (epoch) | val | last epoch | s/epoch |",
             "|---|---|---|---|---|---|"]
    for r in summary["seeds"]:
        lines.append(
            f"| {r['seed']} | {100 * r['own_pick']['test_accuracy']:.2f}% "
            f"({r['own_pick']['epoch']}) | {100 * r['val_pick']['test_accuracy']:.2f}% "
            f"({r['val_pick']['epoch']}) | {100 * r['val_accuracy']:.2f}% | "
            f"{100 * r['last_epoch']['test_accuracy']:.2f}% | {r['seconds_per_epoch']:.2f} |")
    s = summary["summary"]
    own, val = s["own_pick"], s["val_pick"]
    lines.append(f"| mean (sd) | {100 * own['mean']:.2f} ({100 * own['sd']:.2f})"
                 f" | {100 * val['mean']:.2f} ({100 * val['sd']:.2f}) | "
                 f"{100 * s['val_accuracy']['mean']:.2f} | {100 * s['last_epoch']['mean']:.2f} | "
                 f"{s['seconds_per_epoch']['mean']:.2f} |")
    comparison = summary.get("comparison")
    if comparison and comparison["rows"]:
        o = comparison["ours"]
        lines += ["", f"Ours: `bench seeds` test C int8 ({o['data']}, {o['budget_kb']} KiB"
                  f"{', refit' if o['refit'] else ''}); margins in points, ours minus EdgeML.", "",
                  "| seed | ours | EdgeML val pick | margin | EdgeML own (test) pick | margin |",
                  "|---|---|---|---|---|---|"]
        for r in comparison["rows"]:
            lines.append(f"| {r['seed']} | {100 * r['test']:.2f}% | "
                         f"{100 * r['edgeml_val_pick']:.2f}% | {r['margin_val_pick_pp']:+.2f} | "
                         f"{100 * r['edgeml_own_pick']:.2f}% | {r['margin_own_pick_pp']:+.2f} |")
        lines.append(f"| mean | | | {comparison['mean_margin_val_pick_pp']:+.2f} | | "
                     f"{comparison['mean_margin_own_pick_pp']:+.2f} |")
    return "\n".join(lines) + "\n"
