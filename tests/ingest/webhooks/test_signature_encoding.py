"""Issue 11: a signature with characters outside ASCII is a wrong signature (401), not a crash
(500), for every provider that compares signature text (Forward Email, Resend, Mailgun)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.config import Settings
from stmails.db.models import Bounce
from stmails.services import settings as settings_service
from stmails.web.app import create_app

from .contract import sample
from .signing import hmac_hex, mailgun_sign, svix_headers

RESEND_SECRET = "whsec_" + base64.b64encode(b"resend-test-signing-key-32-bytes").decode()
PROVIDERS = {
    "bounce.forwardemail": {"enabled": True, "key": "forward-key"},
    "bounce.resend": {"enabled": True, "signing_key": RESEND_SECRET},
    "bounce.mailgun": {"enabled": True, "signing_key": "key-mailgun"},
}
# Not ASCII; as header bytes they arrive decoded as Latin-1 text.
ODD = "sïgnätürе-✓"


@pytest.fixture
def client(
    engine: Engine, session_maker: sessionmaker[Session], db_url: str
) -> Iterator[TestClient]:
    with session_maker() as session:
        for key, value in PROVIDERS.items():
            settings_service.set_value(session, key, value)
        session.commit()
    app = create_app(Settings(database_url=db_url), engine=engine)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _nothing_stored(session_maker: sessionmaker[Session]) -> bool:
    with session_maker() as session:
        return session.scalar(select(func.count()).select_from(Bounce)) == 0


def _refused(response: object) -> None:
    assert getattr(response, "status_code") == 401, getattr(response, "text")  # noqa: B009
    assert getattr(response, "json")() == {"message": "invalid signature"}  # noqa: B009


def test_forwardemail(client: TestClient, session_maker: sessionmaker[Session]) -> None:
    body = sample("forwardemail_bounce.json")
    odd = client.post(
        "/webhooks/service/forwardemail",
        content=body,
        headers={"x-webhook-signature": ODD.encode("utf-8")},  # type: ignore[dict-item]
    )
    _refused(odd)
    assert _nothing_stored(session_maker)
    good = hmac_hex("forward-key", body)
    accepted = client.post(
        "/webhooks/service/forwardemail", content=body, headers={"x-webhook-signature": good}
    )
    assert accepted.status_code == 200, accepted.text


def test_resend(client: TestClient, session_maker: sessionmaker[Session]) -> None:
    body = sample("resend_bounced.json")
    headers = svix_headers(RESEND_SECRET, "msg_1", int(time.time()), body)
    forged: dict[str, object] = {**headers, "svix-signature": f"v1,{ODD}".encode()}
    _refused(client.post("/webhooks/service/resend", content=body, headers=forged))  # type: ignore[arg-type]
    assert _nothing_stored(session_maker)
    accepted = client.post("/webhooks/service/resend", content=body, headers=headers)
    assert accepted.status_code == 200, accepted.text


def test_mailgun(client: TestClient, session_maker: sessionmaker[Session]) -> None:
    document = json.loads(sample("mailgun_failed.json"))
    signed = json.loads(mailgun_sign(document, "key-mailgun", int(time.time()), "token-odd"))
    signed["signature"]["signature"] = ODD
    _refused(client.post("/webhooks/service/mailgun", content=json.dumps(signed).encode()))
    assert _nothing_stored(session_maker)
