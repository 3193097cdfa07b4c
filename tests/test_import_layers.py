"""Package layering: ``export`` and ``har_data`` never import ``edgeprune``; ``export`` (and
``edgeprune`` through it) sets ``TF_USE_LEGACY_KERAS=1`` on its own."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

PROBE = """
import json, os, sys
import {module}
print(json.dumps({{
    "loaded": sorted({{m.split(".")[0] for m in sys.modules}} & {{"edgeprune", "export"}}),
    "legacy_keras": os.environ.get("TF_USE_LEGACY_KERAS"),
}}))
"""


def _fresh_import(module: str) -> dict:
    """Import ``module`` in a new interpreter without TF_USE_LEGACY_KERAS set; what it left."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["export", "export.cmodel", "export.tflite",
                                    "export.fastgrnn_params"])
def test_export_does_not_import_edgeprune(module: str) -> None:
    got = _fresh_import(module)
    assert got["loaded"] == ["export"]
    assert got["legacy_keras"] == "1"


def test_har_data_imports_neither_edgeprune_nor_export() -> None:
    assert _fresh_import("har_data")["loaded"] == []


def test_edgeprune_sets_legacy_keras() -> None:
    got = _fresh_import("edgeprune")
    assert got["legacy_keras"] == "1"
    assert got["loaded"] == ["edgeprune", "export"]
