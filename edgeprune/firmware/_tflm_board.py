"""The TFLM firmware folder built against TensorFlow Lite Micro and run on the emulated board.

TFLM itself comes from a TFLM tree (``../shared/tflm`` next to the checkout, or
``$EDGEPRUNE_TFLM_DIR``; its Makefile builds ``libtensorflow-microlite.a`` for a Cortex-M4F
with the reference kernels or CMSIS-NN). Only the archive members the firmware links are
compiled (``firmware_templates/cortex_m/tflm_members.txt``; the full library when a folder
registers an op outside ``DEFAULT_OPS``), once per tree content, variant, member list and
compiler, and kept under ``$EDGEPRUNE_CACHE`` (default ``~/.cache/edgeprune``)
``/tflm/<variant>[-subset]-<key>/``. The firmware is the folder ``generate_tflm`` writes (main.cc
with ``EP_TFLM_NO_MAIN`` and ``EP_TFLM_LOG=ep_puts``) plus the cortex_m board files and
``tflm_main.cc``, which runs the windows and prints the lines the C model's firmware
prints: the same parser, instruction counts and size accounting serve both.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shlex
import shutil
import string
import subprocess
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.firmware._build import (
    FLASH_SECTIONS,
    MARKER,
    _first_error_line,
    prepare_out_dir,
    section_sizes,
    write_windows_header,
)
from edgeprune.firmware._errors import (
    BadWindows,
    BuildFailed,
    FirmwareCrashed,
    MissingCModel,
    ToolchainMissing,
    UnknownBoard,
)
from edgeprune.firmware._parse import parse_output
from edgeprune.firmware._run import count_instructions, run_qemu
from edgeprune.firmware._tflm import DEFAULT_OPS, read_array, resolver_call
from edgeprune.firmware._toolchain import (
    _REPO_ROOT,
    BOARDS,
    CROSS,
    check_toolchain,
    templates_dir,
    toolchain_versions,
)

#: Kernel sets the TFLM tree builds: TFLM's reference kernels, or CMSIS-NN's.
VARIANTS = ("ref", "cmsis_nn")
#: The board the library is built for (TARGET_ARCH=cortex-m4+fp).
TFLM_BOARD = "mps2-an386"
#: Largest arena the measuring build tries (it bisects below it on the board).
MEASURE_ARENA_BYTES = 256 * 1024
#: Include paths (relative to the tree) an application needs besides the tree itself.
APP_INCLUDES = (".", "third_party/flatbuffers/include", "third_party/gemmlowp", "third_party/ruy")
#: Board C flags (the cortex_m Makefile's, mps2-an386) and link flags.
BOARD_CFLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os",
                "-g", "-std=c11", "-Wall", "-Wextra", "-ffunction-sections", "-fdata-sections")
LINK_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
              "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections")
#: Defines the board build adds to main.cc (the folder's own main() is left out).
APP_DEFINES = ("-DEP_TFLM_NO_MAIN", "-DEP_TFLM_LOG=ep_puts")

#: The member lists of the subset library (in firmware_templates/cortex_m/).
MEMBERS_FILE = "tflm_members.txt"

_BOARD_FILES = ("startup.c", "board.c", "board.h", "common.ld", f"{TFLM_BOARD}.ld",
                "tflm_main.cc")
_ARENA_LINE = re.compile(r"^EP ARENA used=(\d+) head_used=(\d+)$", re.MULTILINE)
_PROBE = re.compile(r"^EP PROBE ok=([01]) used=(\d+) out=(\d+)$", re.MULTILINE)
_CONST_RE = r"constexpr\s+(?:unsigned\s+)?int\s+{name}\s*=\s*(\d+)\s*;"


def default_tree() -> Path:
    """``$EDGEPRUNE_TFLM_DIR``, else ``../shared/tflm`` beside the checkout."""
    env = os.environ.get("EDGEPRUNE_TFLM_DIR")
    return Path(env) if env else _REPO_ROOT.parent / "shared" / "tflm"


def tflm_unavailable(tree: str | os.PathLike[str] | None = None) -> str | None:
    """Why TFLM firmware cannot be built here (one line), or None when it can."""
    root = Path(tree) if tree else default_tree()
    if not (root / "Makefile").is_file() or not (root / "sources_ref.txt").is_file():
        return f"no TFLM tree at {root} (set EDGEPRUNE_TFLM_DIR or provide ../shared/tflm)"
    missing = [p for p in (CROSS + "g++", CROSS + "gcc", CROSS + "ar", "make")
               if shutil.which(p) is None]
    if missing:
        return f"missing {', '.join(missing)} on PATH (Debian: gcc-arm-none-eabi, make)"
    probe = subprocess.run([CROSS + "g++", "-mcpu=cortex-m4", "-x", "c++", "-E", "-"],
                           input="#include <new>\n", capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return ("arm-none-eabi C++ headers missing (<new> not found; Debian: "
                "libstdc++-arm-none-eabi-dev)")
    return None


def check_tflm(tree: str | os.PathLike[str] | None = None) -> Path:
    """The TFLM tree, or ToolchainMissing naming what is absent."""
    reason = tflm_unavailable(tree)
    if reason is not None:
        raise ToolchainMissing(reason)
    return Path(tree) if tree else default_tree()


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise UnknownBoard(f"unknown TFLM variant {variant!r}; known: {', '.join(VARIANTS)}")


def _cache_root() -> Path:
    root = os.environ.get("EDGEPRUNE_CACHE") or os.path.join(Path.home(), ".cache", "edgeprune")
    return Path(root) / "tflm"


def library_members(variant: str) -> tuple[str, ...]:
    """The archive members (``name.o``) the firmware links for ``variant``: the subset the
    board build compiles (``firmware_templates/cortex_m/tflm_members.txt``)."""
    _check_variant(variant)
    lines = (templates_dir() / "cortex_m" / MEMBERS_FILE).read_text().splitlines()
    return tuple(sorted(m for v, m in (ln.split() for ln in lines
                                       if ln.strip() and not ln.startswith("#")) if v == variant))


def folder_ops(tflm_dir: str | os.PathLike[str]) -> set[str]:
    """The resolver calls (``AddTanh``, ...) a TFLM folder's tflm_config.h registers."""
    config = (Path(tflm_dir) / "tflm_config.h").read_text(errors="replace")
    return set(re.findall(r"\(resolver\)\.(Add\w+)\(\)", config))


