"""What a new user sees when the SMTP settings cannot work, end to end on a real `stmails
serve`: the SMTP test answers with the server's error, and a campaign sent anyway ends paused
with the reason and its errors visible in `/api/campaigns/{id}` and `/stats` (never `finished`
with sent counts), and the server logs them."""

from __future__ import annotations

from typing import Any

import pytest

from running_server import free_port
from sending.conftest import SMTP_USER, MakeServer

from .helpers import api, campaign_done, ok, wait_for

pytestmark = pytest.mark.integration

FROM = "News <news@sender.example>"
READERS = [f"reader{n}@reader.example" for n in range(6)]


def start_campaign(client: Any) -> int:
    """A list of READERS and a campaign to it, started; its id."""
    news = ok(client.post("/api/lists", json={"name": "News", "type": "public", "optin": "single"}))
    for email in READERS:
        ok(client.post("/api/subscribers", json={"email": email, "lists": [news["id"]]}))
    campaign = ok(
        client.post(
            "/api/campaigns",
            json={
                "name": "Launch",
                "subject": "Hello",
                "lists": [news["id"]],
                "from_email": FROM,
                "content_type": "plain",
                "body": "Hello {{ .Subscriber.Email }}",
            },
        )
    )
    ok(client.put(f"/api/campaigns/{campaign['id']}/status", json={"status": "running"}))
    return int(campaign["id"])


def assert_paused_with_nothing_sent(
    client: Any, campaign_id: int, stage: str, reason_part: str
) -> dict[str, Any]:
    """The campaign ended paused with the reason, its errors visible, nothing counted as sent."""
    campaign = wait_for("the campaign to stop", campaign_done(client, campaign_id))
    assert campaign["status"] == "paused", campaign
    assert reason_part in campaign["pause_reason"], campaign["pause_reason"]
    assert campaign["send_errors"] >= 1
    assert campaign["last_errors"], campaign
    last = campaign["last_errors"][0]
    assert last["stage"] == stage and last["email"] in READERS, last
    stats = ok(client.get(f"/api/campaigns/{campaign_id}/stats"))
    assert stats["sent"] == 0 and stats.get("in_doubt", 0) == 0, stats
    assert stats["send_errors"] == campaign["send_errors"]
    assert stats["pause_reason"] == campaign["pause_reason"]
    assert stats["last_errors"] == campaign["last_errors"]
    return dict(campaign)


def test_a_wrong_smtp_password_is_reported_by_the_test_and_pauses_the_campaign(
    smtp_server: MakeServer, serve: Any
) -> None:
    sink = smtp_server(tls="starttls", auth=True)
    server = serve()
    wrong = {
        "enabled": True,
        "host": sink.host,
        "port": sink.port,
        "tls_type": "STARTTLS",
        "tls_skip_verify": True,
        "auth_protocol": "login",
        "username": SMTP_USER,
        "password": "not the password",
        "max_conns": 2,
    }
    with api(server) as client:
        ok(client.put("/api/settings", json={"app.from_email": FROM, "smtp": [wrong]}))
        answer = client.post(
            "/api/settings/smtp/test", json={**wrong, "email": "reader0@reader.example"}
        )
        assert answer.status_code == 422, answer.text
        message = answer.json()["message"]
        assert message.startswith("the SMTP test failed at auth: 535"), message

        campaign_id = start_campaign(client)
        campaign = assert_paused_with_nothing_sent(
            client, campaign_id, "auth", "send error that retrying cannot mend"
        )
        assert "535" in campaign["pause_reason"]
        # A refused login is fatal at once: retrying would only lock the account.
        assert campaign["send_errors"] == 1
    assert sink.handler.messages == []
    assert ("mailer@example.org", "not the password") in sink.handler.credentials_tried
    assert server.stop() == 0
    log = server.output()
    assert f"campaign {campaign_id}: send error for subscriber" in log, log[-3000:]
    assert f"campaign {campaign_id} paused: send error that retrying cannot mend, auth: 535" in log
    assert "SMTP test of 127.0.0.1" in log


def test_an_unreachable_smtp_server_is_reported_and_pauses_after_max_send_errors(
    serve: Any,
) -> None:
    server = serve()
    nowhere = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": free_port(),
        "tls_type": "none",
        "auth_protocol": "none",
        "max_conns": 1,
        "max_msg_retries": 1,
    }
    with api(server) as client:
        settings = {"app.from_email": FROM, "smtp": [nowhere], "app.max_send_errors": 3}
        ok(client.put("/api/settings", json=settings))
        answer = client.post(
            "/api/settings/smtp/test", json={**nowhere, "email": "reader0@reader.example"}
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["message"].startswith("the SMTP test failed at connect"), answer.text

        campaign_id = start_campaign(client)
        campaign = assert_paused_with_nothing_sent(
            client, campaign_id, "connect", "send errors in a row (app.max_send_errors 3)"
        )
        assert campaign["send_errors"] >= 3
    assert server.stop() == 0
    log = server.output()
    assert f"campaign {campaign_id}: send error for subscriber" in log, log[-3000:]
    assert f"campaign {campaign_id} paused: 3 send errors in a row" in log
    assert "Connection refused" in log
