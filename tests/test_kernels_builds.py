"""The two kernel builds (export.cmodel.kernels): ``small`` (portable, only the model's
formats) and ``fast`` (Cortex-M paths) compute the same scores, on the host (see also the
``kernels``-parametrised tests of test_cmodel.py) and on both QEMU boards; the small
build's code stays within 3 KB for FastGRNN 80/5/40 at any sparsity."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeprune import firmware
from edgeprune.bench.kernels import SYN_MEAN, SYN_STD, fastgrnn_params, synthetic_windows
from export import cmodel
from export.cmodel.kernels import C_DIR, CONFIG_NAME, kernel_files, model_formats
from export.cmodel.measure import section_sizes
from export.cmodel.sparse import FORMAT_TAGS

needs_arm_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                   reason="arm-none-eabi-gcc not installed")
needs_qemu = pytest.mark.skipif(
    not all(shutil.which(p) for p in ("arm-none-eabi-gcc", "make", "qemu-system-arm")),
    reason="ARM toolchain or QEMU missing")


def int_model(sparsity: float, **options):
    """The bench's FastGRNN 80/5/40 (seed 3), quantised with ``options``."""
    cal = synthetic_windows(64, seed=3)
    return cmodel.quantize_fastgrnn(fastgrnn_params(sparsity, 3), SYN_MEAN, SYN_STD, cal,
                                    **options)


@needs_arm_gcc
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.7, 0.9, 0.95])
@pytest.mark.parametrize("options", [{}, {"speed_slack": 0.0}], ids=["fast-formats", "smallest"])
def test_small_kernel_code_at_most_3_kb(sparsity, options, tmp_path):
    """Code of the small build (kernel objects + the model's predict, compiled for the
    Cortex-M4 at -Os) <= 3 KB, and well under the fast build's."""
    im = int_model(sparsity, **options)
    small = cmodel.generate_c(im, tmp_path / "small", "m", kernels="small")
    fast = cmodel.generate_c(im, tmp_path / "fast", "m")
    small_code = cmodel.measure_bytes(small["source"], "arm-cortex-m4").code_bytes
    fast_code = cmodel.measure_bytes(fast["source"], "arm-cortex-m4").code_bytes
    assert small_code <= 3 * 1024, (small_code, model_formats(im))
    assert small_code < fast_code / 3


@needs_arm_gcc
def test_small_build_compiles_only_the_models_formats(tmp_path):
    """EP_FORMATS drops the other formats' loops: fewer formats, less code."""
    im = int_model(0.9)
    paths = cmodel.generate_c(im, tmp_path, "m", kernels="small")
    text = paths["config"].read_text()
    for fmt in cmodel.FORMATS:
        assert (f"(1u << {FORMAT_TAGS[fmt]})" in text) == (fmt in model_formats(im))

    def text_bytes(mask: str) -> int:
        obj = tmp_path / "k.o"
        subprocess.run(["arm-none-eabi-gcc", "-Os", "-std=c99", "-mcpu=cortex-m4", "-mthumb",
                        "-DEP_KERNELS_SMALL", f"-DEP_FORMATS={mask}", "-I", str(C_DIR), "-c",
                        str(C_DIR / "ep_kernels_ref.c"), "-o", str(obj)], check=True)
        return section_sizes(obj, "arm-none-eabi-size").get(".text", 0)

    one, every = text_bytes("(1u << EP_FMT_CSR8N)"), text_bytes("0x7Fu")
    assert one < every - 400


def test_generate_c_switches_between_builds(tmp_path):
    """copy_kernels ships one build's files; a fast build of the folder drops the config."""
    im = int_model(0.9)
    cmodel.generate_c(im, tmp_path, "m", copy_kernels=True, kernels="small")
    names = {p.name for p in tmp_path.iterdir()}
    assert {"ep_kernels.h", "ep_kernels_ref.c", CONFIG_NAME} <= names
    assert not any(n.startswith("ep_kernels_fast") for n in names)
    cmodel.generate_c(im, tmp_path, "m", copy_kernels=True)
    names = {p.name for p in tmp_path.iterdir()}
    assert {p.name for p in kernel_files("fast")} <= names
    assert CONFIG_NAME not in names and "ep_kernels_ref.c" not in names
    with pytest.raises(ValueError, match="kernels must be one of fast, small"):
        cmodel.generate_c(im, tmp_path, "m", kernels="tiny")


# (sparsity, quantize options): every storage format appears in one of these
BOARD_CASES = [
    (0.9, {}),  # fast state update, rowmask <= 5 columns, csr8n (and their rq twins)
    (0.5, {"formats": dict.fromkeys(("w1", "w2", "u1", "u2", "dense"), "dense")}),
    (0.7, {"lut_shift": 2, "formats": {"w1": "csr16", "w2": "bitmask", "u1": "bitmask",
                                       "u2": "rle4"}}),
    (0.5, {"state_bits": 8, "formats": {"w1": "csr8", "w2": "rowmask", "u1": "csr8",
                                        "u2": "csr8", "dense": "csr8"}}),
    (0.95, {"formats": {"w2": "rle4", "u1": "bitmask", "u2": "csr8n", "dense": "rle4"}}),
]


@needs_qemu
@pytest.mark.parametrize("board", list(firmware.BOARDS))
@pytest.mark.parametrize("case", range(len(BOARD_CASES)))
def test_fast_and_small_bit_exact_on_the_board(board, case, tmp_path):
    """The same integer model built fast and small gives the reference's int32 scores on
    both boards (Cortex-M4 with DSP, Cortex-M3 without); the small build is smaller."""
    sparsity, options = BOARD_CASES[case]
    im = int_model(sparsity, **options)
    x16 = cmodel.quantize_input(im, synthetic_windows(2, seed=11))
    expected, scores = cmodel.reference_predict(im, x16)
    runs = {}
    for kernels in ("fast", "small"):
        cmodel.generate_c(im, tmp_path / kernels, "har2", kernels=kernels)
        runs[kernels] = firmware.build_and_run(tmp_path / kernels, x16, expected, board,
                                               tmp_path / f"fw_{kernels}", 60, exact=False)
        assert runs[kernels]["kernels"] == kernels
        assert runs[kernels]["scores"] == scores.tolist(), kernels
    assert runs["small"]["model_code_bytes"] < runs["fast"]["model_code_bytes"]


@needs_qemu
def test_firmware_builder_overrides_the_folders_build(tmp_path):
    """``kernels=`` of the firmware builder: a fast folder built small, a small one fast."""
    im = int_model(0.9)
    x16 = cmodel.quantize_input(im, synthetic_windows(1, seed=12))
    expected, scores = cmodel.reference_predict(im, x16)
    cmodel.generate_c(im, tmp_path / "fast", "har2", copy_kernels=True)
    cmodel.generate_c(im, tmp_path / "small", "har2", copy_kernels=True, kernels="small")
    for folder, kernels in (("fast", "small"), ("small", "fast")):
        fw = tmp_path / f"fw_{folder}"
        mcu = firmware.build_and_run(tmp_path / folder, x16, expected, "mps2-an386", fw, 60,
                                     exact=False, kernels=kernels)
        assert mcu["kernels"] == kernels and mcu["scores"] == scores.tolist()
        assert (fw / "model" / CONFIG_NAME).is_file() == (kernels == "small")
    assert np.all(expected >= 0)


def test_kernel_sources_exist():
    for kernels in ("fast", "small"):
        assert all(Path(p).is_file() for p in kernel_files(kernels))
