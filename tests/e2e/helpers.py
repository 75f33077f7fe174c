"""What the end-to-end tests do as a user's client would: the HTTP API with the API user's
credentials, waiting for what the server does in the background, and a bounce as a receiving
MTA writes it."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any, TypeVar

import httpx

from running_server import API_TOKEN, API_USER, Server

T = TypeVar("T")


def api(server: Server) -> httpx.Client:
    """A client of `server`'s API, authenticated as the docs show (`curl -u user:token`)."""
    return httpx.Client(base_url=server.url, auth=(API_USER, API_TOKEN), timeout=30)


def ok(response: httpx.Response) -> Any:
    """The `data` of a 2xx answer (the failure message shows the answer otherwise)."""
    assert response.is_success, f"{response.request.method} {response.request.url}: " + (
        f"{response.status_code} {response.text}"
    )
    return response.json()["data"]


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 90.0) -> T:
    """Polls `probe` until it returns something other than None (or falsy)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def campaign_done(client: httpx.Client, campaign_id: int) -> Callable[[], dict[str, Any] | None]:
    """A probe: the campaign once it is no longer running (finished, paused, cancelled)."""

    def probe() -> dict[str, Any] | None:
        campaign: dict[str, Any] = ok(client.get(f"/api/campaigns/{campaign_id}"))
        return None if campaign["status"] in ("running", "scheduled") else campaign

    return probe


def dsn_for(original: EmailMessage, envelope_sender: str, recipient: str) -> bytes:
    """The delivery status notification a receiving MTA sends back to `envelope_sender` when
    `recipient` does not exist: RFC 3464, quoting the original message's headers."""
    quoted = "".join(
        f"{name}: {original[name]}\r\n"
        for name in ("From", "To", "Subject", "Date", "Message-ID", "X-Stmails-Campaign")
        if original[name] is not None
    )
    lines = [
        "Return-Path: <>",
        f"Delivered-To: {envelope_sender}",
        "From: Mail Delivery System <MAILER-DAEMON@mx.receiver.example>",
        f"To: {envelope_sender}",
        "Subject: Undelivered Mail Returned to Sender",
        "Message-ID: <dsn-e2e-1@mx.receiver.example>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B-1"',
        "",
        "--B-1",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "Your message could not be delivered to one or more recipients.",
        "",
        f"<{recipient}>: host mx.receiver.example[192.0.2.25] said: 550 5.1.1",
        f"    <{recipient}>: Recipient address rejected: User unknown",
        "",
        "--B-1",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.receiver.example",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        "Action: failed",
        "Status: 5.1.1",
        "Remote-MTA: dns; mx.receiver.example",
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown",
        "",
        "--B-1",
        "Content-Type: text/rfc822-headers",
        "",
        quoted.rstrip("\r\n"),
        "",
        "--B-1--",
        "",
    ]
    return "\r\n".join(lines).encode()
