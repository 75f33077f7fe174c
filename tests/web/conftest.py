"""Fixtures for the HTTP tests: the real app on the test database, with real users."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

# The real aiosmtpd sink of the sending tests, for the public pages' mail.
from sending.conftest import smtp_sink  # noqa: F401
from stmails.config import Settings
from stmails.db.engine import make_engine, session_factory
from stmails.db.migrate import upgrade
from stmails.services import users
from stmails.web.app import create_app

from .listmonk_client import ListmonkClient

ADMIN = ("admin", "admin-password-123")
API = ("robot", "robot-token-0123456789")


@pytest.fixture
def app(
    engine: Engine, session_maker: sessionmaker[Session], db_url: str, tmp_path: Path
) -> FastAPI:
    """The application on the emptied test database, with one admin and one API user; its
    files (verification jobs) go to the test's temporary folder."""
    with session_maker() as session:
        users.create_admin(session, *ADMIN)
        users.create_api_user(session, *API)
        session.commit()
    return create_app(Settings(database_url=db_url, data_dir=tmp_path), engine=engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client of `app` (lifespan running) that authenticates as the API user."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.auth = API
        yield test_client


@pytest.fixture
def admin_credentials() -> tuple[str, str]:
    """The admin user's name and password."""
    return ADMIN


@pytest.fixture
def api_credentials() -> tuple[str, str]:
    """The API user's name and token."""
    return API


@pytest.fixture
def installed_app(
    fresh_database_url: Callable[[], str], tmp_path: Path
) -> Iterator[tuple[FastAPI, Engine]]:
    """The application on a new database installed the way `stmails serve` installs one
    (every migration), with the API user of the web tests (Super Admin)."""
    url = fresh_database_url()
    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        users.create_api_user(session, *API)
        session.commit()
    yield create_app(Settings(database_url=url, data_dir=tmp_path), engine=engine), engine
    engine.dispose()


@pytest.fixture
def installed(installed_app: tuple[FastAPI, Engine]) -> Iterator[ListmonkClient]:
    """A listmonk client (tests/web/listmonk_client.py) of `installed_app`, as its API user."""
    with TestClient(installed_app[0], raise_server_exceptions=False) as http:
        yield ListmonkClient(http, *API)
