#!/usr/bin/env bash
# Install the project and its test tools into .venv (only when the requirements changed), then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/venv.sh requirements-test.txt
exec .venv/bin/python -m pytest "$@"
