"""The deliverability figures of a known history, checked number by number.

The history: campaign A (list L1) on 2 March 2026 to gmail, yahoo and tiny.example addresses,
with SMTP refusals, later bounces from a mailbox and an ESP, a complaint and an unsubscribe;
campaign B (lists L1 and L2) on 3 March, with 20 more sends to quiet.example and a bounce on 4
March; a bounce of transactional mail; opens and clicks, one of them a machine's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import (
    Campaign,
    CampaignSend,
    Link,
    MailingList,
    Subscriber,
    SubscriberList,
)
from stmails.services import settings
from stmails.services.analytics import rollups
from stmails.services.analytics.deliverability import (
    DomainRow,
    Filters,
    VerificationJob,
    breakdown,
    complaints_by,
    report,
    summary,
)
from stmails.services.analytics.window import parse_window
from stmails.services.errors import InvalidInput, NotFound
from stmails.services.tracking.hits import Hit, record_hits

from .history import T0, bounce, campaign, mailing_list, send, subscriber

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"
DAY2 = T0 + timedelta(days=1)
DAY3 = T0 + timedelta(days=2)


@dataclass
class Known:
    a: Campaign
    b: Campaign
    l1: MailingList
    l2: MailingList


@pytest.fixture
def known(session_maker: sessionmaker[Session]) -> Known:
    with session_maker() as session:
        settings.set_value(session, "privacy.individual_tracking", True)
        a, b = campaign(session, "A"), campaign(session, "B")
        l1 = mailing_list(session, "L1", a, b)
        l2 = mailing_list(session, "L2", b)
        people = {
            name: subscriber(session, f"{name}@{domain}")
            for name, domain in (
                ("g1", "gmail.com"),
                ("g2", "gmail.com"),
                ("g3", "gmail.com"),
                ("g4", "gmail.com"),
                ("g5", "gmail.com"),
                ("y1", "yahoo.com"),
                ("y2", "yahoo.com"),
                ("y3", "yahoo.com"),
                ("t1", "tiny.example"),
                ("t2", "tiny.example"),
                ("n1", "gmail.com"),
            )
        }
        for name in ("g1", "g2", "g3", "g5", "y1", "y2", "t1"):
            send(session, a, people[name], "sent", "")
        send(session, a, people["g4"], "failed", "hard_bounce: 550 5.1.1 unknown")
        send(session, a, people["y3"], "failed", "soft_bounce: 452 4.2.2 full")
        send(session, a, people["t2"], "sent", "in_doubt")
        bounce(session, "hard", "g4@gmail.com", a, reason="user_unknown", source="smtp")
        bounce(session, "soft", "y3@yahoo.com", a, reason="mailboxfull", source="smtp")
        later = T0 + timedelta(hours=2)
        bounce(session, "soft", "g1@gmail.com", a, at=later, reason="mailboxfull", source="mailbox")
        bounce(session, "hard", "t1@tiny.example", a, at=later, reason="user_unknown", source="ses")
        bounce(
            session, "complaint", "y1@yahoo.com", a, at=later, reason="feedback", source="postmark"
        )
        for name in ("g1", "y1", "t1", "n1"):
            send(session, b, people[name], "sent", "", at=DAY2)
        for n in range(20):
            send(session, b, subscriber(session, f"q{n}@quiet.example"), "sent", "", at=DAY2)
        bounce(session, "hard", "n1@gmail.com", b, at=DAY3, reason="user_unknown", source="mailbox")
        bounce(session, "hard", "stranger@outlook.com", None, at=DAY2, reason="user_unknown")
        session.flush()
        # g5 unsubscribes from campaign A's message (the unsubscribe link marks the send).
        session.execute(
            update(CampaignSend)
            .where(CampaignSend.campaign_id == a.id, CampaignSend.subscriber_id == people["g5"].id)
            .values(reason="unsubscribed")
        )
        link = Link(campaign_id=a.id, url="https://shop.example/")
        session.add(link)
        session.commit()
        opened = T0 + timedelta(hours=1)
        hits = [
            Hit("view", a.id, people["g1"].uuid, opened, user_agent=BROWSER),
            Hit("view", a.id, people["g1"].uuid, opened + timedelta(hours=5), user_agent=BROWSER),
            Hit("view", a.id, people["g2"].uuid, opened, user_agent=BROWSER),
            Hit("view", a.id, people["y1"].uuid, opened, user_agent="Mozilla/5.0"),
            Hit("click", a.id, people["g1"].uuid, opened, link_id=link.id, user_agent=BROWSER),
            Hit("view", b.id, people["g1"].uuid, DAY2 + timedelta(hours=1), user_agent=BROWSER),
        ]
        outcomes = record_hits(session, hits)
        assert [o.machine for o in outcomes if not isinstance(o, Exception)] == [
            "",
            "",
            "",
            "apple_mpp",
            "",
            "",
        ]
        session.commit()
        return Known(a, b, l1, l2)


def figures_of(session_maker: sessionmaker[Session], **filters: Any) -> dict[str, Any]:
    with session_maker() as session:
        return summary(session, Filters(**filters))


def test_summary_of_everything(session_maker: sessionmaker[Session], known: Known) -> None:
    result = figures_of(session_maker)
    assert {k: result[k] for k in ("sent", "accepted", "refused", "in_doubt")} == {
        "sent": 33,
        "accepted": 31,
        "refused": 2,
        "in_doubt": 1,
    }
    assert {k: result[k] for k in ("delivered", "bounced", "hard", "soft")} == {
        "delivered": 28,
        "bounced": 5,
        "hard": 3,
        "soft": 2,
    }
    assert (result["complaints"], result["unsubscribes"]) == (1, 1)
    assert result["opens"] == {"unique": 3, "total": 4, "machine": 1}
    assert result["clicks"] == {"unique": 1, "total": 1, "machine": 0}
    assert result["rates"] == {
        "bounce": 15.1515,
        "hard_bounce": 9.0909,
        "soft_bounce": 6.0606,
        "delivery": 84.8485,
        "open": 10.7143,
        "click": 3.5714,
        "click_to_open": 33.3333,
        "complaint": 3.5714,
        "unsubscribe": 3.5714,
    }
    assert result["levels"] == {"bounce_rate": "critical", "complaint_rate": "critical"}
    # The transactional bounce has no send to be compared with: it is apart.
    assert result["unattributed"] == {"hard": 1, "soft": 0, "complaints": 0}


def test_summary_by_campaign_list_and_period(
    session_maker: sessionmaker[Session], known: Known
) -> None:
    a = figures_of(session_maker, campaign_id=known.a.id)
    assert (a["sent"], a["delivered"], a["bounced"], a["complaints"]) == (9, 5, 4, 1)
    assert a["rates"]["bounce"] == 44.4444 and a["opens"]["unique"] == 2
    assert a["unattributed"] == {"hard": 0, "soft": 0, "complaints": 0}
    l2 = figures_of(session_maker, list_id=known.l2.id)
    assert (l2["sent"], l2["bounced"], l2["rates"]["bounce"]) == (24, 1, 4.1667)
    assert l2["levels"]["bounce_rate"] == "warning"
    assert figures_of(session_maker, list_id=known.l1.id)["sent"] == 33
    both = figures_of(session_maker, list_id=known.l2.id, campaign_id=known.a.id)
    assert both["sent"] == 0 and both["rates"]["bounce"] is None
    first_day = figures_of(session_maker, window=parse_window("2026-03-02", "2026-03-02"))
    assert (first_day["sent"], first_day["bounced"], first_day["opens"]["total"]) == (9, 4, 3)
    third_day = figures_of(session_maker, window=parse_window("2026-03-04", "2026-03-04"))
    assert (third_day["sent"], third_day["bounced"], third_day["delivered"]) == (0, 1, 0)
    hours = figures_of(
        session_maker, window=parse_window("2026-03-02T10:00:00Z", "2026-03-02T12:00:00Z")
    )
    # 10:00 to 12:00: the opens at 10:15 and the bounces at 11:15.
    assert (hours["sent"], hours["bounced"], hours["opens"]["total"]) == (0, 2, 2)
    with session_maker() as session, pytest.raises(NotFound):
        summary(session, Filters(campaign_id=999))
    with session_maker() as session, pytest.raises(NotFound):
        summary(session, Filters(list_id=999))


def test_folding_does_not_change_a_figure(
    session_maker: sessionmaker[Session], known: Known
) -> None:
    before = figures_of(session_maker), figures_of(session_maker, campaign_id=known.a.id)
    with session_maker() as session:
        everything = breakdown(session, Filters())
    assert rollups.fold_pending(session_maker, limit=7) > 0
    assert (figures_of(session_maker), figures_of(session_maker, campaign_id=known.a.id)) == before
    with session_maker() as session:
        assert breakdown(session, Filters()) == everything


def test_breakdown_by_type_reason_source_domain_and_trend(
    session_maker: sessionmaker[Session], known: Known
) -> None:
    with session_maker() as session:
        result = breakdown(session, Filters())
    assert result["by_type"] == [
        {"type": "hard", "count": 3, "rate": 9.0909},
        {"type": "soft", "count": 2, "rate": 6.0606},
        {"type": "complaint", "count": 1, "rate": 3.0303},
    ]
    assert [(r["reason"], r["hard"], r["soft"], r["complaints"]) for r in result["by_reason"]] == [
        ("user_unknown", 3, 0, 0),
        ("mailboxfull", 0, 2, 0),
        ("feedback", 0, 0, 1),
    ]
    assert [(r["source"], r["channel"], r["total"]) for r in result["by_source"]] == [
        ("mailbox", "mailbox", 2),
        ("smtp", "smtp", 2),
        ("postmark", "webhook", 1),
        ("ses", "webhook", 1),
    ]
    domains = {r["domain"]: r for r in result["by_domain"]["results"]}
    assert result["by_domain"]["total"] == 4 and result["by_domain"]["above_threshold"] == 3
    assert [r["domain"] for r in result["by_domain"]["results"]] == [
        "quiet.example",
        "gmail.com",
        "yahoo.com",
        "tiny.example",
    ]
    assert domains["gmail.com"] | {} == {
        "domain": "gmail.com",
        "sent": 7,
        "delivered": 4,
        "bounced": 3,
        "hard": 2,
        "soft": 1,
        "complaints": 0,
        "bounce_rate": 42.8571,
        "complaint_rate": 0.0,
        "above_threshold": True,
    }
    assert (domains["yahoo.com"]["sent"], domains["yahoo.com"]["bounce_rate"]) == (4, 25.0)
    assert domains["yahoo.com"]["complaints"] == 1
    assert (domains["tiny.example"]["sent"], domains["tiny.example"]["bounced"]) == (2, 1)
    assert domains["quiet.example"]["above_threshold"] is False
    assert result["complaints"] == {
        "total": 1,
        "by_source": [{"source": "postmark", "channel": "webhook", "complaints": 1}],
        # yahoo.com: 4 sent, 1 bounced, so 3 delivered and 1 complaint among them.
        "by_domain": [
            {
                "domain": "yahoo.com",
                "complaints": 1,
                "delivered": 3,
                "complaint_rate": 33.3333,
                "level": "critical",
            }
        ],
        "by_provider": [
            {
                "provider": "yahoo",
                "complaints": 1,
                "delivered": 3,
                "complaint_rate": 33.3333,
                "level": "critical",
            }
        ],
    }
    points = result["trend"]["points"]
    assert [(p["time"], p["sent"], p["bounced"]) for p in points] == [
        ("2026-03-02T00:00:00Z", 9, 4),
        ("2026-03-03T00:00:00Z", 24, 0),
        ("2026-03-04T00:00:00Z", 0, 1),
    ]
    with session_maker() as session:
        ordered = breakdown(session, Filters(), order="bounce_rate", limit=2, min_sent=3)
        hourly = breakdown(
            session, Filters(window=parse_window("2026-03-02", "2026-03-02")), interval="hour"
        )
        everything = breakdown(session, Filters(everything=True))
    assert [r["domain"] for r in ordered["by_domain"]["results"]] == ["gmail.com", "yahoo.com"]
    assert ordered["by_domain"]["total"] == 3
    # Sends and SMTP refusals at 09:00, opens at 10:00, later bounces at 11:00, an open at 15:00.
    assert [(p["time"], p["bounced"], p["opens"]) for p in hourly["trend"]["points"]] == [
        ("2026-03-02T09:00:00Z", 2, 0),
        ("2026-03-02T10:00:00Z", 0, 2),
        ("2026-03-02T11:00:00Z", 2, 0),
        ("2026-03-02T15:00:00Z", 0, 1),
    ]
    assert hourly["trend"]["points"][0] == {
        "time": "2026-03-02T09:00:00Z",
        "sent": 9,
        "delivered": 7,
        "bounced": 2,
        "hard": 1,
        "soft": 1,
        "complaints": 0,
        "opens": 0,
        "clicks": 0,
        "bounce_rate": 22.2222,
    }
    assert next(r for r in everything["by_type"] if r["type"] == "hard")["count"] == 4
    outlook = [r for r in everything["by_domain"]["results"] if r["domain"] == "outlook.com"]
    assert outlook == [
        {
            "domain": "outlook.com",
            "sent": 0,
            "delivered": 0,
            "bounced": 1,
            "hard": 1,
            "soft": 0,
            "complaints": 0,
            "bounce_rate": None,
            "complaint_rate": None,
            "above_threshold": False,
        }
    ]


def test_breakdown_needs_whole_days_and_bounded_hours(
    session_maker: sessionmaker[Session], known: Known
) -> None:
    with session_maker() as session:
        with pytest.raises(InvalidInput, match=r"^from:"):
            breakdown(session, Filters(window=parse_window("2026-03-02T05:00:00Z", "2026-03-03")))
        with pytest.raises(InvalidInput, match=r"^interval:"):
            breakdown(
                session, Filters(window=parse_window("2026-01-01", "2026-12-31")), interval="hour"
            )


def test_monthly_report(session_maker: sessionmaker[Session], known: Known) -> None:
    jobs = [
        VerificationJob(T0, 3, {"valid": 2, "invalid": 1}),
        VerificationJob(T0 + timedelta(days=3), 2, {"valid": 1, "risky": 1}),
        VerificationJob(T0 - timedelta(days=10), 5, {"valid": 5}),
    ]
    with session_maker() as session:
        ids = dict(session.execute(select(Subscriber.email, Subscriber.id)).all())
        session.add_all(
            [
                SubscriberList(
                    subscriber_id=ids["g1@gmail.com"],
                    list_id=known.l1.id,
                    status="confirmed",
                    created_at=T0,
                    updated_at=T0,
                ),
                SubscriberList(
                    subscriber_id=ids["y1@yahoo.com"],
                    list_id=known.l1.id,
                    status="unsubscribed",
                    created_at=T0 - timedelta(days=40),
                    updated_at=DAY2,
                ),
            ]
        )
        session.commit()
    with session_maker() as session:
        result = report(session, "2026-03", jobs)
        empty = report(session, "2026-02")
    assert result["month"] == "2026-03"
    assert result["summary"]["sent"] == 33 and result["previous_month"]["sent"] == 0
    assert [m["month"] for m in result["bounce_rate_trend"]["monthly"]] == [
        "2025-10",
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
        "2026-03",
    ]
    assert result["bounce_rate_trend"]["monthly"][-1]["bounce_rate"] == 15.1515
    assert len(result["bounce_rate_trend"]["daily"]) == 3
    assert result["top_reasons"][0]["reason"] == "user_unknown"
    assert [d["domain"] for d in result["domains_above_threshold"]] == [
        "tiny.example",
        "gmail.com",
        "yahoo.com",
    ]
    assert result["complaints"]["rate"] == 3.5714 and result["complaints"]["level"] == "critical"
    assert result["engagement"]["opens"] == {"unique": 3, "total": 4, "machine": 1}
    assert result["verification"] == {
        "jobs": 2,
        "addresses": 5,
        "by_result": {"invalid": 1, "risky": 1, "valid": 3},
    }
    lists = {entry["name"]: entry for entry in result["list_composition"]["lists"]}
    assert set(lists) == {"L1", "L2"}
    assert lists["L1"] == {
        "id": known.l1.id,
        "name": "L1",
        "subscriptions": {"unconfirmed": 0, "confirmed": 1, "unsubscribed": 1},
        "added": 1,
        "unsubscribed": 1,
    }
    assert lists["L2"]["subscriptions"] == {"unconfirmed": 0, "confirmed": 0, "unsubscribed": 0}
    assert empty["summary"]["sent"] == 0 and empty["bounce_rate_trend"]["daily"] == []
    with session_maker() as session, pytest.raises(InvalidInput, match=r"^month:"):
        report(session, "2026-13")


def test_complaints_per_provider_count_every_domain_of_the_provider() -> None:
    rows = [
        # domain, accepted, refused, hard, soft, complaints
        DomainRow("gmail.com", 1500, 0, 0, 0, 1),
        DomainRow("googlemail.com", 500, 0, 0, 0, 0),
        DomainRow("qq.com", 900, 100, 100, 0, 1),
        DomainRow("quiet.example", 10, 0, 0, 0, 0),
    ]
    result = complaints_by(rows, [])
    assert result["total"] == 2
    assert result["by_provider"] == [
        # 1 of 2,000 delivered by Google's two domains: 0.05 %, under the 0.1 % line.
        {
            "provider": "google",
            "complaints": 1,
            "delivered": 2000,
            "complaint_rate": 0.05,
            "level": "ok",
        },
        # 1 of 900 delivered (1,000 sent, 100 bounced): 0.1111 %.
        {
            "provider": "tencent",
            "complaints": 1,
            "delivered": 900,
            "complaint_rate": 0.1111,
            "level": "critical",
        },
    ]
    assert [d["domain"] for d in result["by_domain"]] == ["gmail.com", "qq.com"]
    assert result["by_domain"][0]["complaint_rate"] == round(100 / 1500, 4)
