"""``python -m edgeprune.bench kernels``: instructions, bytes and RAM of the C model."""

import json
import math
import shutil

import numpy as np
import pytest

import edgeprune  # noqa: F401
from edgeprune.bench import kernels
from edgeprune.bench.__main__ import main

needs_arm = pytest.mark.skipif(
    not all(shutil.which(p) for p in ("arm-none-eabi-gcc", "make", "qemu-system-arm")),
    reason="ARM toolchain or QEMU missing",
)


def test_params_are_global_mp_pruned_and_deterministic():
    a, b = kernels.fastgrnn_params(0.9, seed=3), kernels.fastgrnn_params(0.9, seed=3)
    keys = ("W1", "W2", "U1", "U2", "dense_kernel")
    total = sum(a[k].size for k in keys)
    zeros = sum(int(np.count_nonzero(a[k] == 0)) for k in keys)
    assert zeros == math.floor(0.9 * total + 0.5)  # Global MP: round(s * N), half up
    for k in keys:
        np.testing.assert_array_equal(a[k], b[k])
    kept = np.concatenate([np.abs(a[k][a[k] != 0]) for k in keys])
    pruned_max = max(float(np.abs(kernels.fastgrnn_params(0.0, seed=3)[k])[a[k] == 0].max(
        initial=0.0)) for k in keys)
    assert kept.min() >= pruned_max  # one global threshold over all five matrices


@needs_arm
def test_bench_kernels_writes_json(tmp_path):
    out = tmp_path / "k.json"
    assert main(["kernels", "--json", str(out), "--sparsities", "0.9", "--windows", "1"]) == 0
    res = json.loads(out.read_text())
    assert res["board"] == "mps2-an386" and res["model"]["hidden"] == 80
    (row,) = res["rows"]
    assert row["sparsity"] == 0.9 and row["model_bytes"] <= 1536
    assert 100_000 < row["instructions_per_window"] < 2_000_000
    assert sum(row["instruction_profile"].values()) <= row["instructions_per_window"]
    assert row["inference_ram_bytes"] == row["scratch_bytes"] + row["predict_stack_bytes"]
    assert set(row["formats"]) == {"w1", "w2", "u1", "u2", "dense"}


def test_bench_kernels_bad_sparsities(tmp_path, capsys):
    assert main(["kernels", "--json", str(tmp_path / "k.json"), "--sparsities", "0.9,1.5"]) == 2
    assert main(["kernels", "--json", str(tmp_path / "k.json"), "--sparsities", "x"]) == 2
    assert "sparsities" in capsys.readouterr().err
