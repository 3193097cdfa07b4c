"""Bad input at the command lines: one line on stderr naming the problem, a documented exit
code, no traceback, and nothing half-written left in --out.

Parse-time errors run the real ``python -m ...`` process (they exit before TensorFlow
loads, well under a second each). Errors found after parsing call the same ``main()``
in-process, so TensorFlow loads once for the whole file. No test here trains a model.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.bad_input

EXIT_USAGE, EXIT_NO_FIT, EXIT_OUT_DIR = 2, 3, 4


def cli(module: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def one_error_line(stderr: str, prefix: str = "error: ") -> str:
    """The whole of stderr: exactly one line, starting with ``prefix``, no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(prefix), stderr
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Everything under ``folder`` (relative paths); [] when it does not exist."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ------------------------------------------------------------------ pipeline: parse time
PARSE_ERRORS = [
    (["--budget-kb", "0"], "--budget-kb: must be a positive number, got 0"),
    (["--budget-kb", "-8"], "--budget-kb: must be a positive number, got -8"),
    (["--budget-kb", "-0.0"], "must be a positive number"),
    (["--budget-kb", "nan"], "must be a positive number, got nan"),
    (["--budget-kb", "inf"], "must be a positive number, got inf"),
    (["--budget-kb", "1e12"], "1e12 KiB is not a microcontroller flash budget"),
    (["--budget-kb", "8kb"], "--budget-kb: not a number: '8kb'"),
    (["--budget-kb", ""], "--budget-kb: not a number: ''"),
    (["--model", "lstm"], "--model: invalid choice: 'lstm'"),
    (["--data", "mnist"], "--data: invalid choice: 'mnist'"),
    (["--data", "uci"], "--data uci needs --data-path"),
    (["--data", "uci", "--data-path", "/nonexistent/UCI HAR Dataset.zip"],
     "--data-path /nonexistent/UCI HAR Dataset.zip: no such file or directory"),
    (["--min-threshold", "-1"], "--min-threshold: must be a fraction in [0, 1)"),
    (["--min-threshold", "1.5"], "--min-threshold: must be a fraction in [0, 1)"),
    (["--min-threshold", "nan"], "--min-threshold: must be a fraction in [0, 1)"),
    (["--min-threshold", "1e30"], "--min-threshold: a count of 1e30 weights is beyond any"),
    (["--min-threshold", "ten"], "--min-threshold: not a number: 'ten'"),
    (["--seed", "x"], "--seed: not a whole number: 'x'"),
    (["--seed", "-1"], "--seed: must be in 0 .. 4294967295, got -1"),
    (["--seed", "4294967296"], "--seed: must be in 0 .. 4294967295, got 4294967296"),
    (["--seeds", "0"], "--seeds: must be in 1 .. 32, got 0"),
    (["--seeds", "-1"], "--seeds: must be in 1 .. 32, got -1"),
    (["--seeds", "1e9"], "--seeds: must be in 1 .. 32, got 1e9"),
    (["--seeds", "four"], "--seeds: not a whole number: 'four'"),
    (["--quick", "--bogus"], "unrecognized arguments: --bogus"),
    (["--max-instructions", "0"], "--max-instructions: must be a positive number, got 0"),
    (["--max-instructions", "1.5"], "--max-instructions: must be a whole number of"),
    (["--max-instructions", "1e13"], "--max-instructions: must be a whole number of"),
    (["--max-instructions", "1M"], "--max-instructions: not a number: '1M'"),
]


@pytest.mark.parametrize(("args", "message"), PARSE_ERRORS,
                         ids=[" ".join(a) or "empty" for a, _ in PARSE_ERRORS])
def test_pipeline_rejects_bad_arguments_before_any_work(tmp_path: Path, args: list[str],
                                                         message: str):
    out = tmp_path / "out"
    result = cli("edgeprune.pipeline", *args, "--out", str(out))
    assert result.returncode == EXIT_USAGE
    assert message in one_error_line(result.stderr)
    assert result.stdout == ""
    assert not out.exists()


def test_speed_budget_without_the_toolchain_says_what_to_install(tmp_path: Path):
    bin_dir = tmp_path / "bin"  # a PATH with python only: no arm-none-eabi-gcc, no QEMU
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": str(bin_dir)}
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "edgeprune.pipeline", "--max-instructions",
                             "1e6", "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == EXIT_USAGE
    line = one_error_line(result.stderr)
    assert "--max-instructions" in line and "arm-none-eabi-gcc and qemu-system-arm" in line
    assert not out.exists()


# ------------------------------------------------------------------ pipeline: after parsing
@pytest.fixture
def pipeline_main(capsys: pytest.CaptureFixture):
    """``main(argv) -> (exit code, the one stderr line)``, in-process."""
    from edgeprune.pipeline.cli import main

    def call(*argv: str) -> tuple[int, str]:
        code = main(list(argv))
        return code, one_error_line(capsys.readouterr().err.strip("\n"),
                                    prefix="error: " if code != EXIT_NO_FIT else "no fit: ")

    return call




