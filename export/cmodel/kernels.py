"""The C kernel library's two builds: which files each needs and how a model selects one.

``fast`` (the default): the Cortex-M fast paths, ``export/c/ep_kernels_fast*.{h,c}``.
``small``: the portable reference ``export/c/ep_kernels_ref.c`` built with
``EP_KERNELS_SMALL`` and ``EP_FORMATS`` (only the storage formats the model uses), which
``ep_kernels_config.h`` beside the model defines (``ep_kernels.h`` includes it when the
compiler finds it). Both compute the same values bit for bit.
"""

from __future__ import annotations

import pathlib

from export.cmodel.sparse import FORMAT_TAGS, SparseMatrix

C_DIR = pathlib.Path(__file__).resolve().parent.parent / "c"
"""Directory holding the kernel library (shipped as package data)."""

KERNELS: tuple[str, ...] = ("fast", "small")
CONFIG_NAME = "ep_kernels_config.h"
"""The build choice written beside a ``small`` model (absent for ``fast``)."""


def check_kernels(kernels: str) -> str:
    """``kernels`` if it names a build, else ``ValueError`` (one line)."""
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {', '.join(KERNELS)}, got {kernels!r}")
    return kernels


def kernel_files(kernels: str = "fast") -> list[pathlib.Path]:
    """The kernel library files (headers and sources) a ``kernels`` build compiles."""
    check_kernels(kernels)
    if kernels == "small":
        return [C_DIR / "ep_kernels.h", C_DIR / "ep_kernels_ref.c"]
    return [C_DIR / "ep_kernels.h", *sorted(C_DIR.glob("ep_kernels_fast*.[ch]"))]


def kernel_sources(kernels: str = "fast") -> list[pathlib.Path]:
    """The ``.c`` files of :func:`kernel_files`."""
    return [p for p in kernel_files(kernels) if p.suffix == ".c"]


def model_formats(model: object) -> list[str]:
    """The storage formats (``sparse.FORMATS`` names) of a model's matrices, sorted."""
    mats: list[SparseMatrix | None]
    if hasattr(model, "matrices"):
        mats = list(model.matrices.values())
    else:
        mats = [layer.matrix for layer in model.layers]
    return sorted({m.format for m in mats if m is not None})


def config_header(formats: list[str]) -> str:
    """``ep_kernels_config.h`` of a ``small`` build using ``formats``."""
    mask = " | ".join(f"(1u << {FORMAT_TAGS[f]})" for f in formats) or "0u"
    return (
        "/* ep_kernels_config.h -- written by export.cmodel: this model's kernel build.\n"
        " * EP_KERNELS_SMALL: the portable kernels (ep_kernels_ref.c); EP_FORMATS: the\n"
        f" * storage formats its matrices use ({', '.join(formats) or 'none'}). */\n"
        "#ifndef EP_KERNELS_CONFIG_H\n#define EP_KERNELS_CONFIG_H\n\n"
        "#define EP_KERNELS_SMALL 1\n"
        f"#define EP_FORMATS ({mask})\n\n"
        "#endif /* EP_KERNELS_CONFIG_H */\n"
    )
