"""The TensorFlow Lite Micro template: ``main.cc`` beside export.tflite's ``model_data.*``.

TFLM sources are on neither PyPI nor Debian, so this firmware is not compiled here; the
exported model itself is validated with the host ``tflite-micro`` runtime by export.tflite.
"""

from __future__ import annotations

import os
import re
import shutil
import string
from pathlib import Path

from edgeprune.firmware._build import MARKER, prepare_out_dir
from edgeprune.firmware._errors import MissingCModel
from edgeprune.firmware._toolchain import templates_dir

#: Registered when the model's own operator list cannot be read (no LiteRT on the host).
DEFAULT_OPS = (
    "ADD", "SUB", "MUL", "FULLY_CONNECTED", "LOGISTIC", "TANH", "QUANTIZE", "DEQUANTIZE",
    "RESHAPE", "CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "MEAN", "SOFTMAX",
)  # fmt: skip

_ARRAY_RE = r"const\s+unsigned\s+char\s+{name}\s*\[\s*\]\s*=\s*\{{([^}}]*)\}}"


def resolver_call(op: str) -> str:
    """TFLite builtin name -> MicroMutableOpResolver method: ``MAX_POOL_2D`` -> ``AddMaxPool2D``."""
    parts = op.strip().upper().split("_")
    return "Add" + "".join(p if p[:1].isdigit() else p.capitalize() for p in parts if p)


def read_array(cc_text: str, name: str) -> bytes:
    """The bytes of ``const unsigned char <name>[] = {0x.., ...}`` in a generated .cc."""
    m = re.search(_ARRAY_RE.format(name=re.escape(name)), cc_text)
    if m is None:
        raise MissingCModel(f"no array {name}[] in the TFLM model source")
    return bytes(int(v, 0) for v in m.group(1).replace("\n", " ").split(",") if v.strip())


def model_ops(tflite: bytes) -> list[str] | None:
    """Builtin operator names of a .tflite (via ai-edge-litert), or None if unavailable."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_content=tflite)
        return sorted({d["op_name"] for d in interp._get_ops_details()})
    except Exception:  # noqa: BLE001 - any failure means "unknown", the caller falls back
        return None


def generate_tflm(
    tflm_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    window_len: int = 128 * 9,
    num_classes: int = 2,
) -> dict[str, object]:
    """Write ``out_dir`` with main.cc, README.md, model_data.h/.cc and tflm_config.h.

    ``tflm_dir`` holds export.tflite's ``model_data.h``/``.cc`` (a FastGRNN step bundle is
    recognised by ``model_data_head``). ``window_len``/``num_classes`` matter only for a
    single-model export. Returns ``{"dir", "ops", "ops_source", "step_bundle"}``.
    Raises MissingCModel when the model files are absent.
    """
    src_dir = Path(tflm_dir)
    h, cc = src_dir / "model_data.h", src_dir / "model_data.cc"
    if not (h.is_file() and cc.is_file()):
        raise MissingCModel(f"no TFLM model in {src_dir}: expected model_data.h and model_data.cc")
    header, source = h.read_text(errors="replace"), cc.read_text(errors="replace")
    bundle = re.search(r"\bmodel_data_head\b", header) is not None
    ops: set[str] = set()
    ops_source = "model"
    for name in ("model_data", "model_data_head") if bundle else ("model_data",):
        found = model_ops(read_array(source, name))
        if found is None:
            ops, ops_source = set(DEFAULT_OPS), "default list (could not read the model's ops)"
            break
        ops |= set(found)
    calls = sorted({resolver_call(o) for o in ops if o and o != "DELEGATE"})
    tpl = templates_dir() / "tflm"
    dst = prepare_out_dir(out_dir)
    (dst / MARKER).write_text("written by edgeprune.firmware; the folder is replaced\n")
    for f in ("main.cc", "README.md"):
        shutil.copy2(tpl / f, dst / f)
    shutil.copy2(h, dst / h.name)
    shutil.copy2(cc, dst / cc.name)
    config = string.Template((tpl / "tflm_config.h.in").read_text()).substitute(
        model_header=h.name,
        step_bundle=int(bundle),
        window_len=int(window_len),
        num_classes=int(num_classes),
        num_ops=len(calls),
        add_ops="\n".join(f"        (resolver).{c}(); \\" for c in calls),
    )
    (dst / "tflm_config.h").write_text(config)
    return {"dir": str(dst), "ops": calls, "ops_source": ops_source, "step_bundle": bundle}
