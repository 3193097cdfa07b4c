"""Build edgeprune's C model into bare-metal Cortex-M firmware, run it under QEMU, measure it.

The firmware is ``firmware_templates/cortex_m`` plus the generated C model plus two
generated headers (``ep_config.h``: names and sizes; ``windows.h``: the test windows and
the reference classes). It prints one line per window through semihosting; this module
parses them, compares them with the reference and measures flash, RAM and instructions.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import string
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.firmware._errors import (
    BadOutputDir,
    BadReport,
    BadWindows,
    BuildFailed,
    FirmwareCrashed,
    FirmwareError,
    FirmwareHung,
    MissingCModel,
    ToolchainMissing,
    UnknownBoard,
)
from edgeprune.firmware._kernels import with_kernels

#: QEMU boards the templates support (the Makefile holds each one's gcc flags).
BOARDS: dict[str, dict[str, str]] = {
    "mps2-an386": {"cpu": "cortex-m4", "description": "ARM MPS2 AN386, Cortex-M4F"},
    "mps2-an385": {"cpu": "cortex-m3", "description": "ARM MPS2 AN385, Cortex-M3"},
}

#: Under ``-icount shift=0`` one instruction is 1 ns of virtual time; the mps2 processor
#: clock that SysTick counts is 25 MHz: one tick = 40 instructions.
INSTRUCTIONS_PER_TICK = 40

#: Above this many instructions per window (SysTick estimate) the exact trace is skipped.
EXACT_MAX_INSTRUCTIONS = 40_000_000

QEMU = "qemu-system-arm"
CROSS = "arm-none-eabi-"

_REPO_ROOT = Path(__file__).resolve().parents[2]


def templates_dir() -> Path:
    """The ``firmware_templates`` folder: ``$EDGEPRUNE_FIRMWARE_TEMPLATES`` or the checkout's."""
    env = os.environ.get("EDGEPRUNE_FIRMWARE_TEMPLATES")
    candidates = [Path(env)] if env else []
    candidates += [
        _REPO_ROOT / "firmware_templates",  # the checkout, or site-packages when installed
        Path(__file__).resolve().parent / "templates",
    ]
    for c in candidates:
        if (c / "cortex_m" / "main.c").is_file():
            return c
    raise FirmwareError(
        "firmware templates not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); set EDGEPRUNE_FIRMWARE_TEMPLATES"
    )


def check_board(board: str) -> dict[str, str]:
    """Return the board's description, or raise UnknownBoard listing the known boards."""
    if board not in BOARDS:
        raise UnknownBoard(f"unknown board {board!r}; known boards: {', '.join(BOARDS)}")
    return BOARDS[board]


def check_toolchain(need_qemu: bool = True) -> None:
    """Raise ToolchainMissing naming every missing program (and the Debian packages)."""
    progs = [CROSS + "gcc", CROSS + "size", "make"] + ([QEMU] if need_qemu else [])
    missing = [p for p in progs if shutil.which(p) is None]
    if missing:
        raise ToolchainMissing(
            f"missing {', '.join(missing)} on PATH; install the Debian packages gcc-arm-none-eabi "
            "libnewlib-arm-none-eabi binutils-arm-none-eabi qemu-system-arm make"
        )


# ---------------------------------------------------------------------------------------
# The C model: find it and read its names and sizes from its header
# ---------------------------------------------------------------------------------------

_PREDICT_RE = re.compile(
    r"\bint\s+(ep_\w+?_predict)\s*\(\s*const\s+(int8_t|int16_t)\s+\*?\s*\w+\s*(?:\[[^\]]*\])?\s*,"
    r"\s*void\s*\*\s*\w+\s*,\s*int32_t\s*\*?\s*\w+\s*(?:\[[^\]]*\])?\s*\)"
)


