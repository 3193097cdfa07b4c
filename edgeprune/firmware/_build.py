"""Generating and compiling the firmware source tree (the cortex_m template, the C model
and the generated ``ep_config.h`` / ``windows.h``), and its sizes from the ELF, the
objects and the linker map.
"""

from __future__ import annotations

import os
import re
import shutil
import string
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.firmware._errors import (
    BadOutputDir,
    BadWindows,
    BuildFailed,
)
from edgeprune.firmware._kernels import with_kernels
from edgeprune.firmware._model import CModel, find_c_model
from edgeprune.firmware._toolchain import CROSS, check_board, check_toolchain, templates_dir

_INT_RANGE = {"int8_t": (-128, 127), "int16_t": (-32768, 32767)}


def _check_windows(
    model: CModel, windows_int: Any, expected_classes: Any | None
) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(windows_int)
    if w.ndim == 3:
        w = w.reshape(w.shape[0], -1)
    if w.ndim != 2 or w.shape[0] < 1:
        raise BadWindows(
            f"windows must be (N, steps, channels) or (N, L) with N >= 1, got {w.shape}"
        )
    if not np.issubdtype(w.dtype, np.integer):
        if not np.all(np.isfinite(w)) or not np.all(w == np.round(w)):
            raise BadWindows(f"windows must hold integers in {model.input_type}, got {w.dtype}")
    lo, hi = _INT_RANGE[model.input_type]
    if w.size and (w.min() < lo or w.max() > hi):
        raise BadWindows(f"window values outside {model.input_type} range [{lo}, {hi}]")
    if expected_classes is None:
        e = np.full(w.shape[0], -1, dtype=np.int64)
    else:
        e = np.asarray(expected_classes).reshape(-1)
        if e.shape[0] != w.shape[0]:
            raise BadWindows(f"{w.shape[0]} windows but {e.shape[0]} expected classes")
        if not np.issubdtype(e.dtype, np.integer):
            raise BadWindows(f"expected classes must be integers, got {e.dtype}")
    return w.astype(np.int64), e.astype(np.int64)


def _c_array_rows(rows: np.ndarray, per_line: int = 24) -> str:
    out = []
    for row in rows:
        vals = [str(int(v)) for v in row]
        lines = [", ".join(vals[i : i + per_line]) for i in range(0, len(vals), per_line)]
        out.append("    {\n        " + ",\n        ".join(lines) + "\n    }")
    return ",\n".join(out)


MARKER = ".edgeprune-firmware"


def prepare_out_dir(out_dir: str | os.PathLike[str]) -> Path:
    """Empty ``out_dir`` for a new build: only a folder this module wrote (it holds
    ``MARKER``) is replaced; another non-empty folder raises BadOutputDir."""
    dst = Path(out_dir)
    if dst.exists():
        if not dst.is_dir() or (any(dst.iterdir()) and not (dst / MARKER).is_file()):
            raise BadOutputDir(
                f"output folder {dst} exists and was not written by edgeprune.firmware; "
                "pass an empty or new folder"
            )
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    return dst


def render_config(model: CModel) -> str:
    """``firmware_templates/ep_config.h.in`` with the model's names and sizes filled in."""
    return string.Template((templates_dir() / "ep_config.h.in").read_text()).substitute(
        model_header=model.header.name,
        model_name=model.name,
        input_type=model.input_type,
        input_len=model.input_len,
        num_classes=model.num_classes,
        scratch_bytes=model.scratch_bytes,
        predict_fn=model.predict_fn,
    )


def generate_firmware(
    model: CModel,
    windows: np.ndarray,
    expected: np.ndarray,
    board: str,
    out_dir: str | os.PathLike[str],
    kernels: str | None = None,
) -> Path:
    """Write the firmware source tree into ``out_dir`` (replacing it) and return it.

    ``out_dir`` gets the cortex_m template, ``model/`` with the C model files (with the
    ``kernels`` build, fast or small; None: the one the C model folder has), and the
    generated ``ep_config.h`` and ``windows.h``.
    """
    check_board(board)
    src = templates_dir() / "cortex_m"
    dst = prepare_out_dir(out_dir)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("build", "*.md"), dirs_exist_ok=True)
    (dst / MARKER).write_text("written by edgeprune.firmware; the folder is replaced on rebuild\n")
    (dst / "model").mkdir()
    files, kernels_config, _ = with_kernels(model.files, kernels)
    for f in files:
        shutil.copy2(f, dst / "model" / f.name)
    if kernels_config is not None:
        (dst / "model" / "ep_kernels_config.h").write_text(kernels_config)
    (dst / "ep_config.h").write_text(render_config(model))
    win = string.Template((src / "windows.h.in").read_text()).substitute(
        num_windows=windows.shape[0],
        window_len=windows.shape[1],
        windows_data=_c_array_rows(windows),
        expected_data="    " + ", ".join(str(int(v)) for v in expected),
    )
    (dst / "windows.h").write_text(win)
    (dst / "windows.h.in").unlink()
    return dst


def _first_error_line(text: str) -> str:
    """The line that says what went wrong: the linker's own words (a region that
    overflowed, a section that does not fit) before its driver's ``collect2`` summary."""
    lines = text.splitlines()
    for marker in ("overflowed by", "will not fit in region"):
        for line in lines:
            if marker in line:
                return line.strip()
    for line in lines:
        if "error" in line.lower() and not line.lstrip().startswith(("collect2", "make")):
            return line.strip()
    for line in lines:
        if "error" in line.lower():
            return line.strip()
    lines = [x for x in text.splitlines() if x.strip()]
    return lines[-1].strip() if lines else "(no output)"


