#!/usr/bin/env bash
# Install the project and its test tools into .venv (only when the requirements changed), then run the whole test suite.
# With no arguments the suite runs in two parts: everything but the browser tests on every core (pytest-xdist; most
# of those tests start processes or wait on them), then the browser tests one at a time, since they measure frame
# rates and wait on a real Chromium that other tests would slow. Arguments go to one pytest run as given.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/venv.sh requirements-test.txt
if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
status=0
.venv/bin/python -m pytest -m "not browser" --numprocesses auto --maxprocesses 4 || status=$?
.venv/bin/python -m pytest -m browser || status=$?
exit "$status"
