"""``python -m edgeprune.bench seeds``: the pipeline over seeds, its summary and resume."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

QUICK = ["seeds", "--quick", "--data", "hapt", "--budget-kb", "1"]


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeprune.bench", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
def test_two_seeds_in_parallel_give_the_right_statistics_and_resume(tmp_path: Path):
    out = tmp_path / "seeds"
    result = bench(*QUICK, "--seeds", "2", "--workers", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "seeds.json").read_text())
    assert [s["seed"] for s in summary["seeds"]] == [0, 1] and summary["failed"] == {}
    for s in summary["seeds"]:  # each seed's figures are its own run's report
        report = json.loads((out / f"seed-{s['seed']}" / "report.json").read_text())
        assert report["seed"] == s["seed"]
        assert s["accuracy"] == {k: report["accuracy"][k]
                                 for k in ("val", "test_float", "test_c_int8")}
        assert s["model_bytes"] == report["bytes"]["model"] <= 1024
    for key in ("val", "test_float", "test_c_int8"):
        values = [s["accuracy"][key] for s in summary["seeds"]]
        stats = summary["summary"][key]
        assert stats["mean"] == pytest.approx(statistics.fmean(values))
        assert stats["sd"] == pytest.approx(statistics.stdev(values))
        assert (stats["min"], stats["max"]) == (min(values), max(values))
    assert (out / "seeds.png").stat().st_size > 0
    assert summary["machine"] and summary["benchmark"]["budget_kb"] == 1.0

    # a rerun trains nothing again: every stage of every seed is reused
    again = bench(*QUICK, "--seeds", "2", "--workers", "1", "--out", str(out))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "done (" not in again.stderr.replace("firmware: done", "")
    assert again.stderr.count("reused from an earlier run") >= 8
    assert json.loads((out / "seeds.json").read_text())["summary"] == summary["summary"]


@pytest.mark.bad_input
@pytest.mark.parametrize(("option", "seeds"), [
    ("--seeds", "0"), ("--seeds", "-1"), ("--seeds", "1e9"), ("--seeds", "two"),
    ("--seeds", "1001"), ("--dense-seeds", "0"), ("--dense-seeds", "33")])
def test_bad_seed_counts_exit_2_at_parse_time(option: str, seeds: str, tmp_path: Path):
    args = ["--seeds", "2", option, seeds] if option != "--seeds" else [option, seeds]
    result = bench(*QUICK, *args, "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and f"argument {option}" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.bad_input
def test_a_folder_holding_another_benchmark_is_refused_with_exit_4(tmp_path: Path):
    out = tmp_path / "other"
    out.mkdir()
    (out / "results.csv").write_text("model,method\n")
    result = bench(*QUICK, "--seeds", "2", "--out", str(out))
    assert result.returncode == 4, result.stderr[-2000:]
    assert "holds something else than this benchmark" in result.stderr
    assert [p.name for p in out.iterdir()] == ["results.csv"]