def subset_covers(tflm_dir: str | os.PathLike[str]) -> bool:
    """Whether the member subset holds every kernel the folder registers (else the build
    needs the full library)."""
    return folder_ops(tflm_dir) <= {resolver_call(op) for op in DEFAULT_OPS}


def library_key(tree: Path, variant: str, members: tuple[str, ...] | None = None) -> str:
    """Cache key of a built library: hash of every file of the tree (sources, headers,
    flags files, Makefile; not ``build/``), the variant, the member list (None: all) and
    the compiler version."""
    h = hashlib.sha256(f"{variant}\n{toolchain_versions()['gcc']}\n".encode())
    if members is not None:  # (the full library's key is unchanged from before subsets)
        h.update(("members " + " ".join(members) + "\n").encode())
    for p in sorted(tree.rglob("*")):
        rel = p.relative_to(tree).as_posix()
        if p.is_file() and not rel.startswith("build/"):
            h.update(rel.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:20]


def tflm_library(variant: str, tree: str | os.PathLike[str] | None = None,
                 jobs: int = 2, *, subset: bool = True) -> Path:
    """``libtensorflow-microlite.a`` of ``variant`` built with the tree's Makefile (objects
    outside the tree) unless the cache holds it; concurrent callers wait for one build.
    ``subset``: only :func:`library_members` (what the firmware links; about a third of
    the sources), else every source of the tree. Cached under
    ``$EDGEPRUNE_CACHE/tflm/<variant>[-subset]-<key>/`` (see :func:`library_key`)."""
    _check_variant(variant)
    root = check_tflm(tree)
    members = library_members(variant) if subset else None
    key = library_key(root, variant, members)
    dest = _cache_root() / f"{variant}{'-subset' if subset else ''}-{key}"
    lib = dest / "libtensorflow-microlite.a"
    if lib.is_file():
        return lib
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f".{dest.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if lib.is_file():
            return lib
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".build-{variant}-") as tmp:
            cmd = ["make", "-s", "-C", str(root), f"VARIANT={variant}", f"OUT={tmp}/obj",
                   f"-j{max(1, jobs)}", "all"]
            cmd += [f"MEMBERS={' '.join(members)}"] if members is not None else []
            start = time.monotonic()
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
            except subprocess.TimeoutExpired as exc:
                raise BuildFailed(f"TFLM {variant} library build took over an hour") from exc
            if proc.returncode != 0:
                raise BuildFailed(f"TFLM {variant} library build failed: "
                                  f"{_first_error_line(proc.stderr + proc.stdout)}")
            seconds = time.monotonic() - start
            staged = Path(tmp) / "lib"
            staged.mkdir()
            shutil.copy2(Path(tmp) / "obj" / lib.name, staged / lib.name)
            (staged / "built-with.txt").write_text(
                f"{shlex.join(cmd)}\n# {seconds:.1f} s wall, {os.cpu_count()} CPUs\n")
            staged.rename(dest)
    return lib