@dataclass(frozen=True)
class CModel:
    """A generated C model: its files, and the names/sizes ep_config.h fills in.

    ``input_len``, ``num_classes`` and ``scratch_bytes`` are C expressions (usually the
    model header's own macros); ``input_type`` is ``int8_t`` or ``int16_t``.
    """

    name: str
    header: Path
    files: tuple[Path, ...]
    predict_fn: str
    input_type: str
    input_len: str
    num_classes: str
    scratch_bytes: str


def _macro(text: str, name: str, words: Sequence[str]) -> str | None:
    """The first ``#define`` whose name contains the model name and all ``words``."""
    for m in re.finditer(r"^\s*#\s*define\s+(\w+)\s+\S", text, re.MULTILINE):
        macro = m.group(1)
        up = macro.upper()
        if name.upper() in up and all(w in up for w in words):
            return macro
    return None


def _export_c_dir() -> Path | None:
    """The kernels folder ``export/c`` (next to the export package), if present."""
    here = _REPO_ROOT / "export" / "c"
    try:
        import importlib.util

        spec = importlib.util.find_spec("export")
        if spec is not None and spec.submodule_search_locations:
            here = Path(next(iter(spec.submodule_search_locations))) / "c"
    except (ImportError, ValueError):
        pass
    return here if here.is_dir() else None


_MAIN_RE = re.compile(r"^\s*int\s+main\s*\(", re.MULTILINE)


def _model_files(d: Path) -> list[Path]:
    """Every ``.h`` and every ``.c`` but a host driver (with a ``main``) of folder ``d``."""
    return sorted(
        p
        for p in d.iterdir()
        if p.is_file()
        and (
            p.suffix == ".h"
            or p.suffix == ".c"
            and not _MAIN_RE.search(p.read_text(errors="replace"))
        )
    )


def _from_manifest(d: Path, path: Path) -> CModel:
    """The model a generator's manifest describes (``export.cmodel.manifest``): its names
    as written, its files, and the kernel library of its build from ``export/c`` when the
    folder holds no copy."""
    from export.cmodel.kernels import C_DIR, kernel_files
    from export.cmodel.manifest import Manifest

    try:
        m = Manifest.from_json(path.read_text(errors="replace"))
    except ValueError as err:
        raise MissingCModel(f"{path}: {err}") from None
    for f in (m.header, m.source):
        if not (d / f).is_file():
            raise MissingCModel(f"{path} names {f}, which {d} lacks")
    files = _model_files(d)
    have = {p.name for p in files}
    if "ep_kernels.h" not in have:
        files += [p for p in (*kernel_files(m.kernels), C_DIR / "ep_cnn.c") if p.name not in have]
    return CModel(name=m.name, header=d / m.header, files=tuple(files), predict_fn=m.predict_fn,
                  input_type=m.input_type, input_len=m.input_len, num_classes=m.num_classes,
                  scratch_bytes=m.scratch_bytes)


