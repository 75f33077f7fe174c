"""The deliverability and listmonk analytics API over HTTP: complaints arriving as an ARF report
in a bounce mailbox and as an ESP webhook, bounces through the bounce webhook, and the figures
as JSON and CSV; bad input and missing permissions."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ingest.webhooks.contract import sample
from ingest.webhooks.signing import basic
from services.history import T0, bounce, campaign, mailing_list, send, subscriber
from stmails.core.event import Event
from stmails.db.models import Campaign, CampaignSend, Subscriber
from stmails.ingest.mailbox.scanner import message_events
from stmails.services import roles, settings, users
from stmails.services.analytics import rollups
from stmails.services.bounces import record

ARF = (
    b"From: feedback@fbl.yahoo.example\r\n"
    b"To: fbl@sender.example\r\n"
    b"Subject: FW: News\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=feedback-report; boundary="ARF"\r\n\r\n'
    b"--ARF\r\nContent-Type: text/plain\r\n\r\nAn abuse report.\r\n\r\n"
    b"--ARF\r\nContent-Type: message/feedback-report\r\n\r\n"
    b"Feedback-Type: abuse\r\nUser-Agent: YahooFBL/1.0\r\nVersion: 1\r\n"
    b"Original-Rcpt-To: <bo@yahoo.com>\r\n\r\n"
    b"--ARF\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    b"From: News <news@sender.example>\r\nTo: bo@yahoo.com\r\nSubject: News\r\n"
    b"Message-ID: MESSAGE-ID\r\nX-Stmails-Campaign: CAMPAIGN\r\n\r\n"
    b"--ARF--\r\n"
)


def _history(session_maker: sessionmaker[Session]) -> Campaign:
    with session_maker() as session:
        news = campaign(session, "News")
        mailing_list(session, "Readers", news)
        for address in ("ana@gmail.com", "bo@yahoo.com", "cy@gmail.com", "=cmd@evil.example"):
            send(session, news, subscriber(session, address), "sent", "")
        session.commit()
        return news


def test_complaints_from_an_arf_report_and_an_esp_webhook(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    news = _history(session_maker)
    # The report returns the headers of the message stmails sent (its Message-ID attributes it:
    # bounce.mailbox_trust).
    with session_maker() as session:
        sent_id = session.scalars(
            select(CampaignSend.message_id)
            .join(Subscriber, Subscriber.id == CampaignSend.subscriber_id)
            .where(Subscriber.email == "bo@yahoo.com")
        ).one()
    raw = ARF.replace(b"CAMPAIGN", news.uuid.encode()).replace(b"MESSAGE-ID", sent_id.encode())
    events = message_events(raw, "fbl")
    assert [(e.type, e.email, e.campaign_uuid) for e in events] == [
        ("complaint", "bo@yahoo.com", news.uuid)
    ]
    with session_maker() as session:
        for event in events:
            record(session, event)
        settings.set_value(
            session,
            "bounce.postmark",
            {"enabled": True, "username": "postmark", "password": "s3cret-pass"},
        )
        session.commit()
    body = (
        sample("postmark_spam_complaint.json")
        .replace(b'"john@example.com"', b'"ana@gmail.com"')
        .replace(b'{"a_key": "a_value"}', b'{"X-Stmails-Campaign": "' + news.uuid.encode() + b'"}')
    )
    answer = client.post(
        "/webhooks/service/postmark",
        content=body,
        headers={"content-type": "application/json", **basic("postmark", "s3cret-pass")},
        auth=None,
    )
    assert answer.status_code == 200, answer.text

    breakdown = client.get("/api/deliverability/breakdown").json()["data"]
    assert breakdown["complaints"] == {
        "total": 2,
        "by_source": [
            {"source": "mailbox", "channel": "mailbox", "complaints": 1},
            {"source": "postmark", "channel": "webhook", "complaints": 1},
        ],
        # Delivered: ana and cy at gmail.com, bo at yahoo.com.
        "by_domain": [
            {
                "domain": "gmail.com",
                "complaints": 1,
                "delivered": 2,
                "complaint_rate": 50.0,
                "level": "critical",
            },
            {
                "domain": "yahoo.com",
                "complaints": 1,
                "delivered": 1,
                "complaint_rate": 100.0,
                "level": "critical",
            },
        ],
        "by_provider": [
            {
                "provider": "google",
                "complaints": 1,
                "delivered": 2,
                "complaint_rate": 50.0,
                "level": "critical",
            },
            {
                "provider": "yahoo",
                "complaints": 1,
                "delivered": 1,
                "complaint_rate": 100.0,
                "level": "critical",
            },
        ],
    }
    summary = client.get("/api/deliverability/summary", params={"campaign_id": news.id})
    figures = summary.json()["data"]
    assert figures["complaints"] == 2 and figures["rates"]["complaint"] == 50.0
    assert figures["levels"]["complaint_rate"] == "critical"


def test_csv_exports_are_the_json_figures_and_neutralized(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    news = _history(session_maker)
    with session_maker() as session:
        record(
            session,
            Event(
                source='=HYPERLINK("https://evil.example")',
                type="hard",
                email="=cmd@evil.example",
                campaign_uuid=news.uuid,
                reason="user_unknown",
                occurred_at=T0 + timedelta(hours=1),
            ),
        )
        session.commit()
    breakdown = client.get("/api/deliverability/breakdown", params={"format": "csv"})
    assert breakdown.status_code == 200
    assert breakdown.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(breakdown.text)))
    domains = {r["key"]: r for r in rows if r["section"] == "by_domain"}
    # A spreadsheet must not read a domain (nor any cell) as a formula.
    assert set(domains) == {"gmail.com", "yahoo.com", ["'=cmd", "evil.example"][1]}
    assert domains["evil.example"]["bounced"] == "1" and domains["evil.example"]["sent"] == "1"
    assert domains["evil.example"]["bounce_rate"] == "100.0"
    assert [r["key"] for r in rows if r["section"] == "by_type"] == ["hard", "soft", "complaint"]
    # A spreadsheet must not read text that came from outside as a formula.
    sources = [r for r in rows if r["section"] == "by_source"]
    assert [(r["key"], r["channel"]) for r in sources] == [
        ('\'=HYPERLINK("https://evil.example")', "api")
    ]
    trend = [r for r in rows if r["section"] == "trend"]
    assert trend[0]["key"] == "2026-03-02T00:00:00Z" and trend[0]["sent"] == "4"
    summary = client.get("/api/deliverability/summary", headers={"accept": "text/csv"})
    values = dict(csv.reader(io.StringIO(summary.text)))
    assert values["sent"] == "4" and values["rates.bounce"] == "25.0"
    assert values["opens.unique"] == "0"
    report = client.get("/api/deliverability/report", params={"month": "2026-03", "format": "csv"})
    cells = dict(csv.reader(io.StringIO(report.text)))
    assert cells["summary.sent"] == "4" and cells["month"] == "2026-03"
    assert cells["top_bounce_domains.0.domain"] == "evil.example"
    as_json = client.get("/api/deliverability/report", params={"month": "2026-03"}).json()
    assert as_json["data"]["summary"]["bounced"] == 1


def test_listmonk_bounce_analytics_by_day_and_hour(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    news = _history(session_maker)
    for at in (T0, T0 + timedelta(minutes=20), T0 + timedelta(days=8)):
        answer = client.post(
            "/webhooks/bounce",
            json={
                "email": "ana@gmail.com",
                "campaign_uuid": news.uuid,
                "source": "api",
                "type": "soft",
                "created_at": at.isoformat(),
            },
        )
        assert answer.status_code == 200
    hourly = client.get(
        "/api/campaigns/analytics/bounces",
        params={"id": news.id, "from": "2026-03-02", "to": "2026-03-03"},
    ).json()["data"]
    assert hourly == [{"campaign_id": news.id, "count": 2, "timestamp": "2026-03-02T09:00:00Z"}]
    daily = client.get(
        "/api/campaigns/analytics/bounces",
        params={"id": news.id, "from": "2026-03-01", "to": "2026-03-31"},
    ).json()["data"]
    assert daily == [
        {"campaign_id": news.id, "count": 2, "timestamp": "2026-03-02T00:00:00Z"},
        {"campaign_id": news.id, "count": 1, "timestamp": "2026-03-10T00:00:00Z"},
    ]
    assert client.get(
        "/api/campaigns/analytics/views",
        params={"id": news.id, "from": "2026-03-01", "to": "2026-03-31"},
    ).json() == {"data": []}


def test_bad_input_is_a_400_naming_the_field(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    news = _history(session_maker)
    cases = {
        ("/api/deliverability/summary", "from=yesterday"): "from:",
        ("/api/deliverability/summary", "to=2026-03-02T10:30:00Z"): "to:",
        ("/api/deliverability/summary", "from=2026-03-05&to=2026-03-01"): "to:",
        ("/api/deliverability/summary", "campaign_id=abc"): "campaign_id:",
        ("/api/deliverability/breakdown", "from=2026-03-02T10:00:00Z"): "from:",
        ("/api/deliverability/breakdown", "interval=week"): "interval:",
        ("/api/deliverability/breakdown", "order_by=name"): "order_by:",
        ("/api/deliverability/breakdown", "limit=-1"): "limit:",
        ("/api/deliverability/breakdown", "scope=some"): "scope:",
        ("/api/deliverability/breakdown", "format=xml"): "format:",
        ("/api/deliverability/report", "month=2026-3-1"): "month:",
        ("/api/deliverability/report", ""): "month:",
        ("/api/campaigns/analytics/views", f"id={news.id}&from=2026-03-01"): "to:",
        ("/api/campaigns/analytics/opens", f"id={news.id}&from=2026-03-01&to=2026-03-02"): "type:",
        ("/api/campaigns/analytics/views", "from=2026-03-01&to=2026-03-02"): "id:",
    }
    for (path, query), field in cases.items():
        answer = client.get(f"{path}?{query}")
        assert answer.status_code == 400, (path, query, answer.text)
        assert answer.json()["message"].startswith(field), (path, query, answer.text)
    missing = client.get("/api/deliverability/summary", params={"campaign_id": 9999})
    assert missing.status_code == 404
    assert client.get("/api/deliverability/summary", params={"list_id": 9999}).status_code == 404
    assert client.get("/api/subscribers/9999/activity").status_code == 404


def test_permissions(client: TestClient, session_maker: sessionmaker[Session]) -> None:
    with session_maker() as session:
        role = roles.create(session, "readers", ["campaigns:get_all"])
        users.create_api_user(session, "reader", "reader-token-0123456789", role=role)
        session.commit()
    reader = ("reader", "reader-token-0123456789")
    for path, permission in (
        ("/api/deliverability/summary", "deliverability:get"),
        ("/api/deliverability/breakdown", "deliverability:get"),
        ("/api/deliverability/report?month=2026-03", "deliverability:get"),
        ("/api/dashboard/counts", "campaigns:get_analytics"),
        ("/api/dashboard/charts", "campaigns:get_analytics"),
        (
            "/api/campaigns/analytics/views?id=1&from=2026-03-01&to=2026-03-02",
            "campaigns:get_analytics",
        ),
        ("/api/subscribers/1/activity", "subscribers:get"),
    ):
        refused = client.get(path, auth=reader)
        assert refused.status_code == 403, path
        assert refused.json()["message"] == f"permission denied: {permission} required"


def test_domains_over_months_covered_in_part_and_whole(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    """Per-domain figures of a period that starts and ends inside months (read as a month less
    the days left out) and holds a whole one, before and after the deltas are folded, as JSON
    and CSV: the same numbers as the events say."""
    at = T0.replace
    with session_maker() as session:
        spring, summer = campaign(session, "Spring"), campaign(session, "Summer")
        ana, bo, cy, di = (
            subscriber(session, address)
            for address in ("ana@gmail.com", "bo@yahoo.com", "cy@gmail.com", "di@corp.example")
        )
        send(session, spring, ana, "sent", "", at=at(month=3, day=1, hour=10))  # before
        send(session, spring, bo, "sent", "", at=at(month=3, day=15))
        send(session, spring, cy, "sent", "", at=at(month=3, day=31, hour=23))
        send(session, spring, di, "failed", "hard_bounce: 550 5.1.1", at=at(month=4, day=1))
        send(session, summer, bo, "sent", "", at=at(month=5, day=10))
        send(session, summer, ana, "sent", "", at=at(month=5, day=21))  # after
        bounce(session, "soft", "bo@yahoo.com", spring, at=at(month=3, day=16), reason="full")
        bounce(session, "hard", "di@corp.example", spring, at=at(month=4, day=1), source="smtp")
        bounce(session, "complaint", "cy@gmail.com", spring, at=at(month=5, day=2))
        session.commit()
    period = {"from": "2026-03-02", "to": "2026-05-20", "limit": "all"}
    expected = {
        "gmail.com": (1, 0, 1, 0.0),
        "yahoo.com": (2, 1, 0, 50.0),
        "corp.example": (1, 1, 0, 100.0),
    }
    for folded in (False, True):
        if folded:
            assert rollups.fold_pending(session_maker) > 0
        answer = client.get("/api/deliverability/breakdown", params=period)
        assert answer.status_code == 200
        domains = answer.json()["data"]["by_domain"]
        got = {
            r["domain"]: (r["sent"], r["bounced"], r["complaints"], r["bounce_rate"])
            for r in domains["results"]
        }
        assert got == expected
        assert domains["above_threshold"] == 2
        rows = csv.DictReader(io.StringIO(client.get(
            "/api/deliverability/breakdown", params={**period, "format": "csv"}
        ).text))  # fmt: skip
        sent = {r["key"]: r["sent"] for r in rows if r["section"] == "by_domain"}
        assert sent == {"gmail.com": "1", "yahoo.com": "2", "corp.example": "1"}
        everything = client.get("/api/deliverability/breakdown", params={"limit": "all"})
        totals = {r["domain"]: r["sent"] for r in everything.json()["data"]["by_domain"]["results"]}
        assert totals == {"gmail.com": 3, "yahoo.com": 2, "corp.example": 1}
