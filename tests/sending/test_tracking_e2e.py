"""Opens and clicks end to end: a campaign with {{ TrackView }}, {{ TrackLink }} and
{{ MessageURL }} sent through a real SMTP server, its received HTML followed over HTTP the way a
mail client and a reader would, and every figure checked through the API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.config import Settings
from stmails.db.models import (
    AnalyticsChange,
    Campaign,
    CampaignSend,
    CampaignView,
    Link,
    LinkClick,
    Subscriber,
)
from stmails.services import users
from stmails.web.app import create_app
from stmails.workers.sender import SenderLoop

from .conftest import Sink, World, make_world

API = ("robot", "robot-token-0123456789")
ROOT = "https://lists.example.org"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
BODY = (
    "<p>Hi {{ subscriber.name }}. Read "
    '<a href="{{ TrackLink "https://shop.example/sale?a=1&b=2" }}">the sale</a>, '
    '<a href="https://blog.example/post@TrackLink">the post</a> or '
    '<a href="{{ MessageURL }}">this mail online</a>.</p>'
)


@pytest.fixture
def app(engine: Engine, session_maker: sessionmaker[Session], db_url: str) -> FastAPI:
    with session_maker() as session:
        users.create_api_user(session, *API)
        session.commit()
    settings = Settings(database_url=db_url, secret_key="test-secret-key", root_url=ROOT)
    return create_app(settings, engine=engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.auth = API
        yield test_client


def send_campaign(client: TestClient, world: World, sink: Sink, *, individual: bool) -> None:
    settings = {
        "smtp": sink.smtp_settings(),
        "sending.bounce_address": "bounces@mail.example.org",
        "privacy.individual_tracking": individual,
    }
    assert client.put("/api/settings", json=settings).status_code == 200
    assert client.put(f"/api/campaigns/{world.campaign_id}", json={"body": BODY}).status_code == 200
    started = client.put(f"/api/campaigns/{world.campaign_id}/status", json={"status": "running"})
    assert started.status_code == 200, started.text
    loop = SenderLoop(world.factory, root_url=ROOT)
    assert loop.run_once() == 1
    loop.close()
    # The messages were delivered a minute ago: hits now are not "seconds after delivery".
    with world.factory() as session, session.begin():
        for row in session.scalars(select(CampaignSend)):
            row.sent_at -= timedelta(minutes=1)


def html_of(sink: Sink, address: str) -> str:
    message = sink.handler.by_recipient(address)[0].message
    html = message.get_body(("html",))
    assert html is not None
    return str(html.get_content())


def paths(html: str) -> dict[str, str]:
    """The tracking URLs of a received message, as paths on our server."""
    found: dict[str, str] = {}
    for url in re.findall(r'(?:href|src)="([^"]+)"', html):
        url = url.replace("&amp;", "&")
        if not url.startswith(ROOT):
            continue
        path = urlsplit(url).path
        if path.endswith("/px.png"):
            found["pixel"] = path
        elif path.startswith("/link/"):
            found.setdefault("sale" if "sale" not in found else "post", path)
        elif path.startswith("/campaign/"):
            found["message"] = path
    return found


def count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_opens_and_clicks_from_received_mail_reach_every_figure(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=4)
    send_campaign(client, world, smtp_sink, individual=True)
    with session_maker() as session:
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None and campaign.status == "finished"
        links = dict(session.execute(select(Link.url, Link.uuid)).all())
        people = {s.email: s for s in session.scalars(select(Subscriber))}
    # Links are registered once per campaign, not per message.
    assert set(links) == {"https://shop.example/sale?a=1&b=2", "https://blog.example/post"}

    ana = paths(html_of(smtp_sink, "user0@example.com"))
    bo = paths(html_of(smtp_sink, "user1@example.com"))
    cy = paths(html_of(smtp_sink, "user2@example.com"))
    assert ana["pixel"] == f"/campaign/{campaign.uuid}/{people['user0@example.com'].uuid}/px.png"
    assert ana["message"] == f"/campaign/{campaign.uuid}/{people['user0@example.com'].uuid}"
    assert ana["sale"] == (
        f"/link/{links['https://shop.example/sale?a=1&b=2']}/{campaign.uuid}"
        f"/{people['user0@example.com'].uuid}"
    )

    reader = {"User-Agent": BROWSER}
    # Ana opens twice and clicks the sale; Bo opens once; Apple's proxy prefetches Cy's pixel.
    for _ in range(2):
        pixel = client.get(ana["pixel"], headers=reader)
        assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/png"
        assert pixel.content.startswith(b"\x89PNG") and "no-store" in pixel.headers["cache-control"]
    assert client.get(bo["pixel"], headers=reader).status_code == 200
    assert client.get(cy["pixel"], headers={"User-Agent": "Mozilla/5.0"}).status_code == 200
    clicked = client.get(ana["sale"], headers=reader, follow_redirects=False)
    assert clicked.status_code == 302
    assert clicked.headers["location"] == "https://shop.example/sale?a=1&b=2"
    # A link checker's HEAD request and a security scanner's GET are recorded as machines'.
    assert client.head(bo["post"], headers=reader, follow_redirects=False).status_code == 302
    scanner = {"User-Agent": "Mozilla/5.0 (compatible; BarracudaCentral)"}
    assert client.get(bo["sale"], headers=scanner, follow_redirects=False).status_code == 302
    # Cy's gateway follows both links within a second: both clicks are a machine's.
    assert client.get(cy["sale"], headers=reader, follow_redirects=False).status_code == 302
    assert client.get(cy["post"], headers=reader, follow_redirects=False).status_code == 302

    with session_maker() as session:
        views = session.execute(select(CampaignView.subscriber_id, CampaignView.machine)).all()
        clicks = session.execute(select(LinkClick.subscriber_id, LinkClick.machine)).all()
    cy_id = people["user2@example.com"].id
    assert sorted(m for _, m in views) == ["", "", "", "apple_mpp"]
    assert sorted(m for s, m in clicks if s == cy_id) == ["link_burst", "link_burst"]
    assert sorted(m for _, m in clicks) == [
        "",
        "barracuda",
        "head_request",
        "link_burst",
        "link_burst",
    ]

    one = client.get(f"/api/campaigns/{world.campaign_id}").json()["data"]
    assert (one["views"], one["clicks"]) == (3, 1)
    summary = client.get(
        "/api/deliverability/summary", params={"campaign_id": world.campaign_id}
    ).json()["data"]
    assert summary["sent"] == 4 and summary["delivered"] == 4 and summary["bounced"] == 0
    assert summary["opens"] == {"unique": 2, "total": 3, "machine": 1}
    assert summary["clicks"] == {"unique": 1, "total": 1, "machine": 4}
    assert summary["rates"]["open"] == 50.0 and summary["rates"]["click"] == 25.0
    assert summary["rates"]["click_to_open"] == 50.0

    today = campaign.created_at.date().isoformat()
    window = {"id": world.campaign_id, "from": today, "to": today}
    views_now = client.get("/api/campaigns/analytics/views", params=window).json()["data"]
    assert [(v["campaign_id"], v["count"]) for v in views_now] == [(world.campaign_id, 2)]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:00:00Z", views_now[0]["timestamp"])
    top = client.get("/api/campaigns/analytics/links", params=window).json()["data"]
    assert top == [{"url": "https://shop.example/sale?a=1&b=2", "count": 1}]
    activity = client.get(f"/api/subscribers/{people['user0@example.com'].id}/activity").json()[
        "data"
    ]
    assert activity["campaign_views"][0]["view_count"] == 2
    assert activity["link_clicks"][0]["url"] == "https://shop.example/sale?a=1&b=2"
    charts = client.get("/api/dashboard/charts").json()["data"]
    assert [point["count"] for point in charts["campaign_views"]] == [3]
    counts = client.get("/api/dashboard/counts").json()["data"]
    assert counts["subscribers"]["total"] == 4 and counts["campaigns"]["by_status"] == {
        "finished": 1
    }

    # The message as a web page: the subscriber's own content, tracked links, no scripts.
    page = client.get(ana["message"])
    assert page.status_code == 200 and "Hi User0 Last" in page.text
    assert f"/link/{links['https://blog.example/post']}/{campaign.uuid}/" in page.text
    assert page.headers["content-security-policy"].startswith("sandbox")


def test_unknown_or_foreign_uuids_are_404_and_write_nothing(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=2)
    send_campaign(client, world, smtp_sink, individual=True)
    ana = paths(html_of(smtp_sink, "user0@example.com"))
    campaign_uuid, subscriber_uuid = ana["pixel"].split("/")[2:4]
    link_uuid = ana["sale"].split("/")[2]
    with session_maker() as session:
        other = Campaign(name="Other", subject="Other")
        session.add(other)
        session.commit()
        other_uuid = other.uuid
    before = {m: count(session_maker, m) for m in (CampaignView, LinkClick, AnalyticsChange)}
    stranger = "8d3f1a52-7c1e-4a0b-9f7e-2c6d5b4a3e21"
    for path in (
        f"/campaign/{stranger}/{subscriber_uuid}/px.png",
        f"/campaign/{campaign_uuid}/{stranger}/px.png",
        f"/campaign/not-a-uuid/{subscriber_uuid}/px.png",
        f"/campaign/{campaign_uuid}/{subscriber_uuid[:-1]}/px.png",
        f"/link/{stranger}/{campaign_uuid}/{subscriber_uuid}",
        f"/link/{link_uuid}/{other_uuid}/{subscriber_uuid}",
        f"/link/{link_uuid}/{campaign_uuid}/{stranger}",
        f"/link/{link_uuid}/{campaign_uuid}/{subscriber_uuid}%0a",
        f"/campaign/{campaign_uuid}/{stranger}",
    ):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 404, (path, answer.status_code, answer.text)
        assert "location" not in answer.headers
    assert {m: count(session_maker, m) for m in before} == before


def test_without_individual_tracking_hits_count_without_subscriber(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=2)
    send_campaign(client, world, smtp_sink, individual=False)
    ana = paths(html_of(smtp_sink, "user0@example.com"))
    # listmonk's all-zero uuid stands for the subscriber in the URLs.
    assert ana["pixel"].endswith("/00000000-0000-0000-0000-000000000000/px.png")
    assert ana["message"].split("/")[-1] != "00000000-0000-0000-0000-000000000000"
    assert client.get(ana["pixel"], headers={"User-Agent": BROWSER}).status_code == 200
    assert (
        client.get(ana["sale"], follow_redirects=False, headers={"User-Agent": BROWSER}).status_code
        == 302
    )
    with session_maker() as session:
        assert session.scalars(select(CampaignView.subscriber_id)).all() == [None]
        assert session.scalars(select(LinkClick.subscriber_id)).all() == [None]
    summary = client.get(
        "/api/deliverability/summary", params={"campaign_id": world.campaign_id}
    ).json()["data"]
    assert summary["opens"] == {"unique": 0, "total": 1, "machine": 0}
    assert summary["clicks"] == {"unique": 0, "total": 1, "machine": 0}


def test_disabled_tracking_renders_plain_links_and_records_nothing(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=1)
    assert client.put("/api/settings", json={"privacy.disable_tracking": True}).status_code == 200
    send_campaign(client, world, smtp_sink, individual=True)
    html = html_of(smtp_sink, "user0@example.com")
    assert "px.png" not in html and "/link/" not in html
    assert 'href="https://shop.example/sale?a=1&amp;b=2"' in html
    assert 'href="https://blog.example/post"' in html
    assert count(session_maker, Link) == 0
