"""The bounce-risk score over a generated history with known answers: every factor, the
levels, the weights from the settings, the stored factors, incremental rescoring when events
arrive (bounces, complaints, opens; machine opens never count), the query language, the API
and the subscriber's data export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.config import Settings
from stmails.db.models import (
    Campaign,
    CampaignView,
    Link,
    LinkClick,
    Subscriber,
    SubscriberHygiene,
)
from stmails.services import public, users
from stmails.services import settings as settings_service
from stmails.services.hygiene import risk
from stmails.services.hygiene.config import RISK_WEIGHTS
from stmails.services.subscriber_query import subscriber_condition
from stmails.web.app import create_app

from .history import bounce, send

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _days(n: float) -> datetime:
    return NOW - timedelta(days=n)


def _sub(session: Session, email: str, joined_days: float) -> Subscriber:
    sub = Subscriber(email=email, name=email, created_at=_days(joined_days))
    session.add(sub)
    session.flush()
    return sub


def _verified(
    session: Session, sub: Subscriber, result: str, reasons: list[str], days: float
) -> None:
    session.add(
        SubscriberHygiene(
            subscriber_id=sub.id,
            verify_result=result,
            verify_reasons=reasons,
            verified_at=_days(days),
        )
    )
    session.flush()


def _view(
    session: Session, camp: Campaign, sub: Subscriber, days: float, machine: str = ""
) -> None:
    session.add(
        CampaignView(
            campaign_id=camp.id, subscriber_id=sub.id, machine=machine, created_at=_days(days)
        )
    )
    session.flush()


# Each subscriber of the history and the factors (code: points) its score must show.
EXPECTED: dict[str, dict[str, int]] = {
    "fresh@example.com": {},
    "idle@example.com": {"inactive_90_days": 15, "on_list_365_days": 10, "unverified_180_days": 20},
    "old@example.com": {"inactive_180_days": 30, "on_list_730_days": 20, "unverified_90_days": 10},
    "soft@example.com": {"soft_bounce": 30, "unverified_180_days": 20},
    "info@example.com": {"role": 10, "catch_all": 10},
    "temp@mailinator.com": {"disposable": 25, "verify_unknown": 10},
    "bob@risky.example": {"risky_domain": 15},
    "gone@risky.example": {"hard_bounce": 50, "risky_domain": 15, "unverified_180_days": 20},
    "angry@example.com": {"complaint": 50, "unverified_180_days": 20},
    "nx@example.com": {"verify_invalid": 50, "unverified_90_days": 10},
    "clicker@example.com": {"on_list_365_days": 10},
}


def _history(session: Session) -> dict[str, int]:
    """Builds the history; returns the subscribers' ids by address."""
    camp = Campaign(name="Spring", subject="Spring")
    session.add(camp)
    session.flush()
    ids: dict[str, int] = {}

    fresh = _sub(session, "fresh@example.com", 10)
    _verified(session, fresh, "valid", [], 5)
    _view(session, camp, fresh, 2)

    idle = _sub(session, "idle@example.com", 400)
    _view(session, camp, idle, 100)
    # A machine open yesterday (an image proxy): not engagement.
    _view(session, camp, idle, 1, machine="apple_mpp")

    old = _sub(session, "old@example.com", 800)
    _verified(session, old, "valid", [], 100)

    soft = _sub(session, "soft@example.com", 20)
    info = _sub(session, "info@example.com", 10)
    _verified(session, info, "risky", ["role", "catch_all"], 10)
    temp = _sub(session, "temp@mailinator.com", 10)
    _verified(session, temp, "unknown", ["timeout"], 10)

    bob = _sub(session, "bob@risky.example", 10)
    _verified(session, bob, "valid", [], 10)
    gone = _sub(session, "gone@risky.example", 10)
    angry = _sub(session, "angry@example.com", 10)
    nx = _sub(session, "nx@example.com", 10)
    _verified(session, nx, "invalid", ["nxdomain"], 100)

    clicker = _sub(session, "clicker@example.com", 500)
    _verified(session, clicker, "valid", [], 3)
    link = Link(url="https://example.org/x", campaign_id=camp.id)
    session.add(link)
    session.flush()
    session.add(
        LinkClick(
            campaign_id=camp.id, link_id=link.id, subscriber_id=clicker.id, created_at=_days(3)
        )
    )

    # risky.example: 20 messages sent, 3 hard bounces (15 %, over the 5 % and 3 bounces).
    others = [_sub(session, f"r{i}@risky.example", 10) for i in range(18)]
    for sub in [bob, gone, *others]:
        send(session, camp, sub, "sent", "", at=_days(4))
    bounce(session, "hard", "gone@risky.example", camp, at=_days(3))
    bounce(session, "hard", "r0@risky.example", camp, at=_days(3))
    bounce(session, "hard", "r1@risky.example", camp, at=_days(3))
    for n in range(4):
        bounce(session, "soft", "soft@example.com", camp, at=_days(n + 1), reason=f"r{n}")
    bounce(session, "complaint", "angry@example.com", camp, at=_days(2))
    for sub in (fresh, idle, old, soft, info, temp, bob, gone, angry, nx, clicker):
        ids[sub.email] = sub.id
    return ids


