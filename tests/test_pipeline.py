"""End-to-end tests of ``python -m edgeprune.pipeline`` in quick mode on hapt-har2.

Each run trains a tiny FastGRNN for two epochs on 400 real windows, so these are
marked slow (about a minute each on 2 cores).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from edgeprune import machine, pruning

pytestmark = pytest.mark.slow

QUICK = ["--quick", "--budget-kb", "1"]
ARTIFACTS = [
    "report.json", "report.md", "run.json", "model.keras", "frontier.png",
    "per_layer_sparsity.png", "confusion_matrix.png", "model_int8_step.tflite",
    "model_int8_head.tflite", "model_sparse_step.tflite", "model_sparse_head.tflite",
    "c_model/har2_model.h", "c_model/har2_model.c", "c_model/ep_kernels_fast.c",
    "tflm/model_data.h", "tflm/model_data.cc", "firmware/arduino", "firmware/tflm",
    "test_windows.npz",
]
DETERMINISTIC = ["c_model/har2_model.h", "c_model/har2_model.c", "model_int8_step.tflite",
                 "model_int8_head.tflite", "tflm/model_data.cc"]


def pipeline(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeprune.pipeline", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, **kwargs)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pipeline") / "run"
    result = pipeline(*QUICK, "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def test_quick_run_writes_every_artifact_and_a_consistent_report(quick_run: Path):
    for name in ARTIFACTS:
        assert (quick_run / name).exists(), name
    report = json.loads((quick_run / "report.json").read_text())
    for key in ("model", "dataset", "budget_bytes", "fits_budget", "selected", "accuracy",
                "bytes", "per_layer", "candidates", "seconds", "versions"):
        assert key in report, key
    assert report["versions"]["machine"] == machine.describe()
    # none, an unstable dense run, or a collapsed layer
    assert all(w.startswith(("dense ", "layer collapse: ")) for w in report["warnings"])
    assert report["dataset"]["name"] == "hapt-har2"
    assert report["budget_bytes"] == 1024
    assert report["fits_budget"] is True
    assert report["bytes"]["model"] <= report["budget_bytes"]
    assert set(report["accuracy"]) >= {"val", "test_float", "test_tflite_int8", "test_c_int8"}
    for value in report["accuracy"].values():
        assert 0.0 <= value <= 1.0
    selected = [c for c in report["candidates"] if c["selected"]]
    assert len(selected) == 1 and selected[0]["fits"] and selected[0]["finetuned"]
    # searched with the smallest encoding; shipped with faster formats only if they fit
    assert selected[0]["model_bytes"] == report["bytes"]["model_smallest"]
    assert report["bytes"]["model_smallest"] <= report["bytes"]["model"] <= 1024
    assert selected[0]["val_accuracy"] == report["accuracy"]["val"]
    # Selection: the smallest fine-tuned fitting candidate within one standard error of
    # the best validation accuracy.
    tuned = [c for c in report["candidates"] if c["finetuned"] and c["fits"]]
    best, tol = max(c["val_accuracy"] for c in tuned), report["selection"]["tolerance"]
    tied = [c for c in tuned if c["val_accuracy"] >= best - tol - 1e-5]
    assert 0 < tol < 0.05
    assert selected[0]["model_bytes"] == min(c["model_bytes"] for c in tied)
    total = sum(r["weights"] for r in report["per_layer"])
    nonzeros = sum(r["nonzeros"] for r in report["per_layer"])
    assert abs((1 - nonzeros / total) - report["selected"]["sparsity"]) <= 1 / total + 1e-9
    collapsed = pruning.collapsed_layers(report["per_layer"])  # each one is in the warnings
    assert all(any(c in w for w in report["warnings"]) for c in collapsed)
    if "mcu" in report:  # the toolchain was present: the board agreed with the reference
        assert report["mcu"]["agreement"] == 1.0
        assert report["mcu"]["windows_run"] > 0


def test_an_existing_run_with_other_arguments_is_refused(quick_run: Path):
    result = pipeline("--quick", "--budget-kb", "2", "--out", str(quick_run))
    assert result.returncode == 4
    assert "other arguments" in result.stderr and "Traceback" not in result.stderr


def test_no_configuration_fits_exits_3_naming_the_smallest_size(tmp_path: Path):
    # below the smallest C model possible the run is refused before training (exit 2,
    # test_hardening_round3.py); 2 B above it the search runs and reaches nothing that small
    floor = pipeline("--quick", "--budget-kb", "0.0001", "--out", str(tmp_path / "floor"))
    assert floor.returncode == 2, floor.stderr[-2000:]
    smallest = int(re.search(r"can produce: (\d+) B", floor.stderr).group(1))
    result = pipeline("--quick", "--budget-kb", f"{(smallest + 2) / 1024:.6f}", "--out",
                      str(tmp_path / "nofit"))
    assert result.returncode == 3, result.stderr[-2000:]
    assert "smallest C model reached" in result.stderr
    assert "Traceback" not in result.stderr


def test_killed_run_resumes_and_reproduces_the_uninterrupted_bytes(quick_run: Path,
                                                                    tmp_path: Path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "edgeprune.pipeline", *QUICK, "--out",
                             str(out)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while not list((out / "stages").glob("dense-*.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "report.json").exists()

    resumed = pipeline(*QUICK, "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stderr and "reused from an earlier run" in resumed.stderr
    for name in DETERMINISTIC:
        assert (out / name).read_bytes() == (quick_run / name).read_bytes(), name


needs_board = pytest.mark.skipif(
    not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
    reason="--max-instructions needs arm-none-eabi-gcc and qemu-system-arm")


@needs_board
def test_speed_budget_selects_a_candidate_that_runs_within_it(quick_run: Path,
                                                             tmp_path: Path):
    unlimited = json.loads((quick_run / "report.json").read_text())
    dense_instructions = unlimited["mcu"]["instructions_per_window"]
    limit = int(0.8 * dense_instructions)  # the quick run's selected model is too slow
    out = tmp_path / "fast"
    result = pipeline(*QUICK, "--max-instructions", str(limit), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["budget_instructions"] == limit
    assert report["fits_instruction_budget"] is True
    tuned = [c for c in report["candidates"] if c["finetuned"] and c["fits"]]
    assert all(c["instructions_per_window"] > 0 for c in tuned)
    assert any(c["instructions_per_window"] > limit for c in tuned)  # measured and excluded
    probes = report["speed_probes"]  # one-shot models: the slow ones, then bisection to
    fast = [p["sparsity"] for p in probes if p["instructions_per_window"] <= limit]
    slow = [p["sparsity"] for p in probes if p["instructions_per_window"] > limit]
    assert fast and max(slow, default=-1) < min(fast)  # the lowest fast sparsity, which
    assert min(fast) in {c["sparsity"] for c in tuned}  # is fine-tuned too
    selected = [c for c in report["candidates"] if c["selected"]][0]
    assert selected["instructions_per_window"] <= limit
    assert report["selected"]["sparsity"] > unlimited["selected"]["sparsity"]
    # the firmware stage's exact count of the shipped model agrees with the selection's
    assert report["mcu"]["instructions_per_window"] <= limit
    assert report["mcu"]["agreement"] == 1.0
    assert "instructions/window" in (out / "report.md").read_text()
    assert (out / "speed_frontier.png").stat().st_size > 0
    assert not (quick_run / "speed_frontier.png").exists()


@needs_board
def test_speed_budget_no_candidate_can_meet_exits_3_naming_the_fastest(tmp_path: Path):
    result = pipeline(*QUICK, "--max-instructions", "1000", "--out", str(tmp_path / "slow"))
    assert result.returncode == 3, result.stderr[-2000:]
    assert "runs within 1000 instructions per window" in result.stderr
    assert "the fastest is" in result.stderr and "Traceback" not in result.stderr


def test_refit_ships_the_selected_configuration_trained_on_train_and_validation(
        quick_run: Path, tmp_path: Path):
    import tf_keras as keras

    from edgeprune.pipeline.families import FAMILIES
    from edgeprune.pipeline.records import Candidate

    out = tmp_path / "refit"
    result = pipeline(*QUICK, "--refit", "--no-firmware", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    plain = json.loads((quick_run / "report.json").read_text())
    # the search is the plain run's: same candidates, same validation-selected one
    assert report["candidates"] == plain["candidates"]
    assert report["accuracy"]["val"] == plain["accuracy"]["val"]
    refit, sizes = report["refit"], report["dataset"]["sizes"]
    assert refit["n_train"] == sizes["train"] + sizes["val"]
    dense = json.loads(next((out / "stages").glob("dense-*.json")).read_text())["record"]
    assert refit["dense_epochs"] == dense["selected_epoch"]
    selected = [c for c in report["candidates"] if c["selected"]][0]
    assert refit["finetune_epochs"] == selected["finetune_epoch"]
    assert refit["shipped"] is refit["fits"] is True
    assert report["bytes"]["model_smallest"] == refit["model_bytes"] <= report["budget_bytes"]
    assert "refit on train + validation | shipped" in (out / "report.md").read_text()
    shipped = keras.models.load_model(out / "model.keras")
    twin = FAMILIES[report["model"]].build(Candidate.from_json(selected).spec, 0)
    for tag, same in ((refit["weights"], True), (selected["weights"], False)):
        with np.load(out / "models" / f"{tag}.npz") as saved:
            twin.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])
        equal = all(np.array_equal(a, b)
                    for a, b in zip(twin.get_weights(), shipped.get_weights(), strict=True))
        assert equal is same, tag


@needs_board
def test_firmware_run_on_the_run_folder_updates_its_report_and_nothing_else(quick_run: Path,
                                                                            tmp_path: Path):
    out = tmp_path / "copy"
    shutil.copytree(quick_run, out)
    before = {n: (out / n).read_bytes() for n in ("report.json", "report.md")}
    firmware = [sys.executable, "-m", "edgeprune.firmware", "run", "--artifacts", str(out)]
    own = subprocess.run(firmware, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert own.returncode == 0, own.stderr  # it finds the windows the pipeline ran
    report, old = (json.loads(r) for r in ((out / "report.json").read_bytes(),
                                           before["report.json"]))
    assert report["mcu"]["windows_run"] == old["mcu"]["windows_run"] > 0
    assert report["mcu"]["agreement"] == 1.0
    assert report["mcu"]["instructions_per_window"] == old["mcu"]["instructions_per_window"]
    assert {k: v for k, v in report.items() if k != "mcu"} == \
        {k: v for k, v in old.items() if k != "mcu"}
    assert (out / "report.md").read_bytes() == before["report.md"]  # the same measurement
    other = subprocess.run([*firmware, "--synthetic", "--windows", "2"], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    assert other.returncode == 0, other.stderr
    assert json.loads((out / "report.json").read_bytes()) == report  # not in the report
    assert "board_runs.json" in other.stderr
    runs = json.loads((out / "firmware" / "board_runs.json").read_text())
    assert runs["mcu"]["windows_run"] == 2 and runs["mcu"]["agreement"] is None


@pytest.mark.bad_input
def test_a_finished_run_with_an_unreadable_report_is_refused_untouched(quick_run: Path,
                                                                       tmp_path: Path):
    out = tmp_path / "copy"
    shutil.copytree(quick_run, out)
    (out / "report.json").write_text('{"model": "fastgrnn",')
    result = pipeline(*QUICK, "--out", str(out))
    assert result.returncode == 4
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "report.json: not valid JSON" in last
    assert (out / "report.json").read_text() == '{"model": "fastgrnn",'


def test_seeds_trains_members_prunes_the_best_and_refits_every_member(tmp_path: Path):
    """``--seeds 2 --refit``: two dense members per architecture with their own seeds,
    each one's validation accuracy in the report, the pruned models' parent the member
    best on validation, and the refit training both members again."""
    out = tmp_path / "seeds"
    result = pipeline(*QUICK, "--seeds", "2", "--refit", "--no-firmware", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    (arch, entry), = report["dense_seeds"].items()
    members = entry["members"]
    assert len(members) == 2 and members[0]["seed"] == 0 != members[1]["seed"]
    scores = [m["val_accuracy_float"] for m in members]
    assert entry["parent"] == scores.index(max(scores))
    assert entry["teacher"] == "mean logits of 2 members"
    stored = {p.stem for p in (out / "stages").glob("*.json")}
    assert {f"dense-{arch}", f"dense-{arch}-m1", f"refit-dense-{arch}",
            f"refit-dense-{arch}-m1"} <= stored
    for m in (0, 1):  # each member's refit trained its own epochs on train + validation
        refit = json.loads((out / "stages" / f"refit-dense-{arch}{'-m1' if m else ''}.json")
                           .read_text())["record"]
        assert refit["seed"] == members[m]["seed"]
        assert refit["epochs"] == members[m]["selected_epoch"]
        assert refit["n_train"] == report["refit"]["n_train"]
    assert json.loads((out / "run.json").read_text())["seeds"] == 2