def find_c_model(c_model_dir: str | os.PathLike[str]) -> CModel:
    """Find the model in ``c_model_dir``: the generator's manifest ``<name>_model.json``
    says its names and files (every ``.c``/``.h`` in the folder, plus the kernel library
    of its build when the folder has no copy).

    A folder without a manifest (a hand-written model, or one generated before manifests)
    is read from its ``<name>_model.h``: every ``.c``/``.h`` in the folder is part of the
    model; when it includes a header the folder lacks (``ep_kernels.h``), the kernel
    library of ``export/c`` is added (every ``.c``/``.h`` there but host drivers with a
    ``main``; unused code is dropped by ``--gc-sections``). Raises MissingCModel.
    """
    d = Path(c_model_dir)
    if not d.is_dir():
        raise MissingCModel(f"no C model: {d} is not a folder")
    manifests = sorted(d.glob("*_model.json"))
    if len(manifests) > 1:
        raise MissingCModel(
            f"several C models in {d} ({', '.join(m.name for m in manifests)}); "
            "pass one folder each"
        )
    if manifests:
        return _from_manifest(d, manifests[0])
    headers = sorted(d.glob("*_model.h"))
    headers = [h for h in headers if h.with_suffix(".c").is_file()]
    if not headers:
        raise MissingCModel(f"no C model in {d}: expected <name>_model.h and <name>_model.c")
    if len(headers) > 1:
        raise MissingCModel(
            f"several C models in {d} ({', '.join(h.name for h in headers)}); pass one folder each"
        )
    header = headers[0]
    name = header.name[: -len("_model.h")]
    text = header.read_text(errors="replace")
    m = _PREDICT_RE.search(text)
    if m is None:
        raise MissingCModel(
            f"{header}: no 'int ep_<name>_predict(const int8_t|int16_t *window, void *scratch, "
            "int32_t *scores)' declaration"
        )
    predict_fn, input_type = m.group(1), m.group(2)
    up = name.upper()
    defined = set(re.findall(r"^\s*#\s*define\s+(\w+)", text, re.MULTILINE))

    def pick(exact: str, *loose: list[str]) -> str | None:
        # export.cmodel's names (EP_<NAME>_SCRATCH_BYTES ...) first, then any similar macro
        if exact in defined:
            return exact
        return next((m for w in loose if (m := _macro(text, name, w))), None)

    scratch = pick(f"EP_{up}_SCRATCH_BYTES", ["SCRATCH"])
    input_len = pick(f"EP_{up}_INPUT_LEN", ["INPUT", "LEN"], ["INPUT", "SIZE"])
    classes = pick(f"EP_{up}_CLASSES", ["NUM_CLASSES"], ["CLASSES"])
    missing = [
        what
        for what, v in (
            ("scratch bytes", scratch),
            ("input length", input_len),
            ("classes", classes),
        )
        if v is None
    ]
    if missing:
        raise MissingCModel(f"{header}: no macro for {', '.join(missing)}")
    files = _model_files(d)
    have = {p.name for p in files}
    extra: list[Path] = []
    kernels = _export_c_dir()
    included = {
        inc
        for f in files
        for inc in re.findall(r'#\s*include\s+"([^"]+)"', f.read_text(errors="replace"))
    }
    if kernels is not None and any((kernels / inc).is_file() for inc in included - have):
        # the kernel library: every .h/.c of export/c except drivers with a main()
        for f in sorted(kernels.iterdir()):
            if f.suffix not in (".c", ".h") or f.name in have:
                continue
            if f.suffix == ".c" and _MAIN_RE.search(f.read_text(errors="replace")):
                continue
            extra.append(f)
            have.add(f.name)
    assert scratch is not None and input_len is not None and classes is not None
    return CModel(
        name=name,
        header=header,
        files=tuple(files + extra),
        predict_fn=predict_fn,
        input_type=input_type,
        input_len=input_len,
        num_classes=classes,
        scratch_bytes=scratch,
    )


# ---------------------------------------------------------------------------------------
# Generation: copy the template, fill in ep_config.h and windows.h
# ---------------------------------------------------------------------------------------

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


def _c_value(v: Any) -> str:
    """An integer, or a float32 literal that reads back bit-exactly."""
    if isinstance(v, (float, np.floating)):
        s = f"{float(np.float32(v)):.9g}"
        return s + ("f" if any(c in s for c in ".en") else ".0f")
    return str(int(v))


def _c_array_rows(rows: np.ndarray, per_line: int = 24) -> str:
    out = []
    for row in rows:
        vals = [_c_value(v) for v in row]
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
    shutil.copytree(
        src, dst, ignore=shutil.ignore_patterns("build", "*.md", "tflm_*"), dirs_exist_ok=True
    )
    (dst / MARKER).write_text("written by edgeprune.firmware; the folder is replaced on rebuild\n")
    (dst / "model").mkdir()
    files, kernels_config, _ = with_kernels(model.files, kernels)
    for f in files:
        shutil.copy2(f, dst / "model" / f.name)
    if kernels_config is not None:
        (dst / "model" / "ep_kernels_config.h").write_text(kernels_config)
    (dst / "ep_config.h").write_text(render_config(model))
    write_windows_header(dst / "windows.h", windows, expected)
    (dst / "windows.h.in").unlink()
    return dst


