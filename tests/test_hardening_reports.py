"""Nothing lost in a report: every ``python -m edgeprune.firmware run`` in real processes,
on a pipeline-like run folder (run.json, report.json, report.md, c_model/,
test_windows.npz) built around the stand-in C model of ``test_firmware.py``.

An unreadable report is refused before anything is built and stays byte for byte; a run
that is not the pipeline's own measurement lands in ``firmware/board_runs.json`` and
leaves report.json and report.md as they were. (The pipeline's own measurement merging
into a real run's report is tested on a quick run in ``test_pipeline.py``.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from test_firmware import needs_tools, synthetic_windows, toy_reference, write_toy_model
from test_hardening_cli import cli, leftovers, one_error_line

pytestmark = pytest.mark.bad_input

FW = "edgeprune.firmware: error: "
PIPELINE_REPORT = {"model": "fastgrnn", "budget_bytes": 1024, "candidates": [],
                   "accuracy": {"val": 0.9}, "mcu": {"windows_run": 64, "agreement": 1.0}}


def run_folder(root: Path, report: bytes | None = None) -> Path:
    """A finished-run-like folder: the stand-in C model, its test windows and references."""
    out = root / "OUT"
    write_toy_model(out / "c_model")
    windows = synthetic_windows(3, seed=5)
    np.savez(out / "test_windows.npz", windows=windows, expected=toy_reference(windows)[0])
    (out / "run.json").write_text(json.dumps({"model": "fastgrnn", "budget_kb": 1.0}))
    (out / "report.json").write_bytes(
        report if report is not None else json.dumps(PIPELINE_REPORT).encode())
    (out / "report.md").write_text("# the pipeline's report\n")
    return out


def snapshot(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in ("report.json", "report.md")}


def firmware(*args: str) -> tuple[int, str, str]:
    result = cli("edgeprune.firmware", *args)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize("content", [b'{"accuracy": 0.9,', b"[1, 2]", b"\xff\xfe{}"])
def test_unreadable_report_is_refused_and_kept(tmp_path: Path, content: bytes):
    out = run_folder(tmp_path, content)
    before = snapshot(out)
    code, _, err = firmware("run", "--artifacts", str(out))
    assert code == 2
    line = one_error_line(err, FW)
    assert f"{out / 'report.json'}:" in line and "nothing was built or written" in line
    assert snapshot(out) == before
    assert not (out / "firmware").exists()  # refused before building


def test_unreadable_report_outside_a_pipeline_folder_is_refused(tmp_path: Path):
    out = tmp_path / "OUT"
    write_toy_model(out / "c_model")
    (out / "report.json").write_text('{"accuracy": 0.9')  # a user's own file, no run.json
    code, _, err = firmware("run", "--artifacts", str(out), "--synthetic")
    assert code == 2 and "not valid JSON" in one_error_line(err, FW)
    assert (out / "report.json").read_text() == '{"accuracy": 0.9'


@needs_tools
@pytest.mark.parametrize("extra, reason", [
    (["--synthetic", "--windows", "2"], "synthetic windows"),
    (["--report-key", "accuracy"], "--report-key accuracy"),
    (["--windows", "2"], "--windows 2"),
    (["--c-model", "OTHER"], "another C model"),
])
def test_other_board_runs_never_land_in_the_pipeline_report(tmp_path: Path, extra: list[str],
                                                           reason: str):
    out = run_folder(tmp_path)
    if "OTHER" in extra:
        write_toy_model(tmp_path / "other")
        extra = [str(tmp_path / "other") if a == "OTHER" else a for a in extra]
    before = snapshot(out)
    code, stdout, err = firmware("run", "--artifacts", str(out), "--no-trace", *extra)
    assert code == 0, err
    assert snapshot(out) == before  # the pipeline's report.json and report.md untouched
    assert "board_runs.json" in err and reason in err and "Traceback" not in err
    key = "accuracy" if "accuracy" in extra else "mcu"
    runs = json.loads((out / "firmware" / "board_runs.json").read_text())
    assert runs[key]["windows_run"] == json.loads(stdout)["windows_run"]


def test_zero_window_file(tmp_path: Path):
    out = run_folder(tmp_path)
    empty = tmp_path / "empty.npz"
    np.savez(empty, windows=np.zeros((0, 128, 9), np.int16), expected=np.zeros(0, np.int64))
    before = snapshot(out)
    code, _, err = firmware("run", "--artifacts", str(out), "--windows-file", str(empty))
    assert code == 2 and "holds no windows" in one_error_line(err, FW)
    assert snapshot(out) == before and not (out / "firmware").exists()


def test_windows_file_fifo_is_refused_without_reading(tmp_path: Path):
    out = run_folder(tmp_path)
    fifo = tmp_path / "windows.npz"
    os.mkfifo(fifo)
    code, _, err = firmware("run", "--artifacts", str(out), "--windows-file", str(fifo))
    assert code == 2 and "not a regular file" in one_error_line(err, FW)


def test_more_windows_than_the_file_holds(tmp_path: Path):
    out = run_folder(tmp_path)
    code, _, err = firmware("run", "--artifacts", str(out), "--windows", "5")
    assert code == 2 and "holds only 3 windows" in one_error_line(err, FW)


@pytest.mark.parametrize("args, message", [
    (["--timeout", "0"], "argument --timeout: must be a positive number, got 0"),
    (["--timeout", "-1"], "argument --timeout: must be a positive number, got -1"),
    (["--timeout", "1e9"], "argument --timeout: must be in (0, 86400], got 1e9"),
    (["--timeout", "nan"], "argument --timeout: must be a positive number, got nan"),
    (["--windows", "1e8"], "argument --windows: must be in 1 .. 4096, got 1e8"),
    (["--windows", "2.5"], "argument --windows: not a whole number: '2.5'"),
    (["--seed", "-1"], "argument --seed: must be in 0 .. 4294967295, got -1"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_argument_out_of_range(tmp_path: Path, args: list[str], message: str):
    out = run_folder(tmp_path)
    code, _, err = firmware("run", "--artifacts", str(out), "--synthetic", *args)
    assert code == 2 and message in one_error_line(err, FW)
    assert leftovers(out) == sorted(["c_model", "c_model/toy_model.c", "c_model/toy_model.h",
                                     "report.json", "report.md", "run.json", "test_windows.npz"])


@needs_tools
def test_linker_overflow_names_the_region(tmp_path: Path):
    out = tmp_path / "OUT"
    write_toy_model(out / "c_model")
    source = out / "c_model" / "toy_model.c"
    source.write_text(source.read_text().replace(
        "int ep_toy_predict(", "const int8_t toy_big[8000000] = {1};\nint ep_toy_predict(", 1
    ).replace("h[0] = 0;", "h[0] = toy_big[window[0] & 4095];", 1))
    code, _, err = firmware("build", "--artifacts", str(out), "--synthetic")
    assert code == 4
    line = one_error_line(err, FW)
    assert "overflowed by" in line and "collect2" not in line

