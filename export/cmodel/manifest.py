"""The C model's manifest, ``<name>_model.json`` beside ``<name>_model.h/.c``: what a
firmware builder needs to know about the generated model (its files, the predict
function, the macros of its sizes, the kernel build and the storage formats), written by
the generator so that nothing has to be read back out of the C.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import asdict, dataclass

SCHEMA = 1
SUFFIX = "_model.json"


@dataclass(frozen=True)
class Manifest:
    """One generated C model. ``input_len``, ``num_classes`` and ``scratch_bytes`` are the
    header's macro names (C expressions); ``input_type`` is ``int8_t`` or ``int16_t``;
    ``kernels`` is ``fast`` or ``small``; ``formats`` the storage formats its matrices use."""

    name: str
    header: str
    source: str
    predict_fn: str
    input_type: str
    input_len: str
    num_classes: str
    scratch_bytes: str
    kernels: str
    formats: tuple[str, ...]
    schema: int = SCHEMA

    @classmethod
    def for_model(cls, name: str, kernels: str, formats: list[str]) -> Manifest:
        """The manifest of ``export.cmodel``'s own output for model ``name``."""
        up = name.upper()
        return cls(name=name, header=f"{name}_model.h", source=f"{name}_model.c",
                   predict_fn=f"ep_{name}_predict", input_type="int16_t",
                   input_len=f"EP_{up}_INPUT_LEN", num_classes=f"EP_{up}_CLASSES",
                   scratch_bytes=f"EP_{up}_SCRATCH_BYTES", kernels=kernels,
                   formats=tuple(formats))

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "formats": list(self.formats)}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse a manifest; ``ValueError`` (one line) names what is wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"not JSON ({e.msg} at line {e.lineno})") from None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ValueError(f"not a schema-{SCHEMA} C model manifest")
        fields = [f for f in cls.__dataclass_fields__ if f != "schema"]
        missing = [f for f in fields if f not in data]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        if not all(isinstance(data[f], str) for f in fields if f != "formats") or \
                not isinstance(data["formats"], list):
            raise ValueError("fields must be strings (formats: a list)")
        if data["input_type"] not in ("int8_t", "int16_t"):
            raise ValueError(f"input_type must be int8_t or int16_t, got {data['input_type']!r}")
        if data["kernels"] not in ("fast", "small"):
            raise ValueError(f"kernels must be fast or small, got {data['kernels']!r}")
        return cls(**{**{f: data[f] for f in fields}, "formats": tuple(data["formats"])})


def manifest_path(folder: pathlib.Path, name: str) -> pathlib.Path:
    return folder / f"{name}{SUFFIX}"
