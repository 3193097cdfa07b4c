"""edgeprune.firmware on QEMU's Cortex-M boards, with a tiny stand-in C model.

The stand-in model below is a TEST FIXTURE (not the product): a two-class integer
recurrence over the 128 x 9 window with a numpy twin, so the board scaffolding (startup,
semihosting, SysTick, stack painting, report) is tested without the real generator.
Tests that need arm-none-eabi-gcc / qemu-system-arm skip when they are absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeprune import firmware
from edgeprune.firmware import __main__ as cli

BOARDS = ("mps2-an386", "mps2-an385")
HAVE_TOOLS = all(
    shutil.which(p) for p in ("arm-none-eabi-gcc", "arm-none-eabi-size", "make", "qemu-system-arm")
)
needs_tools = pytest.mark.skipif(
    not HAVE_TOOLS,
    reason="ARM toolchain or QEMU missing (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi "
    "binutils-arm-none-eabi qemu-system-arm)",
)

TOY_W = np.array([[3, -1, 2, 0, 1, -2, 1, 1, -1], [-2, 2, 1, 1, -1, 3, 0, -1, 2]], dtype=np.int64)

TOY_H = """\
/* toy_model.h - TEST FIXTURE standing in for a generated edgeprune C model. */
#ifndef TOY_MODEL_H
#define TOY_MODEL_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
#define EP_TOY_INPUT_LEN (128 * 9)
#define EP_TOY_NUM_CLASSES 2
#define EP_TOY_SCRATCH_BYTES 8
int ep_toy_predict(const int16_t window[EP_TOY_INPUT_LEN], void *scratch,
                   int32_t scores[EP_TOY_NUM_CLASSES]);
#ifdef __cplusplus
}
#endif
#endif
"""

TOY_C = """\
/* toy_model.c - TEST FIXTURE: h_k <- (h_k >> 1) + sum_c x[t][c] * w[k][c]; class = argmax h. */
#include "toy_model.h"
static const int8_t toy_w[2][9] = {{3, -1, 2, 0, 1, -2, 1, 1, -1},
                                   {-2, 2, 1, 1, -1, 3, 0, -1, 2}};
int ep_toy_predict(const int16_t window[EP_TOY_INPUT_LEN], void *scratch,
                   int32_t scores[EP_TOY_NUM_CLASSES])
{
    int32_t *h = (int32_t *)scratch;
    h[0] = 0;
    h[1] = 0;
    for (int t = 0; t < 128; ++t) {
        for (int k = 0; k < 2; ++k) {
            int32_t acc = 0;
            for (int c = 0; c < 9; ++c) {
                acc += (int32_t)window[t * 9 + c] * toy_w[k][c];
            }
            h[k] = (h[k] >> 1) + acc;
        }
    }
    BEHAVIOUR
    scores[0] = h[0];
    scores[1] = h[1];
    return h[1] > h[0] ? 1 : 0;
}
"""

BEHAVIOURS = {
    "ok": "",
    "hang": 'for (;;) { __asm__ volatile(""); }',
    "crash": '__asm__ volatile("udf #0");',
}


def write_toy_model(folder: Path, behaviour: str = "ok", input_type: str = "int16_t") -> Path:
    """Write the stand-in C model (``ok``, ``hang`` forever, or ``crash`` with UDF)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "toy_model.h").write_text(TOY_H.replace("const int16_t", f"const {input_type}"))
    source = TOY_C.replace("BEHAVIOUR", BEHAVIOURS[behaviour])
    (folder / "toy_model.c").write_text(source.replace("const int16_t", f"const {input_type}"))
    return folder


