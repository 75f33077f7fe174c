"""Several senders on one database (issue 12): each recipient gets one message whatever the
number of senders, a claim left in flight by a dead sender ends in doubt (never resent) while a
live sender's batch is waited for, deferred retries are re-claimed by one sender only, and a
change of the settings reaches a running campaign."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Campaign, CampaignSend
from stmails.db.types import utcnow
from stmails.services import settings as settings_service
from stmails.services.bounces import record as record_bounce
from stmails.services.sending.campaigns import (
    IN_DOUBT,
    IN_FLIGHT,
    SETTINGS_CHANGED,
    CampaignRunner,
    campaign_stats,
)
from stmails.services.sending.runtime import return_path_for
from stmails.services.sending.smtp import SmtpPool
from stmails.workers import sender
from stmails.workers.sender import SenderLoop

from .conftest import Sink, World, make_world, start
from .test_campaign_sender import config_for, settings_for


def test_two_senders_share_a_campaign_and_send_each_message_once(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=60)
    # Two refusals with 4xx: their retries are re-claimed by whichever sender gets there first.
    smtp_sink.handler.rcpt_replies["user7@example.com"] = "451 4.7.1 try again later"
    smtp_sink.handler.rcpt_replies["user8@example.com"] = "451 4.7.1 try again later"
    config = config_for(smtp_sink, **{"sending.soft_retries": 2, "app.batch_size": 5})
    start(world, config)
    reports = []

    def send() -> None:
        pool = SmtpPool(config.smtp)
        runner = CampaignRunner(
            world.factory, pool, config, record_bounce, return_path_for(config, None)
        )
        reports.append(runner.run(world.campaign_id))
        pool.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # One finishes the campaign; the other finishes it too or sees it finished.
    assert len(reports) == 2 and any(r.finished for r in reports), reports
    assert all(r.finished or r.stopped_because == "finished" for r in reports), reports
    received = Counter(smtp_sink.handler.recipients())
    assert len(received) == 58 and set(received.values()) == {1}
    # Each deferred address was tried three times in all (first try and two retries), never
    # more: no retry was sent by both senders.
    for address in ("user7@example.com", "user8@example.com"):
        assert smtp_sink.handler.rcpt_attempts.count(address) == 3
    assert sum(r.sent for r in reports) == 58
    with world.factory() as session:
        stats = campaign_stats(session, world.campaign_id)
    assert (stats["sent"], stats["in_doubt"], stats["sending"]) == (58, 0, 0)


def _claim_in_flight(world: World, email_index: int, at: datetime) -> int:
    subscriber_id = world.subscriber_ids[f"user{email_index}@example.com"]
    with world.factory() as session, session.begin():
        session.execute(
            insert(CampaignSend).values(
                campaign_id=world.campaign_id,
                subscriber_id=subscriber_id,
                status="sent",
                reason=IN_FLIGHT,
                message_id=f"<dead.{subscriber_id}@x>",
                sent_at=at,
            )
        )
    return subscriber_id


def test_a_dead_senders_claim_ends_in_doubt_and_a_live_ones_batch_is_awaited(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=5)
    config = config_for(smtp_sink)
    start(world, config)
    pool = SmtpPool(config.smtp)
    clock = [utcnow()]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += timedelta(seconds=20)

    runner = CampaignRunner(
        world.factory,
        pool,
        config,
        record_bounce,
        return_path_for(config, None),
        now=lambda: clock[0],
        sleep=sleep,
        claim_timeout=60,
    )
    claims: list[int] = []
    original = runner._next_batch

    def next_batch(campaign_id: int, lists: Sequence[int]) -> list[Any]:
        if not claims:
            # Another sender claims user4 once this run has begun (a run's start marks the
            # claims it finds in flight in doubt: they are a crashed run's), then dies.
            claims.append(_claim_in_flight(world, 4, clock[0]))
        return original(campaign_id, lists)

    runner._next_batch = next_batch  # type: ignore[method-assign]
    report = runner.run(world.campaign_id)
    pool.close()
    assert report.finished and report.sent == 4
    # It waited while the claim was young (the clock moves 20 s a sleep), then marked it in
    # doubt once 60 s old.
    assert slept == [1.0, 1.0, 1.0]
    with world.factory() as session:
        row = session.scalar(select(CampaignSend).where(CampaignSend.subscriber_id == claims[0]))
        assert row is not None and row.reason == IN_DOUBT
        stats = campaign_stats(session, world.campaign_id)
    assert (stats["sent"], stats["in_doubt"], stats["sending"]) == (4, 1, 0)
    assert "user4@example.com" not in smtp_sink.handler.recipients()


def test_a_settings_change_stops_the_run_with_its_claims_recorded(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=10)
    config = config_for(smtp_sink, **{"app.batch_size": 2})
    start(world, config)
    pool = SmtpPool(config.smtp)
    asked = [0]

    def changed() -> bool:
        asked[0] += 1
        return asked[0] > 2

    runner = CampaignRunner(
        world.factory,
        pool,
        config,
        record_bounce,
        return_path_for(config, None),
        settings_changed=changed,
    )
    report = runner.run(world.campaign_id)
    pool.close()
    assert report.stopped_because == SETTINGS_CHANGED and not report.finished
    assert report.sent == 4
    with world.factory() as session:
        stats = campaign_stats(session, world.campaign_id)
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None and campaign.status == "running"
    assert (stats["sent"], stats["sending"]) == (4, 0)


def test_the_sender_loop_sends_on_with_settings_saved_mid_campaign(
    session_maker: sessionmaker[Session], smtp_sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(session_maker, count=30)
    with session_maker() as session:
        settings_service.update(session, settings_for(smtp_sink, **{"app.batch_size": 2}))
        session.commit()
    config = config_for(smtp_sink)
    start(world, config)
    loop = SenderLoop(session_maker, root_url="https://lists.example.org", poll_seconds=0.05)
    seen: list[str] = []

    def on_accept(captured: object) -> None:
        # After the fifth message, an admin changes the bounce address in another process.
        seen.append("x")
        if len(seen) == 5:
            with session_maker() as session:
                settings_service.set_value(
                    session, "sending.bounce_address", "changed@mail.example.org"
                )
                session.commit()

    smtp_sink.handler.on_accept = on_accept
    thread = threading.Thread(target=loop.run_forever)
    monkeypatch.setattr(sender, "SETTINGS_POLL_SECONDS", 0.0)
    try:
        thread.start()
        deadline = utcnow() + timedelta(seconds=30)
        while utcnow() < deadline:
            with session_maker() as session:
                status = session.scalar(
                    select(Campaign.status).where(Campaign.id == world.campaign_id)
                )
            if status == "finished":
                break
            threading.Event().wait(0.1)
    finally:
        loop.stop.set()
        thread.join(30)
    assert status == "finished"
    senders = [m.mail_from for m in smtp_sink.handler.messages]
    assert len(senders) == 30 and len(set(smtp_sink.handler.recipients())) == 30
    # The messages after the change (allowing for the two batches already prepared) went out
    # with the new bounce address, without a restart.
    assert senders[0] == "bounces@mail.example.org"
    assert senders[-1] == "changed@mail.example.org"
