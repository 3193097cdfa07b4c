"""Aggregation, claim checks, plots and ``summary.md`` for ``edgeprune.bench sparsity``.

Everything here reads what the runs left in ``OUT`` (``results.csv``, ``runs/*.json``,
``dense/*.json``), so it can be re-run on a finished or partial folder.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections import defaultdict
from typing import Any

from edgeprune.bench._sparsity_setup import MODELS
from har_data.atomic import atomic_write

METHOD_ORDER = ("global", "global_mt", "uniform", "erk", "lamp", "random", "iht")
CLAIM_SPARSITIES = (0.9, 0.95, 0.98)
_FLOATS = ("sparsity", "val_accuracy", "test_accuracy", "achieved_sparsity", "chance",
           "min_threshold", "dense_val_accuracy", "dense_test_accuracy", "prune_seconds",
           "finetune_seconds", "run_seconds")
_INTS = ("seed", "min_layer_keep", "empty_layers", "below_floor", "dead_units", "collapsed",
         "at_chance", "selected_epoch", "ft_epochs", "diverged")


def typed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CSV rows with numbers parsed."""
    out = []
    for r in rows:
        t = dict(r)
        for k in _FLOATS:
            if t.get(k) not in (None, ""):
                t[k] = float(t[k])
        for k in _INTS:
            if t.get(k) not in (None, ""):
                t[k] = int(float(t[k]))
        out.append(t)
    return out


def _stats(values: list[float]) -> dict[str, float]:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": sd, "min": min(values), "max": max(values), "n": n}


