"""Regenerate firmware_templates/cortex_m/tflm_members.txt: the libtensorflow-microlite.a
members edgeprune's TFLM firmware links, read from the link maps of board builds against
the full library (every op of DEFAULT_OPS registered; step bundle and single model; with
and without the arena probe). Needs a TFLM tree (../shared/tflm) and arm-none-eabi-gcc;
builds the full libraries once (cached). Usage: python scripts/tflm_members.py"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np

from edgeprune import firmware
from edgeprune.firmware import _tflm_board as tb

BUNDLE_H = """#ifndef EDGEPRUNE_MODEL_DATA_H_
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
SINGLE_H = "extern const unsigned char model_data[];\nconstexpr int kTensorArenaSize = 4096;\n"
CC = ('#include "model_data.h"\nalignas(16) const unsigned char model_data[] = {0x01,};\n'
      "alignas(16) const unsigned char model_data_head[] = {0x02,};\n")


def main() -> int:
    path = firmware.templates_dir() / "cortex_m" / tb.MEMBERS_FILE
    header = [ln for ln in path.read_text().splitlines() if ln.startswith("#")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, \
            mock.patch.object(tb, "subset_covers", lambda _d: False):  # the full library
        for variant in tb.VARIANTS:
            found: set[str] = set()
            for kind, h in (("bundle", BUNDLE_H), ("single", SINGLE_H)):
                src = Path(tmp) / kind / "tflm"
                src.mkdir(parents=True, exist_ok=True)
                (src / "model_data.h").write_text(h)
                (src / "model_data.cc").write_text(CC)  # unreadable: DEFAULT_OPS registered
                folder = firmware.generate_tflm(src, Path(tmp) / kind / "fw")["dir"]
                n = tb.folder_info(folder)["window_len"]
                for defines in ((), ("-DEP_TFLM_MEASURE_ARENA=4096",)):
                    built = tb.build_tflm_firmware(
                        folder, np.zeros((1, n), np.float32), None, variant,
                        Path(tmp) / f"{kind}-{variant}-{len(defines)}", defines=defines)
                    found |= tb.linked_members(Path(built["firmware_dir"]) / "build" /
                                               "firmware.map")
            rows += [f"{variant} {m}" for m in sorted(found)]
            print(f"{variant}: {len(found)} members", file=sys.stderr)
    path.write_text("\n".join([*header, *rows]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
