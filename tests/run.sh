#!/usr/bin/env bash
# README's test command: installs what the tests need on a fresh Debian machine, starts real
# PostgreSQL and Redis on private ports, runs the whole suite (unit, sync with sandboxes as
# processes and real Celery workers, Playwright in Debian's Chromium), and stops what it started.
# Extra arguments go to pytest (e.g. `bash tests/run.sh -k queue`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

need=()
command -v chromium >/dev/null || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]} (Debian packages)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q "${need[@]}" >/dev/null
fi

echo "== python environment"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv 2>/dev/null || {
    # Debian's python3 ships venv/ensurepip separately.
    rm -rf .venv
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null
    python3 -m venv .venv
  }
fi
.venv/bin/python -m pip install -q --disable-pip-version-check uv
.venv/bin/uv pip install -q --python .venv/bin/python -r requirements-test.txt

W=$(mktemp -d) && chmod 755 "$W"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGPORT=${TEST_PGPORT:-55432}
REDISPORT=${TEST_REDISPORT:-56379}
cleanup() {
  set +e
  [ -f "$W/pg/data/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate stop >/dev/null 2>&1
  redis-cli -p "$REDISPORT" shutdown nosave >/dev/null 2>&1
  rm -rf "$W"
}
trap cleanup EXIT

echo "== starting PostgreSQL on $PGPORT and Redis on $REDISPORT"
mkdir "$W/pg"
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$W/pg"
  AS_PG="runuser -u postgres --"
else
  AS_PG=""
fi
$AS_PG "$PGBIN/initdb" -D "$W/pg/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
$AS_PG "$PGBIN/pg_ctl" -D "$W/pg/data" -l "$W/pg/server.log" -w \
  -o "-p $PGPORT -c listen_addresses=127.0.0.1 -k $W/pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
psql -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "CREATE ROLE app LOGIN PASSWORD 'app' CREATEDB" -c "CREATE DATABASE app OWNER app" >/dev/null
redis-server --port "$REDISPORT" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
  --pidfile "$W/redis.pid" --logfile "$W/redis.log" --dir "$W"

export DATABASE_URL="postgres://app:app@127.0.0.1:$PGPORT/app"
export REDIS_URL="redis://127.0.0.1:$REDISPORT/0"
export CHROMIUM_PATH=${CHROMIUM_PATH:-$(command -v chromium)}
export DJANGO_ALLOW_ASYNC_UNSAFE=true
export SANDBOXES_ALLOWED=1  # the suite runs the vendor sandboxes as processes
export HYPOTHESIS_PROFILE=ci  # property tests with a fixed seed (tests/conftest.py)
export VAR_DIR="$W/var"

echo "== checks"
.venv/bin/python manage.py check --fail-level WARNING
.venv/bin/python manage.py makemigrations --check --dry-run >/dev/null

echo "== lint: ruff check, ruff format --check, import-linter (.importlinter: the one direction)"
.venv/bin/ruff check --output-format concise .
.venv/bin/ruff format --check .
.venv/bin/lint-imports --no-cache

echo "== pytest"
.venv/bin/python -m pytest -p no:cacheprovider "$@"
