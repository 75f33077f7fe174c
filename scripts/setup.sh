#!/usr/bin/env bash
# Installs everything stmails needs on a fresh Debian machine: the Python virtualenv with the
# project and its dev tools, and the system servers the integration tests start on loopback
# (PostgreSQL, Dovecot), and Debian's Chromium for the browser tests (Playwright drives it; no
# browser is downloaded). Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
command -v dovecot >/dev/null 2>&1 || need+=(dovecot-core dovecot-imapd dovecot-pop3d)
[ -x /usr/bin/chromium ] || need+=(chromium)
# A CJK font, so that the browser tests' screenshots of the Chinese interface show its text.
fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk" || need+=(fonts-wqy-microhei)
# python-magic (the media library's content checks) loads libmagic.
ldconfig -p 2>/dev/null | grep -q 'libmagic\.so\.1' || need+=(libmagic1)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "setup: missing ${need[*]}; integration tests that need them will be skipped" >&2
  fi
fi

PY=${PY:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip
# requirements.lock pins every package (refreshed by `make lock`), so installs are reproducible.
.venv/bin/pip install -q -c requirements.lock -e '.[dev]'
