"""docs/getting-started.md as written: every JSON body its `curl` examples send is valid JSON
and accepted by a real `stmails serve` on a new database, in the order the page gives them
(so a renamed field or a changed rule breaks this test, not a new user's first hour)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .helpers import api, ok

PAGE = Path(__file__).resolve().parents[2] / "docs" / "getting-started.md"
# `curl ... -X METHOD http://127.0.0.1:9000/PATH ... -d '...'`, across continuation lines.
CALL = re.compile(
    r"-X (PUT|POST) http://127\.0\.0\.1:9000(/\S+)(?:(?!curl ).)*?\s-d '([^']*)'", re.S
)
# Steps whose effect needs outside servers (the SMTP test, starting a campaign): their bodies
# are placeholders or need a reachable SMTP server; the end-to-end tests run them for real.
NOT_HERE = ("/api/settings/smtp/test", "/status")


def calls() -> list[tuple[str, str, str]]:
    return [(m, p, b) for m, p, b in CALL.findall(PAGE.read_text()) if not p.endswith(NOT_HERE)]


def test_the_pages_examples_are_found() -> None:
    paths = [path for _, path, _ in calls()]
    assert paths == [
        "/api/settings",
        "/api/settings",
        "/api/lists",
        "/api/subscribers",
        "/api/suppressions",
        "/api/campaigns",
    ]


def test_every_example_body_is_accepted_as_written(serve: Any) -> None:
    server = serve()
    with api(server) as client:
        for method, path, body in calls():
            payload = json.loads(body)
            answer = client.request(method, path, json=payload)
            assert answer.is_success, (path, answer.status_code, answer.text)
        stored = ok(client.get("/api/settings"))
        (smtp,) = stored["smtp"]
        assert smtp["email_headers"] == [{"Return-Path": "bounces@example.com"}]
        assert smtp["password"] == "••••••••"
        (mailbox,) = stored["bounce.mailboxes"]
        assert mailbox["type"] == "imap" and mailbox["port"] == 993
        (campaign,) = ok(client.get("/api/campaigns"))["results"]
        assert campaign["id"] == 1 and campaign["lists"][0]["id"] == 1
    assert server.stop() == 0
