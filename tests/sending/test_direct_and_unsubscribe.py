"""Transactional sends, campaign tests and unsubscribes against a real aiosmtpd server."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import (
    Bounce,
    Campaign,
    CampaignSend,
    Subscriber,
    SubscriberList,
    Suppression,
    Template,
)
from stmails.services import suppression
from stmails.services.bounces import record as record_bounce
from stmails.services.sending.campaigns import campaign_stats, compile_campaign
from stmails.services.sending.compose import Links, compile_content, unsubscribe_url
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.direct import (
    DirectSender,
    raw_targets,
    resolve_subscribers,
    tx_content,
)
from stmails.services.sending.runtime import return_path_for
from stmails.services.sending.smtp import SmtpPool
from stmails.services.sending.unsubscribe import unsubscribe

from .conftest import Sink, make_world


def sender_for(sink: Sink) -> tuple[DirectSender, SmtpPool, SendingConfig]:
    config = SendingConfig.from_settings(
        {"smtp": sink.smtp_settings(), "sending.bounce_address": "bounce@mail.example.org"}
    )
    pool = SmtpPool(config.smtp)
    return (
        DirectSender(config, pool.send, record_bounce, return_path_for(config, None)),
        pool,
        config,
    )


def test_tx_renders_data_and_refuses_suppressed_recipients(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=3)
    sender, pool, config = sender_for(smtp_sink)
    with world.factory() as session, session.begin():
        template = Template(
            name="Receipt",
            type="tx",
            subject="Order {{ .Tx.Data.order_id }}",
            body="<p>Hi {{ .Subscriber.FirstName }}, your code is {{ .Tx.Data.code }}.</p>",
        )
        session.add(template)
        suppression.add(session, reason="complaint", email="user1@example.com", source="test")
        session.flush()
        content = tx_content(session, template.id, config=config, headers=[{"X-Order": "42"}])
        targets = resolve_subscribers(
            session, emails=["user0@example.com", "user1@example.com", "nobody@example.com"]
        )
        results = sender.send(
            session, content, targets, kind="tx", tx_data={"order_id": 42, "code": "A<1>"}
        )
    pool.close()
    by = {r.recipient: r for r in results}
    assert by["user0@example.com"].status == "sent"
    assert by["user1@example.com"].status == "refused"
    assert "suppressed (complaint, global)" in by["user1@example.com"].error
    assert by["nobody@example.com"].error == "subscriber not found"
    assert smtp_sink.handler.recipients() == ["user0@example.com"]
    msg = smtp_sink.handler.messages[0].message
    assert msg["Subject"] == "Order 42"
    assert msg["X-Order"] == "42"
    assert msg["X-Stmails-Subscriber"]
    assert "List-Unsubscribe" not in msg
    html = msg.get_body(("html",))
    assert html is not None and "your code is A&lt;1&gt;." in html.get_content()


def test_raw_send_refuses_suppressed_domain_and_records_5xx(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=0)
    sender, pool, _ = sender_for(smtp_sink)
    smtp_sink.handler.rcpt_replies["gone@example.net"] = "550 5.1.1 no such user"
    with world.factory() as session, session.begin():
        suppression.add(session, reason="manual", domain="blocked.example", source="test")
        content = compile_content(
            subject="Hello", body="plain text", content_type="plain", from_email="app@x.example"
        )
        results = sender.send(
            session,
            content,
            raw_targets(["ok@example.net", "who@blocked.example", "gone@example.net"]),
            kind="raw",
        )
    pool.close()
    assert [r.status for r in results] == ["sent", "refused", "failed"]
    assert "domain suppressed" in results[1].error
    assert smtp_sink.handler.recipients() == ["ok@example.net"]
    with world.factory() as session:
        bounce = session.scalar(select(Bounce))
        assert bounce is not None and bounce.email == "gone@example.net" and bounce.type == "hard"
        assert suppression.find(session, "gone@example.net") is not None


def test_campaign_test_send_skips_suppressed_address(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=2)
    sender, pool, config = sender_for(smtp_sink)
    with world.factory() as session, session.begin():
        suppression.add(session, reason="hard_bounce", email="user0@example.com")
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        content = compile_campaign(session, campaign, config)
        results = sender.send(
            session,
            content,
            resolve_subscribers(session, emails=["user0@example.com", "user1@example.com"]),
            kind="test",
            campaign={"uuid": campaign.uuid, "name": campaign.name},
            links_for=lambda r: Links(unsubscribe_url(config.root_url, campaign.uuid, r.uuid)),
        )
    pool.close()
    assert [r.status for r in results] == ["refused", "sent"]
    assert smtp_sink.handler.recipients() == ["user1@example.com"]
    msg = smtp_sink.handler.messages[0].message
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_unsubscribe_marks_subscription_suppresses_and_counts_once(
    session_maker: sessionmaker[Session],
) -> None:
    world = make_world(session_maker, count=2)
    with world.factory() as session, session.begin():
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        sub = session.get(Subscriber, world.subscriber_ids["user0@example.com"])
        assert sub is not None
        session.add(CampaignSend(campaign_id=campaign.id, subscriber_id=sub.id, status="sent"))
        for _ in range(2):
            result = unsubscribe(session, campaign.uuid, sub.uuid, source="one-click")
            assert result is not None and result.list_ids == (world.list_id,)
        assert unsubscribe(session, campaign.uuid, "no-such-uuid", source="x") is None
    with world.factory() as session:
        link = session.get(
            SubscriberList, (world.subscriber_ids["user0@example.com"], world.list_id)
        )
        assert link is not None and link.status == "unsubscribed"
        entries = session.scalars(select(Suppression)).all()
        assert [(e.reason, e.scope, e.list_id) for e in entries] == [
            ("unsubscribe", "list", world.list_id)
        ]
        assert campaign_stats(session, world.campaign_id)["unsubscribes"] == 1
