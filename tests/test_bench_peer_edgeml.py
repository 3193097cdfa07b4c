"""``python -m edgeprune.bench peer-edgeml``: EdgeML's own trainer on our split (its sources
in ../shared/peers/edgeml, the UCI mirror in ../shared/data; skipped when absent)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MAKE_UCI_ARCHIVE, ROOT, SHARED

EDGEML = SHARED / "peers" / "edgeml"
# 7 training volunteers (6 held out for validation, as the pipeline does) and 1 test one
SUBJECTS = ("1", "3", "5", "6", "7", "8", "11", "2")
PICKS = ("own_pick", "val_pick", "last_epoch")


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeprune.bench", "peer-edgeml", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small official-layout archive (8 volunteers) built from the UCI mirror."""
    if not EDGEML.is_dir():
        pytest.skip(f"EdgeML's sources not found at {EDGEML} (only in the team's checkout)")
    if not (SHARED / "data" / "uci_har" / "y_train.npy").exists():
        pytest.skip("UCI HAR mirror not found in ../shared/data (only in the team's checkout)")
    out = tmp_path_factory.mktemp("uci")
    subprocess.run([sys.executable, str(MAKE_UCI_ARCHIVE), str(out), "--zip", "--subjects",
                    *SUBJECTS], check=True, capture_output=True, timeout=300)
    return out / "UCI HAR Dataset.zip"


def _ours(path: Path) -> Path:
    """A bench seeds summary for seeds 0 and 1 (figures made up: the table's arithmetic)."""
    seeds = [{"seed": s, "accuracy": {"val": 0.95, "test_c_int8": test}}
             for s, test in ((0, 0.9), (1, 0.2))]
    path.write_text(json.dumps({"benchmark": {"data": "uci", "budget_kb": 8.0, "refit": False},
                                "seeds": seeds}))
    return path


@pytest.mark.slow
@pytest.mark.needs_uci
def test_two_seeds_three_picks_table_and_resume(archive: Path, tmp_path: Path):
    out = tmp_path / "peer"
    args = ["--seeds", "2", "--data", "uci", "--data-path", str(archive), "--epochs", "3",
            "--out", str(out), "--ours", str(_ours(tmp_path / "seeds.json"))]
    result = bench(*args, "--workers", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "peer_edgeml.json").read_text())
    assert summary["n_seeds"] == 2 and summary["failed"] == {} and summary["machine"]
    assert summary["benchmark"]["settings"]["batch_size"] == 100
    for s, record in zip((0, 1), summary["seeds"], strict=True):
        run = json.loads((out / f"seed-{s}.json").read_text())
        assert record["seed"] == s and record["windows"]["test"] > 0
        test, val = run["test_accuracy_curve"], run["val_accuracy_curve"]
        assert len(test) == len(val) == len(run["train_seconds_curve"]) == 3
        # its own pick is its best test epoch; the others cannot beat it on test
        assert record["own_pick"]["test_accuracy"] == max(test)
        assert record["own_pick"]["test_accuracy"] >= record["val_pick"]["test_accuracy"]
        assert record["own_pick"]["test_accuracy"] >= record["last_epoch"]["test_accuracy"]
        assert record["last_epoch"] == {"epoch": 3, "test_accuracy": test[-1]}
        v = record["val_pick"]["epoch"]
        assert record["val_accuracy"] == val[v - 1] == max(val)
        assert record["val_pick"]["test_accuracy"] == test[v - 1]
        assert record["seconds_per_epoch"] > 0
        log = (out / f"seed-{s}" / "edgeml_log.txt").read_text()
        assert f"at Epoch: {record['own_pick']['epoch']}" in log  # what EdgeML printed
    for pick in PICKS:
        values = [r[pick]["test_accuracy"] for r in summary["seeds"]]
        st = summary["summary"][pick]
        assert st["mean"] == pytest.approx(statistics.fmean(values))
        assert st["sd"] == pytest.approx(statistics.stdev(values))
        assert (st["min"], st["max"]) == (min(values), max(values))
    rows = summary["comparison"]["rows"]
    assert [r["seed"] for r in rows] == [0, 1]
    for r, record in zip(rows, summary["seeds"], strict=True):
        assert r["margin_val_pick_pp"] == pytest.approx(
            100 * (r["test"] - record["val_pick"]["test_accuracy"]))
    assert "| seed | ours |" in (out / "peer_edgeml.md").read_text()

    # a rerun trains nothing again
    before = (out / "seed-0.json").stat().st_mtime_ns
    again = bench(*args, "--workers", "1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reused from an earlier run" in again.stderr and "done" not in again.stderr
    assert (out / "seed-0.json").stat().st_mtime_ns == before
    assert json.loads((out / "peer_edgeml.json").read_text())["summary"] == summary["summary"]


def test_skips_with_one_line_when_sources_are_absent(tmp_path: Path):
    result = bench("--seeds", "1", "--data", "hapt", "--out", str(tmp_path / "out"),
                   "--edgeml", str(tmp_path / "no-edgeml"))
    assert result.returncode == 5
    assert result.stderr.startswith("skipped: EdgeML's sources not found at ")
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


@pytest.mark.bad_input
@pytest.mark.parametrize("bad", [["--seeds", "0"], ["--seeds", "two"], ["--epochs", "0"],
                                 ["--workers", "-1"]])
def test_bad_numbers_exit_2_at_parse_time(bad: list[str], tmp_path: Path):
    args = {"--seeds": "1", "--epochs": "2", "--workers": "1"} | dict([bad])
    result = bench(*[x for kv in args.items() for x in kv], "--data", "hapt",
                   "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stderr.startswith("error: argument " + bad[0])
    assert not (tmp_path / "out").exists()


@pytest.mark.bad_input
def test_an_unreadable_ours_file_is_one_error_line(tmp_path: Path):
    if not EDGEML.is_dir():
        pytest.skip(f"EdgeML's sources not found at {EDGEML}")
    ours = tmp_path / "seeds.json"
    ours.write_text('{"seeds": 3}')
    result = bench("--seeds", "1", "--data", "hapt", "--out", str(tmp_path / "out"),
                   "--ours", str(ours))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: --ours {ours}: not a bench seeds seeds.json")
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


@pytest.mark.bad_input
def test_an_out_folder_holding_something_else_is_refused(archive: Path, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("{}")
    result = bench("--seeds", "1", "--data", "uci", "--data-path", str(archive),
                   "--out", str(out))
    assert result.returncode == 4 and "holds something else" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]


def test_percentile_shim_translates_the_removed_keyword():
    """EdgeML's IHT calls np.percentile(..., interpolation=): the shim its utils get
    in the sparse path passes it on as method= (numpy 2.4 removed the old name)."""
    import numpy as np

    from edgeprune.bench._edgeml_run import _PercentileCompat

    shim, a = _PercentileCompat(), np.abs(np.random.default_rng(0).normal(size=(40, 9)))
    assert shim.percentile(a, 80.0, interpolation="higher") == np.percentile(
        a, 80.0, method="higher")
    assert shim.abs is np.abs and shim.ndarray is np.ndarray
