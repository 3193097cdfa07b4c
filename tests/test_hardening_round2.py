"""Second hardening round (issue 23), in real processes: no read can hang (FIFOs, devices
refused by type), the same size limits in folder and zip mode, a run folder locked while
a run uses it (a killed holder's lock taken over), resume keyed on what the data holds,
and every message saying what is really wrong."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT
from test_har_data_helpers import TOP, make_arrays, write_folder, zip_folder
from test_hardening_cli import cli, leftovers, one_error_line

import har_data
from edgeprune.pipeline.rundir import LOCK_FILE

pytestmark = pytest.mark.bad_input
BODY_X = "train/Inertial Signals/body_acc_x_train.txt"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("pristine"), make_arrays(per_subject=2))


@pytest.fixture
def folder(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "data" / TOP))


def info(path: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return cli("har_data", "info", "--source", "uci", "--path", str(path), "--val-subjects",
               "1", "--cache-dir", str(tmp_path / "cache"), *extra)


# --------------------------------------------------------------- nothing can hang
@pytest.mark.parametrize("make, found", [
    (lambda p: os.mkfifo(p), "not a regular file (a FIFO)"),
    (lambda p: p.symlink_to("/dev/zero"), "not a regular file (a character device)"),
])
def test_member_that_is_not_a_regular_file_is_refused_before_reading(folder: Path,
                                                                     tmp_path: Path,
                                                                     make, found: str):
    target = folder / BODY_X
    target.unlink()
    make(target)
    t0 = time.monotonic()
    result = info(folder, tmp_path)
    assert result.returncode == 2 and time.monotonic() - t0 < 60
    line = one_error_line(result.stderr)
    assert "body_acc_x_train.txt: " + found in line
    assert leftovers(tmp_path / "cache") == []


def test_hapt_path_that_is_a_fifo(tmp_path: Path):
    fifo = tmp_path / "HAPT.pkl.gz"
    os.mkfifo(fifo)
    result = cli("har_data", "info", "--path", str(fifo), "--cache-dir", str(tmp_path / "c"))
    assert result.returncode == 2
    assert "HAPT.pkl.gz: not a regular file (a FIFO)" in one_error_line(result.stderr)


def test_dev_zero_as_data_path_names_what_it_is(tmp_path: Path):
    result = cli("edgeprune.pipeline", "--quick", "--data", "uci", "--data-path", "/dev/zero",
                 "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "/dev/zero: not a regular file or folder (a character device)" in line
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------- size limits
def test_zip_member_decompressing_past_the_text_limit(folder: Path, tmp_path: Path):
    big = tmp_path / "UCI HAR Dataset.zip"
    zip_folder(folder, big)
    huge = ("0 " * 128 + "\n").encode() * 300_000  # 77 MB of text, ~100 kB compressed
    with zipfile.ZipFile(big) as src, zipfile.ZipFile(tmp_path / "bomb.zip", "w",
                                                      zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = huge if item.filename == f"{TOP}/{BODY_X}" else src.read(item)
            dst.writestr(item.filename, data)
    assert (tmp_path / "bomb.zip").stat().st_size < 2_000_000
    result = info(tmp_path / "bomb.zip", tmp_path)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "body_acc_x_train.txt: declared size 77100000 bytes exceeds the 67108864-byte" in line


def test_folder_member_over_the_text_limit(folder: Path, tmp_path: Path):
    with (folder / BODY_X).open("r+b") as handle:
        handle.truncate(70 * 1024 * 1024)  # sparse: 70 MB without writing them
    result = info(folder, tmp_path)
    assert result.returncode == 2
    assert "exceeds the 67108864-byte limit" in one_error_line(result.stderr)


# --------------------------------------------------------------- messages
def test_uci_archive_given_as_hapt_data(folder: Path, tmp_path: Path):
    archive = zip_folder(folder, tmp_path / "UCI HAR Dataset.zip")
    result = cli("har_data", "info", "--path", str(archive), "--cache-dir", str(tmp_path / "c"))
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "a zip archive, expected a gzip-compressed pickle" in line and "'uci'" in line
    result = cli("har_data", "info", "--path", str(folder), "--cache-dir", str(tmp_path / "c"))
    assert result.returncode == 2 and "a folder, not a HAPT.pkl.gz" in one_error_line(
        result.stderr)


@pytest.mark.parametrize("encoding, found", [("utf-16", "UTF-16 text"),
                                             ("utf-8-sig", "byte-order mark")])
def test_text_file_in_another_encoding(folder: Path, tmp_path: Path, encoding: str,
                                       found: str):
    path = folder / BODY_X
    path.write_bytes(path.read_text().encode(encoding))
    result = info(folder, tmp_path)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "body_acc_x_train.txt: " in line and found in line and "expected plain ASCII" in line


def test_nan_after_blank_lines_names_its_real_line(folder: Path, tmp_path: Path):
    path = folder / BODY_X
    lines = path.read_text().splitlines()
    lines[1] = "nan " + lines[1].split(maxsplit=1)[1]
    path.write_text(lines[0] + "\n\n\n" + "\n".join(lines[1:]) + "\n")
    result = info(folder, tmp_path)
    assert "non-finite value nan at line 4, column 1" in one_error_line(result.stderr)


def test_too_few_volunteers_says_how_many_were_found(folder: Path, tmp_path: Path):
    result = info(folder, tmp_path, "--val-subjects", "50")
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "the training data has" in line and "needs at least 51" in line


@pytest.mark.parametrize("args, message", [
    (["info", "--seed", "-1"], "argument --seed: must be in 0 .. 4294967295, got -1"),
    (["info", "--val-subjects", "x"], "argument --val-subjects: not a whole number: 'x'"),
    (["download", "--url", "foo"], "foo: not a URL"),
    (["download", "--sha256", "xyz"], "'xyz': not a SHA-256"),
])
def test_har_data_arguments(tmp_path: Path, args: list[str], message: str):
    result = cli("har_data", *args, "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 2 and message in one_error_line(result.stderr)
    assert leftovers(tmp_path / "cache") == []


# --------------------------------------------------------------- resume keyed on the data
def test_fingerprint_is_what_the_data_holds(folder: Path, tmp_path: Path):
    moved = Path(shutil.copytree(folder, tmp_path / "elsewhere" / TOP))
    assert har_data.fingerprint("uci", folder) == har_data.fingerprint("uci", moved)
    (moved / BODY_X).write_text((moved / BODY_X).read_text().replace("e", "E", 1))
    assert har_data.fingerprint("uci", folder) != har_data.fingerprint("uci", moved)


def test_other_data_at_the_same_path_is_not_resumed(folder: Path, tmp_path: Path):
    out = tmp_path / "run"
    out.mkdir()
    args = ["--quick", "--data", "uci", "--data-path", str(folder), "--out", str(out)]
    identity = {"model": "fastgrnn", "budget_kb": 8.0, "data": "uci", "seed": 0,
                "min_threshold": 0.0005, "quick": True, "data_fingerprint": "0" * 64}
    (out / "run.json").write_text(json.dumps(identity))
    result = cli("edgeprune.pipeline", *args)
    assert result.returncode == 4
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and "other arguments (data_fingerprint)" in line
    assert leftovers(out) == ["run.json"]


# --------------------------------------------------------------- the run folder lock
HOLD = """
import sys, time
from edgeprune.pipeline.rundir import RunDir
RunDir(sys.argv[1], {"model": "fastgrnn"}).open()
print("holding", flush=True)
time.sleep(120)
"""


def test_a_second_run_into_a_locked_folder_exits_4_and_a_killed_holder_is_taken_over(
        tmp_path: Path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        result = cli("edgeprune.pipeline", "--quick", "--out", str(out))
        assert result.returncode == 4
        line = result.stderr.strip().splitlines()[-1]
        assert f"is in use by another run (process {holder.pid})" in line
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / LOCK_FILE).exists()  # left by the killed run: stale, taken over
    taker = subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(120)", ""),
                            str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert taker.returncode == 0 and "holding" in taker.stdout, taker.stderr


# --------------------------------------------------------------- benchmarks
def test_bench_kernels_unknown_board(tmp_path: Path):
    result = cli("edgeprune.bench", "kernels", "--json", str(tmp_path / "k.json"), "--board",
                 "esp32")
    assert result.returncode == 2
    assert "argument --board: invalid choice: 'esp32'" in one_error_line(result.stderr)
    assert leftovers(tmp_path) == []


def test_bench_dense_data_error_is_one_line(tmp_path: Path):
    bogus = tmp_path / "HAPT.pkl.gz"
    bogus.write_text("plain text")
    result = cli("edgeprune.bench", "dense", "--model", "fastgrnn", "--data", "hapt",
                 "--data-path", str(bogus), "--json", str(tmp_path / "d.json"),
                 "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "plain text, expected a gzip-compressed pickle" in last