def _factors(row: SubscriberHygiene) -> dict[str, int]:
    return {f["code"]: f["points"] for f in row.risk_factors}


def test_a_generated_history_gets_the_known_scores_and_factors(
    session_maker: sessionmaker[Session],
) -> None:
    with session_maker() as session, session.begin():
        ids = _history(session)
    run = risk.rescore_all(session_maker, now=NOW, chunk=7)
    assert run.subscribers == 11 + 18
    with session_maker() as session:
        rows = risk.hygiene_of(session, list(ids.values()))
        for email, expected in EXPECTED.items():
            row = rows[ids[email]]
            assert _factors(row) == expected, email
            total = sum(expected.values())
            assert row.risk_score == total, email
            level = "high" if total > 50 else "medium" if total > 25 else "low"
            assert row.risk_level == level, email
        # Each factor carries the fact behind it.
        idle = {f["code"]: f["value"] for f in rows[ids["idle@example.com"]].risk_factors}
        # Dates rather than day counts, so a score whose band did not change is not rewritten
        # every day.
        assert idle["inactive_90_days"] == _days(100).date().isoformat()
        assert idle["on_list_365_days"] == _days(400).date().isoformat()
        risky = {f["code"]: f["value"] for f in rows[ids["bob@risky.example"]].risk_factors}
        assert risky["risky_domain"] == {"domain": "risky.example", "hard": 3, "sent": 20}
    # A second run changes nothing.
    assert risk.rescore_all(session_maker, now=NOW).changed == 0


def test_weights_and_levels_come_from_the_settings(session_maker: sessionmaker[Session]) -> None:
    with session_maker() as session, session.begin():
        ids = _history(session)
        settings_service.update(
            session,
            {"hygiene.risk": {"weights": {"role": 40}, "medium_above": 10, "high_above": 45}},
        )
    risk.rescore_all(session_maker, now=NOW)
    with session_maker() as session:
        info = risk.hygiene_of(session, [ids["info@example.com"]])[ids["info@example.com"]]
        assert _factors(info) == {"role": 40, "catch_all": 10}
        assert (info.risk_score, info.risk_level) == (50, "high")
        fresh = risk.hygiene_of(session, [ids["fresh@example.com"]])[ids["fresh@example.com"]]
        assert fresh.risk_level == "low"


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"weights": {"astrology": 5}}, "hygiene.risk.weights.astrology"),
        ({"weights": {"role": -1}}, "hygiene.risk.weights.role"),
        ({"medium_above": 60, "high_above": 50}, "hygiene.risk.high_above"),
        ({"colour": "red"}, "hygiene.risk.colour"),
    ],
)
def test_a_risk_setting_that_cannot_work_is_refused(
    session: Session, value: dict[str, Any], field: str
) -> None:
    with pytest.raises(settings_service.SettingsError) as refused:
        settings_service.update(session, {"hygiene.risk": value})
    assert refused.value.field == field


def test_the_default_weights_are_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "hygiene.md").read_text()
    for code, points in RISK_WEIGHTS.items():
        assert f"| `{code}` | {points} |" in doc, code


