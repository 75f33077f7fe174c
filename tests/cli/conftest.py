"""Fixtures for the CLI tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, fresh_database_url: Callable[[], str]) -> str:
    """A new empty database that the commands use (STMAILS_DATABASE_URL); its URL."""
    url = fresh_database_url()
    monkeypatch.setenv("STMAILS_DATABASE_URL", url)
    return url
