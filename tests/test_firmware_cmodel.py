"""The real generated C model (export.cmodel) on QEMU: bit-exact with its numpy reference.

A FastGRNN with the paper's HAR-2 shape (hidden 80, ranks 5/40), random weights pruned to
90% by global magnitude; no training (the firmware must agree with the integer reference
whatever the weights). Skips when export.cmodel or the ARM toolchain is unavailable.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeprune import firmware

cmodel = pytest.importorskip("export.cmodel", reason="export.cmodel (C model generator) missing")

pytestmark = pytest.mark.skipif(
    not all(shutil.which(p) for p in ("arm-none-eabi-gcc", "make", "qemu-system-arm")),
    reason="ARM toolchain or QEMU missing",
)

PRUNED = ("W1", "W2", "U1", "U2", "dense_kernel")


def fastgrnn_params(sparsity: float, seed: int = 0) -> dict[str, Any]:
    """Random FastGRNN (d 9, H 80, ranks 5/40, 2 classes), global magnitude pruned."""
    rng = np.random.default_rng(seed)
    d, h, rw, ru, c = 9, 80, 5, 40, 2
    p: dict[str, Any] = {
        "W1": rng.normal(0, 0.3, (d, rw)),
        "W2": rng.normal(0, 0.3, (rw, h)),
        "U1": rng.normal(0, 0.1, (h, ru)),
        "U2": rng.normal(0, 0.1, (ru, h)),
        "bias_gate": np.ones(h),
        "bias_update": np.ones(h),
        "zeta": 1.0,
        "nu": -4.0,
        "dense_kernel": rng.normal(0, 0.3, (h, c)),
        "dense_bias": np.zeros(c),
    }
    if sparsity > 0:
        mags = np.sort(np.concatenate([np.abs(p[k]).ravel() for k in PRUNED]))
        thr = mags[int(sparsity * mags.size)]
        for k in PRUNED:
            p[k] = np.where(np.abs(p[k]) < thr, 0.0, p[k])
    return {k: np.asarray(v, dtype=np.float32) for k, v in p.items()}


def uci_raw(mirror: Path, split: str, n: int) -> np.ndarray:
    chans = [f"{k}_{a}" for k in ("body_acc", "body_gyro", "total_acc") for a in "xyz"]
    return np.stack([np.load(mirror / f"{ch}_{split}.npy")[:n] for ch in chans], axis=-1)


def export_model(calib: np.ndarray, sparsity: float, out: Path) -> Any:
    flat = calib.reshape(-1, 9)
    im = cmodel.quantize_fastgrnn(fastgrnn_params(sparsity), flat.mean(0), flat.std(0), calib)
    cmodel.generate_c(im, out, "har2")
    return im


@pytest.mark.needs_uci
def test_real_windows_both_boards(uci_mirror: Path, tmp_path: Path) -> None:
    im = export_model(uci_raw(uci_mirror, "train", 256), 0.9, tmp_path / "c_model")
    x16 = cmodel.quantize_input(im, uci_raw(uci_mirror, "test", 12))
    expected, _ = cmodel.reference_predict(im, x16)
    for board in ("mps2-an386", "mps2-an385"):
        mcu = firmware.build_and_run(
            tmp_path / "c_model", x16, expected, board, tmp_path / board, 20, exact=False
        )
        assert mcu["agreement"] == 1.0, (mcu["predictions"], expected.tolist())
        assert mcu["windows_run"] == 12
        assert 0 < mcu["model_bytes"] < 4096
        assert mcu["instructions_per_window"] > 128 * 100


def test_synthetic_windows_dense_vs_sparse(tmp_path: Path) -> None:
    """No mirror needed: random raw windows; the same model dense and 90% sparse."""
    rng = np.random.default_rng(5)
    calib = rng.normal(0, 0.5, (64, 128, 9)).astype(np.float32)
    results = {}
    for name, sparsity in (("sparse", 0.9), ("dense", 0.0)):
        im = export_model(calib, sparsity, tmp_path / name)
        x16 = cmodel.quantize_input(im, rng.normal(0, 0.5, (4, 128, 9)))
        expected, scores = cmodel.reference_predict(im, x16)
        mcu = firmware.build_and_run(
            tmp_path / name, x16, expected, "mps2-an386", tmp_path / f"fw_{name}", 20, exact=False
        )
        assert mcu["agreement"] == 1.0
        assert mcu["scores"] == scores.tolist()
        results[name] = mcu
    assert results["sparse"]["model_bytes"] < results["dense"]["model_bytes"] / 2


@pytest.mark.parametrize("board, sparsity, options", [
    ("mps2-an386", 0.9, {}),  # the fast state update, rowmask rows of 5 (W2), csr8n (U1, U2)
    ("mps2-an386", 0.5, {"formats": dict.fromkeys(("w1", "w2", "u1", "u2", "dense"),
                                                  "dense")}),  # SMLAD rows
    ("mps2-an386", 0.7, {"lut_shift": 2, "formats": {"w1": "csr16", "w2": "bitmask",
                                                     "u1": "bitmask", "u2": "rle4"}}),
    ("mps2-an386", 0.9, {"formats": {"w2": "csr8", "u1": "rle4", "u2": "bitmask"}}),
    # a = W1 x (5 rows: pairs and a last row alone) and v = U1 h requantised in their
    # csr8n rows; U2 as csr8 rows of <= 15 nonzeros
    ("mps2-an386", 0.9, {"formats": {"w1": "csr8n", "u1": "csr8n", "u2": "csr8"}}),
    # csr8 rows of more than 15 nonzeros (U1 ~40, U2 and the classifier ~20 and 40), a and
    # v requantised in the csr8 rows
    ("mps2-an386", 0.5, {"formats": {"w1": "csr8", "w2": "rowmask", "u1": "csr8",
                                     "u2": "csr8", "dense": "csr8"}}),
    ("mps2-an386", 0.9, {"state_bits": 8}),  # the generic update on a DSP core
    ("mps2-an385", 0.9, {}),  # Cortex-M3: no DSP extension, the portable C
])
def test_kernel_paths_bit_exact_scores(board: str, sparsity: float, options: dict,
                                       tmp_path: Path) -> None:
    """Every kernel path (DSP and portable, fast and generic update, each storage format)
    gives the reference's exact int32 scores on the board."""
    rng = np.random.default_rng(7)
    calib = rng.normal(0, 0.5, (64, 128, 9)).astype(np.float32)
    flat = calib.reshape(-1, 9)
    im = cmodel.quantize_fastgrnn(fastgrnn_params(sparsity, seed=2), flat.mean(0), flat.std(0),
                                  calib, **options)
    cmodel.generate_c(im, tmp_path / "c", "har2")
    x16 = cmodel.quantize_input(im, rng.normal(0, 0.8, (3, 128, 9)))
    expected, scores = cmodel.reference_predict(im, x16)
    mcu = firmware.build_and_run(tmp_path / "c", x16, expected, board, tmp_path / "fw", 30,
                                 exact=False)
    assert mcu["scores"] == scores.tolist()


