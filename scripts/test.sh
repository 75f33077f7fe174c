#!/usr/bin/env bash
# Runs the test suite on SQLite, then again on PostgreSQL: a throw-away server started by
# scripts/with-postgres.sh unless STMAILS_TEST_DATABASE_URL already points at one.
# Extra arguments go to pytest. The whole SQLite run (no arguments, as `make test` runs it)
# measures line coverage of src/stmails and fails under the floor (`fail_under` in
# pyproject.toml); `.venv/bin/coverage report` then lists the files.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTEST=(.venv/bin/pytest -q -p no:cacheprovider)

if [ -n "${STMAILS_TEST_DATABASE_URL:-}" ]; then
  echo "test.sh: PostgreSQL run only, on \$STMAILS_TEST_DATABASE_URL"
  exec "${PYTEST[@]}" "$@"
fi

echo "test.sh: run 1/2 on SQLite"
if [ $# -eq 0 ]; then
  "${PYTEST[@]}" --cov --cov-report=
  echo "test.sh: line coverage of src/stmails (SQLite run):"
  .venv/bin/coverage report --format=total
else
  "${PYTEST[@]}" "$@"
fi

echo "test.sh: run 2/2 on PostgreSQL"
status=0
bash scripts/with-postgres.sh "${PYTEST[@]}" "$@" || status=$?
if [ "$status" = 77 ]; then
  echo "test.sh: no PostgreSQL available (scripts/setup.sh installs it); PostgreSQL run skipped" >&2
  exit 0
fi
exit "$status"
