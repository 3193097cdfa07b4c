"""Issue 23, the rest, in real processes: a run that fails or is stopped (Ctrl-C, SIGTERM)
before its first stage finished leaves ``--out`` as it found it, and the corrected command
is then not refused; an impossible budget is refused before any training; the terminal
holds edgeprune's lines only (TensorFlow's noise hidden, real errors kept, ``--verbose``
shows all); ``--help`` is plain text; ``python -m export.tflite`` refuses bad arguments
in one line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT
from test_hardening_cli import cli, leftovers, one_error_line

QUICK = ["--quick", "--budget-kb", "8"]
TINY = ["--quick", "--budget-kb", "0.0001"]


def quiet_env() -> dict[str, str]:
    """The environment of a user's shell: no TF_CPP_MIN_LOG_LEVEL (conftest sets one)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, "PYTHONPATH": str(ROOT)}


def last_line(stderr: str, prefix: str = "error: ") -> str:
    """The last line of stderr, which must start with ``prefix``; no traceback anywhere, and
    no other line of stderr starts with ``prefix``."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert lines and lines[-1].startswith(prefix), stderr
    assert sum(line.startswith(prefix) for line in lines) == 1, stderr
    return lines[-1]


# ------------------------------------------------------- item 6: impossible budgets
@pytest.mark.bad_input
def test_budget_below_the_smallest_c_model_is_refused_before_training(tmp_path: Path):
    out = tmp_path / "new" / "run"
    t0 = time.monotonic()
    result = cli("edgeprune.pipeline", *TINY, "--out", str(out))
    assert result.returncode == 2, result.stderr[-2000:]
    line = last_line(result.stderr)
    floor = re.search(r"smallest C model this search can produce: (\d+) B", line)
    assert floor and "--budget-kb 0.0001 (0 B)" in line and "give at least --budget-kb" in line
    assert "training" not in result.stderr
    assert not (tmp_path / "new").exists()  # --out and the folder above it: not left behind
    assert time.monotonic() - t0 < 110


def test_the_budget_floor_is_below_what_the_search_reaches(tmp_path: Path):
    """Honest: the floor is below the smallest model the search can reach (the quick
    architecture pruned as far as the search goes, here a random one)."""
    import har_data
    from edgeprune.pipeline import floor, measure
    from edgeprune.pipeline.config import RunConfig
    from edgeprune.pipeline.stages import StageContext

    ds = har_data.load("hapt", seed=0)
    config = RunConfig("fastgrnn", 8.0, "hapt", None, tmp_path, 0, 0.0005, None, False, True,
                       False, 1, None)
    ctx = StageContext(config, ds)
    arch = ctx.family.archs_quick[0]
    bound, label = floor.smallest_c_model(ctx.family, (arch,), ds)
    model = ctx.model(arch)
    ctx.prune(model, min(ctx.highest_sparsity(arch), 0.99))
    assert label == arch.label and 0 < bound < measure.c_bytes(ctx.family, ds, model)


# ------------------------------------------------------- item 4: --out as found
@pytest.mark.bad_input
def test_a_failure_before_any_stage_keeps_an_existing_folder_exactly(tmp_path: Path):
    out = tmp_path / "empty"
    out.mkdir()
    result = cli("edgeprune.pipeline", *TINY, "--out", str(out))
    assert result.returncode == 2
    last_line(result.stderr)
    assert out.is_dir() and leftovers(out) == []


def _sigint_as_at_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background runner's SIGINT is ignored


def _descendants(pid: int) -> set[int]:
    """The processes below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.parametrize("signum, workers, code", [
    (signal.SIGTERM, [], 143),               # the default run: stages on a local Ray
    (signal.SIGINT, ["--workers", "1"], 130),  # Ctrl-C, every stage in this process
])
def test_a_signal_before_the_first_stage_leaves_out_as_found(tmp_path: Path, signum: int,
                                                             workers: list[str], code: int):
    out = tmp_path / "fresh" / "run"
    log = tmp_path / "run.log"
    with log.open("w") as stream:
        proc = subprocess.Popen([sys.executable, "-m", "edgeprune.pipeline", *QUICK, *workers,
                                 "--out", str(out)], cwd=ROOT, env=quiet_env(), stdout=stream,
                                stderr=stream, preexec_fn=_sigint_as_at_a_terminal)
    deadline = time.monotonic() + 300
    while "training dense" not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    time.sleep(2)  # inside the dense model's training (on a Ray worker by default)
    assert not (out / "stages").exists()
    below = _descendants(proc.pid)
    proc.send_signal(signum)
    assert proc.wait(timeout=120) == code, log.read_text()
    stderr = log.read_text()
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].endswith(f"--out {out} is as it was found")
    assert not (tmp_path / "fresh").exists()  # no run.json, no lock, no empty folders
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in below) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [p for p in below if _alive(p)]  # Ray's processes ended with the run
    # the corrected command is not refused (exit 4): here an impossible budget, exit 2
    again = cli("edgeprune.pipeline", *TINY, "--out", str(out))
    assert again.returncode == 2 and "smallest C model" in last_line(again.stderr)
    assert not (tmp_path / "fresh").exists()