@pytest.mark.parametrize("hidden", [37, 17])
def test_fast_update_odd_blocks(hidden: int, tmp_path: Path) -> None:
    """The fast state update's asm loop on blocks of an odd number of rows (37: 16, 16, 5
    rows, pairs and a last row alone; 17: a block of one row) is bit-exact."""
    rng = np.random.default_rng(hidden)
    d, rw, ru, c = 9, 5, 8, 2
    p = {"W1": rng.normal(0, 0.3, (d, rw)), "W2": rng.normal(0, 0.3, (rw, hidden)),
         "U1": rng.normal(0, 0.1, (hidden, ru)), "U2": rng.normal(0, 0.1, (ru, hidden)),
         "bias_gate": rng.normal(1, 0.5, hidden), "bias_update": rng.normal(0, 0.5, hidden),
         "zeta": 1.0, "nu": -4.0, "dense_kernel": rng.normal(0, 0.3, (hidden, c)),
         "dense_bias": np.zeros(c)}
    params = {k: np.asarray(v, dtype=np.float32) for k, v in p.items()}
    calib = rng.normal(0, 0.5, (32, 128, 9)).astype(np.float32)
    flat = calib.reshape(-1, 9)
    im = cmodel.quantize_fastgrnn(params, flat.mean(0), flat.std(0), calib)
    cmodel.generate_c(im, tmp_path / "c", "odd")
    x16 = cmodel.quantize_input(im, rng.normal(0, 0.8, (3, 128, 9)))
    expected, scores = cmodel.reference_predict(im, x16)
    mcu = firmware.build_and_run(tmp_path / "c", x16, expected, "mps2-an386", tmp_path / "fw",
                                 30, exact=False)
    assert mcu["scores"] == scores.tolist()


def test_small_cnn_model(tmp_path: Path) -> None:
    """A generated integer CNN (conv, maxpool, GAP, dense) through the same firmware."""
    if not hasattr(cmodel, "quantize_cnn"):
        pytest.skip("export.cmodel has no CNN generator")
    r = np.random.default_rng(0)
    layers = [
        {"type": "conv1d", "name": "conv0", "padding": "same", "stride": 1, "relu": True,
         "kernel": r.normal(0, 0.3, (5, 9, 8)), "bias": r.normal(0, 0.05, 8)},
        {"type": "maxpool1d", "name": "pool0", "pool": 2, "stride": 2},
        {"type": "gap1d", "name": "gap"},
        {"type": "dense", "name": "logits", "relu": False,
         "kernel": r.normal(0, 0.5, (8, 2)), "bias": np.zeros(2)},
    ]  # fmt: skip
    im = cmodel.quantize_cnn(layers, np.zeros(9), np.ones(9), r.normal(0, 0.5, (32, 128, 9)))
    cmodel.generate_c(im, tmp_path / "cnn", "cnn")
    x16 = cmodel.quantize_input(im, r.normal(0, 0.5, (4, 128, 9)))
    expected, scores = cmodel.reference_predict(im, x16)
    mcu = firmware.build_and_run(
        tmp_path / "cnn", x16, expected, "mps2-an385", tmp_path / "fw", 20, exact=False
    )
    assert mcu["agreement"] == 1.0 and mcu["scores"] == scores.tolist()
