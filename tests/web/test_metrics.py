"""`GET /metrics`: who may read it, and that its figures move when the events happen (ingested
webhook events, request latency by route template, the sending queue, alerts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from stmails import metrics
from stmails.config import Settings
from stmails.db.models import Campaign
from stmails.services import roles, users
from stmails.web import metrics as web_metrics
from stmails.web.app import create_app

from .conftest import API

TOKEN = "scrape-token-0123456789abcdef"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition by (name, sorted labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def scraped(
    engine: Engine, session_maker: sessionmaker[Session], db_url: str, tmp_path: Path
) -> Iterator[TestClient]:
    """The app with a metrics token, an API user (Super Admin) and one without settings:get."""
    with session_maker() as session:
        users.create_api_user(session, *API)
        role = roles.create(session, "lists only", ["lists:get_all"])
        users.create_api_user(session, "lister", "lister-token-0123456789", role=role)
        session.commit()
    settings = Settings(database_url=db_url, data_dir=tmp_path, metrics_token=TOKEN)
    with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as client:
        yield client


def scrape(client: TestClient) -> str:
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return answer.text


def test_metrics_need_the_token_or_settings_get(scraped: TestClient) -> None:
    assert scraped.get("/metrics").status_code == 401
    wrong = scraped.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert (wrong.status_code, wrong.json()) == (403, {"message": "invalid metrics token"})
    refused = scraped.get("/metrics", auth=("lister", "lister-token-0123456789"))
    assert refused.status_code == 403
    assert refused.json() == {"message": "permission denied: settings:get required"}
    assert scraped.get("/metrics", auth=API).status_code == 200
    assert "stmails_events_ingested" in scrape(scraped)


def test_a_short_token_is_refused_when_the_settings_load() -> None:
    with pytest.raises(ValueError, match="metrics_token"):
        Settings(metrics_token="short")


def test_ingested_events_are_counted_by_source_and_outcome(scraped: TestClient) -> None:
    before = scrape(scraped)
    body = {"email": "x@example.org", "source": "metricstest", "type": "hard", "event_id": "m1"}
    for _ in range(2):
        assert scraped.post("/webhooks/bounce", json=body, auth=API).status_code == 200
    refused = scraped.post(
        "/webhooks/bounce", json={**body, "type": "nonsense", "event_id": "m2"}, auth=API
    )
    assert refused.status_code == 400
    after = scrape(scraped)
    name = "stmails_events_ingested_total"
    for outcome, moved in (("stored", 1), ("duplicate", 1)):
        labels = {"source": "metricstest", "outcome": outcome}
        assert value(after, name, **labels) - value(before, name, **labels) == moved


def test_request_latency_is_kept_by_route_template(scraped: TestClient) -> None:
    name = "stmails_http_request_seconds_count"
    labels = {"method": "GET", "route": "/api/lists/{list_id}", "status": "4xx"}
    before = value(scrape(scraped), name, **labels)
    for list_id in (123456, 654321):
        assert scraped.get(f"/api/lists/{list_id}", auth=API).status_code == 404
    after = scrape(scraped)
    assert value(after, name, **labels) - before == 2
    # The raw paths never become labels.
    assert "123456" not in after
    unmatched = {"method": "GET", "route": "unmatched", "status": "4xx"}
    previous = value(after, name, **unmatched)
    assert scraped.get("/no/such/path/987").status_code == 404
    assert value(scrape(scraped), name, **unmatched) - previous == 1


def test_queue_depths_come_from_the_database(
    scraped: TestClient, session_maker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web_metrics, "DEPTHS_SECONDS", 3600.0)
    assert value(scrape(scraped), "stmails_queue_depth", queue="campaign_unsent") == 0
    with session_maker() as session:
        session.add(
            Campaign(
                name="q",
                subject="s",
                from_email="a@example.org",
                body="b",
                status="running",
                to_send=40,
                sent=10,
                skipped=5,
            )
        )
        session.commit()
    # Scrapes within DEPTHS_SECONDS share one reading of the database.
    assert value(scrape(scraped), "stmails_queue_depth", queue="campaign_unsent") == 0
    monkeypatch.setattr(web_metrics, "DEPTHS_SECONDS", 0.0)
    text = scrape(scraped)
    assert value(text, "stmails_queue_depth", queue="campaign_unsent") == 25
    assert ("stmails_queue_depth", (("queue", "bounce_writer"),)) in samples(text)


def test_alerts_are_a_counter_anyone_may_raise(scraped: TestClient) -> None:
    name = "stmails_alerts_raised_total"
    before = value(scrape(scraped), name, kind="test_alert")
    metrics.alert_raised("test_alert")
    metrics.alert_raised("test_alert")
    assert value(scrape(scraped), name, kind="test_alert") - before == 2
