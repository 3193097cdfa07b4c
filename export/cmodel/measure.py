"""Byte accounting measured from compiled objects (host gcc and, if present, arm-none-eabi-gcc).

model_bytes = constant data sections of the model object (``.rodata*``, ``.data.rel.ro*``,
``.srodata*``): weights, indices, scales, biases, normalisation constants and the params
struct. code_bytes = ``.text*`` (and jump tables in ``.rodata``) of the kernel objects
(the build the model folder selects: ``ep_kernels_config.h`` beside it makes it the small
one; plus ``ep_cnn.c`` for a CNN) plus the model's predict function.
ram_bytes = the scratch macro (which holds the state) plus any ``.data``/``.bss`` of the
objects (expected 0). 1 KB = 1024 B.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field

from export.cmodel.kernels import C_DIR, kernel_sources

_CONST = (".rodata", ".data.rel.ro", ".srodata")
_CODE = (".text",)
_RAM = (".data", ".bss", ".sdata", ".sbss")

TOOLCHAINS = {
    "host-gcc": ("gcc", "size", ["-Os", "-std=c99"]),
    "arm-cortex-m4": ("arm-none-eabi-gcc", "arm-none-eabi-size",
                      ["-Os", "-std=c99", "-mcpu=cortex-m4", "-mthumb"]),
}


@dataclass
class ByteReport:
    """Measured bytes of one build; ``sections`` maps object -> {section: bytes}."""

    model_bytes: int
    code_bytes: int
    ram_bytes: int
    toolchain: str
    scratch_bytes: int
    sections: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def section_sizes(obj: pathlib.Path, size_tool: str = "size") -> dict[str, int]:
    """``size -A`` of an object file as {section: bytes} (sections of size 0 dropped)."""
    out = subprocess.run([size_tool, "-A", str(obj)], check=True, capture_output=True,
                         text=True).stdout
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            if int(parts[1]):
                sizes[parts[0]] = sizes.get(parts[0], 0) + int(parts[1])
    return sizes


def _sum(sizes: dict[str, int], prefixes: tuple[str, ...]) -> int:
    return sum(v for k, v in sizes.items()
               if any(k == p or k.startswith(p + ".") for p in prefixes)
               and not any(k == c or k.startswith(c + ".") for c in _CONST if c not in prefixes))


def _scratch_macro(header: pathlib.Path) -> int:
    m = re.search(r"#define EP_\w+_SCRATCH_BYTES (\d+)", header.read_text(encoding="ascii"))
    if not m:
        raise ValueError(f"{header} defines no EP_<NAME>_SCRATCH_BYTES")
    return int(m.group(1))


def measure_bytes(model_c: str | os.PathLike, toolchain: str = "host-gcc") -> ByteReport:
    """Compile ``<name>_model.c`` and the kernels with ``toolchain`` and measure them.

    ``toolchain``: ``host-gcc`` or ``arm-cortex-m4``. Raises ``OSError`` when the compiler
    is missing or ``ValueError`` for an unknown toolchain.
    """
    if toolchain not in TOOLCHAINS:
        raise ValueError(f"unknown toolchain {toolchain!r}; expected one of {list(TOOLCHAINS)}")
    cc, size_tool, flags = TOOLCHAINS[toolchain]
    if shutil.which(cc) is None or shutil.which(size_tool) is None:
        raise OSError(f"toolchain {toolchain}: {cc} or {size_tool} not found on PATH")
    model_c = pathlib.Path(model_c)
    header = model_c.with_suffix(".h")
    with tempfile.TemporaryDirectory(prefix="ep_measure_") as tmp:
        objs = {}
        # both builds' sources: ep_kernels_config.h (if any) makes one of them empty
        sources = [("model", model_c)] + [(f"kernels:{src.stem}", src) for src in
                                          kernel_sources("fast") + kernel_sources("small")]
        if "ep_normalize_input(" in model_c.read_text(encoding="ascii"):
            sources.append(("cnn", C_DIR / "ep_cnn.c"))
        for key, src in sources:
            obj = pathlib.Path(tmp) / f"{key}.o"
            res = subprocess.run([cc, *flags, "-I", str(C_DIR), "-I", str(model_c.parent),
                                  "-c", str(src), "-o", str(obj)], capture_output=True, text=True)
            if res.returncode:
                raise OSError(f"{cc} failed on {src.name}: {res.stderr.strip().splitlines()[-1:]}")
            objs[key] = section_sizes(obj, size_tool)
    scratch = _scratch_macro(header)
    model = objs["model"]
    return ByteReport(
        model_bytes=_sum(model, _CONST),
        code_bytes=sum(_sum(o, _CODE) for o in objs.values())
        + sum(_sum(o, _CONST) for k, o in objs.items() if k != "model"),
        ram_bytes=scratch + sum(_sum(o, _RAM) for o in objs.values()),
        toolchain=toolchain,
        scratch_bytes=scratch,
        sections=objs,
    )