def write_windows_header(path: Path, windows: np.ndarray, expected: np.ndarray) -> None:
    """``windows.h`` from the cortex_m template: ``windows`` (N, L) in ``ep_input_t`` (ints,
    or float32 values written bit-exactly) and the expected classes (-1 = unknown)."""
    win = string.Template((templates_dir() / "cortex_m" / "windows.h.in").read_text()).substitute(
        num_windows=windows.shape[0],
        window_len=windows.shape[1],
        windows_data=_c_array_rows(windows),
        expected_data="    " + ", ".join(str(int(v)) for v in expected),
    )
    path.write_text(win)


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


# ---------------------------------------------------------------------------------------
# Measuring: sizes from the ELF and objects
# ---------------------------------------------------------------------------------------

FLASH_SECTIONS = (
    ".isr_vector", ".text", ".rodata", ".ARM.exidx", ".preinit_array", ".init_array",
    ".fini_array", ".data",
)


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


def symbol_address(elf: Path, symbol: str) -> int:
    """Address of a symbol in the ELF (Thumb bit cleared)."""
    out = subprocess.run(
        [CROSS + "nm", str(elf)], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == symbol:
            return int(parts[0], 16) & ~1
    raise BuildFailed(f"{elf}: symbol {symbol} not found")


# ---------------------------------------------------------------------------------------
# Running under QEMU
# ---------------------------------------------------------------------------------------


def qemu_command(
    elf: Path, board: str, extra: Sequence[str] = (), args: Sequence[str] = ()
) -> list[str]:
    """The QEMU command line: semihosting on, deterministic ``-icount shift=0``; ``args``
    become the program's semihosting command line (``firmware args...``)."""
    config = ",".join(["enable=on,target=native", *(f"arg={a}" for a in
                                                    (["firmware", *args] if args else []))])
    return [
        QEMU,
        "-M",
        board,
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-semihosting-config",
        config,
        "-icount",
        "shift=0",
        *extra,
        "-kernel",
        str(elf),
    ]


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def run_qemu(
    elf: Path, board: str, timeout_s: float, args: Sequence[str] = ()
) -> tuple[int, str, float]:
    """Run the firmware (``args``: its semihosting command line); return (exit status,
    output, wall seconds).

    Raises FirmwareHung (QEMU killed) when it runs past ``timeout_s``.
    """
    t0 = time.monotonic()
    proc = subprocess.Popen(
        qemu_command(elf, board, args=args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc)
        raise FirmwareHung(
            f"firmware on {board} did not finish within {timeout_s:g} s; QEMU killed"
        ) from exc
    return proc.returncode, out, time.monotonic() - t0


def toolchain_versions() -> dict[str, str]:
    """First line of ``--version`` of the compiler and of QEMU (for the report)."""
    out = {}
    for key, prog in (("gcc", CROSS + "gcc"), ("qemu", QEMU)):
        try:
            text = subprocess.run(
                [prog, "--version"], capture_output=True, text=True, timeout=30
            ).stdout
            out[key] = text.splitlines()[0].strip() if text else "?"
        except (OSError, subprocess.TimeoutExpired):
            out[key] = "?"
    return out


def _one_insn_per_tb() -> list[str]:
    """QEMU's flag for one instruction per translation block (renamed in QEMU 8.1)."""
    try:
        out = subprocess.run([QEMU, "--version"], capture_output=True, text=True, timeout=30).stdout
        m = re.search(r"version (\d+)\.(\d+)", out)
        if m and (int(m.group(1)), int(m.group(2))) >= (8, 1):
            return ["-accel", "tcg,one-insn-per-tb=on"]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return ["-singlestep"]


@dataclass
class TraceCount:
    """Exact count of one window: total, per function and per source line (most first)."""

    instructions: int
    by_function: dict[str, int]
    by_line: dict[str, int]


def _source_lines(elf: Path, pcs: dict[int, int], top: int) -> dict[str, int]:
    """Instructions per ``file:line`` (addr2line on the -g build), the ``top`` largest."""
    addrs = sorted(pcs)
    try:
        out = subprocess.run(
            [CROSS + "addr2line", "-e", str(elf), *(hex(a) for a in addrs)],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return {}
    lines: dict[str, int] = {}
    for addr, loc in zip(addrs, out, strict=False):
        key = Path(loc.split(" ")[0]).name or "?"
        lines[key] = lines.get(key, 0) + pcs[addr]
    return dict(sorted(lines.items(), key=lambda kv: -kv[1])[:top])


def exact_instructions(elf: Path, board: str, timeout_s: float, top_lines: int = 25) -> TraceCount:
    """Exact instructions of the first window's predict(), from a QEMU execution trace.

    Runs ``-singlestep -d exec,nochain`` (one trace line per executed instruction) with the
    log written to a FIFO, counts lines from the first ``ep_mark_begin`` to the first
    ``ep_mark_end`` and stops QEMU there (the count includes the ~3 instructions of the
    markers). Also attributes them to functions (the trace's symbol) and to source lines.
    Raises FirmwareHung past ``timeout_s``, FirmwareCrashed if no window completes.
    """
    begin = symbol_address(elf, "ep_mark_begin")
    end = symbol_address(elf, "ep_mark_end")
    killed = threading.Event()

    def unblock(fifo: Path) -> None:
        # a reader blocked in open() (QEMU died before opening its log) gets EOF
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass

    def kill(proc: subprocess.Popen[Any], fifo: Path) -> None:
        killed.set()
        _kill_group(proc)
        unblock(fifo)

    def watch(proc: subprocess.Popen[Any], fifo: Path) -> None:
        proc.wait()
        unblock(fifo)

    with tempfile.TemporaryDirectory(prefix="ep_trace_") as tmp:
        fifo = Path(tmp) / "exec.log"
        os.mkfifo(fifo)
        proc = subprocess.Popen(
            qemu_command(elf, board, [*_one_insn_per_tb(), "-d", "exec,nochain", "-D", str(fifo)]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        timer = threading.Timer(timeout_s, kill, args=(proc, fifo))
        timer.start()
        threading.Thread(target=watch, args=(proc, fifo), daemon=True).start()
        count = None
        pcs: dict[int, int] = {}
        names: dict[int, bytes] = {}
        try:
            with open(fifo, "rb") as log:
                started = False
                n = 0
                pat = re.compile(rb"\[[0-9a-f]+/([0-9a-f]+)/")
                for line in log:
                    m = pat.search(line)
                    if m is None:
                        continue
                    pc = int(m.group(1), 16)
                    if not started:
                        started = pc == begin
                        continue
                    n += 1
                    if pc == end:
                        count = n
                        break
                    if pc not in pcs:
                        pcs[pc] = 0
                        names[pc] = line.rsplit(b"] ", 1)[-1].strip() or b"?"
                    pcs[pc] += 1
        finally:
            timer.cancel()
            if proc.poll() is None:
                _kill_group(proc)
    if count is None:
        if killed.is_set():
            raise FirmwareHung(
                f"exact instruction trace on {board} did not finish within {timeout_s:g} s; "
                "QEMU killed"
            )
        raise FirmwareCrashed(f"exact instruction trace on {board} found no complete window")
    by_fn: dict[str, int] = {}
    for pc, c in pcs.items():
        key = names[pc].decode(errors="replace")
        by_fn[key] = by_fn.get(key, 0) + c
    return TraceCount(
        instructions=count,
        by_function=dict(sorted(by_fn.items(), key=lambda kv: -kv[1])),
        by_line=_source_lines(elf, pcs, top_lines),
    )


_LINE_W = re.compile(
    r"^EP W (\d+) class=(-?\d+) expected=(-?\d+) ticks=(\d+) stack=(\d+) scores=([-\d,]*)$"
)
_LINE_END = re.compile(r"^EP END windows=(\d+) mismatches=(\d+) stack_max=(\d+)$")
_LINE_BEGIN = re.compile(r"^EP BEGIN .*scratch=(\d+) stack_size=(\d+)$")


def parse_output(text: str, n_windows: int, board: str, rc: int) -> dict[str, Any]:
    """Parse the firmware's lines; raise FirmwareCrashed on a fault or incomplete output."""
    lines = [x.strip() for x in text.splitlines()]
    for line in lines:
        if line.startswith("EP FAULT"):
            raise FirmwareCrashed(f"firmware on {board} crashed: {line} (exit status {rc})")
    rows = [m for m in (_LINE_W.match(x) for x in lines) if m]
    end = next((m for m in (_LINE_END.match(x) for x in lines) if m), None)
    begin = next((m for m in (_LINE_BEGIN.match(x) for x in lines) if m), None)
    if rc != 0 or end is None or begin is None or len(rows) != n_windows:
        last = next((x for x in reversed(lines) if x), "(no output)")
        raise FirmwareCrashed(
            f"firmware on {board} exited with status {rc} after {len(rows)}/{n_windows} windows; "
            f"last output: {last[:200]}"
        )
    return {
        "classes": [int(m.group(2)) for m in rows],
        "ticks": [int(m.group(4)) for m in rows],
        "stack": [int(m.group(5)) for m in rows],
        "scores": [[int(v) for v in m.group(6).split(",") if v] for m in rows],
        "stack_max": int(end.group(3)),
        "scratch": int(begin.group(1)),
        "stack_size": int(begin.group(2)),
    }


def count_instructions(
    elf: Path, board: str, ticks: Sequence[int], timeout_s: float, exact: bool
) -> dict[str, Any]:
    """Instructions per window: SysTick ``ticks`` x 40 (mean), or with ``exact`` the exact
    count of window 0 from a QEMU trace (and its profile) unless it would be too long.

    Returns ``instructions_per_window``, ``instruction_method`` and, when traced,
    ``instruction_profile``, ``instruction_profile_lines``, ``instructions_per_tick``.
    """
    systick_instr = [t * INSTRUCTIONS_PER_TICK for t in ticks]
    report: dict[str, Any] = {
        "instructions_per_window": int(round(float(np.mean(systick_instr)))),
        "instruction_method": (
            f"systick: SysTick ticks x {INSTRUCTIONS_PER_TICK} under -icount shift=0 "
            "(25 MHz clock, 1 ns per instruction), mean over windows (+-40 per window)"
        ),
    }
    estimate = max(systick_instr)
    if exact and estimate > EXACT_MAX_INSTRUCTIONS:
        report["instruction_method"] += (
            f"; exact trace skipped ({estimate / 1e6:.0f} M instructions > "
            f"{EXACT_MAX_INSTRUCTIONS / 1e6:.0f} M)"
        )
    elif exact:
        # the trace runs ~1.5 s per million instructions: give it room beyond timeout_s
        trace_timeout = max(timeout_s, 10.0 + 3.0 * estimate / 1e6)
        try:
            trace = exact_instructions(elf, board, trace_timeout)
        except FirmwareHung:
            report["instruction_method"] += f"; exact trace gave up after {trace_timeout:.0f} s"
        else:
            count = trace.instructions
            report["instructions_per_window"] = count
            report["instruction_profile"] = trace.by_function
            report["instruction_profile_lines"] = trace.by_line
            report["instruction_method"] = (
                "exact: QEMU -singlestep -d exec,nochain trace of window 0, instructions from "
                "ep_mark_begin to ep_mark_end (instruction count, not cycles)"
            )
            report["instructions_per_tick"] = round(count / ticks[0], 3) if ticks[0] else None
    return report


# ---------------------------------------------------------------------------------------
# The public entry points
# ---------------------------------------------------------------------------------------


def build_firmware(
    c_model_dir: str | os.PathLike[str],
    windows_int: Any,
    expected_classes: Any | None,
    board: str,
    out_dir: str | os.PathLike[str],
    kernels: str | None = None,
) -> dict[str, Any]:
    """Generate and compile the firmware (``kernels``: fast, small, or None: as the C
    model folder says); return its sizes (no QEMU needed).

    Returns a dict with ``board``, ``cpu``, ``elf``, ``flash_bytes`` (text + rodata + data
    + vectors, without the embedded test windows), ``static_ram_bytes`` (data + bss),
    ``model_bytes`` (const data of the compiled ``<name>_model.o``), ``kernel_const_bytes``
    (const data of the kernels, e.g. the sigmoid table), ``code_bytes`` (flash minus model
    bytes), ``model_code_bytes`` (.text of the model and kernel objects as linked: the
    inference code without the board/printing code), ``kernels`` (the build),
    ``testdata_bytes`` and the sections.
    """
    return _build(c_model_dir, windows_int, expected_classes, board, out_dir, kernels)[0]


def _build(
    c_model_dir: str | os.PathLike[str],
    windows_int: Any,
    expected_classes: Any | None,
    board: str,
    out_dir: str | os.PathLike[str],
    kernels: str | None = None,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """build_firmware, also returning the checked windows and expected classes."""
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
    return (
        {
            "board": board,
            "cpu": info["cpu"],
            "model": model.name,
            "elf": str(elf),
            "firmware_dir": str(src),
            "flash_bytes": flash,
            "model_bytes": model_bytes,
            "kernel_const_bytes": kernel_bytes,
            "code_bytes": flash - model_bytes,
            "model_code_bytes": model_code,
            "kernels": with_kernels(model.files, kernels)[2],
            "static_ram_bytes": sec.get(".data", 0) + sec.get(".bss", 0),
            "testdata_bytes": sec.get(".ep_testdata", 0),
            "sections": {s: sec[s] for s in (*FLASH_SECTIONS, ".bss", ".ep_testdata") if s in sec},
        },
        windows,
        expected,
    )


def build_and_run(
    c_model_dir: str | os.PathLike[str],
    windows_int: Any,
    expected_classes: Any | None,
    board: str = "mps2-an386",
    out_dir: str | os.PathLike[str] = "firmware",
    timeout_s: float = 60.0,
    exact: bool = True,
    kernels: str | None = None,
) -> dict[str, Any]:
    """Build the C model in ``c_model_dir`` for ``board``, run it on ``windows_int`` under QEMU.

    Contract:
      * ``c_model_dir`` holds one generated ``<name>_model.h``/``.c`` (if it lacks the
        kernels it includes, the kernel library comes from ``export/c``).
      * ``windows_int``: (N, 128, 9) or (N, 1152) integers in the model's input type
        (int8/int16), exactly what the Python integer reference was given.
      * ``expected_classes``: (N,) classes from the Python integer reference, or None.
      * ``out_dir`` is replaced by the firmware sources and ``build/``; call again with a
        different ``out_dir`` (e.g. a dense build of the same model) to compare.
      * ``timeout_s`` bounds the QEMU run; a hang raises FirmwareHung.
      * ``exact``: count window 0 exactly from an execution trace (and profile it); else,
        or when the trace would be too long, SysTick x 40 (``instruction_method`` says).
      * ``kernels``: the C kernel build, ``fast`` or ``small`` (None: the C model folder's,
        small when it holds ``ep_kernels_config.h``); the report's ``kernels`` names it.

    Returns the ``mcu`` report section: ``board``, ``cpu``, ``flash_bytes``, ``ram_bytes``
    (data + bss + measured stack high-water), ``model_bytes``, ``instructions_per_window``,
    ``instruction_method``, ``windows_run``, ``agreement`` (None without expected classes),
    plus details (per-window classes/instructions, scratch and stack bytes, code bytes).
    Raises a FirmwareError subclass (one-line message) on any failure.
    """
    check_board(board)
    check_toolchain(need_qemu=True)
    built, windows, expected = _build(c_model_dir, windows_int, expected_classes, board, out_dir,
                                      kernels)
    n = windows.shape[0]
    elf = Path(built["elf"])
    rc, out, wall = run_qemu(elf, board, timeout_s)
    res = parse_output(out, n, board, rc)
    ticks = res["ticks"]
    systick_instr = [t * INSTRUCTIONS_PER_TICK for t in ticks]
    known = expected >= 0
    agreement = (
        float(np.mean(np.asarray(res["classes"])[known] == expected[known]))
        if known.any()
        else None
    )
    report: dict[str, Any] = {
        "board": built["board"],
        "cpu": built["cpu"],
        "flash_bytes": built["flash_bytes"],
        "ram_bytes": built["static_ram_bytes"] + res["stack_max"],
        "model_bytes": built["model_bytes"],
        "instructions_per_window": None,
        "instruction_method": None,
        "windows_run": n,
        "agreement": agreement,
        "model": built["model"],
        "code_bytes": built["code_bytes"],
        "model_code_bytes": built["model_code_bytes"],
        "kernels": built["kernels"],
        "kernel_const_bytes": built["kernel_const_bytes"],
        "static_ram_bytes": built["static_ram_bytes"],
        "stack_max_bytes": res["stack_max"],
        "scratch_bytes": res["scratch"],
        "predict_stack_bytes": max(res["stack"]),
        "inference_ram_bytes": res["scratch"] + max(res["stack"]),
        "testdata_bytes": built["testdata_bytes"],
        "sections": built["sections"],
        "systick_ticks_per_window": ticks,
        "instructions_per_window_systick": float(np.mean(systick_instr)),
        "predictions": res["classes"],
        "expected": [int(v) for v in expected],
        "scores": res["scores"],
        "qemu_wall_s": round(wall, 3),
        "elf": built["elf"],
        "toolchain": toolchain_versions(),
    }
    report.update(count_instructions(elf, board, ticks, timeout_s, exact))
    return report


def write_report(
    report_path: str | os.PathLike[str], section: dict[str, Any], key: str = "mcu"
) -> Path:
    """Merge ``{key: section}`` into the JSON report ``report_path`` (created if absent),
    keeping its other sections. A report that exists but cannot be read is never
    replaced: BadReport names it."""
    from edgeprune.pipeline.reportfile import UnreadableReport, merge_section

    path = Path(report_path)
    try:
        merge_section(path, key, section)
    except UnreadableReport as err:
        raise BadReport(f"{err}; nothing was written (move it away or repair it)") from None
    return path


def compare_builds(sparse: dict[str, Any], dense: dict[str, Any]) -> dict[str, Any]:
    """Dense-vs-sparse summary of two ``build_and_run`` results of the same model.

    Ratios are dense / sparse (> 1: the sparse build is smaller or faster); the boards
    must match.
    """
    if sparse.get("board") != dense.get("board"):
        raise ValueError(
            f"compare builds on one board, got {sparse.get('board')} and {dense.get('board')}"
        )

    def ratio(key: str) -> float | None:
        a, b = sparse.get(key), dense.get(key)
        return round(b / a, 3) if a and b is not None else None

    keys = ("model_bytes", "flash_bytes", "ram_bytes", "instructions_per_window")
    return {
        "board": sparse["board"],
        "sparse": {k: sparse.get(k) for k in keys},
        "dense": {k: dense.get(k) for k in keys},
        "dense_over_sparse": {k: ratio(k) for k in keys},
    }
