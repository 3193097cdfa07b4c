"""The C model tells the firmware builder its names: ``<name>_model.json`` (written by
``export.cmodel.generate_c``) is read, not the header."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeprune import firmware
from export import cmodel
from export.cmodel.manifest import Manifest

needs_arm = pytest.mark.skipif(
    not all(shutil.which(p) for p in ("arm-none-eabi-gcc", "make", "qemu-system-arm")),
    reason="ARM toolchain or QEMU missing")

# a hand-written model whose macros no header scan would guess (no INPUT/CLASSES/SCRATCH)
ODD_H = """#ifndef ODD_MODEL_H
#define ODD_MODEL_H
#include <stdint.h>
#define ODD_N (128 * 9)
#define ODD_K 2
#define ODD_WORK 8
int odd_run(const int16_t *w, void *s, int32_t *y);
#endif
"""
ODD_C = """#include "odd_model.h"
int odd_run(const int16_t *w, void *s, int32_t *y)
{
    int32_t a = 0;
    int i;
    (void)s;
    for (i = 0; i < ODD_N; i++) {
        a += w[i];
    }
    y[0] = a;
    y[1] = -a;
    return a < 0;
}
"""


def odd_model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "odd_model.h").write_text(ODD_H)
    (folder / "odd_model.c").write_text(ODD_C)
    m = Manifest(name="odd", header="odd_model.h", source="odd_model.c", predict_fn="odd_run",
                 input_type="int16_t", input_len="ODD_N", num_classes="ODD_K",
                 scratch_bytes="ODD_WORK", kernels="fast", formats=())
    (folder / "odd_model.json").write_text(m.to_json())
    return folder


def test_names_come_from_the_manifest(tmp_path):
    model = firmware.find_c_model(odd_model(tmp_path / "c"))
    assert (model.predict_fn, model.input_len, model.num_classes, model.scratch_bytes) == (
        "odd_run", "ODD_N", "ODD_K", "ODD_WORK")
    (tmp_path / "c" / "odd_model.json").unlink()
    with pytest.raises(firmware.MissingCModel):  # the header alone names nothing usable
        firmware.find_c_model(tmp_path / "c")


def test_generated_manifest_and_its_kernel_library(tmp_path):
    cal = np.random.default_rng(0).normal(0, 0.5, (16, 128, 9)).astype(np.float32)
    from test_firmware_cmodel import fastgrnn_params

    flat = cal.reshape(-1, 9)
    im = cmodel.quantize_fastgrnn(fastgrnn_params(0.9), flat.mean(0), flat.std(0), cal)
    paths = cmodel.generate_c(im, tmp_path / "small", "har2", kernels="small")
    data = json.loads(paths["manifest"].read_text())
    assert data["predict_fn"] == "ep_har2_predict" and data["kernels"] == "small"
    assert data["formats"] == sorted({s.format for s in im.matrices.values() if s})
    names = {f.name for f in firmware.find_c_model(tmp_path / "small").files}
    assert {"ep_kernels.h", "ep_kernels_ref.c", "ep_kernels_config.h"} <= names
    assert not any(n.startswith("ep_kernels_fast") for n in names)
    cmodel.generate_c(im, tmp_path / "fast", "har2")
    names = {f.name for f in firmware.find_c_model(tmp_path / "fast").files}
    assert "ep_kernels_fast_step.c" in names and "ep_kernels_ref.c" not in names


@pytest.mark.parametrize("text, match", [
    ("{", "not JSON"),
    ('{"schema": 7}', "not a schema-1"),
    ('{"schema": 1, "name": "odd"}', "missing header"),
])
def test_bad_manifest_is_one_line(tmp_path, text, match):
    folder = odd_model(tmp_path / "c")
    (folder / "odd_model.json").write_text(text)
    with pytest.raises(firmware.MissingCModel, match=match) as err:
        firmware.find_c_model(folder)
    assert "\n" not in str(err.value)


@needs_arm
def test_firmware_of_a_manifest_only_model_runs(tmp_path):
    folder = odd_model(tmp_path / "c")
    windows = np.random.default_rng(1).integers(-100, 100, (2, 128, 9))
    expected = (windows.reshape(2, -1).sum(1) < 0).astype(int)
    mcu = firmware.build_and_run(folder, windows, expected, "mps2-an385", tmp_path / "fw", 30,
                                 exact=False)
    assert mcu["agreement"] == 1.0 and mcu["kernels"] == "fast"
