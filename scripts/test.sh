#!/usr/bin/env bash
# Set up .venv (if needed), install edgeprune with its test extras, and run the tests.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3.11 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/python -m ruff check .
exec .venv/bin/python -m pytest "$@"
