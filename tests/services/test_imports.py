"""services.imports.run_import: chunked commits, and the checkpoint that stores progress."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Subscriber
from stmails.services import imports, lists, subscribers


def _rows(count: int) -> list[imports.Row]:
    return [imports.Row(n + 2, f"user{n}@example.org", "", {}) for n in range(count)]


def test_checkpoint_runs_in_each_chunk_and_can_stop_the_import(
    session_maker: sessionmaker[Session],
) -> None:
    seen: list[tuple[int, int]] = []

    def checkpoint(session: Session) -> bool:
        # Inside the chunk's transaction: the chunk's subscribers are visible, not committed.
        stored = session.scalar(select(func.count()).select_from(Subscriber))
        seen.append((status.imported, int(stored or 0)))
        return len(seen) == 2

    status = imports.ImportStatus(name="x.csv", status="importing")
    rows = _rows(imports.CHUNK_ROWS * 3 + 7)
    imports.run_import(session_maker, rows, imports.ImportParams(), status, checkpoint=checkpoint)
    chunk = imports.CHUNK_ROWS
    assert seen == [(chunk, chunk), (2 * chunk, 2 * chunk)]
    assert status.status == "stopped"
    with session_maker() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 2 * chunk


def _import(
    session_maker: sessionmaker[Session], rows: list[imports.Row], **params: Any
) -> imports.ImportStatus:
    status = imports.ImportStatus(status="importing")
    imports.run_import(session_maker, rows, imports.ImportParams(**params), status)
    return status


def _subscribers(
    session_maker: sessionmaker[Session],
) -> dict[str, tuple[str, str, dict[str, str]]]:
    """email -> (name, status, {list name: subscription status})."""
    with session_maker() as session:
        found = session.scalars(select(Subscriber)).all()
        subs = subscribers.subscriptions(session, [s.id for s in found])
        return {
            s.email: (s.name, s.status, {x.list.name: x.status for x in subs.get(s.id, [])})
            for s in found
        }


def test_existing_subscribers_with_and_without_overwrite(
    session_maker: sessionmaker[Session],
) -> None:
    with session_maker() as session:
        news = lists.create(session, name="News").id
        other = lists.create(session, name="Other").id
        kept = subscribers.create(session, email="kept@example.org", name="Kept", list_ids=[news])
        subscribers.manage_lists(session, [kept.id], [news], "unsubscribe")
        subscribers.create(session, email="blocked@example.org", status="blocklisted")
        session.commit()
    rows = [
        imports.Row(2, "kept@example.org", "New name", {}),
        imports.Row(3, "blocked@example.org", "B", {}),
        imports.Row(4, "fresh@example.org", "", {"a": 1}),
        imports.Row(5, "Fresh@EXAMPLE.org", "Second", {}),
    ]
    status = _import(session_maker, rows, lists=(news, other), subscription_status="confirmed")
    assert status.imported == 4
    assert _subscribers(session_maker) == {
        # Name kept, the unsubscription kept, the new list added with the asked status.
        "kept@example.org": ("Kept", "enabled", {"News": "unsubscribed", "Other": "confirmed"}),
        # A blocklisted subscriber is never subscribed.
        "blocked@example.org": ("blocked", "blocklisted", {}),
        # The first row of a repeated address counts when nothing is overwritten.
        "fresh@example.org": ("fresh", "enabled", {"News": "confirmed", "Other": "confirmed"}),
    }
    status = _import(session_maker, rows, lists=(news,), overwrite=True)
    assert _subscribers(session_maker) == {
        "kept@example.org": ("New name", "enabled", {"News": "unconfirmed", "Other": "confirmed"}),
        "blocked@example.org": ("B", "blocklisted", {}),
        # With overwrite the last row of a repeated address counts.
        "fresh@example.org": ("Second", "enabled", {"News": "unconfirmed", "Other": "confirmed"}),
    }


def test_blocklist_mode_creates_and_blocklists(session_maker: sessionmaker[Session]) -> None:
    with session_maker() as session:
        news = lists.create(session, name="News").id
        subscribers.create(session, email="on@example.org", list_ids=[news], preconfirm=True)
        session.commit()
    rows = [imports.Row(2, "on@example.org", "", {}), imports.Row(3, "new@example.org", "", {})]
    assert _import(session_maker, rows, mode="blocklist").imported == 2
    assert _subscribers(session_maker) == {
        "on@example.org": ("on", "blocklisted", {"News": "unsubscribed"}),
        "new@example.org": ("new", "blocklisted", {}),
    }


def test_a_chunk_the_database_refuses_is_imported_row_by_row(
    session_maker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = imports._import_chunk
    calls: list[int] = []

    def refuse_once(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            real(*args)
            raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
        real(*args)

    monkeypatch.setattr(imports, "_import_chunk", refuse_once)
    rows = [imports.Row(n + 2, f"u{n}@example.org", "", {}) for n in range(5)]
    rows.append(imports.Row(7, "broken", "", {}))
    status = _import(session_maker, rows)
    assert status.imported == 5
    assert any("one by one" in line for line in status.log)
    assert any("line 7" in line for line in status.log)
    # The refused chunk's own writes were rolled back: every address is stored once.
    assert len(_subscribers(session_maker)) == 5


def test_domain_lists_apply_to_imports(session_maker: sessionmaker[Session]) -> None:
    from stmails.services import settings

    with session_maker() as session:
        settings.set_value(session, "privacy.domain_blocklist", ["*.blocked.example"])
        session.commit()
    rows = [
        imports.Row(2, "a@blocked.example", "", {}),
        imports.Row(3, "b@sub.blocked.example", "", {}),
        imports.Row(4, "c@fine.example", "", {}),
    ]
    status = _import(session_maker, rows)
    with session_maker() as session:
        stored = session.scalars(select(Subscriber.email)).all()
    assert stored == ["c@fine.example"]
    assert sum("is not accepted; skipped" in line for line in status.log) == 2
