"""The admin pages of the sending settings that route and pace mail: an SMTP server's name,
retry delay and From addresses and the sliding window are saved through the settings
validation (a From address in two servers' lists is refused, nothing stored), and a campaign
that waits for the sliding window says so on its page while it stays running."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sending.conftest import make_world
from stmails.db.models import Campaign
from stmails.services import lists as list_service
from stmails.services import settings as settings_service
from web.ui.test_pages import sign_in
from web.ui.test_settings_pages import browser, form_of, post, stored  # noqa: F401


def test_smtp_routing_and_sliding_window_are_saved_from_the_pages(
    browser: TestClient,  # noqa: F811
    session_maker: sessionmaker[Session],
) -> None:
    token = sign_in(browser)
    fields = form_of(browser.get("/admin/settings/smtp").text)
    fields.update(
        {
            "smtp.1.host": "smtp.example.com",
            "smtp.1.name": "brand",
            "smtp.1.msg_retry_delay": "5s",
            "smtp.1.from_addresses": "News <news@example.com>\r\nshop@example.com",
        }
    )
    assert post(browser, "/admin/settings/smtp", fields, token).status_code == 303
    servers = stored(session_maker, "smtp")
    assert servers[1]["from_addresses"] == ["news@example.com", "shop@example.com"]
    assert (servers[1]["name"], servers[1]["msg_retry_delay"]) == ("brand", "5s")

    again = form_of(browser.get("/admin/settings/smtp").text)
    assert again["smtp.1.from_addresses"] == "news@example.com\nshop@example.com"
    again["smtp.0.from_addresses"] = "SHOP@example.com"
    refused = post(browser, "/admin/settings/smtp", again, token)
    assert refused.status_code == 400
    assert "is listed by smtp[1] too" in refused.text or "is listed by smtp[0] too" in refused.text
    assert stored(session_maker, "smtp")[0].get("from_addresses", []) == []

    general = form_of(browser.get("/admin/settings/general").text)
    general["app.message_sliding_window"] = ["on"]
    general["app.message_sliding_window_duration"] = "24h"
    general["app.message_sliding_window_rate"] = "500"
    assert post(browser, "/admin/settings/general", general, token).status_code == 303
    assert stored(session_maker, "app.message_sliding_window") is True
    assert stored(session_maker, "app.message_sliding_window_duration") == "24h"
    assert stored(session_maker, "app.message_sliding_window_rate") == 500
    general["app.message_sliding_window_duration"] = "0s"
    assert post(browser, "/admin/settings/general", general, token).status_code == 400


def test_a_waiting_campaign_shows_why_on_its_pages(
    browser: TestClient,  # noqa: F811
    session_maker: sessionmaker[Session],
) -> None:
    sign_in(browser)
    world = make_world(session_maker, count=1)
    reason = "waiting: the sliding window is full (2 messages per 1s) <b>"
    with session_maker() as session, session.begin():
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        campaign.status, campaign.wait_reason = "running", reason
    for url in (
        f"/admin/campaigns/{world.campaign_id}",
        f"/admin/campaigns/{world.campaign_id}/stats",
    ):
        page = browser.get(url).text
        assert "Waiting, still running:" in page
        assert "(2 messages per 1s) &lt;b&gt;" in page
    with session_maker() as session, session.begin():
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        campaign.status = "paused"
    assert (
        "Waiting, still running:" not in browser.get(f"/admin/campaigns/{world.campaign_id}").text
    )


def test_the_campaign_form_picks_a_named_smtp_server_as_messenger(
    browser: TestClient,  # noqa: F811
    session_maker: sessionmaker[Session],
) -> None:
    token = sign_in(browser)
    with session_maker() as session, session.begin():
        news = list_service.create(session, name="News").id
        plain = {"host": "127.0.0.1", "port": 25, "tls_type": "none"}
        settings_service.set_value(
            session, "smtp", [plain, {**plain, "name": "Brand Relay", "enabled": False}]
        )
    form = browser.get("/admin/campaigns/new").text
    assert '<select id="f-messenger" name="messenger"' in form
    assert '<option value="email-brand-relay">' in form
    fields = {
        "name": "Spring",
        "subject": "Hello",
        "lists": str(news),
        "content_type": "html",
        "body": "<p>Hi</p>",
    }
    refused = post(browser, "/admin/campaigns/new", {**fields, "messenger": "email-x"}, token)
    assert refused.status_code == 400
    assert "unknown messenger &#39;email-x&#39;" in refused.text
    created = post(
        browser, "/admin/campaigns/new", {**fields, "messenger": "email-brand-relay"}, token
    )
    assert created.status_code == 303, created.text
    with session_maker() as session:
        campaign = session.scalars(select(Campaign)).one()
        assert campaign.messenger == "email-brand-relay"
    page = browser.get(created.headers["location"]).text
    assert '<option value="email-brand-relay" selected>' in page
    # Its server is disabled: starting is refused, saying why.
    started = post(browser, f"{created.headers['location']}/status", {"status": "running"}, token)
    assert "not an enabled SMTP server" in browser.get(created.headers["location"]).text or (
        "not an enabled SMTP server" in started.text
    )
    with session_maker() as session:
        assert session.scalars(select(Campaign.status)).one() == "draft"