def test_data_path_that_does_not_exist(tmp_path: Path):
    out = tmp_path / "out"
    for data in ("uci", "hapt"):
        result = cli("edgeprune.pipeline", "--data", data, "--data-path",
                     str(tmp_path / "nope.zip"), "--out", str(out))
        assert result.returncode == EXIT_USAGE
        assert "nope.zip: no such file or directory" in one_error_line(result.stderr)
        assert not out.exists()


def test_out_is_a_file_in_a_real_process(tmp_path: Path):
    """Past parsing TensorFlow has loaded and may log to stderr first: the error is the
    last line, and there is no traceback."""
    target = tmp_path / "taken"
    target.write_text("mine\n")
    result = cli("edgeprune.pipeline", "--quick", "--out", str(target))
    assert result.returncode == EXIT_OUT_DIR and "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: --out ") and "exists and is not a folder" in last
    assert target.read_text() == "mine\n"


def test_data_path_that_is_not_an_archive(pipeline_main, tmp_path: Path):
    bogus = tmp_path / "UCI HAR Dataset.zip"
    bogus.write_text("definitely not a zip\n")
    out = tmp_path / "out"
    code, line = pipeline_main("--data", "uci", "--data-path", str(bogus), "--out", str(out))
    assert code == EXIT_USAGE and "not a readable zip archive" in line
    assert not out.exists()


