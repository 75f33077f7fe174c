"""Fixtures of the end-to-end tests: the real servers a new user's installation talks to (an
SMTP server requiring AUTH over STARTTLS or implicit TLS, the Dovecot bounce mailbox) and a
running `stmails serve` on a new, empty database."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ingest.mailbox.conftest import dovecot, mailbox
from running_server import API_TOKEN, API_USER, Server, environment, stmails_serve
from sending.conftest import certificate, smtp_server

__all__ = ["certificate", "dovecot", "mailbox", "smtp_server"]

STMAILS = [sys.executable, "-m", "stmails"]


@pytest.fixture
def serve(tmp_path: Path, fresh_database_url: Callable[[], str]) -> Iterator[Callable[..., Server]]:
    """`serve(**env)`: a real `stmails serve` on a new empty database (SQLite or PostgreSQL,
    as the test run), in its own data folder, with the API user `running_server.API_USER`."""
    started: list[Server] = []
    contexts = []

    def start(**values: str) -> Server:
        env = environment(
            STMAILS_DATABASE_URL=fresh_database_url(),
            STMAILS_DATA_DIR=str(tmp_path),
            STMAILS_API_USER=API_USER,
            STMAILS_API_TOKEN=API_TOKEN,
            STMAILS_ADMIN_PASSWORD="e2e-admin-password",
            **values,
        )
        context = stmails_serve(STMAILS, env, tmp_path)
        server = context.__enter__()
        contexts.append(context)
        started.append(server)
        return server

    yield start
    for context in reversed(contexts):
        context.__exit__(None, None, None)
