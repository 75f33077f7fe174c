"""listmonk's `POST /api/tx` as listmonk's clients call it: `{"data": true}`, the three
`subscriber_mode`s, `altbody`, `messenger`, and file attachments in multipart/form-data; every
message received by a real SMTP server (aiosmtpd) and read back."""

from __future__ import annotations

import json
from email.message import EmailMessage
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from sending.conftest import Sink, make_world
from sending.test_api import configure_smtp

TEMPLATE = {
    "name": "Receipt",
    "type": "tx",
    "subject": "Order {{ .Tx.Data.order }}",
    "body": '<p>Dear {{ .Subscriber.Name | default "customer" }} ({{ .Subscriber.Email }}),'
    " order {{ .Tx.Data.order }} is on its way.</p>",
}


def _setup(client: TestClient, factory: sessionmaker[Session], sink: Sink) -> int:
    make_world(factory, count=2)
    configure_smtp(client, sink)
    created = client.post("/api/templates", json=TEMPLATE)
    assert created.status_code == 200, created.text
    return int(created.json()["data"]["id"])


def _text(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def test_listmonk_answer_and_subscriber_modes(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    template_id = _setup(client, session_maker, smtp_sink)
    ok = client.post(
        "/api/tx",
        json={
            "subscriber_email": "user0@example.com",
            "template_id": template_id,
            "data": {"order": "A-1"},
        },
    )
    assert ok.status_code == 200 and ok.json() == {"data": True}
    first = smtp_sink.handler.messages[-1].message
    assert first["Subject"] == "Order A-1" and "Dear User0 Last" in _text(first, "html")

    # default: recipients must be subscribers.
    unknown = client.post(
        "/api/tx", json={"subscriber_email": "stranger@example.net", "template_id": template_id}
    )
    assert unknown.status_code == 400 and "subscriber not found" in unknown.json()["message"]

    # external: any address, no lookup; only .Subscriber.Email is known.
    external = client.post(
        "/api/tx",
        json={
            "subscriber_mode": "external",
            "subscriber_emails": ["stranger@example.net"],
            "template_id": template_id,
            "data": {"order": "B-2"},
        },
    )
    assert external.status_code == 200, external.text
    message = smtp_sink.handler.messages[-1].message
    assert smtp_sink.handler.messages[-1].rcpt_tos == ["stranger@example.net"]
    assert "Dear customer (stranger@example.net)" in _text(message, "html")

    # fallback: the subscriber where there is one, else the bare address.
    before = len(smtp_sink.handler.messages)
    fallback = client.post(
        "/api/tx",
        json={
            "subscriber_mode": "fallback",
            "subscriber_emails": ["user1@example.com", "other@example.net"],
            "template_id": template_id,
            "data": {"order": "C-3"},
        },
    )
    assert fallback.status_code == 200, fallback.text
    bodies = {m.rcpt_tos[0]: _text(m.message, "html") for m in smtp_sink.handler.messages[before:]}
    assert "Dear User1 Last" in bodies["user1@example.com"]
    assert "Dear customer (other@example.net)" in bodies["other@example.net"]

    # The suppression list holds in every mode; ids make no sense without a lookup.
    client.put("/api/suppressions", json=[{"recipient": "stranger@example.net"}])
    refused = client.post(
        "/api/tx",
        json={
            "subscriber_mode": "external",
            "subscriber_email": "stranger@example.net",
            "template_id": template_id,
        },
    )
    assert refused.status_code == 400 and "suppressed" in refused.json()["message"]
    for body in (
        {"subscriber_mode": "external", "subscriber_id": 1},
        {"subscriber_mode": "sometimes", "subscriber_email": "user0@example.com"},
        {"subscriber_email": "user0@example.com", "messenger": "postback"},
        {"subscriber_mode": "external", "subscriber_email": "a@x> NOTIFY=NEVER"},
    ):
        bad = client.post("/api/tx", json={**body, "template_id": template_id})
        assert bad.status_code == 400, (body, bad.text)


def test_altbody_is_the_plain_text_part(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    template_id = _setup(client, session_maker, smtp_sink)
    sent = client.post(
        "/api/tx",
        json={
            "subscriber_email": "user0@example.com",
            "template_id": template_id,
            "data": {"order": "D-4"},
            "altbody": "Your order is on its way.",
        },
    )
    assert sent.status_code == 200, sent.text
    message = smtp_sink.handler.messages[-1].message
    assert _text(message, "plain").strip() == "Your order is on its way."
    assert "on its way" in _text(message, "html")


def _multipart(
    client: TestClient,
    fields: dict[str, Any],
    files: list[tuple[str, tuple[str, bytes, str]]],
    **headers: str,
) -> Any:
    return client.post("/api/tx", data={"data": json.dumps(fields)}, files=files, headers=headers)


def test_attachments_in_multipart_form_data(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    template_id = _setup(client, session_maker, smtp_sink)
    fields = {
        "subscriber_email": "user0@example.com",
        "template_id": template_id,
        "data": {"order": "E-5"},
    }
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 40
    sent = _multipart(
        client,
        fields,
        [
            ("file", ("facture été.pdf", pdf, "application/pdf")),
            ("file", ("../../notes.txt", b"line one\nline two\n", "")),
        ],
    )
    assert sent.status_code == 200 and sent.json() == {"data": True}, sent.text
    message = smtp_sink.handler.messages[-1].message
    assert message["Subject"] == "Order E-5"
    attached = {
        a.get_filename(): (a.get_content_type(), a.get_content())
        for a in message.iter_attachments()
    }
    assert attached == {
        "facture__t_.pdf": ("application/pdf", pdf),
        "notes.txt": ("text/plain", "line one\nline two\n"),
    }

    too_big = _multipart(client, fields, [("file", ("big.bin", b"x" * (20 * 1024 * 1024 + 1), ""))])
    assert too_big.status_code == 413
    assert (
        client.post(
            "/api/tx", data={"data": "{not json"}, files=[("file", ("a.txt", b"a", ""))]
        ).status_code
        == 400
    )
    assert client.post("/api/tx", files=[("file", ("a.txt", b"a", ""))]).status_code == 400
    # A form-encoded body is not listmonk's: 415; a browser's cross-site upload: 403.
    form = client.post("/api/tx", data={"data": json.dumps(fields)})
    assert form.status_code == 415
    cross = _multipart(
        client, fields, [("file", ("a.txt", b"a", ""))], origin="https://evil.example"
    )
    assert cross.status_code == 403