# ------------------------------------------------------- item 7: a quiet terminal
def test_the_default_terminal_holds_edgeprunes_lines_only(tmp_path: Path):
    run = subprocess.run([sys.executable, "-m", "edgeprune.pipeline", *TINY, "--out",
                          str(tmp_path / "q")], cwd=ROOT, env=quiet_env(), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert all(line.startswith(("[edgeprune] ", "error: ")) for line in lines), run.stderr
    verbose = subprocess.run([sys.executable, "-m", "edgeprune.pipeline", *TINY, "--verbose",
                              "--out", str(tmp_path / "v")], cwd=ROOT, env=quiet_env(),
                             capture_output=True, text=True, timeout=120)
    assert verbose.returncode == 2 and verbose.stderr.endswith(run.stderr.splitlines()[-1] + "\n")
    assert set(lines) <= set(verbose.stderr.splitlines())


FILTER = r"""
import os, sys
from edgeprune._quiet import quiet_tensorflow
lines = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "E0000 00:00:1796689920.419917   16184 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "W0000 00:00:1796689920.1   16184 op_level_cost_estimator.cc:699] Error in PredictCost()",
    "E0000 00:00:1796690186.546908   25123 node_def_util.cc:682] NodeDef mentions attribute "
    "use_unbounded_threadpool which is not in the op definition: Op<name=MapDataset; "
    "signature=input_dataset:variant, other_arguments: -> handle:variant>",
    "I0000 00:00:1796689908.057925   16184 port.cc:153] oneDNN custom operations are on.",
    "E0000 00:00:1796689920.5   16184 some_kernel.cc:10] a real error",
]
with quiet_tensorflow(verbose=len(sys.argv) > 1):
    for line in lines:
        os.write(2, (line + "\n").encode())
    print("python line", file=sys.stderr)
    os.write(2, b"no newline at the end")
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_the_filter_drops_known_noise_only_and_keeps_order(verbose: bool):
    run = subprocess.run([sys.executable, "-c", FILTER, *(["-v"] if verbose else [])],
                         cwd=ROOT, env=quiet_env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0
    if verbose:
        assert len(run.stderr.splitlines()) == 8
        return
    assert run.stderr.splitlines() == [
        "W0000 00:00:1796689920.1   16184 op_level_cost_estimator.cc:699] Error in PredictCost()",
        "E0000 00:00:1796689920.5   16184 some_kernel.cc:10] a real error",
        "python line", "no newline at the end"]


# ------------------------------------------------------- --help: plain text, defaults
HELPS = [["edgeprune.pipeline"], ["har_data"], ["har_data", "info"], ["har_data", "download"],
         ["edgeprune.firmware"], ["edgeprune.firmware", "run"], ["edgeprune.bench"],
         ["export.tflite"], ["export.tflite", "carray"], ["export.tflite", "arena"],
         ["export.tflite", "check-runtime214"]]


@pytest.mark.parametrize("command", HELPS, ids=" ".join)
def test_help_is_plain_text(command: list[str]):
    result = cli(command[0], *command[1:], "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: "), result.stderr
    assert "``" not in result.stdout and result.stderr == ""


# ------------------------------------------------------- export.tflite arguments
@pytest.mark.bad_input
@pytest.mark.parametrize("args, message", [
    (["carray", "M.tflite", "OUT", "--arena", "x"], "argument --arena: not a whole number: 'x'"),
    (["carray", "M.tflite", "OUT", "--arena", "-5"], "argument --arena: must be in"),
    (["carray", "M.tflite", "OUT", "--name", "1bad"], "argument --name: not a C identifier"),
    (["carray", "MISSING.tflite", "OUT"], "MISSING.tflite: no such file"),
    (["arena", "MISSING.tflite"], "MISSING.tflite: no such file"),
    (["bogus"], "argument command: invalid choice: 'bogus'"),
    ([], "the following arguments are required"),
])
def test_export_tflite_arguments(tmp_path: Path, args: list[str], message: str):
    (tmp_path / "M.tflite").write_bytes(b"not checked: the arguments are refused first")
    result = cli("export.tflite", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in one_error_line(result.stderr)
    assert leftovers(tmp_path) == ["M.tflite"]  # no OUT written


def _options(help_text: str) -> dict[str, str]:
    """``{option: its description}`` from the options section of a ``--help`` text."""
    found: dict[str, str] = {}
    current = None
    for line in help_text.split("options:", 1)[-1].splitlines():
        match = re.match(r"^  (-\S+)(?:,? [^ ].*?)?(?:  +(.*))?$", line)
        if match and not line.startswith("   "):
            current = match.group(1).rstrip(",")
            found[current] = match.group(2) or ""
        elif current and line.startswith("   "):
            found[current] += " " + line.strip()
    return found


ALL_HELPS = [*HELPS, ["har_data", "download"], ["edgeprune.bench", "dense"],
             ["edgeprune.bench", "sparsity"], ["edgeprune.bench", "kernels"],
             ["edgeprune.bench", "seeds"], ["edgeprune.bench", "peers"]]


@pytest.mark.parametrize("command", ALL_HELPS, ids=" ".join)
def test_every_option_is_described_with_its_default(command: list[str]):
    text = cli(command[0], *command[1:], "--help").stdout
    usage = text.split("\n\n", 1)[0]
    missing = [opt for opt, about in _options(text).items() if opt not in ("-h", "--help")
               and not (about and ("default" in about or f"[{opt}" not in usage))]
    assert missing == [], text
