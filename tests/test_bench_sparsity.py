"""``python -m edgeprune.bench sparsity``: quick CLI runs on real data subsets, resume,
result files, claim checks and plots on synthetic rows."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import MAKE_UCI_ARCHIVE

import edgeprune  # noqa: F401
from edgeprune.bench import _sparsity_report as report
from edgeprune.bench import sparsity
from edgeprune.bench.__main__ import main
from edgeprune.bench._sparsity_setup import SPECS, load_digits32

REQUIRED = ["model", "method", "sparsity", "seed", "val_accuracy", "test_accuracy"]


@pytest.fixture(scope="module")
def tiny_archive(tmp_path_factory, uci_mirror):
    """Volunteers 1, 3 (train) and 2, 4 (test) of the official archive layout."""
    out = tmp_path_factory.mktemp("uci")
    subprocess.run([sys.executable, str(MAKE_UCI_ARCHIVE), str(out), "--subjects", "1", "3",
                    "2", "4"], check=True, capture_output=True)
    return out


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _check_rows(rows, models, methods, sparsities, seeds=(0,)):
    keys = [(r["model"], r["method"], float(r["sparsity"]), int(r["seed"])) for r in rows]
    want = {(m, meth, s, sd) for m in models for meth in methods for s in sparsities
            for sd in seeds}
    assert len(keys) == len(set(keys)) == len(want) and set(keys) == want
    for r in rows:
        for k in ("val_accuracy", "test_accuracy", "achieved_sparsity", "chance"):
            assert 0.0 <= float(r[k]) <= 1.0, (k, r)
        # every prunable tensor is pruned on its own rounding: overall within 0.5 % of target
        assert abs(float(r["achieved_sparsity"]) - float(r["sparsity"])) < 5e-3, r
        assert int(r["selected_epoch"]) >= 1


@pytest.mark.slow
@pytest.mark.needs_uci
def test_cli_quick_har_writes_rows_and_resumes(tiny_archive, tmp_path, monkeypatch):
    out = tmp_path / "bench"
    methods = ["global", "global_mt", "iht"]
    argv = ["sparsity", "--data", "uci", "--data-path", str(tiny_archive), "--out", str(out),
            "--quick", "--models", "fastgrnn", "har_cnn", "--methods", *methods,
            "--val-subjects", "1", "--cache-dir", str(tmp_path / "cache"), "--no-progress",
            "--workers", "1"]  # in process: the monkeypatches below reach the runs
    assert main(argv) == 0
    rows = _rows(out / "results.csv")
    assert list(rows[0])[:6] == REQUIRED
    _check_rows(rows, ["fastgrnn", "har_cnn"], methods, sparsity.QUICK_SPARSITIES)
    for name in ("results.json", "accuracy_vs_sparsity.png", "layer_sparsity.png",
                 "summary.md"):
        assert (out / name).stat().st_size > 0, name
    res = json.loads((out / "results.json").read_text())
    assert res["pruning_overhead"]["model"] == "fastgrnn"
    assert res["pruning_overhead"]["finetune_seconds"] > 0
    assert any(k.startswith("fastgrnn__global_mt__0.9") for k in res["layers"])
    # global_mt keeps at least the MT floor in every tensor
    for r in rows:
        if r["method"] == "global_mt":
            assert int(r["below_floor"]) == 0 and int(r["empty_layers"]) == 0
    dense = sorted((out / "dense").glob("*.npz"))
    assert [p.name for p in dense] == ["fastgrnn_s0.npz", "har_cnn_s0.npz"]

    # rerun: nothing is trained again, rows are kept as they were
    def boom(*a, **k):
        raise AssertionError("recomputed a finished run")

    monkeypatch.setattr(sparsity.Harness, "train_dense", boom)
    monkeypatch.setattr(sparsity.Harness, "run", boom)
    before = (out / "results.csv").read_text()
    assert main(argv) == 0
    assert (out / "results.csv").read_text() == before

    # an interrupted grid: drop two rows, only those two are run again (dense is cached)
    monkeypatch.undo()
    kept = [r for r in rows if not (r["model"] == "fastgrnn" and r["method"] == "iht")]
    sparsity.write_rows(out / "results.csv", kept)
    calls = []
    real_run = sparsity.Harness.run

    def counting(self, method, s):
        calls.append((self.name, method, s))
        return real_run(self, method, s)

    monkeypatch.setattr(sparsity.Harness, "run", counting)
    assert main(argv) == 0
    assert sorted(calls) == [("fastgrnn", "iht", 0.5), ("fastgrnn", "iht", 0.9)]
    _check_rows(_rows(out / "results.csv"), ["fastgrnn", "har_cnn"], methods,
                sparsity.QUICK_SPARSITIES)


@pytest.mark.slow
def test_parallel_workers_give_the_in_process_results(tiny_archive, tmp_path):
    """Two Ray workers and one process: the same accuracies, run for run."""
    results = {}
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        assert main(["sparsity", "--data", "uci", "--data-path", str(tiny_archive), "--out",
                     str(out), "--quick", "--models", "fastgrnn", "--methods", "global_mt",
                     "lamp", "--val-subjects", "1", "--cache-dir", str(tmp_path / "cache"),
                     "--no-progress", "--workers", workers]) == 0
        results[workers] = {(r["method"], r["sparsity"]): (r["val_accuracy"],
                                                           r["test_accuracy"],
                                                           r["achieved_sparsity"])
                            for r in _rows(out / "results.csv")}
        assert (out / "dense" / "fastgrnn_s0.npz").exists()
    assert len(results["1"]) == 4 and results["1"] == results["2"]
    assert (tmp_path / "w1" / "dense" / "fastgrnn_s0.npz").read_bytes() == (
        tmp_path / "w2" / "dense" / "fastgrnn_s0.npz").read_bytes()


@pytest.mark.slow
def test_cli_quick_digits_mobilenet(tmp_path):
    out = tmp_path / "bench"
    methods = ["global_mt"]
    assert main(["sparsity", "--out", str(out), "--quick", "--models", "mobilenet_v1",
                 "--methods", *methods, "--sparsities", "0.9", "--no-progress"]) == 0
    rows = _rows(out / "results.csv")
    _check_rows(rows, ["mobilenet_v1"], methods, [0.9])
    res = json.loads((out / "results.json").read_text())
    lay = res["layers"]["mobilenet_v1__global_mt__0.9__s0"]
    assert len(lay) == 28 and all(nz >= min(floor, n) for _, n, nz, floor, _ in lay)


def test_parser_and_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        main(["sparsity", "--out", str(tmp_path), "--models", "lstm"])
    assert main(["sparsity", "--out", str(tmp_path / "a"), "--sparsities", "1.0"]) == 2
    assert main(["sparsity", "--out", str(tmp_path / "b"), "--seeds", "0"]) == 2


def test_config_mismatch_refuses_mixed_folders(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"quick": False, "split_seed": 0, "har_source": "uci", "val_subjects": None,
         "models": {m: s.protocol(False) for m, s in SPECS.items()}}))
    # --quick into a folder holding a full run: refused before any work
    assert main(["sparsity", "--out", str(tmp_path), "--quick", "--models", "mobilenet_v1",
                 "--no-progress"]) == 2


def test_rows_roundtrip_sorted_atomic(tmp_path):
    path = tmp_path / "results.csv"
    rows = [
        {"model": "har_cnn", "method": "uniform", "sparsity": 0.9, "seed": 1,
         "val_accuracy": 0.5, "test_accuracy": 0.25},
        {"model": "fastgrnn", "method": "iht", "sparsity": 0.5, "seed": 0,
         "val_accuracy": 0.75, "test_accuracy": 0.5, "collapsed": 0},
        {"model": "fastgrnn", "method": "global", "sparsity": 0.99, "seed": 0,
         "val_accuracy": 0.75, "test_accuracy": 0.5},
    ]
    sparsity.write_rows(path, rows)
    back = sparsity.read_rows(path)
    assert list(back[0])[:6] == REQUIRED
    assert [(r["model"], r["method"]) for r in back] == [
        ("fastgrnn", "global"), ("fastgrnn", "iht"), ("har_cnn", "uniform")]
    assert not (tmp_path / "results.csv.tmp").exists()
    assert sparsity.run_key("fastgrnn", "global", 0.99, 0) == sparsity.run_key(
        back[0]["model"], back[0]["method"], float(back[0]["sparsity"]), int(back[0]["seed"]))


def test_digits_split_stratified_disjoint():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 20)
    images = rng.integers(0, 17, size=(200, 8, 8))
    d = load_digits32(split_seed=3, images=images, labels=labels)
    assert d.xtr.shape[1:] == (32, 32, 1) and d.xtr.dtype == np.float32
    assert d.sizes() == {"train": 120, "val": 40, "test": 40}
    assert np.bincount(d.yte).tolist() == [4] * 10 and d.classes == 10
    assert 0.0 <= d.xtr.min() and d.xtr.max() <= 1.0
    again = load_digits32(split_seed=3, images=images, labels=labels)
    assert np.array_equal(d.xte, again.xte)


def _synthetic_folder(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "dense").mkdir()
    rows = []
    for seed in (0, 1):
        (tmp_path / "dense" / f"fastgrnn_s{seed}.json").write_text(json.dumps(
            {"model": "fastgrnn", "seed": seed, "val_accuracy": 0.97, "test_accuracy": 0.93,
             "seconds_total": 10.0}))
        for meth, acc in (("global", 0.9), ("global_mt", 0.91), ("uniform", 0.85)):
            for s in (0.9, 0.95, 0.98, 0.99):
                collapsed = meth == "global" and s == 0.99
                r = {"model": "fastgrnn", "method": meth, "sparsity": s, "seed": seed,
                     "val_accuracy": acc, "test_accuracy": 0.5 if collapsed else acc - seed / 100,
                     "achieved_sparsity": s, "min_layer_keep": 0 if collapsed else 4,
                     "min_layer": "fastgrnn/W1", "empty_layers": int(collapsed),
                     "below_floor": int(collapsed), "dead_units": 0,
                     "collapsed": int(collapsed), "at_chance": int(collapsed), "chance": 0.51,
                     "selected_epoch": 1, "ft_epochs": 3, "min_threshold": 0.0,
                     "dense_val_accuracy": 0.97, "dense_test_accuracy": 0.93,
                     "prune_seconds": 0.1, "finetune_seconds": 10.0, "run_seconds": 11.0}
                rows.append(r)
                key = f"fastgrnn__{meth}__{s:g}__s{seed}"
                layers = [["fastgrnn/W1", 45, 0 if collapsed else 4, 4, 0],
                          ["fastgrnn/U1", 3200, 30, 4, 1]]
                (tmp_path / "runs" / f"{key}.json").write_text(json.dumps(
                    {"row": r, "layers": layers}))
    sparsity.write_rows(tmp_path / "results.csv", rows)
    return sparsity.read_rows(tmp_path / "results.csv")


def test_report_claims_overhead_plots(tmp_path):
    rows = _synthetic_folder(tmp_path)
    obj = report.write_all(tmp_path, rows, {"models": {}}, seconds_this_call=1.0,
                           machine="test", command="python -m edgeprune.bench sparsity")
    margins = {(c["sparsity"], c["method"]): c for c in obj["claims"]["fastgrnn_vs_uniform"]}
    assert set(margins) == {(s, m) for s in (0.9, 0.95, 0.98) for m in ("global", "global_mt")}
    assert margins[(0.9, "global")]["mean_margin"] == pytest.approx(0.05)
    assert margins[(0.98, "global_mt")]["min_paired_margin"] == pytest.approx(0.06)
    col = obj["claims"]["collapse"]["fastgrnn"]
    assert col["sparsity"] == 0.99 and col["global"]["collapsed_runs"] == 2
    assert col["global_mt"]["collapsed_runs"] == 0
    assert obj["pruning_overhead"]["percent_of_finetune"] == pytest.approx(1.0)
    assert obj["aggregate"]["fastgrnn"]["uniform"]["0.9"]["test"]["n"] == 2
    for name in ("accuracy_vs_sparsity.png", "layer_sparsity.png", "summary.md"):
        assert (tmp_path / name).stat().st_size > 0
    text = (tmp_path / "summary.md").read_text()
    assert "| 0.9 | global | " in text and "+0.0500" in text
