#!/usr/bin/env bash
# Set up .venv (if needed), install edgeprune, and run the main job on the offline default.
# Extra arguments go to the pipeline, e.g. `bash scripts/run.sh --budget-kb 3`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3.11 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/python -m edgeprune.pipeline --model fastgrnn --budget-kb 8 "$@"