def toy_reference(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """numpy twin of the stand-in model: (classes, scores)."""
    x = np.asarray(windows, dtype=np.int64).reshape(len(windows), 128, 9)
    h = np.zeros((len(x), 2), dtype=np.int64)
    for t in range(128):
        h = (h >> 1) + x[:, t, :] @ TOY_W.T
    return (h[:, 1] > h[:, 0]).astype(np.int64), h


def synthetic_windows(n: int, seed: int = 0) -> np.ndarray:
    """Random int16 windows (N, 128, 9) in +-4096."""
    return np.random.default_rng(seed).integers(-4096, 4097, size=(n, 128, 9)).astype(np.int16)


def uci_int_windows(mirror: Path, n: int) -> np.ndarray:
    """The first n official HAR test windows, scaled to int16 (x 4096, a Q12 input)."""
    chans = [
        f"{kind}_{axis}"
        for kind in ("body_acc", "body_gyro", "total_acc")
        for axis in ("x", "y", "z")
    ]
    x = np.stack([np.load(mirror / f"{c}_test.npy")[:n] for c in chans], axis=-1)
    return np.clip(np.round(x * 4096), -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toy_model(tmp_path_factory.mktemp("toy") / "c_model")


MCU_KEYS = {
    "board",
    "cpu",
    "flash_bytes",
    "ram_bytes",
    "model_bytes",
    "instructions_per_window",
    "instruction_method",
    "windows_run",
    "agreement",
}


@needs_tools
@pytest.mark.parametrize("board", BOARDS)
def test_synthetic_windows_agree(board: str, toy_dir: Path, tmp_path: Path) -> None:
    windows = synthetic_windows(6, seed=1)
    expected, scores = toy_reference(windows)
    mcu = firmware.build_and_run(toy_dir, windows, expected, board, tmp_path / board, 30)
    assert MCU_KEYS <= set(mcu)
    assert mcu["board"] == board
    assert mcu["cpu"] == firmware.BOARDS[board]["cpu"]
    assert mcu["agreement"] == 1.0
    assert mcu["windows_run"] == 6
    assert mcu["predictions"] == expected.tolist()
    assert mcu["scores"] == scores.tolist()
    # model bytes: the 18-byte weight table of toy_model.o
    assert mcu["model_bytes"] == 18
    assert 1000 < mcu["flash_bytes"] < 8000  # startup + semihosting + model, no test data
    assert mcu["testdata_bytes"] >= 6 * 1152 * 2
    assert 0 < mcu["model_code_bytes"] < 200  # the toy predict() only, no board code
    assert mcu["scratch_bytes"] == 8
    assert 0 < mcu["predict_stack_bytes"] < 256
    assert mcu["ram_bytes"] == mcu["static_ram_bytes"] + mcu["stack_max_bytes"]
    assert mcu["stack_max_bytes"] >= mcu["predict_stack_bytes"]
    # exact trace vs SysTick: one tick = 40 instructions under -icount shift=0
    ticks = mcu["systick_ticks_per_window"]
    assert len(set(ticks)) == 1  # no data-dependent branches in the toy model
    assert abs(mcu["instructions_per_window"] - 40 * ticks[0]) <= 80
    assert mcu["instruction_method"].startswith("exact")
    assert next(iter(mcu["instruction_profile"])) == "ep_toy_predict"
    assert next(iter(mcu["instruction_profile_lines"])).startswith("toy_model.c:")


@needs_tools
@pytest.mark.needs_uci
def test_real_har_windows_both_boards(uci_mirror: Path, toy_dir: Path, tmp_path: Path) -> None:
    windows = uci_int_windows(uci_mirror, 8)
    expected, _ = toy_reference(windows)
    for board in BOARDS:
        mcu = firmware.build_and_run(
            toy_dir, windows, expected, board, tmp_path / board, 30, exact=False
        )
        assert mcu["agreement"] == 1.0, mcu["predictions"]
        assert mcu["instruction_method"].startswith("systick")
        assert mcu["instructions_per_window"] > 0


@needs_tools
def test_cli_run_writes_mcu_section(toy_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "OUT"
    shutil.copytree(toy_dir, out / "c_model")
    windows = synthetic_windows(3, seed=2)
    expected, _ = toy_reference(windows)
    np.savez(out / "c_model" / "test_windows.npz", windows=windows, expected=expected)
    (out / "report.json").write_text(json.dumps({"accuracy": 0.9}))
    rc = cli.main(["run", "--artifacts", str(out), "--board", "mps2-an385", "--no-trace"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["accuracy"] == 0.9  # merged, not replaced
    assert MCU_KEYS <= set(report["mcu"])
    assert report["mcu"]["agreement"] == 1.0
    assert (out / "firmware" / "mps2-an385" / "build" / "firmware.elf").is_file()


@needs_tools
def test_disagreement_is_reported(toy_dir: Path, tmp_path: Path) -> None:
    windows = synthetic_windows(4, seed=3)
    expected, _ = toy_reference(windows)
    mcu = firmware.build_and_run(
        toy_dir, windows, 1 - expected, "mps2-an386", tmp_path / "fw", 30, exact=False
    )
    assert mcu["agreement"] == 0.0
    out = tmp_path / "OUT"
    shutil.copytree(toy_dir, out / "c_model")
    np.savez(out / "test_windows.npz", windows=windows, expected=1 - expected)
    assert cli.main(["run", "--artifacts", str(out), "--no-trace"]) == 6
    assert json.loads((out / "report.json").read_text())["mcu"]["agreement"] == 0.0


# --------------------------------------------------------------------- bad input catalogue


@pytest.mark.bad_input
def test_unknown_board_lists_known(toy_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(firmware.UnknownBoard, match="mps2-an386, mps2-an385"):
        firmware.build_and_run(toy_dir, synthetic_windows(1), None, "stm32f4", tmp_path)


@pytest.mark.bad_input
def test_unknown_board_cli(toy_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    shutil.copytree(toy_dir, tmp_path / "c_model")
    rc = cli.main(["build", "--artifacts", str(tmp_path), "--board", "esp32", "--synthetic"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "unknown board 'esp32'" in err and "mps2-an385" in err


@pytest.mark.bad_input
def test_missing_c_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "c_model").mkdir()
    with pytest.raises(firmware.MissingCModel, match="no C model"):
        firmware.build_and_run(tmp_path / "c_model", synthetic_windows(1), None, "mps2-an386")
    rc = cli.main(["run", "--artifacts", str(tmp_path / "nothing_here"), "--synthetic"])
    assert rc == 2
    rc = cli.main(["run", "--artifacts", str(tmp_path), "--synthetic"])
    err = capsys.readouterr().err
    assert rc == 2 and "no C model" in err and "Traceback" not in err


@pytest.mark.bad_input
def test_windows_of_wrong_shape(toy_dir: Path, tmp_path: Path) -> None:
    if not HAVE_TOOLS:
        pytest.skip("ARM toolchain missing")
    with pytest.raises(firmware.BuildFailed, match="EP_INPUT_LEN"):
        firmware.build_firmware(
            toy_dir, np.zeros((1, 64, 9), np.int16), None, "mps2-an386", tmp_path / "fw"
        )
    with pytest.raises(firmware.BadWindows, match="int16_t range"):
        firmware.build_firmware(
            toy_dir, np.full((1, 128, 9), 40000), None, "mps2-an386", tmp_path / "fw"
        )


@pytest.mark.bad_input
def test_missing_toolchain(
    toy_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(firmware.ToolchainMissing, match="arm-none-eabi-gcc"):
        firmware.build_and_run(toy_dir, synthetic_windows(1), None, "mps2-an386", tmp_path / "f")
    shutil.copytree(toy_dir, tmp_path / "OUT" / "c_model")
    rc = cli.main(["run", "--artifacts", str(tmp_path / "OUT"), "--synthetic"])
    err = capsys.readouterr().err
    assert rc == 3 and err.count("\n") == 1 and "gcc-arm-none-eabi" in err


@needs_tools
@pytest.mark.bad_input
def test_hanging_firmware_is_killed(tmp_path: Path) -> None:
    model = write_toy_model(tmp_path / "hang", "hang")
    with pytest.raises(firmware.FirmwareHung, match="did not finish within 2 s; QEMU killed"):
        firmware.build_and_run(model, synthetic_windows(1), None, "mps2-an386", tmp_path / "f", 2)


@needs_tools
@pytest.mark.bad_input
@pytest.mark.parametrize("board", BOARDS)
def test_crashing_firmware_reports_fault(board: str, tmp_path: Path) -> None:
    model = write_toy_model(tmp_path / "crash", "crash")
    with pytest.raises(firmware.FirmwareCrashed, match=r"crashed: EP FAULT .*exit status 3"):
        firmware.build_and_run(model, synthetic_windows(1), None, board, tmp_path / "f", 10)


@needs_tools
def test_cli_build_without_windows(toy_dir: Path, tmp_path: Path, capsys) -> None:
    shutil.copytree(toy_dir, tmp_path / "c_model")
    rc = cli.main(["build", "--artifacts", str(tmp_path), "--board", "mps2-an386"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["model_bytes"] == 18 and out["flash_bytes"] > 0
    # rebuilding replaces the folder it wrote; a foreign non-empty folder is refused
    assert cli.main(["build", "--artifacts", str(tmp_path)]) == 0
    with pytest.raises(firmware.BadOutputDir):
        firmware.build_firmware(toy_dir, synthetic_windows(1), None, "mps2-an386", tmp_path)


@needs_tools
def test_generated_folder_builds_with_make_werror(toy_dir: Path, tmp_path: Path) -> None:
    """Users' path: the generated folder is a plain make project, -Wall -Wextra clean."""
    windows = synthetic_windows(2, seed=4)
    expected, _ = toy_reference(windows)
    fw = tmp_path / "fw"
    firmware.build_firmware(toy_dir, windows, expected, "mps2-an385", fw)
    for board in BOARDS:
        subprocess.run(["make", "-s", "clean"], cwd=fw, check=True, timeout=60)
        proc = subprocess.run(
            ["make", "-s", f"BOARD={board}", "EXTRA_CFLAGS=-Werror", "TIMEOUT=20", "run"],
            cwd=fw,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout + proc.stderr
        assert "warning" not in out
        assert "EP END windows=2 mismatches=0" in out


@needs_tools
def test_long_windows_fall_back_to_systick(
    toy_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("edgeprune.firmware._run.EXACT_MAX_INSTRUCTIONS", 1000)
    windows = synthetic_windows(1)
    mcu = firmware.build_and_run(toy_dir, windows, None, "mps2-an386", tmp_path / "fw", 20)
    assert mcu["instruction_method"].startswith("systick")
    assert "exact trace skipped" in mcu["instruction_method"]
    assert mcu["instructions_per_window"] == 40 * mcu["systick_ticks_per_window"][0]
    assert mcu["agreement"] is None  # no reference given


@needs_tools
@pytest.mark.bad_input
def test_trace_of_a_qemu_that_dies_at_once(toy_dir: Path, tmp_path: Path) -> None:
    """QEMU failing before it opens its trace FIFO must not block the reader."""
    from edgeprune.firmware._run import exact_instructions

    built = firmware.build_firmware(toy_dir, synthetic_windows(1), None, "mps2-an386", tmp_path)
    with pytest.raises(firmware.FirmwareCrashed, match="no complete window"):
        exact_instructions(Path(built["elf"]), "no-such-machine", 10)


@needs_tools
def test_int8_input_model(tmp_path: Path) -> None:
    model = write_toy_model(tmp_path / "c8", input_type="int8_t")
    windows = np.random.default_rng(9).integers(-128, 128, size=(3, 128, 9)).astype(np.int8)
    expected, scores = toy_reference(windows)
    mcu = firmware.build_and_run(
        model, windows, expected, "mps2-an385", tmp_path / "fw", 20, exact=False
    )
    assert mcu["agreement"] == 1.0 and mcu["scores"] == scores.tolist()
    with pytest.raises(firmware.BadWindows, match="int8_t range"):
        firmware.build_firmware(
            model, windows.astype(np.int16) * 2, None, "mps2-an385", tmp_path / "fw"
        )
