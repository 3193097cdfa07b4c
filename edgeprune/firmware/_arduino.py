"""The Arduino sketch: the generated C model beside ``edgeprune_har.ino``, and its wire format."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.firmware._build import MARKER, prepare_out_dir, render_config
from edgeprune.firmware._model import find_c_model
from edgeprune.firmware._toolchain import templates_dir

SKETCH = "edgeprune_har"
SYNC = b"EP"


def generate_arduino(c_model_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Write an Arduino sketch folder ``out_dir/edgeprune_har/`` and return it.

    It holds ``edgeprune_har.ino`` (from ``firmware_templates/arduino``), every C model file
    (kernels included) and the generated ``ep_config.h``; open it in the Arduino IDE or
    ``arduino-cli compile``. ``out_dir`` is replaced if this module wrote it before.
    Raises MissingCModel / BadOutputDir.
    """
    model = find_c_model(c_model_dir)
    root = prepare_out_dir(out_dir)
    (root / MARKER).write_text("written by edgeprune.firmware; the folder is replaced\n")
    sketch = root / SKETCH
    sketch.mkdir()
    src = templates_dir() / "arduino"
    shutil.copy2(src / f"{SKETCH}.ino", sketch / f"{SKETCH}.ino")
    shutil.copy2(src / "README.md", sketch / "README.md")
    for f in model.files:
        shutil.copy2(f, sketch / f.name)
    (sketch / "ep_config.h").write_text(render_config(model))
    return sketch


def encode_frame(window: Any, input_type: str = "int16_t") -> bytes:
    """One window as the sketch reads it: ``b"EP"`` + the values little-endian, time-major."""
    dtype = {"int16_t": "<i2", "int8_t": "i1"}[input_type]
    return SYNC + np.asarray(window).reshape(-1).astype(dtype).tobytes()


def parse_reply(line: str) -> tuple[int, list[int]]:
    """``class=<c> scores=<s0>,<s1> us=<t>`` -> (class, scores)."""
    fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
    return int(fields["class"]), [int(v) for v in fields["scores"].split(",")]
