"""The content check end to end: a campaign written through the API, checked with its template,
started (the warning comes back, the start is not refused), sent by the worker to a real SMTP
server; the message that arrives has exactly the problems the check reported."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Campaign
from stmails.services import roles, users
from stmails.services.content_check import check_content
from stmails.services.sending.runtime import verp_maker
from stmails.workers.sender import SenderLoop

from .conftest import Sink, make_world

SPAMMY = (
    "<p>Act now, this is urgent!! Only today.</p>"
    '<p><a href="https://bit.ly/3xYz">www.bank.example</a></p>'
    '<img src="https://cdn.example.org/offer.png">'
)


def _codes(report: dict[str, Any]) -> list[str]:
    return sorted(f["code"] for f in report["findings"])


def _parts(message: EmailMessage) -> tuple[str | None, str | None]:
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    return (
        html.get_content() if html is not None else None,  # type: ignore[attr-defined]
        text.get_content() if text is not None else None,  # type: ignore[attr-defined]
    )


def test_check_start_send_and_the_sent_message_has_the_reported_problems(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=1)
    assert client.put("/api/settings", json={"smtp": smtp_sink.smtp_settings()}).status_code == 200
    campaign_id = world.campaign_id
    # The stored campaign, rendered with its template (which has the unsubscribe link).
    fine = client.post(f"/api/campaigns/{campaign_id}/content-check", json={})
    assert fine.status_code == 200, fine.text
    assert fine.json()["data"]["level"] == "low"
    assert "missing_unsubscribe" not in _codes(fine.json()["data"])

    edited = client.put(
        f"/api/campaigns/{campaign_id}", json={"subject": "URGENT offer!!", "body": SPAMMY}
    )
    assert edited.status_code == 200, edited.text
    checked = client.post(f"/api/campaigns/{campaign_id}/content-check", json={}).json()["data"]
    assert _codes(checked) == sorted(
        [
            "subject_capitals", "subject_exclamations", "body_exclamations", "spam_phrase",
            "spam_phrase", "link_ratio", "image_only", "link_shortener", "mismatched_link",
        ]
    )  # fmt: skip
    assert checked["level"] == "high"
    assert checked["score"] == sum(f["score"] for f in checked["findings"])
    first = checked["findings"][0]
    assert set(first["message"]) == {"en", "zh_CN"} and first["severity"] == "high"

    started = client.put(f"/api/campaigns/{campaign_id}/status", json={"status": "running"})
    assert started.status_code == 200, started.text
    assert started.json()["data"]["status"] == "running"
    assert started.json()["data"]["content_warnings"] == checked

    loop = SenderLoop(session_maker, root_url="https://lists.example.org", verp=verp_maker(b"k"))
    assert loop.run_once() == 1
    loop.close()
    message = smtp_sink.handler.messages[0].message
    html, text = _parts(message)
    unsubscribe = next(
        line.split("<", 1)[1].split(">", 1)[0]
        for line in str(message["List-Unsubscribe"]).split(",")
        if "https://" in line
    )
    sent = check_content(str(message["Subject"]), html, text, unsubscribe_url=unsubscribe)
    # The sample subscriber and the real one differ only in name: the same problems.
    assert sorted(f.code for f in sent.findings) == _codes(checked)


def test_unsaved_content_is_checked_without_being_saved(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    world = make_world(session_maker, count=1)
    campaign_id = world.campaign_id
    plain = client.post(
        f"/api/campaigns/{campaign_id}/content-check",
        json={"content_type": "plain", "body": "Hello {{ .Subscriber.Name }}", "subject": "Hi"},
    )
    assert plain.status_code == 200, plain.text
    # A plain-text campaign has no layout, so no unsubscribe link unless the body has one.
    assert _codes(plain.json()["data"]) == ["missing_unsubscribe"]
    message = plain.json()["data"]["findings"][0]["message"]
    assert message["zh_CN"].startswith("正文中没有退订链接")
    with session_maker() as session:
        stored = session.get(Campaign, campaign_id)
        assert stored is not None and stored.content_type == "html"
        assert stored.subject == "News for {{ .Subscriber.Name }}"

    broken = client.post(
        f"/api/campaigns/{campaign_id}/content-check", json={"body": "{{ if }}"}
    ).json()["data"]
    assert _codes(broken) == ["render_failed"]


def test_bad_requests_and_permissions(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    world = make_world(session_maker, count=1)
    path = f"/api/campaigns/{world.campaign_id}/content-check"
    assert client.post("/api/campaigns/999999/content-check", json={}).status_code == 404
    for body, field in [
        ({"body": 5}, "body"),
        ({"content_type": "pdf"}, "content_type"),
        ({"template_id": "x"}, "template_id"),
    ]:
        refused = client.post(path, json=body)
        assert refused.status_code == 400, refused.text
        assert field in refused.json()["message"]
    with session_maker() as session:
        reader = roles.create(session, "senders", ["campaigns:send"])
        _, token = users.create_api_user(session, "sender", role=reader)
        session.commit()
    denied = client.post(path, auth=("sender", token))
    assert denied.status_code == 403
    assert "campaigns:get_all" in denied.json()["message"]
