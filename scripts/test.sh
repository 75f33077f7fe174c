#!/usr/bin/env bash
# Runs the test suite on SQLite, then again on PostgreSQL: a throw-away server started here
# (initdb in a temporary folder, listening on 127.0.0.1 only, stopped and deleted on exit)
# unless STMAILS_TEST_DATABASE_URL already points at one. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTEST=(.venv/bin/pytest -q -p no:cacheprovider)

if [ -n "${STMAILS_TEST_DATABASE_URL:-}" ]; then
  echo "test.sh: PostgreSQL run only, on \$STMAILS_TEST_DATABASE_URL"
  exec "${PYTEST[@]}" "$@"
fi

echo "test.sh: run 1/2 on SQLite"
"${PYTEST[@]}" "$@"

pg_bin=""
for dir in /usr/lib/postgresql/*/bin; do
  [ -x "$dir/initdb" ] && pg_bin="$dir"
done
if [ -z "$pg_bin" ] && command -v initdb >/dev/null 2>&1; then
  pg_bin="$(dirname "$(command -v initdb)")"
fi
if [ -z "$pg_bin" ]; then
  echo "test.sh: PostgreSQL binaries not found (run scripts/setup.sh as root); PostgreSQL run skipped" >&2
  exit 0
fi

# initdb refuses to run as root: run the server as the `postgres` system user then.
run_as=()
if [ "$(id -u)" = 0 ]; then
  if id postgres >/dev/null 2>&1; then
    run_as=(runuser -u postgres --)
  else
    echo "test.sh: running as root and no 'postgres' user exists; PostgreSQL run skipped" >&2
    exit 0
  fi
fi

pg_dir="$(mktemp -d /tmp/stmails-pg.XXXXXX)"
chmod 755 "$pg_dir"
[ ${#run_as[@]} -gt 0 ] && chown postgres "$pg_dir"
cleanup() {
  "${run_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap cleanup EXIT INT TERM

port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${run_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U stmails --auth=trust -E UTF8 --no-sync >/dev/null
"${run_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $pg_dir -c fsync=off -c full_page_writes=off -c max_connections=100" \
  start >/dev/null
"${run_as[@]}" "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U stmails stmails_test

echo "test.sh: run 2/2 on PostgreSQL (127.0.0.1:$port, $pg_dir)"
STMAILS_TEST_DATABASE_URL="postgresql+psycopg://stmails@127.0.0.1:$port/stmails_test" \
  "${PYTEST[@]}" "$@"
