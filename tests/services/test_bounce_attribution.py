"""The attribution gate of services.bounces (bounce.mailbox_trust): a bounce read from a mailbox
acts only when something ties it to mail stmails sent; others are recorded, unattributed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stmails.core.event import Event, EventType, Evidence
from stmails.db.models import Bounce, CampaignSend, Subscriber, SubscriberList, Suppression
from stmails.services import settings
from stmails.services.bounces import (
    MAX_ACTING_RECIPIENTS,
    UNATTRIBUTED_NO_VERP,
    UNATTRIBUTED_NOT_SENT,
    UNATTRIBUTED_OTHER_RECIPIENT,
    UNATTRIBUTED_TOO_MANY,
    blocklist_bounced,
    get_bounce,
    reapply,
    record,
    record_many,
)
from stmails.services.settings import SettingsError

from .test_bounces_record import campaign, rules, subscriber

T0 = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)


def mailbox_event(
    email: str,
    *,
    kind: EventType = "hard",
    message: str = "m1",
    subscriber_uuid: str = "",
    campaign_uuid: str = "",
    at: datetime = T0,
    **evidence: Any,
) -> Event:
    """An event as the mailbox scanner makes it, with its evidence."""
    return Event(
        source="mailbox",
        type=kind,
        email=email,
        subscriber_uuid=subscriber_uuid,
        campaign_uuid=campaign_uuid,
        reason="userunknown",
        occurred_at=at,
        event_id=f"{message}:{email}",
        meta={"attribution": "header" if subscriber_uuid else "address"},
        evidence=Evidence(message=message, **evidence),
    )


def trust(session: Session, value: str) -> None:
    settings.set_value(session, "bounce.mailbox_trust", value)
    session.flush()


def suppressed(session: Session) -> list[str]:
    return sorted(e or "" for e in session.scalars(select(Suppression.email)))


def statuses(session: Session, sub: Subscriber) -> tuple[str, list[str]]:
    session.refresh(sub)
    lists = session.scalars(
        select(SubscriberList.status).where(SubscriberList.subscriber_id == sub.id)
    )
    return sub.status, sorted(lists)


def sent(session: Session, sub: Subscriber, message_id: str) -> str:
    """A campaign message stmails sent to `sub` (in the send ledger); its campaign's uuid."""
    camp = campaign(session, f"campaign for {sub.email}")
    session.add(
        CampaignSend(
            campaign_id=camp.id, subscriber_id=sub.id, status="sent", message_id=message_id
        )
    )
    session.flush()
    return camp.uuid


def test_a_forged_bounce_is_recorded_but_acts_on_nobody(session: Session) -> None:
    victim = subscriber(session, "victim@example.org")
    camp = campaign(session)
    # No VERP token, a Message-ID stmails never sent, and headers naming the victim.
    result = record(
        session,
        mailbox_event(
            "victim@example.org",
            subscriber_uuid=victim.uuid,
            campaign_uuid=camp.uuid,
            message_ids=("<forged@attacker.example>",),
        ),
    )
    assert not result.attributed
    assert (result.action_taken, result.suppressed, result.counted) == ("none", False, False)
    assert statuses(session, victim) == ("enabled", ["confirmed", "confirmed"])
    assert suppressed(session) == []
    row = get_bounce(session, result.bounce_id)
    assert row is not None and not row.attributed
    assert row.meta["attribution"] == "none"
    assert row.meta["unattributed"] == UNATTRIBUTED_NOT_SENT
    # Linked by the address it names, but not to a campaign it only claims.
    assert row.subscriber_id == victim.id and row.campaign_id is None
    assert row.meta["claimed_campaign"] == camp.uuid


def test_a_bounce_of_a_campaign_message_stmails_sent_acts(session: Session) -> None:
    ana = subscriber(session, "ana@example.org")
    campaign_uuid = sent(session, ana, f"<{ana.uuid}.1712345678901.7@mail.example>")
    result = record(
        session,
        mailbox_event(
            "ana@example.org", message_ids=(f"<{ana.uuid}.1712345678901.7@mail.example>",)
        ),
    )
    assert result.attributed and result.action_taken == "blocklist" and result.suppressed
    assert statuses(session, ana) == ("blocklisted", ["unsubscribed", "unsubscribed"])
    assert suppressed(session) == ["ana@example.org"]
    row = get_bounce(session, result.bounce_id)
    assert row is not None and row.meta["attribution"] == "message_id"
    assert row.campaign_uuid == campaign_uuid and row.campaign_id is not None