def linked_members(map_file: str | os.PathLike[str]) -> set[str]:
    """The ``libtensorflow-microlite.a`` members a link map says the linker pulled in."""
    text = Path(map_file).read_text(errors="replace")
    return set(re.findall(r"libtensorflow-microlite\.a\(([^)\s]+)\)", text))


def app_cxxflags(tree: Path, variant: str) -> list[str]:
    """The C++ flags of an application linked with the variant's library: TFLM's own
    CXXFLAGS for it (``-DTF_LITE_STATIC_MEMORY``, CPU and ABI flags included), ``-Os``,
    and the include paths."""
    flags = shlex.split((tree / f"flags_{variant}_CXXFLAGS.txt").read_text())
    return [f for f in flags if f != "-MMD"] + ["-Os", "-g"] + [
        f"-I{(tree / inc).resolve()}" for inc in APP_INCLUDES]


# ---------------------------------------------------------------------------------------
# The firmware folder: what it holds, what it needs
# ---------------------------------------------------------------------------------------


def _header_int(text: str, name: str) -> int | None:
    m = re.search(_CONST_RE.format(name=name), text)
    return int(m.group(1)) if m else None


def folder_info(tflm_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """What a TFLM firmware folder (``generate_tflm``'s output) holds: ``step_bundle``,
    ``window_len``, ``num_classes``, ``arena`` ({"step", "head"} from model_data.h),
    ``model_bytes`` (the flatbuffers). MissingCModel if it is not such a folder."""
    d = Path(tflm_dir)
    need = ("main.cc", "tflm_config.h", "model_data.h", "model_data.cc")
    if not all((d / f).is_file() for f in need):
        raise MissingCModel(f"no TFLM firmware folder at {d}: expected {', '.join(need)}")
    header = (d / "model_data.h").read_text(errors="replace")
    config = (d / "tflm_config.h").read_text(errors="replace")
    source = (d / "model_data.cc").read_text(errors="replace")
    bundle = re.search(r"#define EP_TFLM_STEP_BUNDLE 1\b", config) is not None
    if bundle:
        seq, dim = _header_int(header, "kSeqLen"), _header_int(header, "kInputDim")
        classes = _header_int(header, "kNumClasses")
        window_len = seq * dim if seq and dim else None
    else:
        m_len = re.search(r"#define EP_TFLM_WINDOW_LEN \((\d+)\)", config)
        m_cls = re.search(r"#define EP_TFLM_NUM_CLASSES \((\d+)\)", config)
        window_len = int(m_len.group(1)) if m_len else None
        classes = int(m_cls.group(1)) if m_cls else None
    arena = {"step": _header_int(header, "kTensorArenaSize"),
             "head": _header_int(header, "kHeadTensorArenaSize") if bundle else 0}
    if window_len is None or classes is None or arena["step"] is None or arena["head"] is None:
        raise MissingCModel(f"{d}: model_data.h / tflm_config.h lack the window length, "
                            "classes or kTensorArenaSize")
    names = ("model_data", "model_data_head") if bundle else ("model_data",)
    return {"step_bundle": bundle, "window_len": window_len, "num_classes": classes,
            "arena": arena, "model_bytes": sum(len(read_array(source, n)) for n in names)}


def set_arena(tflm_dir: str | os.PathLike[str], arena: Mapping[str, int], note: str) -> None:
    """Write measured arena sizes into the folder's model_data.h (``kTensorArenaSize`` =
    ``arena["step"]``, ``kHeadTensorArenaSize`` = ``arena["head"]`` for a bundle), with
    ``note`` (how they were measured) as a comment above them."""
    path = Path(tflm_dir) / "model_data.h"
    text = path.read_text()
    for name, key in (("kTensorArenaSize", "step"), ("kHeadTensorArenaSize", "head")):
        text = re.sub(_CONST_RE.format(name=name).replace(r"(\d+)", r"\d+"),
                      f"constexpr int {name} = {int(arena[key])};", text)
    text = re.sub(r"\n// arena: [^\n]*", "", text)
    text = text.replace("\nconstexpr int kTensorArenaSize",
                        f"\n// arena: {note}\nconstexpr int kTensorArenaSize", 1)
    from har_data.atomic import atomic_write

    atomic_write(path, text.encode())


# ---------------------------------------------------------------------------------------
# Build and run on the board
# ---------------------------------------------------------------------------------------


def _compile(cmd: list[str], cwd: Path) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as exc:
        raise BuildFailed(f"TFLM firmware build in {cwd} took over 600 s") from exc
    if proc.returncode != 0:
        raise BuildFailed(f"TFLM firmware build failed in {cwd}: "
                          f"{_first_error_line(proc.stderr + proc.stdout)}")


def build_tflm_firmware(
    tflm_dir: str | os.PathLike[str],
    windows: Any,
    expected: Any | None,
    variant: str,
    out_dir: str | os.PathLike[str],
    *,
    tree: str | os.PathLike[str] | None = None,
    arena: Mapping[str, int] | None = None,
    defines: tuple[str, ...] = (),
    jobs: int = 2,
) -> dict[str, Any]:
    """Compile the TFLM folder with the board files for mps2-an386 against ``variant``'s
    library; ``windows`` (N, window_len) float normalised windows are embedded. ``arena``
    overrides model_data.h's sizes ({"step", "head"}); ``defines`` go to the C++ units.
    Returns the ELF and its sizes:
    ``flash_bytes`` (vectors + text + rodata + init arrays + data, without the test
    windows), ``static_ram_bytes`` (data + bss: the arenas included), ``arena_bytes``,
    ``model_bytes`` (the flatbuffers), ``code_bytes`` (flash minus model), ``sections``,
    ``library`` (and ``library_members``: "subset" or "all"), ``commands`` (the compile
    and link command lines)."""
    _check_variant(variant)
    check_toolchain(need_qemu=False)
    root = check_tflm(tree)
    info = folder_info(tflm_dir)
    subset = subset_covers(tflm_dir)
    lib = tflm_library(variant, root, jobs, subset=subset)
    w = np.asarray(windows, dtype=np.float32)
    w = w.reshape(w.shape[0], -1) if w.ndim == 3 else w
    if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] != info["window_len"]:
        raise BadWindows(f"windows must be (N, {info['window_len']}) floats, got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise BadWindows("windows hold NaN or Inf")
    e = np.full(len(w), -1) if expected is None else np.asarray(expected).reshape(-1)
    if e.shape[0] != w.shape[0]:
        raise BadWindows(f"{w.shape[0]} windows but {e.shape[0]} expected classes")
    sizes = dict(info["arena"]) if arena is None else {"step": int(arena["step"]),
                                                        "head": int(arena.get("head", 0))}
    dst = prepare_out_dir(out_dir)
    (dst / MARKER).write_text("written by edgeprune.firmware; the folder is replaced\n")
    tpl = templates_dir() / "cortex_m"
    for f in _BOARD_FILES:
        shutil.copy2(tpl / f, dst / f)
    shutil.copytree(tflm_dir, dst / "tflm", ignore=shutil.ignore_patterns("*.md", ".*"))
    (dst / "ep_config.h").write_text(string.Template(
        "/* ep_config.h - the TFLM board run: float normalised windows. */\n"
        "#ifndef EP_CONFIG_H\n#define EP_CONFIG_H\n#include <stdint.h>\n"
        "typedef float ep_input_t;\n#define EP_INPUT_LEN (${n})\n"
        "#define EP_NUM_CLASSES (${c})\n#define EP_SCRATCH_BYTES (${a})  /* the arenas */\n"
        "#endif\n").substitute(n=info["window_len"], c=info["num_classes"],
                               a=sizes["step"] + sizes["head"]))
    write_windows_header(dst / "windows.h", w, e)
    build = dst / "build"
    build.mkdir()
    cxx = [CROSS + "g++", *app_cxxflags(root, variant), "-I.", "-Itflm", *APP_DEFINES, *defines]
    if arena is not None:
        cxx += [f"-DEP_TFLM_ARENA_BYTES={sizes['step']}"]
        cxx += [f"-DEP_TFLM_HEAD_ARENA_BYTES={sizes['head']}"] if info["step_bundle"] else []
    cc = [CROSS + "gcc", *BOARD_CFLAGS, "-I."]
    units = [(cc, "startup.c"), (cc, "board.c"), (cxx, "tflm_main.cc"), (cxx, "tflm/main.cc"),
             (cxx, "tflm/model_data.cc")]
    cmds = [[*tool, "-c", src, "-o", f"build/{Path(src).stem}{'_app' if 'tflm/' in src else ''}.o"]
            for tool, src in units]
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        list(pool.map(lambda c: _compile(c, dst), cmds))
    elf = build / "firmware.elf"
    link = [CROSS + "gcc", *LINK_FLAGS, "-T", f"{TFLM_BOARD}.ld",
            "-Wl,-Map=build/firmware.map", *(c[-1] for c in cmds), str(lib), "-lm",
            "-o", "build/firmware.elf"]
    _compile(link, dst)
    sec = section_sizes(elf)
    flash = sum(sec.get(s, 0) for s in FLASH_SECTIONS)
    return {
        "board": TFLM_BOARD,
        "cpu": BOARDS[TFLM_BOARD]["cpu"],
        "variant": variant,
        "elf": str(elf),
        "firmware_dir": str(dst),
        "flash_bytes": flash,
        "static_ram_bytes": sec.get(".data", 0) + sec.get(".bss", 0),
        "arena_bytes": sizes["step"] + sizes["head"],
        "arena": sizes,
        "model_bytes": info["model_bytes"],
        "code_bytes": flash - info["model_bytes"],
        "testdata_bytes": sec.get(".ep_testdata", 0),
        "sections": {s: sec[s] for s in (*FLASH_SECTIONS, ".bss", ".ep_testdata") if s in sec},
        "library": str(lib),
        "library_members": "subset" if subset else "all",
        "commands": [shlex.join(c) for c in (*cmds, link)],
        "windows": w,
        "expected": e,
    }


def _arena_used(text: str, board: str) -> dict[str, int]:
    m = _ARENA_LINE.search(text)
    if m is None:
        raise FirmwareCrashed(f"TFLM firmware on {board} printed no arena line")
    return {"step": int(m.group(1)), "head": int(m.group(2))}


def measure_arena(
    tflm_dir: str | os.PathLike[str],
    variant: str,
    out_dir: str | os.PathLike[str],
    *,
    tree: str | os.PathLike[str] | None = None,
    timeout_s: float = 60.0,
) -> dict[str, int]:
    """The smallest arenas ({"step", "head"}, 16-byte steps) with which the folder's
    model(s) allocate, invoke and give the output they give in a large arena, on the board
    build of ``variant``: one probing build (tflm_main.cc with EP_TFLM_MEASURE_ARENA),
    bisected over QEMU runs starting from TFLM's ``arena_used_bytes()`` (a fault or an
    error is a failed probe). FirmwareCrashed if even the largest arena fails."""
    info = folder_info(tflm_dir)
    probe = build_tflm_firmware(
        tflm_dir, np.zeros((1, info["window_len"]), np.float32), None, variant, out_dir,
        tree=tree, defines=(f"-DEP_TFLM_MEASURE_ARENA={MEASURE_ARENA_BYTES}",))
    elf = Path(probe["elf"])

    def run(model: int, size: int) -> tuple[bool, int, int]:
        rc, out, _ = run_qemu(elf, TFLM_BOARD, timeout_s, args=(str(model), str(size)))
        m = _PROBE.search(out)
        ok = rc == 0 and m is not None and m.group(1) == "1"
        return ok, int(m.group(2)) if ok else 0, int(m.group(3)) if ok else 0

    sizes = {}
    for key, model in (("step", 0), ("head", 1)) if info["step_bundle"] else (("step", 0),):
        ok, used, reference = run(model, MEASURE_ARENA_BYTES)
        if not ok:
            raise FirmwareCrashed(
                f"TFLM arena measurement on {TFLM_BOARD} ({variant}): the {key} model does "
                f"not run even in {MEASURE_ARENA_BYTES} bytes (missing op or refused type?)")
        lo, hi = (used // 16) * 16 - 16, MEASURE_ARENA_BYTES  # lo fails, hi works
        while hi - lo > 16:
            mid = ((lo + hi) // 2) // 16 * 16
            ok, _, out = run(model, mid)
            lo, hi = (lo, mid) if ok and out == reference else (mid, hi)
        sizes[key] = hi
    sizes.setdefault("head", 0)
    return sizes


def tflm_build_and_run(
    tflm_dir: str | os.PathLike[str],
    windows: Any,
    expected: Any | None = None,
    expected_scores: Any | None = None,
    *,
    variant: str,
    out_dir: str | os.PathLike[str],
    tree: str | os.PathLike[str] | None = None,
    measure: bool = True,
    timeout_s: float = 120.0,
    exact: bool = False,
) -> dict[str, Any]:
    """Build the TFLM folder for mps2-an386 with ``variant``'s kernels, run it under QEMU.

    ``windows``: (N, 128, 9) float normalised windows; ``expected`` / ``expected_scores``:
    the host TFLM runtime's classes (N,) and quantised logits (N, C), or None.
    ``measure``: first :func:`measure_arena` finds the smallest arenas on the board, then
    the measured build runs with exactly those; else model_data.h's sizes are used.
    Returns the report: ``flash_bytes``, ``ram_bytes`` (data + bss + stack high-water;
    the arenas are in bss), ``arena_bytes``, ``arena`` ({"step", "head"}), ``arena_used``
    (TFLM's ``arena_used_bytes()``: less than it needs),
    ``instructions_per_window``, ``agreement`` / ``scores_agreement`` (None without a
    reference), per-window ``predictions`` and ``scores``, sizes and the build commands.
    A setup failure (missing op, unsupported type, arena) raises FirmwareCrashed quoting
    the firmware's ``EP TFLM ERROR`` line.
    """
    board = TFLM_BOARD
    check_toolchain(need_qemu=True)
    arena = (measure_arena(tflm_dir, variant, out_dir, tree=tree, timeout_s=timeout_s)
             if measure else None)
    built = build_tflm_firmware(tflm_dir, windows, expected, variant, out_dir, tree=tree,
                                arena=arena)
    w, e = built.pop("windows"), built.pop("expected")
    n = len(w)
    elf = Path(built["elf"])
    rc, out, wall = run_qemu(elf, board, timeout_s)
    res = parse_output(out, n, board, rc)
    classes = np.asarray(res.classes)
    known = e >= 0
    agreement = float(np.mean(classes[known] == e[known])) if known.any() else None
    scores_agreement = None
    if expected_scores is not None:
        ref = np.asarray(expected_scores).reshape(n, -1)
        scores_agreement = float(np.mean(np.all(np.asarray(res.scores) == ref, axis=1)))
    report: dict[str, Any] = {
        "board": board,
        "cpu": built["cpu"],
        "variant": variant,
        "flash_bytes": built["flash_bytes"],
        "ram_bytes": built["static_ram_bytes"] + res.stack_max,
        "arena_bytes": built["arena_bytes"],
        "arena": built["arena"],
        "arena_used": _arena_used(out, board),
        "model_bytes": built["model_bytes"],
        "instructions_per_window": None,
        "instruction_method": None,
        "windows_run": n,
        "agreement": agreement,
        "scores_agreement": scores_agreement,
        "code_bytes": built["code_bytes"],
        "static_ram_bytes": built["static_ram_bytes"],
        "stack_max_bytes": res.stack_max,
        "predict_stack_bytes": max(res.stack),
        "testdata_bytes": built["testdata_bytes"],
        "sections": built["sections"],
        "predictions": res.classes,
        "expected": [int(v) for v in e],
        "scores": res.scores,
        "qemu_wall_s": round(wall, 3),
        "elf": built["elf"],
        "library": built["library"],
        "commands": built["commands"],
        "toolchain": toolchain_versions(),
    }
    report.update(count_instructions(elf, board, res.ticks, timeout_s, exact).as_report())
    return report


# ---------------------------------------------------------------------------------------
# The host reference
# ---------------------------------------------------------------------------------------


def on_input_grid(model: Any, windows: Any) -> np.ndarray:
    """``windows`` moved onto the model's input quantisation grid (float32).

    The host runtime quantises in float64 rounding half to even, the firmware in float32
    rounding half away (as TFLite's QUANTIZE op): on an exact tie they can differ by one
    LSB. On the grid both give the same integers, so firmware and host see the same input.
    """
    from export.tflite import FastGRNNTFLite, make_interpreter
    from export.tflite._predict import dequantize, io_index, quantize

    first = model.step if isinstance(model, FastGRNNTFLite) else model
    details = make_interpreter(first).get_input_details()
    d = details[io_index(details, "x")] if isinstance(model, FastGRNNTFLite) else details[0]
    x = np.asarray(windows, dtype=np.float32)
    return dequantize(quantize(x, d), d).astype(np.float32)


def host_reference(model: Any, windows: Any) -> tuple[np.ndarray, np.ndarray]:
    """Classes (N,) and quantised logits (N, C) of the host ``tflite-micro`` runtime: what
    the firmware must print (its ``scores`` are the output tensor's integers)."""
    from export.tflite import FastGRNNTFLite, make_interpreter, predict_tflm
    from export.tflite._predict import quantize

    logits = predict_tflm(model, windows)
    last = model.head if isinstance(model, FastGRNNTFLite) else model
    out = make_interpreter(last).get_output_details()[0]
    if out["dtype"] == np.float32:
        scores = logits.astype(np.float32).view(np.int32).astype(np.int64)
    else:
        scores = quantize(logits, out).astype(np.int64)  # float32 of int logits: exact
    return logits.argmax(-1).astype(np.int64), scores
