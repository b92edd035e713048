#!/usr/bin/env bash
# Run the whole test suite: unit, integration (real HTTP, WebSocket, Redis) and browser (Chromium).
# Installs what the tests need when it is missing: the virtualenv with requirements-dev.txt,
# Debian's chromium and chromium-driver, and a Redis server (started if it is not answering).
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -x
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
ensure_venv "$ROOT/requirements-dev.txt"
cd "$ROOT"

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  apt_install chromium chromium-driver
fi

REDIS_URL="${MLOPS_TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"
export MLOPS_TEST_REDIS_URL="$REDIS_URL"
redis_ok() { "$PY" -c "import redis, sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()" "$REDIS_URL" 2>/dev/null; }
if ! redis_ok; then
  command -v redis-server >/dev/null || apt_install redis-server
  port="$("$PY" -c "import sys, urllib.parse; print(urllib.parse.urlparse(sys.argv[1]).port or 6379)" "$REDIS_URL")"
  echo "==> starting redis-server on 127.0.0.1:$port"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir /tmp \
    --logfile /tmp/mlops-test-redis.log
  for _ in $(seq 50); do redis_ok && break; sleep 0.1; done
  redis_ok || { echo "error: Redis at $REDIS_URL does not answer" >&2; exit 1; }
fi

set +e
"$PY" -m pytest "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
