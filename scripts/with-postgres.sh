#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL server: initdb in a temporary folder, listening on
# 127.0.0.1 (a free port) only, stopped and deleted when the command ends. The command finds the
# server in $STMAILS_TEST_DATABASE_URL (postgresql+psycopg://stmails@127.0.0.1:PORT/stmails_test).
# Exits 77 without running the command when no PostgreSQL binaries are installed.
#   scripts/with-postgres.sh .venv/bin/python benchmarks/record_bounces.py --database-url '$URL'
set -euo pipefail
cd "$(dirname "$0")/.."

pg_bin=""
for dir in /usr/lib/postgresql/*/bin; do
  [ -x "$dir/initdb" ] && pg_bin="$dir"
done
if [ -z "$pg_bin" ] && command -v initdb >/dev/null 2>&1; then
  pg_bin="$(dirname "$(command -v initdb)")"
fi
if [ -z "$pg_bin" ]; then
  echo "with-postgres: PostgreSQL binaries not found (run scripts/setup.sh as root)" >&2
  exit 77
fi

# initdb refuses to run as root: run the server as the `postgres` system user then.
run_as=()
if [ "$(id -u)" = 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    echo "with-postgres: running as root and no 'postgres' user exists" >&2
    exit 77
  fi
  run_as=(runuser -u postgres --)
fi

pg_dir="$(mktemp -d /tmp/stmails-pg.XXXXXX)"
chmod 755 "$pg_dir"
if [ ${#run_as[@]} -gt 0 ]; then chown postgres "$pg_dir"; fi
cleanup() {
  "${run_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap cleanup EXIT INT TERM

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${run_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U stmails --auth=trust -E UTF8 --no-sync >/dev/null
"${run_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $pg_dir -c fsync=off -c full_page_writes=off -c max_connections=100" \
  start >/dev/null
"${run_as[@]}" "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U stmails stmails_test

export STMAILS_TEST_DATABASE_URL="postgresql+psycopg://stmails@127.0.0.1:$port/stmails_test"
echo "with-postgres: PostgreSQL on 127.0.0.1:$port ($pg_dir)" >&2
# '$URL' in the arguments stands for the server's URL.
args=()
for arg in "$@"; do args+=("${arg//\$URL/$STMAILS_TEST_DATABASE_URL}"); done
"${args[@]}"
