"""listmonk's campaign API where stmails used to differ: the default template, the fields it
dropped (attribs, media, body_source, the archive fields), unsaved previews, content
conversion, running stats and bulk deletes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Campaign, CampaignSend, Media, Subscriber
from stmails.db.types import utcnow

from .listmonk_client import ListmonkClient, ListmonkError


@pytest.fixture
def lm(client: TestClient, api_credentials: tuple[str, str]) -> ListmonkClient:
    return ListmonkClient(client, *api_credentials)


def _campaign(lm: ListmonkClient, **fields: object) -> dict[str, object]:
    list_id = lm.post("/api/lists", {"name": f"L{len(fields)}{id(fields)}"})["id"]
    body = {"name": "C", "subject": "Hello", "lists": [list_id], "content_type": "html",
            "body": "<p>Hi {{ .Subscriber.Name }}</p>", **fields}  # fmt: skip
    return lm.post("/api/campaigns", body)


def test_a_campaign_without_template_gets_the_installed_default(installed: ListmonkClient) -> None:
    templates = installed.get("/api/templates")
    default = [t for t in templates if t["is_default"]]
    assert [t["type"] for t in default] == ["campaign"]
    assert sorted(t["type"] for t in templates) == ["campaign", "tx"]
    created = _campaign(installed)
    assert created["template_id"] == default[0]["id"]
    # An explicit template stays; a visual campaign is a whole document and takes none.
    other = installed.post(
        "/api/templates",
        {"name": "Plain", "type": "campaign", "body": '<div>{{ template "content" . }}</div>'},
    )
    assert _campaign(installed, template_id=other["id"])["template_id"] == other["id"]
    assert _campaign(installed, content_type="visual")["template_id"] is None
    # The preview wraps the body in the default template's layout.
    html = installed.request("GET", f"/api/campaigns/{created['id']}/preview").text
    assert "Hi Demo Subscriber" in html and "Unsubscribe" in html


def test_attribs_body_source_media_and_archive_are_kept(
    lm: ListmonkClient, session_maker: sessionmaker[Session]
) -> None:
    with session_maker() as session:
        files = [Media(filename="a.pdf"), Media(filename="b.png")]
        session.add_all(files)
        session.commit()
        first, second = (m.id for m in files)
    created = _campaign(
        lm,
        attribs={"location": "Oslo", "n": 2},
        body_source='{"root": {}}',
        media=[first, second],
        archive=True,
        archive_slug="spring-news",
        archive_meta={"name": "Reader"},
    )
    assert created["attribs"] == {"location": "Oslo", "n": 2}
    assert created["body_source"] == '{"root": {}}'
    assert created["media"] == [{"id": first, "filename": "a.pdf"},
                                {"id": second, "filename": "b.png"}]  # fmt: skip
    assert (created["archive"], created["archive_slug"]) == (True, "spring-news")
    assert created["archive_meta"] == {"name": "Reader"}
    got = lm.get(f"/api/campaigns/{created['id']}")
    assert got["media"] == created["media"] and got["attribs"] == created["attribs"]
    # PUT changes what it names and keeps the rest.
    changed = lm.put(
        f"/api/campaigns/{created['id']}",
        {"attribs": {"location": "Bergen"}, "media": [second], "archive": False},
    )
    assert changed["attribs"] == {"location": "Bergen"}
    assert changed["media"] == [{"id": second, "filename": "b.png"}]
    assert (changed["archive"], changed["archive_slug"]) == (False, "spring-news")
    assert changed["body_source"] == '{"root": {}}'
    # A file deleted from the library stays listed by name.
    with session_maker() as session:
        session.delete(session.get(Media, second))
        session.commit()
    assert lm.get(f"/api/campaigns/{created['id']}")["media"] == [{"id": None, "filename": "b.png"}]
    for bad, field in [({"media": [999999]}, "media"), ({"attribs": [1]}, "attribs"),
                       ({"archive_slug": "No Spaces"}, "archive_slug")]:  # fmt: skip
        with pytest.raises(ListmonkError) as refused:
            lm.put(f"/api/campaigns/{created['id']}", bad)
        assert refused.value.status == 400 and field in refused.value.message


def test_preview_of_unsaved_content_saves_nothing(lm: ListmonkClient) -> None:
    created = _campaign(lm)
    path = f"/api/campaigns/{created['id']}/preview"
    answer = lm.request("POST", path, json={"body": "**Bold** {{ .Subscriber.Name }}",
                                            "content_type": "markdown"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["content-security-policy"] == "sandbox"
    assert "<strong>Bold</strong> Demo Subscriber" in answer.text
    plain = lm.request("POST", path, json={"body": "Hi {{ .Subscriber.Name }}",
                                           "content_type": "plain"})  # fmt: skip
    assert plain.headers["content-type"].startswith("text/plain")
    assert plain.text.strip() == "Hi Demo Subscriber"
    assert lm.get(f"/api/campaigns/{created['id']}")["body"] == created["body"]
    broken = lm.request("POST", path, json={"body": "{{ if }}", "content_type": "html"})
    assert broken.status_code == 400
    missing = lm.request("POST", "/api/campaigns/999999/preview", json={"body": "x"})
    assert missing.status_code == 404


def test_content_conversion_between_formats(lm: ListmonkClient) -> None:
    def convert(body: str, source: str, target: str) -> str:
        # listmonk's editor names campaign 1 even before the campaign exists.
        result = lm.post("/api/campaigns/1/content", {"body": body, "from": source, "to": target})
        assert isinstance(result, str)
        return result

    md = "# Hello {{ .Subscriber.FirstName }}\n\nSome **bold** and_under text.\n\n- one\n- two"
    html = convert(md, "markdown", "html")
    assert "<h1>Hello {{ .Subscriber.FirstName }}</h1>" in html
    assert "<strong>bold</strong>" in html and "<li>one</li>" in html
    assert convert(md, "markdown", "richtext") == html
    back = convert(html, "html", "markdown")
    assert back.startswith("# Hello {{ .Subscriber.FirstName }}")
    assert "**bold**" in back and "- one" in back
    text = convert('<p>Read <a href="https://example.org/x">this</a></p>', "richtext", "plain")
    assert text == "Read this (https://example.org/x)"
    assert convert("1 < 2\nnext", "plain", "html") == "1 &lt; 2<br>\nnext"
    blocks = json.loads(convert("<h2>Title</h2><p>Body</p>", "html", "visual"))
    ids = blocks["root"]["data"]["childrenIds"]
    assert [blocks[i]["type"] for i in ids] == ["Heading", "Text"]
    assert blocks[ids[0]]["data"]["props"] == {"text": "Title", "level": "h2"}
    assert blocks[ids[1]]["data"]["props"] == {"markdown": True, "text": "Body"}
    assert convert("<p>x</p>", "html", "richtext") == "<p>x</p>"
    with pytest.raises(ListmonkError) as bad:
        lm.post("/api/campaigns/1/content", {"body": "x", "from": "word", "to": "html"})
    assert bad.value.status == 400 and bad.value.message.startswith("from")


def test_running_stats(lm: ListmonkClient, session_maker: sessionmaker[Session]) -> None:
    assert lm.get("/api/campaigns/running/stats") == []
    running = _campaign(lm)
    _campaign(lm)
    now = utcnow()
    with session_maker() as session:
        campaign = session.get(Campaign, running["id"])
        assert campaign is not None
        campaign.status, campaign.started_at = "running", now - timedelta(minutes=10)
        campaign.to_send, campaign.sent = 100, 40
        for n in range(3):
            subscriber = Subscriber(email=f"r{n}@example.org")
            session.add(subscriber)
            session.flush()
            at = now - timedelta(seconds=10 if n else 600)
            session.add(CampaignSend(campaign_id=campaign.id, subscriber_id=subscriber.id,
                                     status="sent", sent_at=at))  # fmt: skip
        session.commit()
    [stats] = lm.get("/api/campaigns/running/stats")
    assert (stats["id"], stats["status"], stats["to_send"], stats["sent"]) == (
        running["id"], "running", 100, 40,
    )  # fmt: skip
    # Two sends in the last minute; 40 in ten minutes.
    assert (stats["rate"], stats["net_rate"]) == (2, 4)
    assert stats["started_at"].startswith(str((now - timedelta(minutes=10)).date()))


def test_bulk_delete_of_campaigns(lm: ListmonkClient) -> None:
    a = _campaign(lm, name="Spring sale")
    b = _campaign(lm, name="Summer sale")
    c = _campaign(lm, name="Newsletter")
    with pytest.raises(ListmonkError) as refused:
        lm.delete("/api/campaigns")
    assert refused.value.status == 400
    response = lm.request("DELETE", "/api/campaigns", params=[("id", a["id"]), ("id", c["id"])])
    assert response.json() == {"data": True}
    assert [r["id"] for r in lm.get("/api/campaigns")["results"]] == [b["id"]]
    assert lm.delete("/api/campaigns", query="SUMMER") is True
    assert lm.get("/api/campaigns")["total"] == 0
