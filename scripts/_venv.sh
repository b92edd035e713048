# Sourced by run.sh and test.sh: make .venv exist and hold the given requirements file.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MLOPS_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  command -v apt-get >/dev/null || { echo "error: please install: $*" >&2; exit 1; }
  echo "==> apt-get install $*"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_venv() {
  local requirements="$1"
  if [ ! -x "$PY" ]; then
    local python="${PYTHON:-python3}"
    command -v "$python" >/dev/null || apt_install python3 python3-venv
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
      || { echo "error: Python 3.11 or newer is needed ($("$python" --version))" >&2; exit 1; }
    echo "==> creating $VENV"
    "$python" -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; rm -rf "$VENV"; "$python" -m venv "$VENV"; }
  fi
  # Reinstall only when the requirements changed since the last install.
  local stamp="$VENV/.installed-$(basename "$requirements")"
  local digest
  digest="$(cat "$ROOT/requirements.txt" "$requirements" | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    echo "==> installing $(basename "$requirements")"
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q -r "$requirements"
    echo "$digest" > "$stamp"
  fi
}
