#!/usr/bin/env bash
# Install the app into .venv and start it (http://localhost:8501).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -r requirements.txt
exec .venv/bin/streamlit run app.py "$@"