def compile_firmware(src_dir: Path, board: str, timeout_s: float = 120.0) -> Path:
    """Run ``make BOARD=<board>`` in ``src_dir``; return the ELF or raise BuildFailed."""
    try:
        proc = subprocess.run(
            ["make", "-s", f"BOARD={board}"],
            cwd=src_dir,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildFailed(f"firmware build in {src_dir} took over {timeout_s:.0f} s") from exc
    if proc.returncode != 0:
        raise BuildFailed(
            f"firmware build failed in {src_dir}: {_first_error_line(proc.stderr + proc.stdout)}"
        )
    elf = src_dir / "build" / "firmware.elf"
    if not elf.is_file():
        raise BuildFailed(f"firmware build in {src_dir} produced no {elf.name}")
    return elf


FLASH_SECTIONS = (".isr_vector", ".text", ".rodata", ".ARM.exidx", ".data")


def section_sizes(path: Path) -> dict[str, int]:
    """``arm-none-eabi-size -A`` of an ELF or object: section name -> bytes."""
    out = subprocess.run(
        [CROSS + "size", "-A", str(path)], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = sizes.get(parts[0], 0) + int(parts[1])
    return sizes


def const_data_bytes(obj: Path) -> int:
    """Bytes of constant and initialised data (.rodata*, .data*) in a compiled object."""
    return sum(
        n
        for s, n in section_sizes(obj).items()
        if s.startswith((".rodata", ".data", ".srodata"))  # .data.rel.ro included
    )


_MAP_ENTRY = re.compile(
    r"^ (\.[\w.$]+)\s*(?:\n\s+)?0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)$", re.MULTILINE
)


def linked_sizes_by_object(map_file: Path) -> dict[str, dict[str, int]]:
    """Bytes each input object contributes to the linked ELF (after --gc-sections).

    From the GNU ld map: ``{object: {"text": n, "rodata": n, "data": n, "bss": n}}``;
    debug sections are ignored.
    """
    text = map_file.read_text(errors="replace")
    text = text.split("Linker script and memory map", 1)[-1]
    out: dict[str, dict[str, int]] = {}
    for sec, _addr, size, obj in _MAP_ENTRY.findall(text):
        kind = next((k for k in ("text", "rodata", "data", "bss") if sec.startswith("." + k)), None)
        if kind is None:
            continue
        sizes = out.setdefault(obj, {"text": 0, "rodata": 0, "data": 0, "bss": 0})
        sizes[kind] += int(size, 16)
    return out


@dataclass(frozen=True)
class FirmwareBuild:
    """A compiled firmware: ``flash_bytes`` (text + rodata + data + vectors, without the
    embedded test windows), ``static_ram_bytes`` (data + bss), ``model_bytes`` (const data
    of ``<name>_model.o``), ``kernel_const_bytes`` (const data of the kernels, e.g. the
    sigmoid table), ``code_bytes`` (flash minus model bytes), ``model_code_bytes`` (.text
    of the model and kernel objects as linked: the inference code without the
    board/printing code), ``kernels`` (the kernel build), ``testdata_bytes``, sections."""

    board: str
    cpu: str
    model: str
    elf: str
    firmware_dir: str
    flash_bytes: int
    model_bytes: int
    kernel_const_bytes: int
    code_bytes: int
    model_code_bytes: int
    kernels: str
    static_ram_bytes: int
    testdata_bytes: int
    sections: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_firmware_tree(
    c_model_dir: str | os.PathLike[str],
    windows_int: Any,
    expected_classes: Any | None,
    board: str,
    out_dir: str | os.PathLike[str],
    kernels: str | None = None,
) -> tuple[FirmwareBuild, np.ndarray, np.ndarray]:
    """Generate and compile the firmware of the C model in ``c_model_dir`` (``kernels``:
    fast, small, or None: as the folder says); return it with the checked windows and
    expected classes."""
    info = check_board(board)
    check_toolchain(need_qemu=False)
    model = find_c_model(c_model_dir)
    windows, expected = _check_windows(model, windows_int, expected_classes)
    src = generate_firmware(model, windows, expected, board, out_dir, kernels)
    elf = compile_firmware(src, board)
    sec = section_sizes(elf)
    flash = sum(sec.get(s, 0) for s in FLASH_SECTIONS)
    model_obj = src / "build" / "model" / f"{model.name}_model.o"
    model_bytes = const_data_bytes(model_obj)
    kernel_bytes = sum(
        const_data_bytes(o)
        for o in (src / "build" / "model").glob("*.o")
        if o.name != model_obj.name
    )
    by_obj = linked_sizes_by_object(src / "build" / "firmware.map")
    model_code = sum(v["text"] for k, v in by_obj.items() if k.startswith("build/model/"))
    built = FirmwareBuild(
        board=board,
        cpu=info["cpu"],
        model=model.name,
        elf=str(elf),
        firmware_dir=str(src),
        flash_bytes=flash,
        model_bytes=model_bytes,
        kernel_const_bytes=kernel_bytes,
        code_bytes=flash - model_bytes,
        model_code_bytes=model_code,
        kernels=with_kernels(model.files, kernels)[2],
        static_ram_bytes=sec.get(".data", 0) + sec.get(".bss", 0),
        testdata_bytes=sec.get(".ep_testdata", 0),
        sections={s: sec[s] for s in (*FLASH_SECTIONS, ".bss", ".ep_testdata") if s in sec},
    )
    return built, windows, expected