def aggregate(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, dict]]]:
    """``agg[model][method][f"{s:g}"] = {"test": stats, "val": stats, "collapsed": k, ...}``."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["model"], r["method"], f"{r['sparsity']:g}")].append(r)
    agg: dict = defaultdict(lambda: defaultdict(dict))
    for (m, meth, s), rs in groups.items():
        agg[m][meth][s] = {
            "test": _stats([r["test_accuracy"] for r in rs]),
            "val": _stats([r["val_accuracy"] for r in rs]),
            "achieved_sparsity": _stats([r["achieved_sparsity"] for r in rs])["mean"],
            "collapsed": sum(r["collapsed"] for r in rs),
            "at_chance": sum(r["at_chance"] for r in rs),
            "min_layer_keep": min(r["min_layer_keep"] for r in rs),
            "seeds": sorted(r["seed"] for r in rs),
        }
    return {m: dict(v) for m, v in agg.items()}


def claims(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """FastGRNN Global MP (+MT) vs uniform at 90-98 %, and collapse at the top sparsity."""
    by = {(r["model"], r["method"], f"{r['sparsity']:g}", r["seed"]): r for r in rows}
    out: dict[str, Any] = {"fastgrnn_vs_uniform": [], "collapse": {}}
    for s in CLAIM_SPARSITIES:
        sk = f"{s:g}"
        for meth in ("global", "global_mt"):
            pairs = [(by[k]["test_accuracy"],
                      by[("fastgrnn", "uniform", sk, k[3])]["test_accuracy"])
                     for k in by if k[:3] == ("fastgrnn", meth, sk)
                     and ("fastgrnn", "uniform", sk, k[3]) in by]
            if not pairs:
                continue
            diffs = [a - b for a, b in pairs]
            out["fastgrnn_vs_uniform"].append({
                "sparsity": s, "method": meth, "seeds": len(pairs),
                "mean_margin": sum(diffs) / len(diffs), "min_paired_margin": min(diffs),
                "method_mean": sum(a for a, _ in pairs) / len(pairs),
                "uniform_mean": sum(b for _, b in pairs) / len(pairs),
                "holds_on_mean": sum(diffs) / len(diffs) >= 0.0,
            })
    for m in MODELS:
        mine = [r for r in rows if r["model"] == m]
        if not mine:
            continue
        top = max(r["sparsity"] for r in mine)
        info = {"sparsity": top}
        for meth in ("global", "global_mt"):
            rs = [r for r in mine if r["method"] == meth and r["sparsity"] == top]
            if rs:
                info[meth] = {
                    "runs": len(rs),
                    "collapsed_runs": sum(r["collapsed"] for r in rs),
                    "empty_layer_runs": sum(r["empty_layers"] > 0 for r in rs),
                    "at_chance_runs": sum(r["at_chance"] for r in rs),
                    "min_layer_keep": min(r["min_layer_keep"] for r in rs),
                    "max_empty_layers": max(r["empty_layers"] for r in rs),
                    "min_layers": sorted({r["min_layer"] for r in rs}),
                    "test_mean": sum(r["test_accuracy"] for r in rs) / len(rs),
                    "chance": rs[0]["chance"],
                }
        for meth in ("global", "global_mt"):
            hit = sorted(r["sparsity"] for r in mine if r["method"] == meth and r["collapsed"])
            info[f"{meth}_first_collapse_sparsity"] = hit[0] if hit else None
        out["collapse"][m] = info
    return out


def overhead(rows: list[dict[str, Any]], model: str = "fastgrnn") -> dict[str, Any]:
    """Seconds in mask computation/application vs the fine-tuning ``fit`` time."""
    mine = [r for r in rows if r["model"] == model]
    if not mine:
        return {}
    per: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in mine:
        per[r["method"]][0] += r["prune_seconds"]
        per[r["method"]][1] += r["finetune_seconds"]
    prune = sum(v[0] for v in per.values())
    fit = sum(v[1] for v in per.values())
    return {
        "model": model, "runs": len(mine), "prune_seconds": prune,
        "finetune_seconds": fit, "percent_of_finetune": 100.0 * prune / fit if fit else None,
        "per_method_percent": {k: 100.0 * v[0] / v[1] for k, v in per.items() if v[1]},
        "what": "prune_seconds = one-shot make_masks + apply_masks + time inside "
                "GlobalPruningCallback hooks (mask hold after every step; IHT thresholding); "
                "finetune_seconds = wall time of the fine-tuning fit (includes the hooks "
                "and per-epoch validation)",
    }


def _dense(out: pathlib.Path) -> list[dict[str, Any]]:
    d = out / "dense"
    return [json.loads(p.read_text()) for p in sorted(d.glob("*.json"))] if d.is_dir() else []


def _layers(out: pathlib.Path, methods=("global", "global_mt")) -> dict[str, Any]:
    res = {}
    for p in sorted((out / "runs").glob("*.json")):
        obj = json.loads(p.read_text())
        if obj["row"]["method"] in methods:
            res[p.stem] = obj["layers"]
    return res


# ----------------------------------------------------------------------------- plots
def plot_accuracy(agg: dict, dense: list[dict], path: pathlib.Path,
                  chance: dict[str, float]) -> pathlib.Path | None:
    """Test accuracy vs sparsity, one panel per model, mean and min-max over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m in MODELS if m in agg]
    if not models:
        return None
    fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 4.2), squeeze=False)
    for ax, m in zip(axes[0], models, strict=True):
        sps = sorted({float(s) for meth in agg[m].values() for s in meth})
        pos = {s: i for i, s in enumerate(sps)}
        for j, meth in enumerate([x for x in METHOD_ORDER if x in agg[m]]):
            pts = sorted((float(s), v) for s, v in agg[m][meth].items())
            xs = [pos[s] + (j - 3) * 0.04 for s, _ in pts]
            ys = [v["test"]["mean"] for _, v in pts]
            lo = [v["test"]["mean"] - v["test"]["min"] for _, v in pts]
            hi = [v["test"]["max"] - v["test"]["mean"] for _, v in pts]
            style = {"lw": 2.2} if meth.startswith("global") else {"lw": 1.1, "alpha": 0.85}
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", ms=3.5, capsize=2, label=meth,
                        **style)
        dt = [d["test_accuracy"] for d in dense if d["model"] == m]
        if dt:
            ax.axhline(sum(dt) / len(dt), color="k", ls="--", lw=1, label="dense (test)")
        if m in chance:
            ax.axhline(chance[m], color="grey", ls=":", lw=1, label="chance (majority)")
        ax.set_xticks(range(len(sps)), [f"{s:g}" for s in sps])
        ax.set_xlabel("global sparsity")
        ax.set_ylabel("test accuracy (mean; bars: min-max over seeds)")
        ax.set_title(m)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="lower left")
    fig.suptitle("One-shot pruning + fixed fine-tuning budget: test accuracy vs sparsity")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_layers(layers: dict[str, Any], rows: list[dict],
                path: pathlib.Path) -> pathlib.Path | None:
    """Kept weights per layer for Global MP with/without MT at each model's top sparsity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    panels = []
    for m in MODELS:
        mine = [r for r in rows if r["model"] == m and r["method"] in ("global", "global_mt")]
        if not mine:
            continue
        top = max(r["sparsity"] for r in mine)
        seed = min(r["seed"] for r in mine if r["sparsity"] == top)
        got = {}
        for meth in ("global", "global_mt"):
            key = f"{m}__{meth}__{top:g}__s{seed}"
            if key in layers:
                acc = [r["test_accuracy"] for r in mine
                       if r["method"] == meth and r["sparsity"] == top and r["seed"] == seed]
                got[meth] = (layers[key], acc[0] if acc else float("nan"))
        if got:
            panels.append((m, top, seed, got))
    if not panels:
        return None
    widths = [max(len(next(iter(g.values()))[0]), 4) for *_, g in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(8, 0.38 * max(widths) + 3),
                                                       3.6 * len(panels)), squeeze=False)
    for ax, (m, top, seed, got) in zip(axes[:, 0], panels, strict=True):
        names = [x[0] for x in next(iter(got.values()))[0]]
        idx = np.arange(len(names))
        for k, (meth, (lay, acc)) in enumerate(sorted(got.items())):
            kept = np.array([x[2] for x in lay], float)
            ax.bar(idx + (k - 0.5) * 0.4, kept, 0.4,
                   label=f"{meth} (test acc {acc:.3f})",
                   color="tab:red" if meth == "global" else "tab:blue")
            for i in np.flatnonzero(kept == 0):
                ax.text(idx[i] + (k - 0.5) * 0.4, 0.6, "0", ha="center", color="tab:red",
                        fontsize=8, fontweight="bold")
        sizes = [x[1] for x in next(iter(got.values()))[0]]
        floors = [x[3] for x in got.get("global_mt", next(iter(got.values())))[0]]
        ax.plot(idx, sizes, "k_", ms=10, label="layer size")
        ax.plot(idx, floors, "g_", ms=10, label="MT floor")
        ax.set_yscale("symlog", linthresh=1)
        ax.set_xticks(idx, [n.replace("/kernel", "").replace("/depthwise_kernel", "/dw")
                            for n in names], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("kept weights (symlog)")
        ax.set_title(f"{m}: kept weights per layer at sparsity {top:g} (seed {seed})")
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- summary
def _table(agg: dict, m: str, key: str) -> list[str]:
    sps = sorted({float(s) for meth in agg[m].values() for s in meth})
    lines = ["| method | " + " | ".join(f"{s:g}" for s in sps) + " |",
             "|---|" + "---|" * len(sps)]
    for meth in [x for x in METHOD_ORDER if x in agg[m]]:
        cells = []
        for s in sps:
            v = agg[m][meth].get(f"{s:g}")
            if v is None:
                cells.append("-")
                continue
            st = v[key]
            cell = f"{st['mean']:.4f}"
            if st["n"] > 1:
                cell += f" ±{(st['max'] - st['min']) / 2:.3f}"
            if key == "test" and v["collapsed"]:
                cell += " †"
            cells.append(cell)
        lines.append(f"| {meth} | " + " | ".join(cells) + " |")
    return lines


def summary_md(agg: dict, dense: list[dict], cl: dict, oh: dict, meta: dict) -> str:
    """Markdown summary: protocol, tables (test, val), claims, overhead, runtime."""
    lines = ["# Sparsity benchmark (edgeprune.bench sparsity)", "",
             f"Command: `{meta.get('command', 'python -m edgeprune.bench sparsity ...')}`", "",
             "Protocol (same for every method): dense training once per (model, seed) with "
             "validation-based epoch selection; one-shot pruning of the dense weights to the "
             "global target (`iht`: EdgeML's dense -> hard-threshold -> frozen-support "
             "schedule inside the same budget); fine-tuning with masks held for a fixed "
             "number of epochs; fine-tune epoch selected on validation; test evaluated once. "
             "Cells: mean over seeds, ± half the min-max spread; † = layer collapse in at least "
             "one seed (a prunable tensor below the MT floor, zero included, and test "
             "accuracy within 2 points of the majority-class rate).", ""]
    for m in [x for x in MODELS if x in agg]:
        p = meta.get("models", {}).get(m, {})
        dt = [d for d in dense if d["model"] == m]
        dline = ""
        if dt:
            dline = (f" Dense: test {sum(d['test_accuracy'] for d in dt) / len(dt):.4f}, val "
                     f"{sum(d['val_accuracy'] for d in dt) / len(dt):.4f} "
                     f"({len(dt)} seeds).")
        lines += [f"## {m}", "",
                  f"Budget: dense {p.get('dense_epochs')} epochs (lr {p.get('lr')}), "
                  f"fine-tune {p.get('ft_epochs')} epochs (lr {p.get('ft_lr')}), batch "
                  f"{p.get('batch_size')}, MT {100 * p.get('min_threshold', 0):.3g} %.{dline}",
                  "", "Test accuracy:", ""] + _table(agg, m, "test") + [
                  "", "Validation accuracy (selection split):", ""] + _table(agg, m, "val") + [""]
    lines += ["## Claims", "", "FastGRNN, Global MP (+MT) minus uniform per-layer magnitude "
              "(test accuracy, mean over seeds; min paired = worst seed):", "",
              "| sparsity | method | method mean | uniform mean | margin | min paired |",
              "|---|---|---|---|---|---|"]
    for c in cl.get("fastgrnn_vs_uniform", []):
        lines.append(f"| {c['sparsity']:g} | {c['method']} | {c['method_mean']:.4f} | "
                     f"{c['uniform_mean']:.4f} | {c['mean_margin']:+.4f} | "
                     f"{c['min_paired_margin']:+.4f} |")
    lines += ["", "Layer collapse at each model's highest sparsity (Global MP without vs with MT):",
              "", "| model | s | method | collapsed runs | at-chance runs | min layer keeps | "
              "empty layers (max) | emptiest layer | test mean | chance |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for m, info in cl.get("collapse", {}).items():
        for meth in ("global", "global_mt"):
            if meth in info:
                i = info[meth]
                lines.append(f"| {m} | {info['sparsity']:g} | {meth} | {i['collapsed_runs']}/"
                             f"{i['runs']} | {i['at_chance_runs']}/{i['runs']} | "
                             f"{i['min_layer_keep']} | {i['max_empty_layers']} | "
                             f"{', '.join(i['min_layers'])} | "
                             f"{i['test_mean']:.4f} | {i['chance']:.4f} |")
    firsts = [f"{m}: global {info.get('global_first_collapse_sparsity')}, global_mt "
              f"{info.get('global_mt_first_collapse_sparsity')}"
              for m, info in cl.get("collapse", {}).items()]
    if firsts:
        lines += ["", "Lowest sparsity with a collapsed run (None = never): " + "; ".join(firsts)
                  + "."]
    if oh:
        lines += ["", "## Pruning overhead (FastGRNN)", "",
                  f"{oh['prune_seconds']:.2f} s in mask computation/application out of "
                  f"{oh['finetune_seconds']:.1f} s of fine-tuning over {oh['runs']} runs: "
                  f"**{oh['percent_of_finetune']:.2f} %** (" + ", ".join(
                      f"{k} {v:.2f} %" for k, v in oh["per_method_percent"].items()) + ")."]
    lines += ["", "## Runtime", "",
              f"Compute: {meta.get('compute_seconds', 0) / 60:.1f} min (dense "
              f"{meta.get('dense_seconds', 0) / 60:.1f} min + runs "
              f"{meta.get('runs_seconds', 0) / 60:.1f} min) on {meta.get('machine', '?')}.", ""]
    return "\n".join(lines)


def write_all(out: pathlib.Path, csv_rows: list[dict[str, str]], cfg: dict[str, Any],
              *, seconds_this_call: float, machine: str, command: str | None = None) -> dict:
    """Write ``results.json``, the two plots and ``summary.md``; return the JSON object."""
    import sys

    rows = typed(csv_rows)
    agg = aggregate(rows)
    dense = _dense(out)
    cl = claims(rows)
    oh = overhead(rows)
    layers = _layers(out)
    chance = {}
    for r in rows:
        chance.setdefault(r["model"], r["chance"])
    dense_s = sum(d.get("seconds_total", 0.0) for d in dense)
    runs_s = sum(r["run_seconds"] for r in rows)
    meta = {
        "command": command or "python -m edgeprune.bench " + " ".join(sys.argv[1:]),
        "models": cfg.get("models", {}), "machine": machine,
        "compute_seconds": dense_s + runs_s, "dense_seconds": dense_s, "runs_seconds": runs_s,
        "last_call_seconds": seconds_this_call,
    }
    obj = {"config": cfg, "meta": meta, "rows": rows, "aggregate": agg, "dense": dense,
           "claims": cl, "pruning_overhead": oh, "layers": layers,
           "layers_format": "[name, weights, nonzeros, mt_floor, dead_units] per prunable "
                            "tensor, Global MP with and without MT, every run"}
    atomic_write(out / "results.json", json.dumps(obj, indent=1, default=float).encode())
    if rows:
        plot_accuracy(agg, dense, out / "accuracy_vs_sparsity.png", chance)
        plot_layers(layers, rows, out / "layer_sparsity.png")
    (out / "summary.md").write_text(summary_md(agg, dense, cl, oh, meta))
    return obj
