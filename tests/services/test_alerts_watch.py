"""The deliverability watcher on known histories: each test writes sends as the sender does and
bounces through services.bounces.record (the door every channel uses), then checks the figures
the watcher counted and what it did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stmails.db.models import Alert, AlertDelivery, Campaign, CampaignHold, CampaignSend
from stmails.services import settings
from stmails.services.alerts import watch
from stmails.services.alerts.store import release_hold
from stmails.services.errors import Conflict
from stmails.services.sending.campaigns import change_status
from stmails.services.sending.config import SendingConfig

from .history import bounce, campaign, mailing_list, send, subscriber


def now() -> datetime:
    return datetime.now(UTC)


def running(session: Session, name: str = "Launch") -> Campaign:
    camp = campaign(session, name)
    camp.status = "running"
    session.flush()
    return camp


def sends(
    session: Session, camp: Campaign, count: int, domain: str = "example.com", start: int = 0
) -> list[str]:
    """`count` messages of `camp` the server accepted, to new subscribers; their addresses."""
    addresses = []
    for number in range(start, start + count):
        address = f"u{number:05d}@{domain}"
        send(session, camp, subscriber(session, address), "sent", "", at=now())
        addresses.append(address)
    return addresses


def configure(session: Session, **values: Any) -> None:
    settings.set_value(session, "deliverability.alerts", values)
    session.flush()


def alerts(session: Session) -> list[Alert]:
    return list(session.scalars(select(Alert).order_by(Alert.id)))


def test_no_judgment_below_the_minimum_sample(session: Session) -> None:
    # (The domain's own minimum is raised too: 20 % of 99 sends would hold example.com.)
    configure(session, domain_min_sample=1000)
    camp = running(session)
    addresses = sends(session, camp, 99)
    for address in addresses[:20]:
        bounce(session, "hard", address, camp, at=now())
    assert alerts(session) == []
    assert session.get(Campaign, camp.id).status == "running"  # type: ignore[union-attr]


def test_warning_at_two_percent_is_raised_once(session: Session) -> None:
    camp = running(session)
    addresses = sends(session, camp, 200)
    for address in addresses[:3]:
        bounce(session, "hard", address, camp, at=now())
    assert alerts(session) == []
    bounce(session, "soft", addresses[3], camp, at=now())
    bounce(session, "hard", addresses[4], camp, at=now())
    found = alerts(session)
    assert [(a.level, a.kind) for a in found] == [("warning", "bounce_rate")]
    figures = found[0].figures
    assert (figures["sends"], figures["bounced"], figures["hard"], figures["soft"]) == (
        200,
        4,
        3,
        1,
    )
    assert figures["bounce_rate"] == 2.0
    assert session.get(Campaign, camp.id).status == "running"  # type: ignore[union-attr]


def test_critical_pauses_the_campaign_and_holds_scheduled_ones(session: Session) -> None:
    camp = running(session)
    later = campaign(session, "Later")
    later.status, later.send_at = "scheduled", now() + timedelta(days=1)
    draft = campaign(session, "Draft")
    session.flush()
    addresses = sends(session, camp, 100)
    for address in addresses[:4]:
        bounce(session, "hard", address, camp, at=now())
    assert session.get(Campaign, camp.id).status == "running"  # type: ignore[union-attr]
    bounce(session, "hard", addresses[4], camp, at=now())
    session.expire_all()
    paused = session.get(Campaign, camp.id)
    assert paused is not None and paused.status == "paused"
    assert "bounce rate 5.00 % over its last 100 sends (5 bounced)" in paused.pause_reason
    critical = [a for a in alerts(session) if a.level == "critical"]
    assert len(critical) == 1
    assert paused.alert_figures["alert_id"] == critical[0].id
    assert paused.alert_figures["bounce_rate"] == 5.0
    assert critical[0].actions == {"paused": [camp.id], "held_scheduled": [later.id]}
    held = session.get(Campaign, later.id)
    assert held is not None and held.status == "paused" and held.alert_figures["held_scheduled"]
    assert session.get(Campaign, draft.id).status == "draft"  # type: ignore[union-attr]
    # More bounces of the paused campaign raise nothing more.
    bounce(session, "hard", addresses[5], camp, at=now())
    assert len([a for a in alerts(session) if a.level == "critical"]) == 1


def test_pausing_can_be_turned_off(session: Session) -> None:
    configure(session, pause_campaign=False, hold_scheduled=False)
    camp = running(session)
    addresses = sends(session, camp, 100)
    for address in addresses[:5]:
        bounce(session, "hard", address, camp, at=now())
    assert [a.level for a in alerts(session)] == ["warning", "critical"]
    assert session.get(Campaign, camp.id).status == "running"  # type: ignore[union-attr]
    assert alerts(session)[1].actions == {"paused": [], "held_scheduled": []}


def test_disabled_watcher_raises_nothing(session: Session) -> None:
    configure(session, enabled=False)
    camp = running(session)
    for address in sends(session, camp, 100)[:50]:
        bounce(session, "hard", address, camp, at=now())
    assert alerts(session) == []


def test_the_window_is_the_latest_sends(session: Session) -> None:
    configure(session, window_sends=100, min_sample=100, complaint_min_sample=100)
    camp = running(session)
    old = sends(session, camp, 100)
    # 10 % of the first 100 bounced, but 100 clean sends came after them.
    sends(session, camp, 100, start=100)
    for address in old[:10]:
        bounce(session, "hard", address, camp, at=now())
    assert alerts(session) == []
    figures = watch.window_figures(
        session, camp.id, watch.alert_config_of(session).thresholds, now()
    )
    assert (figures.sends, figures.bounced) == (100, 0)


def test_sends_older_than_the_window_minutes_are_left_out(session: Session) -> None:
    camp = running(session)
    for number in range(200):
        address = f"old{number}@example.com"
        send(session, camp, subscriber(session, address), "sent", "", at=now() - timedelta(hours=2))
    thresholds = watch.alert_config_of(session).thresholds
    assert watch.window_figures(session, camp.id, thresholds, now()).sends == 0
    assert (
        watch.window_figures(session, camp.id, thresholds, now() - timedelta(hours=2)).sends == 200
    )


def test_in_flight_sends_before_a_bounced_one_count_as_sent(session: Session) -> None:
    camp = running(session)
    done = sends(session, camp, 60)
    # The sender's next batch: claimed, being sent; the server refused the 30th already and
    # its bounce arrived before the batch was recorded.
    flying = []
    for number in range(60, 160):
        address = f"u{number:05d}@example.com"
        flying.append(address)
        send(
            session,
            camp,
            subscriber(session, address),
            "sent",
            "in_flight",
            at=now(),
            claim_first=False,
        )
    for address in [*done[:3], flying[29]]:
        bounce(session, "hard", address, camp, at=now())
    figures = watch.window_figures(
        session, camp.id, watch.alert_config_of(session).thresholds, now()
    )
    assert (figures.sends, figures.bounced) == (90, 4)


def test_complaint_rate_is_critical_at_a_tenth_of_a_percent(session: Session) -> None:
    configure(session, window_sends=2000, complaint_min_sample=1000)
    camp = running(session)
    addresses = sends(session, camp, 1000)
    bounce(session, "complaint", addresses[0], camp, at=now())
    critical = [a for a in alerts(session) if a.level == "critical"]
    assert [a.kind for a in critical] == ["complaint_rate"]
    assert critical[0].figures["complaint_rate"] == 0.1
    assert session.get(Campaign, camp.id).status == "paused"  # type: ignore[union-attr]


def test_resuming_restarts_the_window(session: Session) -> None:
    camp = running(session)
    addresses = sends(session, camp, 100)
    for address in addresses[:5]:
        bounce(session, "hard", address, camp, at=now())
    session.expire_all()
    paused = session.get(Campaign, camp.id)
    assert paused is not None and paused.status == "paused"
    # Resumed (change_status records when): the sends before it no longer count.
    paused.status = "running"
    paused.alert_figures = {**paused.alert_figures, "resumed_at": now().isoformat()}
    session.flush()
    bounce(session, "hard", addresses[6], camp, at=now())
    assert len([a for a in alerts(session) if a.level == "critical"]) == 1
    assert session.get(Campaign, camp.id).status == "running"  # type: ignore[union-attr]
    fresh = sends(session, camp, 100, start=100)
    for address in fresh[:5]:
        bounce(session, "hard", address, camp, at=now())
    assert len([a for a in alerts(session) if a.level == "critical"]) == 2
    assert session.get(Campaign, camp.id).status == "paused"  # type: ignore[union-attr]


def test_a_domain_over_its_rate_is_held_and_released(session: Session) -> None:
    configure(session, domain_min_sample=20)
    camp = running(session)
    sends(session, camp, 400, domain="example.com")
    bad = sends(session, camp, 30, domain="stale.example", start=400)
    for address in bad[:3]:
        bounce(session, "hard", address, camp, at=now())
    assert session.get(CampaignHold, (camp.id, "stale.example")) is None
    bounce(session, "hard", bad[3], camp, at=now())
    hold = session.get(CampaignHold, (camp.id, "stale.example"))
    assert hold is not None
    found = [a for a in alerts(session) if a.kind == "domain_bounce_rate"]
    assert len(found) == 1 and found[0].domain == "stale.example"
    assert found[0].figures["sends"] == 30 and found[0].figures["bounced"] == 4
    assert found[0].actions == {"held_domain": "stale.example"}
    assert session.get(Campaign, camp.id).status == "running"  # type: ignore[union-attr]
    # Messages the sender deferred for the domain go back to the queue when it is released.
    session.add(
        CampaignSend(
            campaign_id=camp.id,
            subscriber_id=subscriber(session, "later@stale.example").id,
            status="skipped",
            reason="held:stale.example",
            sent_at=now(),
        )
    )
    session.flush()
    assert release_hold(session, camp.id, "stale.example") == 1
    assert session.get(CampaignHold, (camp.id, "stale.example")) is None
    with pytest.raises(Conflict):
        release_hold(session, camp.id, "stale.example")


def test_deliveries_are_queued_with_the_alert(session: Session) -> None:
    settings.set_value(session, "app.notify_emails", ["ops@example.org"])
    settings.set_value(
        session,
        "deliverability.alert_webhooks",
        [
            {"url": "https://hooks.example.org/a", "secret": "s" * 20},
            {"url": "https://hooks.example.org/off", "secret": "s" * 20, "enabled": False},
        ],
    )
    camp = running(session)
    for address in sends(session, camp, 100)[:2]:
        bounce(session, "hard", address, camp, at=now())
    rows = list(session.scalars(select(AlertDelivery).order_by(AlertDelivery.id)))
    assert [(r.channel, r.target, r.status) for r in rows] == [
        ("email", "ops@example.org", "pending"),
        ("webhook", "https://hooks.example.org/a", "pending"),
    ]


def test_a_held_scheduled_campaign_returns_to_its_schedule(session: Session) -> None:
    camp = campaign(session, "Later")
    mailing_list(session, "News", camp)
    camp.status, camp.send_at = "paused", now() + timedelta(days=1)
    camp.alert_figures = {"alert_id": 1, "held_scheduled": True}
    session.flush()
    change_status(session, camp, "scheduled", SendingConfig())
    assert camp.status == "scheduled" and camp.pause_reason == ""
    assert "resumed_at" in camp.alert_figures


def test_a_settings_change_is_seen_in_the_same_transaction(session: Session) -> None:
    camp = running(session)
    addresses = sends(session, camp, 100)
    bounce(session, "hard", addresses[0], camp, at=now())
    configure(session, bounce_warning=1.0, bounce_critical=1.5)
    bounce(session, "hard", addresses[1], camp, at=now())
    assert [a.level for a in alerts(session)] == ["critical"]


def test_resuming_a_campaign_waiting_for_held_domains_drops_them(session: Session) -> None:
    camp = running(session)
    mailing_list(session, "News", camp)
    camp.status = "paused"
    camp.pause_reason = "waiting for held domains: stale.example (1 messages): ..."
    session.add(CampaignHold(campaign_id=camp.id, domain="stale.example"))
    session.flush()
    config = SendingConfig.from_settings({"smtp": [{"host": "127.0.0.1", "port": 2525}]})
    change_status(session, camp, "running", config)
    session.flush()
    assert session.get(CampaignHold, (camp.id, "stale.example")) is None
    assert camp.status == "running" and camp.pause_reason == ""


def test_the_window_is_read_page_by_page_past_messages_in_flight(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(session, window_sends=10, min_sample=10, complaint_min_sample=10)
    monkeypatch.setattr(watch, "PAGE_EXTRA", 5)
    camp = running(session)
    done = sends(session, camp, 30)
    for number in range(30, 60):
        address = f"u{number:05d}@example.com"
        send(session, camp, subscriber(session, address), "sent", "in_flight", claim_first=False)
    bounce(session, "hard", done[-1], camp, at=now())
    bounce(session, "hard", done[0], camp, at=now())
    figures = watch.window_figures(
        session, camp.id, watch.alert_config_of(session).thresholds, now()
    )
    # The ten latest answered sends (u00020..u00029), past the thirty claims above them.
    assert (figures.sends, figures.bounced) == (10, 1)