def test_data_path_folder_without_an_archive(pipeline_main, tmp_path: Path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    out.mkdir()  # an empty --out folder the user made: it stays, empty
    code, line = pipeline_main("--data", "uci", "--data-path", str(tmp_path / "empty"),
                               "--out", str(out))
    assert code == EXIT_USAGE and "no UCI HAR archive here" in line
    assert out.is_dir() and leftovers(out) == []


def test_hapt_data_path_that_is_not_a_pickle(pipeline_main, tmp_path: Path):
    bad = tmp_path / "HAPT.pkl.gz"
    with gzip.open(bad, "wb") as stream:
        stream.write(b"not a pickle")
    out = tmp_path / "out"
    code, line = pipeline_main("--data-path", str(bad), "--out", str(out))
    assert code == EXIT_USAGE and "HAPT.pkl.gz" in line
    assert not out.exists()


def test_no_fit_maps_to_exit_3(pipeline_main, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The real run is ``test_pipeline.py::test_no_configuration_fits_exits_3...`` (slow)."""
    from edgeprune.pipeline import run as run_module

    def no_fit(args):
        raise run_module.NoFitError("no configuration fits 51 B; the smallest C model reached "
                                    "is 402 B (h16-w4-u8 at 99% sparsity, ...)")

    monkeypatch.setattr(run_module, "run", no_fit)
    code, line = pipeline_main("--quick", "--budget-kb", "0.05", "--out", str(tmp_path / "o"))
    assert code == EXIT_NO_FIT and line.startswith("no fit: no configuration fits 51 B")


def test_unwritable_data_cache(pipeline_main, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("EDGEPRUNE_CACHE", str(blocker / "cache"))
    out = tmp_path / "out"
    code, line = pipeline_main("--quick", "--out", str(out))
    assert code == EXIT_USAGE and "cache folder cannot be written" in line
    assert not out.exists()


def test_out_is_a_file(pipeline_main, tmp_path: Path):
    target = tmp_path / "report.txt"
    target.write_text("mine\n")
    code, line = pipeline_main("--quick", "--out", str(target))
    assert code == EXIT_OUT_DIR and "exists and is not a folder" in line
    assert target.read_text() == "mine\n"


def test_out_below_a_file(pipeline_main, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, line = pipeline_main("--quick", "--out", str(blocker / "run"))
    assert code == EXIT_OUT_DIR and "cannot be written" in line
    assert blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_below_a_read_only_folder(pipeline_main, tmp_path: Path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, line = pipeline_main("--quick", "--out", str(ro / "run"))
    finally:
        ro.chmod(0o700)
    assert code == EXIT_OUT_DIR and "cannot be written" in line
    assert leftovers(ro) == []


def test_out_not_empty_and_not_a_run(pipeline_main, tmp_path: Path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"\xff\xd8")
    code, line = pipeline_main("--quick", "--out", str(out))
    assert code == EXIT_OUT_DIR and "holds no edgeprune run" in line
    assert leftovers(out) == ["holiday.jpg"]


def test_out_holds_a_run_with_other_arguments(pipeline_main, tmp_path: Path):
    out = tmp_path / "run"
    out.mkdir()
    other = {"model": "cnn", "budget_kb": 2.0, "data": "hapt", "data_path": None, "seed": 0,
             "min_threshold": 0.0005, "quick": True}
    (out / "run.json").write_text(json.dumps(other))
    code, line = pipeline_main("--quick", "--budget-kb", "1", "--out", str(out))
    assert code == EXIT_OUT_DIR and "other arguments (budget_kb, model)" in line
    assert json.loads((out / "run.json").read_text()) == other


@pytest.mark.parametrize("content", ["{truncated", "[1, 2]", '"a string"', "\udcff"])
def test_out_holds_an_unreadable_run_json(pipeline_main, tmp_path: Path, content: str):
    out = tmp_path / "run"
    out.mkdir()
    data = content.encode(errors="surrogateescape")
    (out / "run.json").write_bytes(data)
    code, line = pipeline_main("--quick", "--out", str(out))
    assert code == EXIT_OUT_DIR and "unreadable run.json" in line
    assert (out / "run.json").read_bytes() == data and leftovers(out) == ["run.json"]


# ------------------------------------------------------------------ firmware CLI
FW = "edgeprune.firmware: error: "


def test_firmware_unknown_board(tmp_path: Path):
    result = cli("edgeprune.firmware", "build", "--artifacts", str(tmp_path), "--board",
                 "esp32", "--synthetic")
    assert result.returncode == EXIT_USAGE
    line = one_error_line(result.stderr, FW)
    assert "unknown board 'esp32'" in line and "mps2-an386" in line
    assert leftovers(tmp_path) == []


def test_firmware_missing_artifacts_folder(tmp_path: Path):
    result = cli("edgeprune.firmware", "run", "--artifacts", str(tmp_path / "absent"),
                 "--synthetic")
    assert result.returncode == EXIT_USAGE
    assert "does not exist" in one_error_line(result.stderr, FW)
    assert not (tmp_path / "absent").exists()


def test_firmware_missing_c_model(tmp_path: Path):
    result = cli("edgeprune.firmware", "build", "--artifacts", str(tmp_path), "--synthetic")
    assert result.returncode == EXIT_USAGE
    assert "no C model" in one_error_line(result.stderr, FW)
    assert leftovers(tmp_path) == []


def test_firmware_c_model_folder_without_model_files(tmp_path: Path):
    (tmp_path / "c_model").mkdir()
    (tmp_path / "c_model" / "notes.txt").write_text("x")
    result = cli("edgeprune.firmware", "build", "--artifacts", str(tmp_path), "--synthetic")
    assert result.returncode == EXIT_USAGE
    assert "c_model" in one_error_line(result.stderr, FW)
    assert leftovers(tmp_path) == ["c_model", "c_model/notes.txt"]


def test_firmware_zero_windows(tmp_path: Path):
    result = cli("edgeprune.firmware", "run", "--artifacts", str(tmp_path), "--windows", "0")
    assert result.returncode == EXIT_USAGE
    assert "argument --windows: must be in 1 .. 4096, got 0" in one_error_line(result.stderr, FW)


# ------------------------------------------------------------------ har_data CLI
def test_har_data_info_path_that_does_not_exist(tmp_path: Path):
    result = cli("har_data", "info", "--source", "uci", "--path", str(tmp_path / "nope"),
                 "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == EXIT_USAGE
    assert "nope: no such file or directory" in one_error_line(result.stderr)
    assert leftovers(tmp_path) == []


def test_har_data_info_path_that_is_not_an_archive(tmp_path: Path):
    bogus = tmp_path / "data.zip"
    bogus.write_bytes(b"PK\x03\x04 but truncated")
    result = cli("har_data", "info", "--source", "uci", "--path", str(bogus),
                 "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == EXIT_USAGE
    assert "not a readable zip archive" in one_error_line(result.stderr)
    assert leftovers(tmp_path) == ["data.zip"]


def test_har_data_info_hapt_path_that_is_not_a_pickle(tmp_path: Path):
    bogus = tmp_path / "HAPT.pkl.gz"
    bogus.write_text("plain text")
    result = cli("har_data", "info", "--path", str(bogus), "--cache-dir", str(tmp_path / "c"))
    assert result.returncode == EXIT_USAGE
    assert "HAPT.pkl.gz: plain text, expected a gzip-compressed pickle" in one_error_line(
        result.stderr)


def test_har_data_download_checksum_mismatch_writes_nothing(tmp_path: Path):
    payload = tmp_path / "payload.zip"
    payload.write_bytes(b"not the archive")
    cache = tmp_path / "cache"
    result = cli("har_data", "download", "--url", payload.as_uri(), "--sha256", "0" * 64,
                 "--cache-dir", str(cache))
    assert result.returncode == EXIT_USAGE
    assert "SHA-256 mismatch" in one_error_line(result.stderr)
    assert leftovers(cache) == []
