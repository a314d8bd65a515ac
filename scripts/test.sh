#!/usr/bin/env bash
# Install the project and its test tools into .venv, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -r requirements-test.txt
exec .venv/bin/python -m pytest "$@"
