"""A new user's first campaign, end to end, following docs/getting-started.md step by step
(which follows the user's own setup guide, ../shared/seeds/000): a real `stmails serve` on an
empty database, a real SMTP server that requires AUTH (LOGIN or PLAIN) over STARTTLS or
implicit TLS, the bounce address given as the SMTP server's `Return-Path` custom header, a
real Dovecot bounce mailbox scanned by the server, and a real bounce dropped into it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ingest.mailbox.conftest import Mailbox
from ingest.mailbox.dovecot import PASSWORD, USER
from sending.conftest import SMTP_PASSWORD, SMTP_USER, MakeServer, Sink

from .helpers import api, campaign_done, dsn_for, ok, wait_for

pytestmark = pytest.mark.integration

BOUNCE_INBOX = "bounces@sender.example"
FROM = "News <news@sender.example>"
WELCOME = "<p>Hello {{ .Subscriber.Name }}, welcome aboard.</p>"

SUBSCRIBERS = {
    "ana@reader.example": "Ana",
    "bo@reader.example": "Bo",
    "chen@reader.example": "Chen",
    "dara@reader.example": "Dara",
    # Already suppressed: an address that bounced before, a domain that asked not to be mailed.
    "old-bounce@reader.example": "Old",
    "anyone@no-mail.example": "Blocked domain",
}
SUPPRESSIONS = [
    {"recipient": "old-bounce@reader.example", "reason": "hard_bounce", "source": "import"},
    {"domain": "no-mail.example", "reason": "manual"},
]
UNSUPPRESSED = {
    "ana@reader.example",
    "bo@reader.example",
    "chen@reader.example",
    "dara@reader.example",
}
# The subscriber whose mailbox does not exist (a real MTA bounces the campaign for them).
GONE = "chen@reader.example"


def smtp_entry(sink: Sink, tls_type: str, auth: str) -> dict[str, Any]:
    """The SMTP server as docs/getting-started.md step 2 writes it."""
    return {
        "enabled": True,
        "host": sink.host,
        "port": sink.port,
        "tls_type": tls_type,
        # Our test server's certificate is self-signed; a real provider's is verified.
        "tls_skip_verify": True,
        "auth_protocol": auth,
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "max_conns": 2,
        # The user's guide: the bounce inbox as Return-Path, and (some servers return bounces
        # to Reply-To) optionally as Reply-To too.
        "email_headers": [{"Return-Path": BOUNCE_INBOX}, {"Reply-To": BOUNCE_INBOX}],
    }


def mailbox_entry(box: Mailbox, kind: str) -> dict[str, Any]:
    """The bounce mailbox as docs/getting-started.md step 3 writes it (`kind`: imap or pop,
    over TLS)."""
    return {
        "name": "bounces",
        "type": kind,
        "host": "127.0.0.1",
        "port": box.server.ports["imaps" if kind == "imap" else "pop3s"],
        "tls_mode": "tls",
        # Our Dovecot's certificate is self-signed: trust it explicitly.
        "ca_file": str(box.server.cert),
        "username": USER,
        "password": PASSWORD,
        "scan_interval": "5s",
    }


def send_campaign(client: httpx.Client, list_id: int, name: str) -> dict[str, Any]:
    """docs/getting-started.md step 6: create the campaign, start it, wait until it is done."""
    campaign = ok(
        client.post(
            "/api/campaigns",
            json={
                "name": name,
                "subject": f"{name} for {{{{ .Subscriber.Name }}}}",
                "lists": [list_id],
                "from_email": FROM,
                "content_type": "html",
                "body": WELCOME,
            },
        )
    )
    ok(client.put(f"/api/campaigns/{campaign['id']}/status", json={"status": "running"}))
    return wait_for(f"campaign {name} to end", campaign_done(client, campaign["id"]))


@pytest.mark.parametrize(
    ("tls", "tls_type", "auth", "verp", "kind"),
    [
        ("starttls", "STARTTLS", "login", False, "imap"),
        # The user's guide speaks of a POP3 bounce mailbox.
        ("tls", "TLS", "plain", True, "pop"),
    ],
    ids=["starttls-login-imap", "tls-plain-verp-pop3"],
)
def test_a_new_user_sends_a_campaign_and_the_bounce_suppresses_the_address(
    smtp_server: MakeServer,
    mailbox: Mailbox,
    serve: Any,
    tls: str,
    tls_type: str,
    auth: str,
    verp: bool,
    kind: str,
) -> None:
    sink = smtp_server(tls=tls, auth=True)
    # Step 1: start the server (here with an API user made on start, as docs/api.md says).
    server = serve()
    with api(server) as client:
        assert ok(client.get("/api/health")) is True

        # Steps 2 and 3: the SMTP server with the bounce inbox as its Return-Path, the From
        # address, and the bounce mailbox the scanner reads.
        # Step 3 tries the mailbox before saving it.
        tried = ok(
            client.post("/api/settings/bounces/mailbox/test", json=mailbox_entry(mailbox, kind))
        )
        assert tried["ok"] is True and tried["messages"] == 0, tried
        settings: dict[str, Any] = {
            "app.from_email": FROM,
            "smtp": [smtp_entry(sink, tls_type, auth)],
            "bounce.mailboxes": [mailbox_entry(mailbox, kind)],
        }
        if verp:
            settings["sending.verp"] = True
        ok(client.put("/api/settings", json=settings))

        # Step 4: try the SMTP server with the stored settings (the password reads masked).
        stored = ok(client.get("/api/settings"))
        assert stored["smtp"][0]["password"] == "••••••••"
        answer = ok(
            client.post(
                "/api/settings/smtp/test", json={**stored["smtp"][0], "email": "ana@reader.example"}
            )
        )
        assert answer["sent"] is True and answer["code"] == 250
        assert answer["mail_from"] == BOUNCE_INBOX
        assert sink.handler.logins == [auth.upper()]
        test_message = sink.handler.messages.pop()
        assert test_message.mail_from == BOUNCE_INBOX
        assert "Return-Path" not in test_message.message

        # Step 5: a list, its subscribers, and the addresses that must never be mailed.
        news = ok(
            client.post("/api/lists", json={"name": "News", "type": "public", "optin": "single"})
        )
        for email, name in SUBSCRIBERS.items():
            ok(
                client.post(
                    "/api/subscribers", json={"email": email, "name": name, "lists": [news["id"]]}
                )
            )
        ok(client.put("/api/suppressions", json={"recipients": SUPPRESSIONS}))

        # Step 6: the first campaign reaches exactly the unsuppressed subscribers, once each.
        first = send_campaign(client, news["id"], "Welcome")
        assert first["status"] == "finished", first
        assert first["send_errors"] == 0 and first["pause_reason"] in (None, "")
        assert sorted(sink.handler.recipients()) == sorted(UNSUPPRESSED)
        stats = ok(client.get(f"/api/campaigns/{first['id']}/stats"))
        assert stats["sent"] == len(UNSUPPRESSED), stats
        for captured in sink.handler.messages:
            (recipient,) = captured.rcpt_tos
            local, _, domain = captured.mail_from.partition("@")
            assert domain == "sender.example"
            if verp:
                assert local.startswith("bounces+") and len(local) == len("bounces+") + 24
            else:
                assert captured.mail_from == BOUNCE_INBOX
            # The envelope sender is the Return-Path; stmails writes no such header itself.
            assert "Return-Path" not in captured.message
            assert captured.message["Reply-To"] == BOUNCE_INBOX
            assert captured.message["From"] == FROM
            assert captured.message["To"].addresses[0].addr_spec == recipient

        # Step 7: the receiving server bounces Chen's copy back to the envelope sender, into
        # the bounce mailbox; the server's scanner records it and suppresses the address.
        (original,) = sink.handler.by_recipient(GONE)
        mailbox.append(dsn_for(original.message, original.mail_from, GONE))

        def recorded() -> list[dict[str, Any]] | None:
            found: list[dict[str, Any]] = ok(client.get("/api/bounces", params={"email": GONE}))[
                "results"
            ]
            return found or None

        (bounce,) = wait_for("the scanner to record the bounce", recorded)
        assert bounce["type"] == "hard" and bounce["source"] == "mailbox"
        assert bounce["attributed"] is True and bounce["meta"]["mailbox"] == "bounces"
        # Tied to the mail sent: by its VERP envelope sender, else by the quoted Message-ID.
        assert bounce["meta"]["attribution"] == ("verp" if verp else "message_id")
        assert bounce["campaign"]["id"] == first["id"]
        entries = wait_for(
            "the address to be suppressed",
            lambda: client.get(f"/api/suppressions/{GONE}").json().get("data"),
            timeout=20,
        )
        assert entries["suppressed"] is True
        # The processed bounce is removed from the mailbox.
        wait_for("the bounce to leave the mailbox", lambda: mailbox.subjects() == [], timeout=20)

        # Step 7 (end): the next campaign skips the bounced address.
        sink.handler.messages.clear()
        second = send_campaign(client, news["id"], "Second issue")
        assert second["status"] == "finished", second
        assert sorted(sink.handler.recipients()) == sorted(UNSUPPRESSED - {GONE})
        stats = ok(client.get(f"/api/campaigns/{second['id']}/stats"))
        assert stats["sent"] == len(UNSUPPRESSED) - 1, stats
    # Stopped before the SMTP server (it holds pooled connections to it), cleanly.
    assert server.stop() == 0
    assert "Traceback" not in server.output()
