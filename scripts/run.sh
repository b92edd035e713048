#!/usr/bin/env bash
# Run the dashboard on the embedded defaults (memory event log, ./data): http://127.0.0.1:8050
# Settings come from MLOPS_* environment variables (README.md, "Configuration").
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
ensure_venv "$ROOT/requirements.txt"
cd "$ROOT"
exec "$PY" app.py "$@"
