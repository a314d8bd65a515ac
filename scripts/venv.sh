#!/usr/bin/env bash
# Make .venv hold what the given requirements files list. pip runs only when one of them changed
# since the last install (it costs seconds even when there is nothing to do), so starting the app
# again starts Streamlit at once.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=".venv/.installed-$(cat requirements.txt "$@" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  for requirements in "$@"; do .venv/bin/pip install -q -r "$requirements"; done
  rm -f .venv/.installed-*
  touch "$stamp"
fi
