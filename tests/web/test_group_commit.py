"""The group-commit writer: one transaction per batch, each caller answered after the commit,
a failing event does not fail its neighbours, and a database failure fails the whole batch."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from stmails.core.event import Event
from stmails.db.models import Bounce
from stmails.services import bounces
from stmails.services.bounces import RecordResult
from stmails.web.group_commit import GroupCommitWriter


def _event(n: int, email: str = "") -> Event:
    return Event(source="test", type="soft", email=email or f"u{n}@example.org", event_id=str(n))


def _count(session_maker: sessionmaker[Session]) -> int:
    with session_maker() as session:
        return int(session.scalar(select(func.count()).select_from(Bounce)) or 0)


def test_batch_commits_once_and_a_bad_event_fails_alone(
    session_maker: sessionmaker[Session],
) -> None:
    def record(session: Session, event: Event) -> RecordResult:
        if event.event_id == "3":
            raise ValueError("email: refused for the test")
        return bounces.record(session, event)

    async def scenario() -> list[object]:
        writer: GroupCommitWriter[RecordResult] = GroupCommitWriter(session_maker, record)
        await writer.start()
        try:
            results = await asyncio.gather(
                *(writer.submit(_event(n)) for n in range(8)), return_exceptions=True
            )
        finally:
            await writer.stop()
        assert writer.batches < 8
        return list(results)

    results = asyncio.run(scenario())
    assert isinstance(results[3], ValueError)
    assert all(isinstance(r, RecordResult) for i, r in enumerate(results) if i != 3)
    assert _count(session_maker) == 7


def test_database_failure_fails_the_batch_and_stores_nothing(
    session_maker: sessionmaker[Session],
) -> None:
    calls = 0

    def record(session: Session, event: Event) -> RecordResult:
        nonlocal calls
        calls += 1
        result = bounces.record(session, event)
        if calls == 2:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return result

    async def scenario() -> list[object]:
        writer: GroupCommitWriter[RecordResult] = GroupCommitWriter(session_maker, record)
        await writer.start()
        try:
            return list(
                await asyncio.gather(
                    *(writer.submit(_event(n)) for n in range(4)), return_exceptions=True
                )
            )
        finally:
            await writer.stop()

    results = asyncio.run(scenario())
    # The first batch (at least the first two events) failed together; nothing of it stored.
    failed = [r for r in results if isinstance(r, OperationalError)]
    assert len(failed) >= 2
    assert _count(session_maker) == len(results) - len(failed)


def test_submit_before_start_is_503() -> None:
    from stmails.web.errors import ApiError

    writer: GroupCommitWriter[RecordResult] = GroupCommitWriter(
        lambda: pytest.fail("no session expected"), bounces.record
    )
    with pytest.raises(ApiError) as caught:
        asyncio.run(writer.submit(_event(1)))
    assert caught.value.status == 503


@pytest.mark.parametrize(("linger", "batches"), [(0.5, 1), (0.0, 2)])
def test_under_load_the_writer_waits_for_more_events_before_a_batch(
    session_maker: sessionmaker[Session], linger: float, batches: int
) -> None:
    async def scenario() -> GroupCommitWriter[RecordResult]:
        writer: GroupCommitWriter[RecordResult] = GroupCommitWriter(
            session_maker, bounces.record, linger_seconds=linger
        )
        await writer.start()
        try:
            first = [asyncio.ensure_future(writer.submit(_event(n))) for n in range(2)]
            # The second wave comes while the first would already be recording.
            await asyncio.sleep(0.05)
            second = [writer.submit(_event(n)) for n in range(2, 5)]
            await asyncio.gather(*first, *second)
        finally:
            await writer.stop()
        return writer

    writer = asyncio.run(scenario())
    assert (writer.batches, writer.events) == (batches, 5)
    assert _count(session_maker) == 5


def test_a_lone_event_does_not_wait(session_maker: sessionmaker[Session]) -> None:
    async def scenario() -> None:
        writer: GroupCommitWriter[RecordResult] = GroupCommitWriter(
            session_maker, bounces.record, linger_seconds=60
        )
        await writer.start()
        try:
            await asyncio.wait_for(writer.submit(_event(1)), 30)
        finally:
            await writer.stop()

    asyncio.run(scenario())
    assert _count(session_maker) == 1
