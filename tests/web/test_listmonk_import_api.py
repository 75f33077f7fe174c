"""POST /api/import/listmonk: the listmonk import as a background job of the server, followed
through the import slot's status and log; only a Super Admin may start it. Needs PostgreSQL for
the listmonk source (runs in make test's PostgreSQL pass)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from listmonk_source import load_schema, populate
from stmails.db.engine import make_engine, session_factory
from stmails.db.models import Campaign, Subscriber
from stmails.services import roles, users

pytestmark = pytest.mark.skipif(
    not os.environ.get("STMAILS_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="the listmonk source is a PostgreSQL database: runs in make test's PostgreSQL pass",
)

ROBOT = ("robot", "robot-token-0123456789")


def _wait(client: TestClient) -> dict[str, Any]:
    for _ in range(600):
        status = client.get("/api/import/subscribers").json()["data"]
        if status["status"] != "importing":
            return dict(status)
        time.sleep(0.05)
    raise AssertionError("the import did not finish")


def test_a_super_admin_imports_a_listmonk_database_through_the_api(
    installed_app: tuple[FastAPI, Engine], fresh_database_url: Callable[[], str]
) -> None:
    app, engine = installed_app
    source = fresh_database_url()
    listmonk = make_engine(source)
    load_schema(listmonk, "v6.2.0")
    stored = populate(listmonk, 120)
    listmonk.dispose()
    with session_factory(engine)() as session:
        helper = roles.create(
            session, "Importer", ["subscribers:import", "settings:manage", "users:manage"]
        )
        users.create_api_user(session, "helper", "helper-token-0123456789", role=helper)
        session.commit()

    with TestClient(app, raise_server_exceptions=False) as client:
        client.auth = ("helper", "helper-token-0123456789")
        refused = client.post("/api/import/listmonk", json={"url": source})
        assert refused.status_code == 403
        assert "Super Admin" in refused.json()["message"]

        client.auth = ROBOT
        bad = client.post("/api/import/listmonk", json={"url": "mysql://x/y"})
        assert bad.status_code == 400 and "url" in bad.json()["message"]
        assert client.post("/api/import/listmonk", json={}).status_code == 400

        started = client.post("/api/import/listmonk", json={"url": source, "settings": False})
        assert started.status_code == 200, started.text
        done = _wait(client)
        assert done["status"] == "finished", client.get("/api/import/subscribers/logs").json()
        assert done["imported"] == done["total"] > 120
        logs = client.get("/api/import/subscribers/logs").json()["data"]
        assert "subscribers: 120 read, 120 added, 0 kept" in logs
        assert "listmonk schema v6.2.0 imported" in logs

        # A listmonk campaign is now an ordinary stmails campaign, by the same uuid.
        campaigns = client.get("/api/campaigns", params={"per_page": "all"}).json()["data"]
        uuids = {c["uuid"] for c in campaigns["results"]}
        assert set(stored.campaign_uuids.values()) <= uuids

    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 120
        assert session.scalar(select(func.count()).select_from(Campaign)) == 2
