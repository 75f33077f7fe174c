"""`/health/live` and `/health/ready`: unauthenticated, and ready only when the database
answers at the newest schema and every background loop of the process is alive."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from stmails import liveness
from stmails.config import Settings
from stmails.db.engine import make_engine
from stmails.db.migrate import head_revision, upgrade
from stmails.server import create_server_app
from stmails.web.app import create_app

LOOPS = {
    "bounce_writer",
    "mailbox_scanner",
    "tracking_writer",
    "analytics_folder",
    "alert_worker",
}


@pytest.fixture
def migrated_url(fresh_database_url: Callable[[], str]) -> str:
    """A new database brought to the newest schema by the migrations."""
    url = fresh_database_url()
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return url


def app_on(url: str, data_dir: Path) -> FastAPI:
    """The app as `stmails serve` runs it: with the server's background loops."""
    return create_server_app(Settings(database_url=url, data_dir=data_dir))


@pytest.fixture
def ready_client(migrated_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(app_on(migrated_url, tmp_path), raise_server_exceptions=False) as client:
        yield client


def test_live_answers_without_credentials(ready_client: TestClient) -> None:
    answer = ready_client.get("/health/live")
    assert (answer.status_code, answer.json()) == (200, {"data": True})


def test_ready_on_a_migrated_database_with_its_loops_running(ready_client: TestClient) -> None:
    answer = ready_client.get("/health/ready")
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert data["ready"] is True
    assert {"database", "migrations", *LOOPS} <= set(data["checks"])
    assert all(data["checks"].values())


def test_the_web_app_alone_runs_only_its_own_writers(migrated_url: str, tmp_path: Path) -> None:
    # The worker loops come from the composition in stmails.server, not from the web layer.
    app = create_app(Settings(database_url=migrated_url, data_dir=tmp_path))
    with TestClient(app) as client:
        checks = client.get("/health/ready").json()["data"]["checks"]
        threads = {t.name for t in threading.enumerate()}
    assert {"bounce_writer", "tracking_writer"} <= set(checks)
    assert not {"mailbox_scanner", "analytics_folder", "alert_worker"} & set(checks)
    assert not {"stmails-mailboxes", "stmails-analytics", "stmails-alerts"} & threads


def test_not_ready_while_the_schema_is_behind_and_ready_once_migrated(
    migrated_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'an_older_one'"))
    with TestClient(app_on(migrated_url, tmp_path)) as client:
        with caplog.at_level(logging.INFO, logger="stmails.web.health"):
            answer = client.get("/health/ready")
            again = client.get("/health/ready")
        assert answer.status_code == 503 and answer.headers["retry-after"]
        assert answer.json()["data"]["checks"]["migrations"] is False
        assert answer.json()["data"]["checks"]["database"] is True
        assert again.status_code == 503
        # The change is logged once, naming what failed, not once per poll.
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings == ["not ready: migrations failed"]
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()}
            )
        assert client.get("/health/ready").status_code == 200
    engine.dispose()


def test_not_ready_without_migrations_at_all(
    fresh_database_url: Callable[[], str], tmp_path: Path
) -> None:
    with TestClient(app_on(fresh_database_url(), tmp_path)) as client:
        checks = client.get("/health/ready").json()["data"]["checks"]
    assert (checks["database"], checks["migrations"]) == (True, False)


def test_not_ready_when_the_database_is_unreachable_but_still_live(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'stmails.db'}"
    with TestClient(app_on(url, tmp_path), raise_server_exceptions=False) as client:
        ready = client.get("/health/ready")
        live = client.get("/health/live")
    assert ready.status_code == 503
    checks = ready.json()["data"]["checks"]
    assert (checks["database"], checks["migrations"]) == (False, False)
    assert live.status_code == 200


def test_not_ready_once_a_background_loop_died(ready_client: TestClient) -> None:
    assert ready_client.get("/health/ready").status_code == 200
    state = ready_client.app.state.stmails  # type: ignore[attr-defined]
    # The bounce writer's task ends (as it would if it crashed).
    ready_client.portal.call(state.writer.stop)
    answer = ready_client.get("/health/ready")
    assert answer.status_code == 503
    checks = answer.json()["data"]["checks"]
    assert checks["bounce_writer"] is False and checks["mailbox_scanner"] is True


def test_loops_of_the_process_are_reported_too(ready_client: TestClient) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="test-loop", daemon=True)
    thread.start()
    unregister = liveness.register("test_loop", thread.is_alive)
    try:
        answer = ready_client.get("/health/ready")
        assert answer.status_code == 200 and answer.json()["data"]["checks"]["test_loop"] is True
        stop.set()
        thread.join()
        answer = ready_client.get("/health/ready")
        assert answer.status_code == 503
        assert answer.json()["data"]["checks"]["test_loop"] is False
    finally:
        unregister()
    assert "test_loop" not in ready_client.get("/health/ready").json()["data"]["checks"]


def test_health_routes_are_in_the_openapi_document(ready_client: TestClient) -> None:
    paths = ready_client.get("/openapi.json").json()["paths"]
    assert {"/health", "/health/live", "/health/ready"} <= set(paths)
