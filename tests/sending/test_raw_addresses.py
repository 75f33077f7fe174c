"""Issue 11: `/api/tx/raw` parses addresses strictly, so that a variant of a suppressed address
cannot reach it and no text after an address reaches the SMTP command line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from stmails.services.sending.direct import raw_targets

from .conftest import API, Sink
from .test_api import configure_smtp

# Each names victim@example.com's mailbox in a way a lax parser would not match with the
# suppression list's entry, or carries text after the address.
VARIANTS = [
    "victim@example.com.",
    '"victim"@example.com',
    "victim@example.com> NOTIFY=NEVER",
    "victim@example.com>\r\nRCPT TO:<other@example.net",
    "victim@[127.0.0.1]",
]


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.auth = API
        yield test_client


def test_variants_of_a_suppressed_address_are_refused_and_never_sent(
    client: TestClient, smtp_sink: Sink
) -> None:
    configure_smtp(client, smtp_sink, **{"sending.verp": False})
    suppressed = client.put(
        "/api/suppressions", json=[{"recipient": "victim@example.com", "reason": "complaint"}]
    )
    assert suppressed.status_code == 200, suppressed.text
    sent = client.post(
        "/api/tx/raw",
        json={
            "to": [*VARIANTS, "Victim@Example.COM", " friend@example.net "],
            "subject": "s",
            "from_email": "app@example.org",
            "body": "hello",
            "content_type": "plain",
        },
    )
    assert sent.status_code == 200, sent.text
    results = sent.json()["data"]["results"]
    by_status = {r["recipient"]: r["status"] for r in results}
    assert by_status.pop("friend@example.net") == "sent"
    assert set(by_status.values()) == {"refused"}, results
    # Only the one valid, unsuppressed address reached the server, exactly as given.
    assert smtp_sink.handler.recipients() == ["friend@example.net"]
    assert all("NOTIFY" not in r for m in smtp_sink.handler.messages for r in m.rcpt_tos)


def test_raw_targets_say_why_an_address_is_refused() -> None:
    targets = raw_targets([*VARIANTS, "Ok@Example.org"])
    assert [t.recipient is None for t in targets] == [True] * len(VARIANTS) + [False]
    assert all(t.refusal.startswith("not a valid address: ") for t in targets[:-1])
    assert targets[-1].label == "ok@example.org"
