#!/usr/bin/env bash
# Run the whole test suite: unit, integration (real HTTP, WebSocket, Redis) and browser (Chromium).
# Installs what the tests need when it is missing: the virtualenv with requirements-dev.txt,
# Debian's chromium and chromium-driver, Redis and PostgreSQL servers (started if not answering).
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

PG_URL="${MLOPS_TEST_POSTGRES_URL:-postgresql://127.0.0.1:5432/test}"
pg_ok() { "$PY" -c "import psycopg, sys; psycopg.connect(sys.argv[1], connect_timeout=2).close()" "$1" 2>/dev/null; }
if ! pg_ok "$PG_URL"; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then apt_install postgresql; fi
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  echo "==> starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
  for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 && break; sleep 0.2; done
  # A fresh install knows only the postgres role: add this user and the test database (peer auth).
  as_root su postgres -c "createuser --superuser $(id -un)" >/dev/null 2>&1 || true
  as_root su postgres -c "createdb test" >/dev/null 2>&1 || true
  if ! pg_ok "$PG_URL" && pg_ok "postgresql:///test"; then
    PG_URL="postgresql:///test"  # TCP needs a password here; the local socket does not
  fi
  pg_ok "$PG_URL" || { echo "error: PostgreSQL at $PG_URL does not answer" >&2; exit 1; }
fi
export MLOPS_TEST_POSTGRES_URL="$PG_URL"

set +e
"$PY" -m pytest "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