def test_the_subscriber_header_is_believed_only_when_its_message_id_was_sent(
    session: Session,
) -> None:
    # A Message-ID of any form, as long as the ledger has it for the subscriber the headers
    # name (In-Reply-To and References count the same).
    bo = subscriber(session, "bo@example.org")
    sent(session, bo, "<custom-7@mail.example>")
    ok = record(
        session,
        mailbox_event(
            "bo@example.org",
            subscriber_uuid=bo.uuid,
            message_ids=("<unrelated@x>", "<custom-7@mail.example>"),
        ),
    )
    assert ok.attributed and ok.action_taken == "blocklist"
    cy = subscriber(session, "cy@example.org")
    guessed = record(
        session,
        mailbox_event(
            "cy@example.org",
            message="m2",
            subscriber_uuid=cy.uuid,
            message_ids=("<custom-7@mail.example>",),
        ),
    )
    assert not guessed.attributed, "bo's Message-ID says nothing about cy"
    assert statuses(session, cy)[0] == "enabled"


def test_an_attackers_own_message_id_cannot_name_a_victim(session: Session) -> None:
    attacker = subscriber(session, "mallory@example.org")
    victim = subscriber(session, "victim@example.org")
    genuine = f"<{attacker.uuid}.1.1@mail.example>"
    sent(session, attacker, genuine)
    # One report, two recipients: the Message-ID was sent to the attacker only.
    outcomes = record_many(
        session,
        [
            mailbox_event("victim@example.org", message_ids=(genuine,), sole=False),
            mailbox_event("mallory@example.org", message_ids=(genuine,), sole=False),
        ],
    )
    victim_result, attacker_result = outcomes
    assert not isinstance(victim_result, Exception) and not victim_result.attributed
    row = get_bounce(session, victim_result.bounce_id)
    assert row is not None and row.meta["unattributed"] == UNATTRIBUTED_OTHER_RECIPIENT
    assert not isinstance(attacker_result, Exception) and attacker_result.attributed
    # A report on the victim alone acts on the subscriber the message went to, not the victim.
    alone = record(
        session, mailbox_event("victim@example.org", message="m3", message_ids=(genuine,))
    )
    assert alone.attributed and alone.subscriber_id == attacker.id
    assert statuses(session, victim)[0] == "enabled"
    assert suppressed(session) == ["mallory@example.org"]
    forwarded = get_bounce(session, alone.bounce_id)
    assert forwarded is not None and forwarded.email == "mallory@example.org"
    assert forwarded.meta["reported_recipient"] == "victim@example.org"


def test_a_signed_message_id_acts_on_the_address_it_was_signed_for(session: Session) -> None:
    dee = subscriber(session, "dee@example.org")
    other = subscriber(session, "other@example.org")
    # The scanner verified the signature for dee's address; the header names someone else.
    result = record(
        session, mailbox_event("dee@example.org", subscriber_uuid=other.uuid, signed=True)
    )
    assert result.attributed and result.subscriber_id == dee.id
    assert statuses(session, dee)[0] == "blocklisted"
    assert statuses(session, other)[0] == "enabled"
    stranger = record(session, mailbox_event("raw@elsewhere.example", message="m2", signed=True))
    assert stranger.attributed and stranger.suppressed
    assert suppressed(session) == ["dee@example.org", "raw@elsewhere.example"]


def test_verp_trust_wants_a_token(session: Session) -> None:
    trust(session, "verp")
    eve = subscriber(session, "eve@example.org")
    genuine = f"<{eve.uuid}.1.1@mail.example>"
    sent(session, eve, genuine)
    by_message_id = record(session, mailbox_event("eve@example.org", message_ids=(genuine,)))
    assert not by_message_id.attributed
    row = get_bounce(session, by_message_id.bounce_id)
    assert row is not None and row.meta["unattributed"] == UNATTRIBUTED_NO_VERP
    by_token = record(
        session,
        mailbox_event("eve@example.org", message="m2", subscriber_uuid=eve.uuid, verp=True),
    )
    assert by_token.attributed and by_token.action_taken == "blocklist"
    row = get_bounce(session, by_token.bounce_id)
    assert row is not None and row.meta["attribution"] == "verp"