def test_events_rescore_the_subscriber_at_once(session_maker: sessionmaker[Session]) -> None:
    with session_maker() as session, session.begin():
        sub = Subscriber(email="later@example.com", name="x")
        session.add(sub)
        camp = Campaign(name="c", subject="c")
        session.add(camp)
        session.flush()
        sub_id, camp_id = sub.id, camp.id
    with session_maker() as session, session.begin():
        bounce(session, "complaint", "later@example.com", session.get(Campaign, camp_id))
    with session_maker() as session:
        row = session.get(SubscriberHygiene, sub_id)
        assert row is not None and "complaint" in _factors(row)
        assert row.scored_at is not None


def test_an_open_by_a_person_rescores_and_a_machine_open_does_not(
    session_maker: sessionmaker[Session],
) -> None:
    from stmails.services.tracking.hits import Hit, record_hits

    with session_maker() as session, session.begin():
        settings_service.update(session, {"privacy.individual_tracking": True})
        sub = Subscriber(
            email="sleepy@example.com", name="x", created_at=datetime.now(UTC) - timedelta(days=200)
        )
        camp = Campaign(name="c", subject="c")
        session.add_all([sub, camp])
        session.flush()
        sub_id, sub_uuid, camp_id = sub.id, sub.uuid, camp.id
    risk.rescore_all(session_maker)
    with session_maker() as session:
        row = session.get(SubscriberHygiene, sub_id)
        assert row is not None and "inactive_180_days" in _factors(row)
    with session_maker() as session, session.begin():
        machine = Hit(
            "view", camp_id, sub_uuid, datetime.now(UTC), user_agent="Mozilla/5.0", ip="17.58.1.2"
        )
        record_hits(session, [machine])
    with session_maker() as session:
        row = session.get(SubscriberHygiene, sub_id)
        assert row is not None and "inactive_180_days" in _factors(row)
    with session_maker() as session, session.begin():
        person = Hit(
            "view",
            camp_id,
            sub_uuid,
            datetime.now(UTC) + timedelta(minutes=30),
            user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
            ip="203.0.113.9",
        )
        record_hits(session, [person])
    with session_maker() as session:
        row = session.get(SubscriberHygiene, sub_id)
        assert row is not None
        assert not any(code.startswith("inactive") for code in _factors(row))


def test_risk_is_queryable_shown_in_the_api_and_exported(
    engine: Any, session_maker: sessionmaker[Session], db_url: str
) -> None:
    with session_maker() as session, session.begin():
        ids = _history(session)
        users.create_api_user(session, "robot", "robot-token-0123456789")
    risk.rescore_all(session_maker, now=NOW)
    # The two other hard-bounced addresses of risky.example are high risk too.
    high = {e for e, f in EXPECTED.items() if sum(f.values()) > 50}
    high |= {"r0@risky.example", "r1@risky.example"}
    with session_maker() as session:
        found = session.scalars(
            select(Subscriber.email).where(subscriber_condition(session, "risk_level = 'high'"))
        )
        assert set(found) == high
        scored = session.scalars(
            select(Subscriber.email).where(
                subscriber_condition(
                    session, "subscribers.risk_score >= 45 AND subscribers.risk_score <= 50"
                )
            )
        )
        assert set(scored) == {"idle@example.com", "soft@example.com"}
        export = public.export_data(session, session.get_one(Subscriber, ids["nx@example.com"]))
        assert export["hygiene"]["risk_level"] == "high"
        assert {f["code"] for f in export["hygiene"]["risk_factors"]} == set(
            EXPECTED["nx@example.com"]
        )

    app: FastAPI = create_app(
        Settings(database_url=db_url, secret_key="k", root_url="https://lists.example.org"),
        engine=engine,
    )
    with TestClient(app) as client:
        client.auth = ("robot", "robot-token-0123456789")
        listed = client.get(
            "/api/subscribers", params={"query": "risk_level = 'high'", "per_page": "all"}
        )
        assert listed.status_code == 200, listed.text
        results = listed.json()["data"]["results"]
        assert {r["email"] for r in results} == high and all(
            r["risk_level"] == "high" for r in results
        )
        one = client.get(f"/api/subscribers/{ids['angry@example.com']}").json()["data"]
        assert one["risk_score"] == 70 and one["risk_level"] == "high"
        assert {f["code"]: f["points"] for f in one["risk_factors"]} == EXPECTED[
            "angry@example.com"
        ]
        bad = client.get("/api/subscribers", params={"query": "risk_level = "})
        assert bad.status_code == 400
