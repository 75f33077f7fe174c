"""`/api/alerts`: listing with filters and paging, acknowledging, releasing a held domain,
permissions, and the alert settings refused when they cannot work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from services.history import campaign
from stmails.db.models import Alert, CampaignHold
from stmails.services import roles, users


def make_alerts(session_maker: sessionmaker[Session]) -> tuple[int, list[int]]:
    """A campaign with three alerts (one of them a held domain) and one without a campaign."""
    base = datetime(2026, 11, 3, 12, tzinfo=UTC)
    with session_maker() as session, session.begin():
        camp = campaign(session, "Launch")
        rows = [
            Alert(level="warning", kind="bounce_rate", campaign_id=camp.id, message="2.1 %",
                  figures={"bounce_rate": 2.1}, actions={}, created_at=base,
                  acknowledged_by=""),
            Alert(level="critical", kind="bounce_rate", campaign_id=camp.id, message="5.3 %",
                  figures={"bounce_rate": 5.3}, actions={"paused": [camp.id]},
                  created_at=base + timedelta(hours=1), acknowledged_by=""),
            Alert(level="warning", kind="domain_bounce_rate", campaign_id=camp.id,
                  domain="stale.example", message="<b>stale</b>", figures={},
                  actions={"held_domain": "stale.example"},
                  created_at=base + timedelta(days=2), acknowledged_by=""),
            Alert(level="critical", kind="complaint_rate", campaign_id=None, message="x",
                  figures={}, actions={}, created_at=base + timedelta(days=3),
                  acknowledged_by=""),
        ]  # fmt: skip
        session.add_all(rows)
        session.flush()
        session.add(CampaignHold(campaign_id=camp.id, domain="stale.example", alert_id=rows[2].id))
        camp.status = "running"
        return camp.id, [r.id for r in rows]


def test_list_filter_and_page(client: TestClient, session_maker: sessionmaker[Session]) -> None:
    campaign_id, ids = make_alerts(session_maker)
    everything = client.get("/api/alerts").json()["data"]
    assert everything["total"] == 4
    assert [a["id"] for a in everything["results"]] == list(reversed(ids))
    critical = client.get("/api/alerts", params={"level": "critical"}).json()["data"]
    assert [a["id"] for a in critical["results"]] == [ids[3], ids[1]]
    mine = client.get("/api/alerts", params={"campaign_id": campaign_id}).json()["data"]
    assert mine["total"] == 3
    window = client.get("/api/alerts", params={"from": "2026-11-03", "to": "2026-11-03"})
    assert [a["id"] for a in window.json()["data"]["results"]] == [ids[1], ids[0]]
    timed = client.get("/api/alerts", params={"from": "2026-11-03T12:30:00Z"}).json()["data"]
    assert timed["total"] == 3
    page = client.get("/api/alerts", params={"per_page": 3, "page": 2}).json()["data"]
    assert (page["total"], [a["id"] for a in page["results"]]) == (4, [ids[0]])
    for bad in ({"level": "fatal"}, {"from": "yesterday"}, {"per_page": "0"}, {"page": "-1"}):
        answer = client.get("/api/alerts", params=bad)
        assert answer.status_code == 400, bad


def test_acknowledge_and_release(client: TestClient, session_maker: sessionmaker[Session]) -> None:
    campaign_id, ids = make_alerts(session_maker)
    answer = client.put(f"/api/alerts/{ids[1]}", json={})
    assert answer.status_code == 200
    done = answer.json()["data"]
    assert done["acknowledged"] and done["acknowledged_by"] == "robot"
    open_ones = client.get("/api/alerts", params={"acknowledged": "false"}).json()["data"]
    assert ids[1] not in [a["id"] for a in open_ones["results"]]
    # Only a domain alert holds a domain.
    refused = client.put(f"/api/alerts/{ids[1]}", json={"release_domain": True})
    assert refused.status_code == 400
    released = client.put(f"/api/alerts/{ids[2]}", json={"release_domain": True})
    assert released.status_code == 200, released.text
    assert released.json()["data"]["actions"]["released_domain"] == "stale.example"
    with session_maker() as session:
        assert session.get(CampaignHold, (campaign_id, "stale.example")) is None
    again = client.put(f"/api/alerts/{ids[2]}", json={"release_domain": True})
    assert again.status_code == 409
    assert client.put("/api/alerts/999999", json={}).status_code == 404
    assert client.put(f"/api/alerts/{ids[0]}", json={"acknowledged": "yes"}).status_code == 400
    assert client.put(f"/api/alerts/{ids[0]}", json={"colour": 1}).status_code == 400


def test_permissions(client: TestClient, session_maker: sessionmaker[Session]) -> None:
    _, ids = make_alerts(session_maker)
    with session_maker() as session:
        reader = roles.create(session, "alert readers", ["alerts:get"])
        users.create_api_user(session, "reader", "reader-token-0123456789", role=reader)
        other = roles.create(session, "others", ["campaigns:get_all"])
        users.create_api_user(session, "other", "other-token-0123456789", role=other)
        session.commit()
    client.auth = ("other", "other-token-0123456789")
    refused = client.get("/api/alerts")
    assert refused.status_code == 403
    assert refused.json()["message"] == "permission denied: alerts:get required"
    client.auth = ("reader", "reader-token-0123456789")
    assert client.get("/api/alerts").status_code == 200
    assert client.get(f"/api/alerts/{ids[2]}").json()["data"]["domain"] == "stale.example"
    put = client.put(f"/api/alerts/{ids[0]}", json={})
    assert put.status_code == 403
    assert put.json()["message"] == "permission denied: alerts:manage required"


def test_alert_settings_are_validated(client: TestClient) -> None:
    cases = [
        ({"deliverability.alerts": {"bounce_warning": 6}}, "deliverability.alerts"),
        ({"deliverability.alerts": {"min_sample": 5000}}, "deliverability.alerts"),
        ({"deliverability.alerts": {"bounce_critical": 0}}, "bounce_critical"),
        ({"deliverability.alerts": {"surprise": 1}}, "surprise"),
        (
            {"deliverability.alert_webhooks": [{"url": "ftp://x.example/", "secret": "s" * 20}]},
            "url",
        ),
        (
            {"deliverability.alert_webhooks": [{"url": "https://x.example/", "secret": "short"}]},
            "secret",
        ),
        ({"app.notify_emails": ["not an address"]}, "app.notify_emails.0"),
    ]
    for body, named in cases:
        answer = client.put("/api/settings", json=body)
        assert answer.status_code == 400, body
        assert named in answer.json()["message"], answer.json()
    hooks = [{"url": "https://hooks.example.org/alerts", "secret": "a-long-enough-secret"}]
    saved = client.put(
        "/api/settings",
        json={
            "deliverability.alerts": {"bounce_critical": 8},
            "deliverability.alert_webhooks": hooks,
            "app.notify_emails": ["Ops@Example.org"],
        },
    )
    assert saved.status_code == 200, saved.text
    values = client.get("/api/settings").json()["data"]
    assert values["deliverability.alerts"]["bounce_critical"] == 8.0
    assert values["deliverability.alerts"]["bounce_warning"] == 2.0
    assert values["app.notify_emails"] == ["Ops@example.org"]
    # The secret reads masked, and writing the mask back keeps it.
    assert values["deliverability.alert_webhooks"][0]["secret"] != hooks[0]["secret"]
    masked = values["deliverability.alert_webhooks"]
    assert (
        client.put("/api/settings", json={"deliverability.alert_webhooks": masked}).status_code
        == 200
    )
    # Pointing the webhook elsewhere with the mask does not carry the secret along.
    moved = [{**masked[0], "url": "https://attacker.example/"}]
    answer = client.put("/api/settings", json={"deliverability.alert_webhooks": moved})
    assert answer.status_code == 400 and "secret" in answer.json()["message"]
