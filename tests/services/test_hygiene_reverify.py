"""Re-verification on a schedule over a generated history with known answers: who is due,
results stored and scored, the invalid action recorded and undoable, DNS asked through a real
DNS server on loopback at a paced rate, and nothing while it is switched off."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from dnslib import MX
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dnszone import Zone, async_resolver, serve
from stmails.db.models import HygieneTransition, Subscriber, SubscriberHygiene
from stmails.db.types import utcnow
from stmails.services import settings as settings_service
from stmails.services import suppression
from stmails.services.hygiene import reverify, sunset
from stmails.workers.hygiene_jobs import reverify_job
from stmails.workers.scheduler import SchedulerLoop

NOW = utcnow()


@pytest.fixture(scope="module")
def dns_port() -> Iterator[int]:
    zone = Zone()
    zone.add("good.example", "MX", MX("mx.good.example", 10))
    zone.add("other.example", "MX", MX("mx.other.example", 10))
    # gone.example: no records at all (NXDOMAIN).
    with serve(zone) as port:
        yield port


def _history(factory: sessionmaker[Session]) -> dict[str, int]:
    ids = {}
    with factory() as session, session.begin():
        for email, verified_days in (
            ("fresh@good.example", 3),  # verified recently: not due
            ("stale@good.example", 40),  # verified over 30 days ago: due
            ("never@other.example", None),  # never verified: due first
            ("dead@gone.example", 100),  # due, and its domain no longer exists
            ("info@good.example", None),  # a role address
        ):
            sub = Subscriber(email=email, name=email)
            session.add(sub)
            session.flush()
            ids[email] = sub.id
            if verified_days is not None:
                session.add(
                    SubscriberHygiene(
                        subscriber_id=sub.id,
                        verify_result="valid",
                        verified_at=NOW - timedelta(days=verified_days),
                    )
                )
        off = Subscriber(email="off@good.example", name="x", status="disabled")
        session.add(off)
    return ids


def test_who_is_due(session_maker: sessionmaker[Session]) -> None:
    ids = _history(session_maker)
    with session_maker() as session:
        found = reverify.due(session, 30, 100, NOW)
    # The never verified first, then the oldest; the disabled and the fresh are not due.
    assert [email for _, email in found] == [
        "never@other.example",
        "info@good.example",
        "dead@gone.example",
        "stale@good.example",
    ]
    assert {sid for sid, _ in found} == set(ids.values()) - {ids["fresh@good.example"]}


def test_the_scheduled_run_stores_results_scores_and_acts(
    session_maker: sessionmaker[Session], dns_port: int
) -> None:
    ids = _history(session_maker)
    job = reverify_job(lambda: async_resolver(dns_port))
    loop = SchedulerLoop(session_maker, jobs=[job], holder="t")
    # Off until enabled.
    assert loop.run_once() == []
    with session_maker() as session, session.begin():
        settings_service.update(
            session,
            {"hygiene.reverify": {"enabled": True, "invalid_action": "suppress"}},
        )
    assert loop.run_once() == ["reverify"]
    with session_maker() as session:
        rows = {r.subscriber_id: r for r in session.scalars(select(SubscriberHygiene))}
        dead = rows[ids["dead@gone.example"]]
        assert (dead.verify_result, dead.verify_reasons) == ("invalid", ["nxdomain"])
        assert dead.verified_at is not None and dead.verified_at > NOW
        assert "verify_invalid" in {f["code"] for f in dead.risk_factors}
        assert rows[ids["stale@good.example"]].verify_result == "valid"
        info = rows[ids["info@good.example"]]
        assert (info.verify_result, info.verify_reasons) == ("risky", ["role"])
        assert {f["code"] for f in info.risk_factors} == {"role"}
        # The fresh one was not verified again.
        assert rows[ids["fresh@good.example"]].verified_at < NOW
        assert suppression.find(session, "dead@gone.example", list_ids=[]) is not None
        transition = session.scalar(select(HygieneTransition))
        assert transition is not None and transition.action == "suppress"
        assert transition.reason == "re-verification found the address invalid (nxdomain)"
        transition_id = transition.id
    with session_maker() as session, session.begin():
        sunset.undo(session, transition_id, actor="admin")
    with session_maker() as session:
        assert suppression.find(session, "dead@gone.example", list_ids=[]) is None


def test_dns_questions_are_paced(dns_port: int) -> None:
    clock = [100.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(round(seconds, 3))
        clock[0] += seconds

    paced = reverify.PacedResolver(
        async_resolver(dns_port), per_second=4.0, sleep=sleep, now=lambda: clock[0]
    )

    async def ask() -> None:
        for domain in ("good.example", "other.example", "gone.example"):
            await paced.lookup(domain)
        # A cached answer is not paced.
        await paced.lookup("good.example")

    asyncio.run(ask())
    assert waits == [0.25, 0.25]


@pytest.mark.parametrize("action", ["unsubscribe", "blocklist", "none"])
def test_each_invalid_action_and_its_undo(
    session_maker: sessionmaker[Session], dns_port: int, action: str
) -> None:
    from stmails.db.models import MailingList, SubscriberList

    with session_maker() as session, session.begin():
        news = MailingList(name="News", optin="single")
        dead = Subscriber(email="dead@gone.example", name="x")
        session.add_all([news, dead])
        session.flush()
        session.add(SubscriberList(subscriber_id=dead.id, list_id=news.id, status="confirmed"))
        dead_id, list_id = dead.id, news.id
        settings_service.update(
            session, {"hygiene.reverify": {"enabled": True, "invalid_action": action}}
        )
    verifier = reverify_job(lambda: async_resolver(dns_port))
    outcome = verifier.run(session_maker)
    assert outcome["results"] == {"invalid": 1}
    assert outcome["acted"] == (0 if action == "none" else 1)

    def state() -> tuple[str, str]:
        with session_maker() as session:
            sub = session.get(Subscriber, dead_id)
            membership = session.get(SubscriberList, (dead_id, list_id))
            assert sub is not None and membership is not None
            return sub.status, membership.status

    expected = {
        "unsubscribe": ("enabled", "unsubscribed"),
        "blocklist": ("blocklisted", "confirmed"),
        "none": ("enabled", "confirmed"),
    }
    assert state() == expected[action]
    with session_maker() as session:
        transition = session.scalar(select(HygieneTransition))
    if action == "none":
        assert transition is None
        return
    assert transition is not None and transition.action == action
    with session_maker() as session, session.begin():
        sunset.undo(session, transition.id, actor="admin")
    assert state() == ("enabled", "confirmed")
