#!/usr/bin/env bash
# Install the app into .venv (only when requirements.txt changed) and start it (http://localhost:8501).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/venv.sh requirements.txt
exec .venv/bin/streamlit run app.py "$@"
