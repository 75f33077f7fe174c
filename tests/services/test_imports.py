"""services.imports.run_import: chunked commits, and the checkpoint that stores progress."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Subscriber
from stmails.services import imports


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
