"""The sending API over real HTTP requests to the real app: suppressions, campaigns, tx, templates,
unsubscribe; and the sender loop picking up a campaign started through the API."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.core import verp
from stmails.db.models import Campaign, Setting, Subscriber, SubscriberList, Suppression
from stmails.services import suppression
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.runtime import VerpMaker, return_path_for, verp_maker
from stmails.workers.sender import SenderLoop

from .conftest import Sink, World, make_world


def configure_smtp(client: TestClient, sink: Sink, **extra: object) -> None:
    body = {
        "smtp": sink.smtp_settings(),
        "sending.bounce_address": "bounces@mail.example.org",
        "sending.verp": True,
        **extra,
    }
    response = client.put("/api/settings", json=body)
    assert response.status_code == 200, response.text


def test_suppressions_bulk_upsert_get_search_export_delete(client: TestClient) -> None:
    entries = [{"recipient": f"user{i}@example.com", "reason": "import"} for i in range(50)]
    entries += [
        {"domain": "spamtrap.example", "reason": "manual", "description": "=HYPERLINK(1)"},
        {"email_hash": "ab" * 32, "reason": "hard_bounce"},
        {"recipient": "listonly@example.com", "list_id": 7, "reason": "unsubscribe"},
    ]
    response = client.put("/api/suppressions", json={"recipients": entries})
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"upserted": 53}}

    bad = client.put("/api/suppressions", json={"recipients": [{"recipient": "x@y.z"}, {}]})
    assert bad.status_code == 400 and "recipients[1]" in bad.json()["message"]
    too_many = [{"recipient": f"a{i}@b.c"} for i in range(10_001)]
    assert client.put("/api/suppressions", json=too_many).status_code == 400
    assert client.get("/api/suppressions/a1@b.c").status_code == 404

    one = client.get("/api/suppressions/USER7@example.com").json()["data"]
    assert one["suppressed"] is True and one["results"][0]["reason"] == "import"
    domain = client.get("/api/suppressions/anyone@spamtrap.example").json()["data"]
    assert domain["suppressed"] is True and domain["results"][0]["kind"] == "domain"
    scoped = client.get("/api/suppressions/listonly@example.com").json()["data"]
    assert scoped["suppressed"] is False and scoped["suppressed_lists"] == [7]

    page = client.get("/api/suppressions", params={"reason": "import", "per_page": 20, "page": 3})
    body = page.json()["data"]
    assert body["total"] == 50 and len(body["results"]) == 10
    assert client.get("/api/suppressions", params={"reason": "nope"}).status_code == 400

    exported = client.get("/api/suppressions", params={"format": "csv", "kind": "domain"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["domain"] for r in rows] == ["spamtrap.example"]
    assert rows[0]["description"] == "'=HYPERLINK(1)"

    assert client.delete("/api/suppressions/user7@example.com").json() == {"data": {"deleted": 1}}
    assert client.delete("/api/suppressions/user7@example.com").status_code == 404
    assert client.get("/api/suppressions/user7@example.com").status_code == 404


def test_campaign_started_through_api_is_sent_by_the_worker_with_verp(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=3)
    configure_smtp(client, smtp_sink)
    client.put("/api/suppressions", json=[{"recipient": "user1@example.com", "reason": "manual"}])
    assert (
        client.put(
            f"/api/campaigns/{world.campaign_id}/status", json={"status": "paused"}
        ).status_code
        == 400
    )
    response = client.put(f"/api/campaigns/{world.campaign_id}/status", json={"status": "running"})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "running"

    loop = SenderLoop(session_maker, root_url="https://lists.example.org", verp=_verp_for_tests())
    assert loop.run_once() == 1
    loop.close()
    assert sorted(smtp_sink.handler.recipients()) == ["user0@example.com", "user2@example.com"]
    captured = smtp_sink.handler.by_recipient("user0@example.com")[0]
    assert captured.mail_from.startswith("bounces+") and captured.mail_from.endswith(
        "@mail.example.org"
    )
    stats = client.get(f"/api/campaigns/{world.campaign_id}/stats").json()["data"]
    assert stats["status"] == "finished" and stats["sent"] == 2
    assert stats["skipped_by_reason"] == {"suppressed:address": 1}


def _verp_for_tests() -> VerpMaker:
    return verp_maker(b"test-secret-key")


def test_verp_return_path_verifies_with_the_scanner_function(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=1)
    configure_smtp(client, smtp_sink)
    client.put(f"/api/campaigns/{world.campaign_id}/status", json={"status": "running"})
    loop = SenderLoop(session_maker, root_url="", verp=_verp_for_tests())
    loop.run_once()
    loop.close()
    captured = smtp_sink.handler.messages[0]
    token = verp.find_token(b"test-secret-key", captured.mail_from.encode(), prefix="bounces")
    with session_maker() as session:
        campaign = session.get(Campaign, world.campaign_id)
        subscriber = session.scalar(select(Subscriber))
        assert campaign is not None and subscriber is not None
    assert token == verp.VerpToken(subscriber_id=subscriber.id, campaign_id=campaign.id)
    assert len(captured.mail_from.rpartition("@")[0]) <= verp.MAX_LOCAL_PART


def test_verp_return_paths_fit_rfc_5321_or_are_not_used(caplog: pytest.LogCaptureFixture) -> None:
    longest = "b" * verp.MAX_PREFIX + "@mail.example.org"
    path = return_path_for(SendingConfig(bounce_address=longest, verp=True), _verp_for_tests())
    address = path(7, 42)
    assert len(address.rpartition("@")[0]) == verp.MAX_LOCAL_PART
    assert verp.find_token(b"test-secret-key", address.encode(), prefix="b" * verp.MAX_PREFIX)
    # No subscriber (a test address), no token.
    assert path(7, 0) == longest
    too_long = "b" + longest
    path = return_path_for(SendingConfig(bounce_address=too_long, verp=True), _verp_for_tests())
    assert path(7, 42) == too_long
    assert "too long for VERP" in caplog.text


def test_campaign_test_send_and_preview(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=2)
    configure_smtp(client, smtp_sink)
    client.put("/api/suppressions", json=[{"recipient": "user0@example.com"}])
    response = client.post(
        f"/api/campaigns/{world.campaign_id}/test",
        params={"results": "true"},
        json={"subscribers": ["user0@example.com", "user1@example.com"], "subject": "TEST"},
    )
    assert response.status_code == 200, response.text
    results = {r["recipient"]: r for r in response.json()["data"]["results"]}
    assert results["user0@example.com"]["status"] == "refused"
    assert "suppressed (manual, global)" in results["user0@example.com"]["error"]
    assert smtp_sink.handler.recipients() == ["user1@example.com"]
    assert smtp_sink.handler.messages[0].message["Subject"] == "TEST"

    refused = client.post(
        f"/api/campaigns/{world.campaign_id}/test", json={"subscribers": ["user0@example.com"]}
    )
    # listmonk's answer: an error naming the address and why (per-recipient results in data).
    assert refused.status_code == 400 and "user0@example.com: suppressed" in refused.text
    assert refused.json()["data"]["results"][0]["status"] == "refused"
    ok = client.post(
        f"/api/campaigns/{world.campaign_id}/test", json={"subscribers": ["user1@example.com"]}
    )
    assert ok.status_code == 200 and ok.json() == {"data": True}

    sub_id = world.subscriber_ids["user1@example.com"]
    preview = client.get(
        f"/api/campaigns/{world.campaign_id}/preview", params={"subscriber_id": sub_id}
    )
    assert preview.status_code == 200
    assert preview.headers["content-type"].startswith("text/html")
    assert "Hi User1 Last from Paris" in preview.text and "<h1>Hello User1</h1>" in preview.text
    missing = client.get(
        f"/api/campaigns/{world.campaign_id}/preview", params={"subscriber_id": 999999}
    )
    assert missing.status_code == 404


def test_campaign_test_send_and_preview_find_a_subscriber_by_any_spelling(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=2)
    configure_smtp(client, smtp_sink)
    spelled = " USER1@Example.COM "
    preview = client.get(
        f"/api/campaigns/{world.campaign_id}/preview", params={"subscriber_email": spelled}
    )
    assert preview.status_code == 200, preview.text
    assert "Hi User1 Last from Paris" in preview.text
    sent = client.post(
        f"/api/campaigns/{world.campaign_id}/test", json={"subscribers": ["User1@EXAMPLE.com\t"]}
    )
    assert sent.status_code == 200, sent.text
    assert smtp_sink.handler.recipients() == ["user1@example.com"]
    unknown = client.get(
        f"/api/campaigns/{world.campaign_id}/preview",
        params={"subscriber_email": "user9@example.com"},
    )
    assert unknown.status_code == 404


def test_tx_api_and_templates(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    make_world(session_maker, count=2)
    configure_smtp(client, smtp_sink)
    no_slot = client.post(
        "/api/templates", json={"name": "x", "type": "campaign", "body": "<p>no content</p>"}
    )
    assert no_slot.status_code == 400 and "content" in no_slot.json()["message"]
    broken = client.post(
        "/api/templates", json={"name": "x", "type": "tx", "body": "{{ if .X }}open"}
    )
    assert broken.status_code == 400
    created = client.post(
        "/api/templates",
        json={
            "name": "Code",
            "type": "tx",
            "subject": "Your code {{ .Tx.Data.code }}",
            "body": "<p>{{ .Subscriber.FirstName }}: {{ .Tx.Data.code }}</p>",
        },
    )
    assert created.status_code == 200, created.text
    template_id = created.json()["data"]["id"]
    assert client.get(f"/api/templates/{template_id}/preview").status_code == 200

    client.put(
        "/api/suppressions", json=[{"recipient": "user1@example.com", "reason": "complaint"}]
    )
    sent = client.post(
        "/api/tx",
        params={"results": "true"},
        json={
            "subscriber_emails": ["user0@example.com", "user1@example.com"],
            "template_id": template_id,
            "data": {"code": "914"},
        },
    )
    assert sent.status_code == 200, sent.text
    statuses = {r["recipient"]: r["status"] for r in sent.json()["data"]["results"]}
    assert statuses == {"user0@example.com": "sent", "user1@example.com": "refused"}
    message = smtp_sink.handler.messages[0].message
    assert message["Subject"] == "Your code 914"

    all_refused = client.post(
        "/api/tx", json={"subscriber_email": "user1@example.com", "template_id": template_id}
    )
    assert all_refused.status_code == 400
    assert "complaint" in all_refused.json()["message"]
    assert client.post("/api/tx", json={"template_id": 999, "subscriber_id": 1}).status_code == 400

    raw = client.post(
        "/api/tx/raw",
        json={
            "to": ["someone@example.net", "user1@example.com"],
            "subject": "raw",
            "from_email": "App <app@example.org>",
            "body": "# Title\n\nhello **there**",
            "content_type": "markdown",
        },
    )
    assert raw.status_code == 200, raw.text
    assert [r["status"] for r in raw.json()["data"]["results"]] == ["sent", "refused"]
    raw_message = smtp_sink.handler.by_recipient("someone@example.net")[0].message
    html = raw_message.get_body(("html",))
    assert html is not None and "<strong>there</strong>" in html.get_content()


def test_one_click_unsubscribe(client: TestClient, session_maker: sessionmaker[Session]) -> None:
    world: World = make_world(session_maker, count=1)
    with session_maker() as session:
        campaign = session.get(Campaign, world.campaign_id)
        subscriber = session.scalar(select(Subscriber))
        assert campaign is not None and subscriber is not None
    url = f"/subscription/{campaign.uuid}/{subscriber.uuid}"
    client.auth = None
    page = client.get(url)
    assert page.status_code == 200 and "user0@example.com" in page.text and "<form" in page.text
    done = client.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200
    assert client.get(f"/subscription/{campaign.uuid}/not-a-subscriber").status_code == 404
    with session_maker() as session:
        link = session.scalar(select(SubscriberList))
        assert link is not None and link.status == "unsubscribed"
        entry = session.scalar(select(Suppression))
        assert entry is not None and entry.source == "one-click"
        assert suppression.find(session, "user0@example.com", [world.list_id]) is not None


def test_campaigns_do_not_wait_silently_for_an_smtp_server(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=2)
    configure_smtp(client, smtp_sink, smtp=smtp_sink.smtp_settings(enabled=False))
    refused = client.put(f"/api/campaigns/{world.campaign_id}/status", json={"status": "running"})
    assert refused.status_code == 400
    assert refused.json()["message"] == "no SMTP server is enabled (settings: smtp)"

    # Running when the server goes away: the sender pauses it and says why.
    configure_smtp(client, smtp_sink)
    started = client.put(f"/api/campaigns/{world.campaign_id}/status", json={"status": "running"})
    assert started.status_code == 200
    configure_smtp(client, smtp_sink, smtp=[])
    loop = SenderLoop(session_maker, root_url="https://lists.example.org")
    assert loop.run_once() == 0
    campaign = client.get(f"/api/campaigns/{world.campaign_id}").json()["data"]
    assert campaign["status"] == "paused"
    assert campaign["pause_reason"] == "no SMTP server is enabled (settings: smtp)"

    # A stored value that no longer validates (written before validation existed) pauses it
    # with the field named, instead of failing every pass in the log.
    configure_smtp(client, smtp_sink)
    assert (
        client.put(f"/api/campaigns/{world.campaign_id}/status", json={"status": "running"}).json()[
            "data"
        ]["pause_reason"]
        == ""
    )
    with session_maker() as session, session.begin():
        row = session.get(Setting, "smtp")
        assert row is not None
        row.value = [{**row.value[0], "port": 0}]
    assert loop.run_once() == 0
    loop.close()
    campaign = client.get(f"/api/campaigns/{world.campaign_id}").json()["data"]
    assert campaign["status"] == "paused"
    assert campaign["pause_reason"].startswith(
        "the sending settings cannot work: smtp[0].port: Input should be greater than"
    )
    assert smtp_sink.handler.messages == []
    # The send routes say it is our fault (503), not the caller's.
    test = client.post(
        f"/api/campaigns/{world.campaign_id}/test", json={"subscribers": ["user0@example.com"]}
    )
    assert test.status_code == 503
