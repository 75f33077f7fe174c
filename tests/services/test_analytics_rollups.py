"""The analytics rollups equal a recount from the raw events, whatever wrote or changed them.

Each test builds a history through the real writers (the sender's ledger rows, bounces through
services.bounces.record, deletions through the bounce API's service, `reapply`), then compares
every rollup key with a recount in Python from the raw rows, before and after folding.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import (
    DOMAIN_COUNTERS,
    AnalyticsChange,
    AnalyticsDomainMonth,
    Bounce,
    Campaign,
    CampaignSend,
    Subscriber,
)
from stmails.services import settings
from stmails.services.analytics import rollups
from stmails.services.analytics.rollups import Scope
from stmails.services.analytics.window import Window
from stmails.services.bounces import BounceFilter, delete_bounces, reapply
from stmails.services.campaign_records import delete_campaigns
from stmails.workers.analytics import AnalyticsFolder

from .history import T0, bounce, campaign, send, subscriber

ALL = Scope(campaign_mail=False)

Key = tuple[object, ...]


def _hour(when: datetime) -> int:
    return int(when.timestamp() // 3600)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower() if "@" in address else ""


def _send_flags(status: str, reason: str) -> dict[str, int]:
    accepted = status == "sent" and reason not in ("in_flight", "in_doubt")
    refused = status == "failed" and reason.startswith(("hard_bounce:", "soft_bounce:"))
    return {
        "accepted": int(accepted),
        "refused": int(refused),
        "in_doubt": int(status == "sent" and reason == "in_doubt"),
        "unsubscribed": int(status == "sent" and reason == "unsubscribed"),
    }


def recount(session: Session) -> dict[str, Counter[Key]]:
    """The four rollups recounted from campaign_sends and bounces, one Counter per table,
    keyed by (key..., counter name)."""
    hourly: Counter[Key] = Counter()
    reasons: Counter[Key] = Counter()
    domains: Counter[Key] = Counter()
    sends = session.execute(
        select(
            CampaignSend.campaign_id,
            CampaignSend.status,
            CampaignSend.reason,
            CampaignSend.sent_at,
            Subscriber.email,
        ).join(Subscriber, Subscriber.id == CampaignSend.subscriber_id)
    )
    for campaign_id, status, reason, sent_at, email in sends:
        hour = _hour(sent_at)
        for name, value in _send_flags(status, reason).items():
            if not value:
                continue
            hourly[(hour, campaign_id, name)] += value
            if name in ("accepted", "refused"):
                domains[(hour // 24, campaign_id, _domain(email), name)] += value
    for row in session.scalars(select(Bounce)):
        # A bounce's campaign, else -1 for a campaign stmails does not know, else 0.
        key = row.campaign_id if row.campaign_id is not None else -1 if row.campaign_uuid else 0
        name = {"hard": "hard", "soft": "soft", "complaint": "complaints"}[row.effective_type]
        hour = _hour(row.created_at)
        hourly[(hour, key, name)] += 1
        reasons[(hour // 24, key, row.reason, row.source, name)] += 1
        domains[(hour // 24, key, row.domain, name)] += 1
    # Campaign mail (every key but 0) per domain and calendar month.
    months: Counter[Key] = Counter()
    for (day, key, domain, name), value in domains.items():
        if key != 0:
            months[(domain, rollups.month_of_day(day), name)] += value
    return {"hourly": hourly, "reasons": reasons, "domains": domains, "domain_months": +months}


def stored(session: Session) -> dict[str, Counter[Key]]:
    """What the rollups say (folded rows plus pending deltas), in `recount`'s form."""
    out: dict[str, Counter[Key]] = {}
    window = Window()
    for name, source, keys in (
        ("hourly", rollups.hourly(window, ALL), ("hour", "campaign_id")),
        ("reasons", rollups.reasons(window, ALL), ("day", "campaign_id", "reason", "source")),
        ("domains", rollups.domains(window, ALL), ("day", "campaign_id", "domain")),
    ):
        counters = [c.name for c in source.c if c.name not in keys]
        query = select(*(source.c[k] for k in keys), *rollups.sums(source, counters)).group_by(
            *(source.c[k] for k in keys)
        )
        table: Counter[Key] = Counter()
        for row in session.execute(query):
            for counter, value in zip(counters, row[len(keys) :], strict=True):
                if value:
                    table[(*row[: len(keys)], counter)] += int(value)
        out[name] = table
    # The monthly rollup's rows plus the pending deltas of campaign mail, by month.
    months: Counter[Key] = Counter()
    for row in session.scalars(select(AnalyticsDomainMonth)):
        for counter in DOMAIN_COUNTERS:
            months[(row.domain, row.month, counter)] += getattr(row, counter)
    for delta in session.scalars(select(AnalyticsChange).where(AnalyticsChange.campaign_id != 0)):
        for counter in DOMAIN_COUNTERS:
            month = rollups.month_of_day(delta.hour // 24)
            months[(delta.domain, month, counter)] += getattr(delta, counter)
    out["domain_months"] = +months
    return out


def assert_exact(session: Session) -> None:
    assert stored(session) == recount(session)
    # End the (write) transaction, so that other sessions can fold.
    session.commit()


@pytest.fixture
def world(session_maker: sessionmaker[Session]) -> Iterator[Session]:
    with session_maker() as session:
        yield session


def history(session: Session) -> tuple[Campaign, Campaign, list[Subscriber]]:
    """Two campaigns over two days, five domains, every kind of send outcome and bounce."""
    one, two = campaign(session, "one"), campaign(session, "two")
    people = [
        subscriber(session, address)
        for address in (
            "ana@Gmail.com",
            "bo@yahoo.com",
            "cy@gmail.com",
            "di@example.org",
            '"odd@local"@Corp.Example',
            "fu@gmail.com",
        )
    ]
    later = T0 + timedelta(days=1, hours=3)
    send(session, one, people[0], "sent", "")
    send(session, one, people[1], "sent", "")
    send(session, one, people[2], "failed", "hard_bounce: 550 5.1.1 no such user")
    send(session, one, people[3], "sent", "in_doubt")
    send(session, one, people[4], "sent", "")
    send(session, one, people[5], "skipped", "suppressed:global:hard_bounce", claim_first=False)
    send(session, two, people[0], "sent", "", at=later)
    send(session, two, people[1], "failed", "deferred:1: 451 try later", at=later)
    send(session, two, people[3], "failed", "soft_bounce: 452 full", at=later)
    send(session, two, people[4], "sent", "in_flight", at=later)
    bounce(session, "hard", "cy@gmail.com", one, reason="user_unknown", source="smtp")
    bounce(session, "soft", "bo@yahoo.com", one, reason="mailboxfull", source="mailbox")
    bounce(session, "complaint", "ana@gmail.com", one, reason="feedback", source="ses")
    bounce(session, "soft", "di@example.org", two, at=later, reason="mailboxfull")
    bounce(session, "hard", "stranger@elsewhere.net", None, reason="hostunknown")
    bounce(
        session,
        "hard",
        "ghost@gmail.com",
        None,
        uuid="9f86b50d-5711-41c8-ab03-bc91c43d711b",
        reason="user_unknown",
    )
    return one, two, people


def test_every_kind_of_event_is_counted_as_the_raw_rows_say(world: Session) -> None:
    one, _, _ = history(world)
    world.commit()
    assert_exact(world)
    figures = rollups.totals(world, Window(), ALL)
    assert figures["accepted"] == 4
    assert figures["refused"] == 2
    assert figures["in_doubt"] == 1
    assert (figures["hard"], figures["soft"], figures["complaints"]) == (3, 2, 1)
    campaign_one = rollups.totals(world, Window(), Scope(campaigns=(one.id,)))
    assert (campaign_one["accepted"], campaign_one["refused"], campaign_one["hard"]) == (3, 1, 1)
    # Mail without a campaign is left out of campaign mail; an unknown campaign is kept (-1).
    campaign_mail = rollups.totals(world, Window(), Scope())
    assert campaign_mail["hard"] == 2


def test_folding_changes_nothing_and_empties_the_deltas(
    world: Session, session_maker: sessionmaker[Session]
) -> None:
    history(world)
    world.commit()
    before = stored(world)
    assert rollups.pending_count(world) > 0
    world.close()
    # A small limit folds in several transactions.
    assert rollups.fold_pending(session_maker, limit=3) > 3
    with session_maker() as session:
        assert rollups.pending_count(session) == 0
        assert stored(session) == before
        assert_exact(session)
        # More events after a fold: rollup rows and new deltas add up.
        bounce(session, "hard", "bo@yahoo.com", None, reason="user_unknown")
        session.commit()
        assert_exact(session)


def test_deleting_and_reapplying_bounces_keeps_the_rollups_exact(
    world: Session, session_maker: sessionmaker[Session]
) -> None:
    one, _, _ = history(world)
    world.commit()
    rollups.fold_pending(session_maker)
    deleted = delete_bounces(world, BounceFilter(reason="mailboxfull"))
    world.commit()
    assert deleted == 2
    assert_exact(world)
    # The rules change: mailboxfull is no longer soft, so reapply retypes stored bounces.
    bounce(world, "soft", "ana@gmail.com", one, reason="mailboxfull", at=T0 + timedelta(hours=1))
    settings.set_value(world, "bounce.reason_overrides", {"mailboxfull": "hard"})
    world.commit()
    result = reapply(world)
    world.commit()
    assert result.retyped == 1
    assert_exact(world)
    assert rollups.totals(world, Window(), ALL)["hard"] == 4
    world.commit()
    rollups.fold_pending(session_maker)
    assert_exact(world)
    delete_bounces(world, BounceFilter())
    world.commit()
    assert_exact(world)
    figures = rollups.totals(world, Window(), ALL)
    assert (figures["hard"], figures["soft"], figures["complaints"]) == (0, 0, 0)


def test_an_unsubscribe_after_the_send_is_counted_once(world: Session) -> None:
    one, _, people = history(world)
    row = world.scalar(
        select(CampaignSend).where(
            CampaignSend.campaign_id == one.id, CampaignSend.subscriber_id == people[0].id
        )
    )
    assert row is not None
    row.reason = "unsubscribed"
    world.commit()
    assert_exact(world)
    figures = rollups.totals(world, Window(), Scope(campaigns=(one.id,)))
    assert (figures["accepted"], figures["unsubscribed"]) == (3, 1)


def test_erasing_a_subscriber_keeps_the_history_of_sends_and_domains(
    world: Session, session_maker: sessionmaker[Session]
) -> None:
    history(world)
    # The rules delete (erase) an address on its first hard bounce.
    current = settings.get(world, "bounce.actions")
    current["hard"]["action"] = "delete"
    settings.set_value(world, "bounce.actions", current)
    world.commit()
    before = stored(world)
    bounce(world, "hard", "fu@gmail.com", None, reason="user_unknown", at=T0 + timedelta(hours=2))
    world.commit()
    assert world.scalar(select(func.count()).select_from(Subscriber)) == 5
    after = stored(world)
    added = after["domains"] - before["domains"]
    assert added == Counter(
        {((T0 + timedelta(hours=2)).timestamp() // 86400, 0, "gmail.com", "hard"): 1}
    )
    # The erased address's earlier bounce keeps its domain, and its sends keep counting.
    erased = world.scalar(
        select(Bounce).where(Bounce.email_hash != "", Bounce.email.not_like("%@%"))
    )
    assert erased is not None and erased.domain == "gmail.com"
    assert (after["hourly"] - before["hourly"]) == Counter(
        {(_hour(T0 + timedelta(hours=2)), 0, "hard"): 1}
    )


def test_a_deleted_campaign_stays_in_the_totals_under_minus_one(
    world: Session, session_maker: sessionmaker[Session]
) -> None:
    one, two, _ = history(world)
    world.commit()
    rollups.fold_pending(session_maker, limit=5)
    everything = rollups.totals(world, Window(), ALL)
    world.commit()
    delete_campaigns(world, [one.id])
    world.commit()
    assert rollups.totals(world, Window(), ALL) == everything
    assert rollups.totals(world, Window(), Scope(campaigns=(one.id,))) == dict.fromkeys(
        everything, 0
    )
    gone = rollups.totals(world, Window(), Scope(campaigns=(rollups.GONE,)))
    assert (gone["accepted"], gone["refused"], gone["hard"], gone["complaints"]) == (3, 1, 2, 1)
    world.commit()
    rollups.fold_pending(session_maker)
    assert rollups.totals(world, Window(), ALL) == everything
    # The bounces' own rows now name no campaign, so they recount under -1 as well.
    recounted = recount(world)["hourly"]
    assert {key for key in recounted if key[1] == one.id} == set()
    assert rollups.totals(world, Window(), Scope(campaigns=(two.id,)))["accepted"] == 1


def test_the_folder_worker_folds_in_the_background(
    world: Session, session_maker: sessionmaker[Session]
) -> None:
    history(world)
    world.commit()
    before = stored(world)
    folder = AnalyticsFolder(session_maker, interval=0.05)
    folder.start()
    try:
        deadline = time.monotonic() + 10
        while rollups.pending_count(world) and time.monotonic() < deadline:
            world.commit()
            time.sleep(0.05)
    finally:
        folder.stop()
    assert rollups.pending_count(world) == 0
    assert stored(world) == before


def test_months_of_days() -> None:
    assert rollups.month_of_day(0) == 0
    assert rollups.first_day_of(0) == 0
    # 2026-03-02 is day 20514; 2026-03 is month 674, starting on day 20513.
    assert rollups.month_of_day(20514) == 674
    assert rollups.first_day_of(674) == 20513
    assert rollups.first_day_of(675) == 20513 + 31
    assert rollups.month_of_day(20513 + 30) == 674
    assert rollups.month_of_day(20513 + 31) == 675


def test_per_domain_figures_of_any_period_add_months_and_days_exactly(
    world: Session, session_maker: sessionmaker[Session]
) -> None:
    """Campaign mail per domain over periods of whole months, parts of months and both: what
    the monthly and daily rollups (and the pending deltas) add up to, or a month less the days
    left out, equals the recount."""
    one, two, people = history(world)
    # Events in the following months, in the last and first days around the month boundaries.
    send(world, two, people[2], "sent", "", at=datetime(2026, 3, 31, 23, tzinfo=T0.tzinfo))
    late = subscriber(world, "gu@Yahoo.com")
    send(world, one, late, "sent", "", at=datetime(2026, 4, 1, 0, tzinfo=T0.tzinfo))
    bounce(world, "soft", "fu@gmail.com", one, at=datetime(2026, 5, 20, tzinfo=T0.tzinfo))
    world.commit()
    day = rollups.month_of_day
    march, april, may = (rollups.first_day_of(m) for m in (674, 675, 676))
    windows = [
        Window(),
        Window(march * 24, april * 24),
        Window((march + 1) * 24, (april + 1) * 24),
        Window((april - 1) * 24, (may + 25) * 24),
        Window(april * 24, (may + 19) * 24),
        Window((march + 1) * 24, (march + 2) * 24),
        # Within one month: more days inside (the month less two days) and fewer.
        Window((march + 1) * 24, (march + 30) * 24),
        Window((march + 25) * 24, (april + 3) * 24),
    ]

    def expected(window: Window) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for (when, key, domain, name), value in recount(world)["domains"].items():
            if key != 0 and window.first_day <= int(str(when)) < window.end_day:
                totals = out.setdefault(str(domain), [0] * len(DOMAIN_COUNTERS))
                totals[DOMAIN_COUNTERS.index(str(name))] += value
        return out

    for folded in (False, True):
        if folded:
            world.commit()
            rollups.fold_pending(session_maker, limit=4)
        for window in windows:
            got = rollups.domain_sums(world, window, Scope())
            assert {d: v for d, v in got.items() if any(v)} == expected(window), (window, day)
        assert_exact(world)


def test_months_after_2038_are_folded(world: Session, session_maker: sessionmaker[Session]) -> None:
    """The month of a delta is computed in 64 bits (seconds after 2038 overflow 32)."""
    one = campaign(world, "far")
    late = subscriber(world, "late@gmail.com")
    send(world, one, late, "sent", "", at=datetime(2040, 2, 29, 12, tzinfo=T0.tzinfo))
    world.commit()
    rollups.fold_pending(session_maker)
    assert_exact(world)
    rows = world.execute(select(AnalyticsDomainMonth.month, AnalyticsDomainMonth.accepted)).all()
    assert [tuple(row) for row in rows] == [((2040 - 1970) * 12 + 1, 1)]
