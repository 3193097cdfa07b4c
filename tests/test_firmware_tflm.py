"""The TFLM template: generation from export.tflite's model_data.*, and a syntax check.

Without a TFLM tree (a fresh clone) main.cc is checked with ``g++ -fsyntax-only``
against minimal stand-in headers declaring the TFLM API it uses; the real build, run on
the emulated board, is ``tests/test_firmware_tflm_board.py`` (needs ``../shared/tflm``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from edgeprune import firmware
from edgeprune.firmware import _tflm_board
from edgeprune.firmware._tflm import DEFAULT_OPS, read_array, resolver_call

STUB_INTERP = """
#pragma once
#include <cstddef>
#include <cstdint>
enum TfLiteStatus { kTfLiteOk = 0, kTfLiteError = 1 };
enum TfLiteType { kTfLiteFloat32 = 1, kTfLiteInt16 = 7, kTfLiteInt8 = 9 };
struct TfLiteQuantizationParams { float scale; int32_t zero_point; };
union TfLitePtrUnion { int8_t* int8; int16_t* i16; float* f; void* data; };
struct TfLiteTensor {
  TfLiteType type; TfLitePtrUnion data; TfLiteQuantizationParams params; size_t bytes;
};
const char* TfLiteTypeGetName(TfLiteType);
namespace tflite {
struct Model { uint32_t version() const; };
const Model* GetModel(const void* buf);
class MicroOpResolver {};
class MicroInterpreter {
 public:
  MicroInterpreter(const Model*, const MicroOpResolver&, uint8_t*, size_t);
  TfLiteStatus AllocateTensors();
  TfLiteStatus initialization_status() const;
  size_t arena_used_bytes() const;
  TfLiteStatus Invoke();
  TfLiteTensor* input(size_t);
  TfLiteTensor* output(size_t);
};
}  // namespace tflite
"""

STUB_RESOLVER = """
#pragma once
#include "tensorflow/lite/micro/micro_interpreter.h"
namespace tflite {
template <unsigned int N> class MicroMutableOpResolver : public MicroOpResolver {
 public:
METHODS
};
}  // namespace tflite
"""

STUBS = {
    "tensorflow/lite/micro/micro_log.h": "#pragma once\nvoid MicroPrintf(const char*, ...);\n",
    "tensorflow/lite/micro/system_setup.h": "#pragma once\nnamespace tflite { void "
    "InitializeTarget(); }\n",
    "tensorflow/lite/schema/schema_generated.h": "#pragma once\n#define TFLITE_SCHEMA_VERSION 3\n",
    "tensorflow/lite/micro/micro_interpreter.h": STUB_INTERP,
    "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h": "#pragma once\nextern \"C\" "
    "void RegisterDebugLogCallback(void (*)(const char*));\n",
}

BUNDLE_H = """\
#ifndef EDGEPRUNE_MODEL_DATA_H_
#define EDGEPRUNE_MODEL_DATA_H_
extern const unsigned char model_data[];
extern const unsigned int model_data_len;
extern const unsigned char model_data_head[];
extern const unsigned int model_data_head_len;
constexpr int kTensorArenaSize = 2048;
constexpr int kHeadTensorArenaSize = 512;
constexpr int kSeqLen = 128;
constexpr int kInputDim = 9;
constexpr int kHiddenSize = 80;
constexpr int kNumClasses = 2;
constexpr int kStepInputX = 1;
constexpr int kStepInputH = 0;
constexpr float kXScale = 0.03f;
constexpr int kXZeroPoint = 0;
constexpr float kHScale = 0.0078f;
constexpr int kHZeroPoint = 0;
constexpr float kHNextScale = 0.0078f;
constexpr int kHNextZeroPoint = 0;
constexpr float kHeadInScale = 0.0078f;
constexpr int kHeadInZeroPoint = 0;
constexpr float kLogitsScale = 0.1f;
constexpr int kLogitsZeroPoint = -3;
#endif
"""

SINGLE_H = """\
extern const unsigned char model_data[];
extern const unsigned int model_data_len;
constexpr int kTensorArenaSize = 4096;
"""

CC = """\
#include "model_data.h"
alignas(16) const unsigned char model_data[] = {
    0x01, 0x02, 0x03,
};
const unsigned int model_data_len = 3;
alignas(16) const unsigned char model_data_head[] = {
    0x04,
};
"""


def write_stubs(root: Path) -> Path:
    for rel, text in STUBS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    methods = "\n".join(f"  TfLiteStatus {resolver_call(op)}();" for op in DEFAULT_OPS)
    (root / "tensorflow/lite/micro/micro_mutable_op_resolver.h").write_text(
        STUB_RESOLVER.replace("METHODS", methods)
    )
    return root


def test_resolver_names() -> None:
    assert resolver_call("FULLY_CONNECTED") == "AddFullyConnected"
    assert resolver_call("MAX_POOL_2D") == "AddMaxPool2D"
    assert resolver_call("DEPTHWISE_CONV_2D") == "AddDepthwiseConv2D"
    assert read_array(CC, "model_data_head") == b"\x04"


@pytest.mark.skipif(shutil.which("g++") is None, reason="host g++ missing")
@pytest.mark.parametrize("kind", ["bundle", "single"])
def test_main_cc_syntax(kind: str, tmp_path: Path) -> None:
    src = tmp_path / "tflm"
    src.mkdir()
    (src / "model_data.h").write_text(BUNDLE_H if kind == "bundle" else SINGLE_H)
    (src / "model_data.cc").write_text(CC)
    res = firmware.generate_tflm(src, tmp_path / "out")
    out = Path(res["dir"])
    assert res["step_bundle"] == (kind == "bundle")
    assert "AddFullyConnected" in res["ops"]  # default list: the stand-in bytes are no model
    assert {p.name for p in out.iterdir()} >= {
        "main.cc",
        "README.md",
        "tflm_config.h",
        "model_data.h",
        "model_data.cc",
    }
    stubs = write_stubs(tmp_path / "stubs")
    proc = subprocess.run(
        [
            "g++",
            "-std=c++17",
            "-fsyntax-only",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-DEP_TFLM_LOG=ep_puts",
            "-I",
            str(stubs),
            "-I",
            str(out),
            str(out / "main.cc"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.bad_input
def test_tflm_needs_model_data(tmp_path: Path) -> None:
    with pytest.raises(firmware.MissingCModel, match="model_data.h"):
        firmware.generate_tflm(tmp_path, tmp_path / "out")


# ---- the TFLM library subset (what the board build compiles) -------------------------


def _default_ops_folder(tmp_path: Path, kind: str = "bundle") -> Path:
    """A generated folder registering every op of DEFAULT_OPS (the stand-in bytes are no
    model, so generate_tflm falls back to the default list)."""
    src = tmp_path / kind / "tflm"
    src.mkdir(parents=True)
    (src / "model_data.h").write_text(BUNDLE_H if kind == "bundle" else SINGLE_H)
    (src / "model_data.cc").write_text(CC)
    return Path(firmware.generate_tflm(src, tmp_path / kind / "fw")["dir"])


def test_subset_covers_default_ops_only(tmp_path: Path) -> None:
    folder = _default_ops_folder(tmp_path)
    assert _tflm_board.folder_ops(folder) == {resolver_call(op) for op in DEFAULT_OPS}
    assert _tflm_board.subset_covers(folder)
    config = folder / "tflm_config.h"
    config.write_text(config.read_text().replace(
        "(resolver).AddTanh(); \\", "(resolver).AddTanh(); \\\n        (resolver).AddGather(); \\"))
    assert not _tflm_board.subset_covers(folder)  # another op: the full library


def test_member_lists() -> None:
    """Both variants listed; CMSIS-NN's holds the CMSIS-NN functions, the reference one
    none; the interpreter core and every exported op's kernel in both."""
    for variant in firmware.VARIANTS:
        members = firmware.library_members(variant)
        assert len(members) == len(set(members)) > 40
        assert {"micro_interpreter.o", "micro_allocator.o", "fully_connected.o", "tanh.o",
                "logistic.o", "conv.o", "expand_dims.o", "reduce.o"} <= set(members)
        arm = [m for m in members if m.startswith("arm_")]
        assert (len(arm) > 20) if variant == "cmsis_nn" else not arm


