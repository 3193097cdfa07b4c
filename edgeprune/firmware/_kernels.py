"""Which C kernel build (``fast`` or ``small``, see ``export.cmodel.kernels``) a firmware
gets: the one the C model folder says (``ep_kernels_config.h`` beside the model: small),
or the one asked for."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from export.cmodel.kernels import (
    C_DIR,
    CONFIG_NAME,
    check_kernels,
    config_header,
    kernel_files,
)
from export.cmodel.sparse import FORMATS


def folder_kernels(files: Sequence[Path]) -> str:
    """The build a C model's files select: ``small`` when they hold the config header."""
    return "small" if any(f.name == CONFIG_NAME for f in files) else "fast"


def with_kernels(files: Sequence[Path], kernels: str | None) -> tuple[list[Path], str | None, str]:
    """``(files, config, build)``: the model's files with the kernel library of ``kernels``
    (None: as the folder says, files unchanged), the text of ``ep_kernels_config.h`` to
    write beside them (None: keep the files' own) and the build's name. A ``small`` build
    of a folder without a config header compiles every storage format."""
    if kernels is None:
        return list(files), None, folder_kernels(files)
    check_kernels(kernels)
    library = {p.name for p in kernel_files("fast") + kernel_files("small")} | {CONFIG_NAME}
    own = [f for f in files if f.name not in library]
    have = {f.name for f in own}
    lib = [p for p in kernel_files(kernels) if p.name not in have]
    if (C_DIR / "ep_cnn.c").is_file() and "ep_cnn.c" not in have:
        lib.append(C_DIR / "ep_cnn.c")
    config = None
    if kernels == "small":
        given = [f for f in files if f.name == CONFIG_NAME]
        config = given[0].read_text() if given else config_header(list(FORMATS))
    return own + lib, config, kernels
