"""Finding a C model in a folder: its manifest (written by ``export.cmodel``) says its
names and files; a folder without one is read from its header.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeprune.firmware._errors import (
    MissingCModel,
)
from edgeprune.firmware._toolchain import _REPO_ROOT

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