TREE_REASON = _tflm_board.tflm_unavailable()


@pytest.mark.skipif(TREE_REASON is not None, reason=f"no TFLM build here: {TREE_REASON}")
def test_member_lists_name_tree_sources() -> None:
    tree = _tflm_board.default_tree()
    for variant in firmware.VARIANTS:
        sources = (tree / f"sources_{variant}.txt").read_text().split()
        objects = {Path(s).stem + ".o" for s in sources if "/" in s}
        assert set(firmware.library_members(variant)) <= objects


@pytest.mark.slow
@pytest.mark.skipif(TREE_REASON is not None, reason=f"no TFLM build here: {TREE_REASON}")
@pytest.mark.parametrize("variant", ["ref", "cmsis_nn"])
def test_subset_library_links_exactly_its_members(variant: str, tmp_path: Path) -> None:
    """The firmware with every DEFAULT_OPS op registered links against the subset library
    (first run: builds it, about a third of TFLM's sources), and the linker pulls in every
    listed member: the list is what the firmware needs, no more (else regenerate it with
    scripts/tflm_members.py)."""
    import numpy as np

    folder = _default_ops_folder(tmp_path)
    built = _tflm_board.build_tflm_firmware(
        folder, np.zeros((1, 128 * 9), np.float32), None, variant, tmp_path / "fw")
    assert built["library_members"] == "subset"
    assert "-subset-" in built["library"]
    linked = firmware.linked_members(Path(built["firmware_dir"]) / "build" / "firmware.map")
    assert linked == set(firmware.library_members(variant))


@pytest.mark.bad_input
def test_board_run_refuses_an_unreadable_board_runs_json(tmp_path: Path, capsys) -> None:
    """tflm --board-run in a pipeline's run folder checks the report it will merge into
    (firmware/board_runs.json) before building anything: unreadable -> exit 2, untouched."""
    from edgeprune.firmware.__main__ import main

    out = tmp_path / "run"
    (out / "c_model").mkdir(parents=True)
    (out / "tflm").mkdir()
    (out / "tflm" / "model_data.h").write_text(BUNDLE_H)
    (out / "tflm" / "model_data.cc").write_text(CC)
    (out / "run.json").write_text("{}\n")
    (out / "firmware").mkdir()
    (out / "firmware" / "board_runs.json").write_text("{not json")
    assert main(["tflm", "--artifacts", str(out), "--board-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "board_runs.json: not valid JSON" in err[0], err
    assert (out / "firmware" / "board_runs.json").read_text() == "{not json"
    assert not list((out / "firmware").glob("tflm-mps2-an386-*"))  # nothing was built