def test_a_token_for_a_subscriber_acts_on_that_subscribers_address(session: Session) -> None:
    fay = subscriber(session, "fay@example.org")
    # A genuine token of fay's (an attacker's own, say) on a report naming someone else.
    result = record(
        session, mailbox_event("victim@example.org", subscriber_uuid=fay.uuid, verp=True)
    )
    assert result.attributed and result.subscriber_id == fay.id
    assert suppressed(session) == ["fay@example.org"]


def test_any_trust_keeps_the_old_behaviour(session: Session) -> None:
    trust(session, "any")
    victim = subscriber(session, "victim@example.org")
    result = record(
        session, mailbox_event("victim@example.org", message_ids=("<forged@attacker.example>",))
    )
    assert result.attributed and result.action_taken == "blocklist" and result.suppressed
    assert statuses(session, victim)[0] == "blocklisted"
    row = get_bounce(session, result.bounce_id)
    assert row is not None and row.meta["attribution"] == "address"


def test_one_message_acts_on_a_bounded_number_of_recipients(session: Session) -> None:
    trust(session, "any")
    count = MAX_ACTING_RECIPIENTS + 3
    events = [mailbox_event(f"r{i}@example.org", sole=False) for i in range(count)]
    outcomes = record_many(session, events)
    acted = [o for o in outcomes if not isinstance(o, Exception) and o.attributed]
    assert len(acted) == MAX_ACTING_RECIPIENTS
    assert len(suppressed(session)) == MAX_ACTING_RECIPIENTS
    held = session.scalars(select(Bounce).where(Bounce.attributed.is_(False))).all()
    assert len(held) == 3 and {b.meta["unattributed"] for b in held} == {UNATTRIBUTED_TOO_MANY}
    # Another message has a count of its own.
    assert record(session, mailbox_event("next@example.org", message="m2")).attributed


def test_authenticated_channels_are_not_gated(session: Session) -> None:
    gil = subscriber(session, "gil@example.org")
    result = record(session, Event(source="api", type="hard", email="gil@example.org"))
    assert result.attributed and result.action_taken == "blocklist"
    assert statuses(session, gil)[0] == "blocklisted"


def test_unattributed_bounces_count_for_no_rule(session: Session) -> None:
    rules(session, soft={"count": 2, "action": "unsubscribe"})
    hal = subscriber(session, "hal@example.org")
    forged = [
        mailbox_event("hal@example.org", kind="soft", message=f"f{i}", at=T0 + timedelta(days=i))
        for i in range(3)
    ]
    for item in forged:
        assert not record(session, item).attributed
    genuine = record(
        session, Event(source="api", type="soft", email="hal@example.org", occurred_at=T0)
    )
    assert genuine.action_taken == "none", "one attributed soft bounce of the two needed"
    assert statuses(session, hal) == ("enabled", ["confirmed", "confirmed"])
    # Replaying the history, and listmonk's "blocklist every bounced subscriber", ignore them
    # as well: hal has one bounce that counts, ivy none.
    replayed = reapply(session)
    assert replayed.bounces == 1 and replayed.actions == {}
    assert statuses(session, hal) == ("enabled", ["confirmed", "confirmed"])
    ivy = subscriber(session, "ivy@example.org")
    record(session, mailbox_event("ivy@example.org", message="iv"))
    session.flush()
    assert blocklist_bounced(session) == 1
    assert statuses(session, hal)[0] == "blocklisted"
    assert statuses(session, ivy)[0] == "enabled"


def test_the_trust_setting_is_validated(session: Session) -> None:
    assert settings.get(session, "bounce.mailbox_trust") == "sent"
    for value in ("verp", "sent", "any"):
        assert settings.validate("bounce.mailbox_trust", value) == value
    for bad in ("all", "", None, True):
        with pytest.raises(SettingsError) as refused:
            settings.validate("bounce.mailbox_trust", bad)
        assert refused.value.field == "bounce.mailbox_trust"


def test_verp_trust_without_verp_is_refused(session: Session) -> None:
    with pytest.raises(SettingsError) as refused:
        settings.update(session, {"bounce.mailbox_trust": "verp"})
    assert refused.value.field == "bounce.mailbox_trust" and "sending.verp" in str(refused.value)
    settings.update(session, {"bounce.mailbox_trust": "verp", "sending.verp": True})
    with pytest.raises(SettingsError) as turned_off:
        settings.update(session, {"sending.verp": False})
    assert turned_off.value.field == "sending.verp"
    assert settings.get(session, "sending.verp") is True
    # Unrelated changes are not held up.
    settings.update(session, {"bounce.enabled": True})
