"""The campaign sender when the database goes away mid-run (a PostgreSQL failover, a restart):
what SMTP answered is recorded once the database is back, claims not handed over are released,
and nothing ends in doubt that the sender knows the fate of (benchmarks/pg_failover.py measures
the real failover)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import CampaignSend
from stmails.services.sending.campaigns import IN_DOUBT, IN_FLIGHT, ledger

from .conftest import Captured, Sink, make_world, start
from .test_campaign_sender import config_for, runner_for


def _gone() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))


def _rows(world: Any) -> dict[str, int]:
    with world.factory() as session:
        rows = session.execute(
            select(CampaignSend.reason, func.count()).group_by(CampaignSend.reason)
        ).all()
    return {str(reason): int(count) for reason, count in rows}


def test_answers_are_recorded_once_the_database_is_back(
    session_maker: sessionmaker[Session],
    smtp_sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = make_world(session_maker, count=9)
    config = config_for(smtp_sink)  # batches of 3
    start(world, config)
    real_record = ledger.record
    calls = [0]

    def flaky_record(*args: Any, **kwargs: Any) -> None:
        # The first two tries to record an answered batch meet a database that is away.
        calls[0] += 1
        if calls[0] <= 2:
            raise _gone()
        real_record(*args, **kwargs)

    monkeypatch.setattr(ledger, "record", flaky_record)
    runner, pool = runner_for(world, config)
    with caplog.at_level(logging.WARNING), pytest.raises(OperationalError):
        runner.run(world.campaign_id)
    assert "cannot be recorded yet" in caplog.text
    rows = _rows(world)
    # Both batches handed to SMTP are recorded as sent; none is left in flight or in doubt.
    assert IN_FLIGHT not in rows and IN_DOUBT not in rows
    assert sum(rows.values()) == len(smtp_sink.handler.recipients()) == 6

    report = runner.run(world.campaign_id)
    pool.close()
    assert report.finished and report.sent == 3
    recipients = smtp_sink.handler.recipients()
    assert sorted(recipients) == sorted(world.subscriber_ids)
    assert IN_DOUBT not in _rows(world)


def test_claims_not_handed_over_when_the_database_goes_are_released_and_sent_later(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=300)
    # One connection: chunks of 64 messages, five of them in the one batch of 300.
    config = config_for(smtp_sink, **{"app.concurrency": 1, "app.batch_size": 300})
    start(world, config)
    runner, pool = runner_for(world, config)
    away = [False]
    read_status = runner._handoff.status

    def status(campaign_id: int) -> str:
        if away[0]:
            raise _gone()
        return read_status(campaign_id)

    def database_goes_away(captured: Captured) -> None:
        if len(smtp_sink.handler.messages) == 10:
            away[0] = True

    runner._handoff.status = status
    smtp_sink.handler.on_accept = database_goes_away
    with pytest.raises(OperationalError):
        runner.run(world.campaign_id)
    delivered = smtp_sink.handler.recipients()
    rows = _rows(world)
    # The chunks handed over before the check failed went out whole (the SMTP engine's own
    # status reads failing did not stop them); the rest were released, not left in doubt.
    assert 64 <= len(delivered) < 300 and len(delivered) % 64 == 0
    assert IN_FLIGHT not in rows and IN_DOUBT not in rows
    assert sum(rows.values()) == len(delivered)

    away[0] = False
    smtp_sink.handler.on_accept = None
    report = runner.run(world.campaign_id)
    pool.close()
    assert report.finished
    recipients = smtp_sink.handler.recipients()
    assert len(recipients) == len(set(recipients)) == 300
    assert sorted(recipients) == sorted(world.subscriber_ids)
    assert IN_DOUBT not in _rows(world)
