#!/usr/bin/env bash
# Runs the test suite on SQLite, then again on PostgreSQL (a throw-away server started here
# unless STMAILS_TEST_DATABASE_URL points at one).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/pytest -q -p no:cacheprovider
