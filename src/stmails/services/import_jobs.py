"""The subscriber import slot in the database: one import at a time across every server process.

listmonk runs one CSV import at a time and reports it through `GET /api/import/subscribers`.
With several server processes (`stmails serve --workers N`) the status poll, the stop request
and a second upload may each reach a different process than the one importing, so the slot
lives in the `import_jobs` table (one row, id 1) instead of in memory:

- `claim()` takes the slot for a new import with one conditional UPDATE, so two processes can
  never both start one. A slot whose owner stopped refreshing it for `STALE_AFTER` (the process
  died mid-import) can be taken again.
- The importing process writes its progress and log with every committed chunk, in the chunk's
  own transaction (`save()`): what the status says was imported is committed. `save()` also
  answers whether a stop was requested, or whether the slot was lost to another import.
- `request_stop()` (from any process) asks a running import to stop, or clears a finished one.
- `current()` reads the slot; an import whose owner went silent reads as failed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, or_, update
from sqlalchemy.orm import Session

from stmails.db.models import ImportJob
from stmails.db.types import utcnow
from stmails.db.upsert import insert_or_ignore
from stmails.services.imports import ImportStatus

SLOT_ID = 1
STALE_AFTER = timedelta(minutes=2)
RUNNING = ("importing", "stopping")
_TABLE = cast(Table, ImportJob.__table__)


@dataclass(frozen=True, slots=True)
class ImportView:
    """What `GET /api/import/subscribers` shows (and the log, for `/logs`)."""

    name: str = ""
    total: int = 0
    imported: int = 0
    status: str = "none"
    log: str = ""


def new_owner() -> str:
    """A token naming one import run (the slot's owner while it runs)."""
    return uuid.uuid4().hex


def _ensure_row(session: Session, now: datetime) -> None:
    insert_or_ignore(
        session,
        _TABLE,
        {
            "id": SLOT_ID,
            "name": "",
            "status": "none",
            "total": 0,
            "imported": 0,
            "log": "",
            "owner": "",
            "cancel_requested": False,
            "updated_at": now,
        },
        _TABLE.c.id,
    )


def claim(
    session: Session, owner: str, status: ImportStatus, *, now: datetime | None = None
) -> bool:
    """Takes the slot for the import `owner` described by `status` (its name and first log
    lines); False when another import is running. The caller commits."""
    now = now or utcnow()
    _ensure_row(session, now)
    taken = session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == SLOT_ID,
            or_(ImportJob.status.not_in(RUNNING), ImportJob.updated_at < now - STALE_AFTER),
        )
        .values(
            name=status.name,
            status="importing",
            total=0,
            imported=0,
            log=_log_text(status),
            owner=owner,
            cancel_requested=False,
            started_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(taken, "rowcount", 0) == 1)


def save(
    session: Session, owner: str, status: ImportStatus, *, now: datetime | None = None
) -> bool:
    """Writes `status` (counts, log, and its status word) to the slot if `owner` still holds it;
    True when the import should stop: a stop was requested, or the slot was lost. The caller
    commits, together with the rows the status counts."""
    row = session.get(ImportJob, SLOT_ID, with_for_update=True)
    if row is None or row.owner != owner:
        return True
    stop = row.cancel_requested
    row.total = status.total
    row.imported = status.imported
    row.log = _log_text(status)
    if status.status not in RUNNING:
        row.status = status.status
    elif stop:
        row.status = "stopping"
    row.updated_at = now or utcnow()
    return stop


def current(session: Session, *, now: datetime | None = None) -> ImportView:
    """The current or last import; one whose owner went silent for STALE_AFTER reads as failed."""
    row = session.get(ImportJob, SLOT_ID)
    if row is None:
        return ImportView()
    status, log = row.status, row.log
    if status in RUNNING and row.updated_at < (now or utcnow()) - STALE_AFTER:
        status = "failed"
        log += (
            f"{row.updated_at:%Y/%m/%d %H:%M:%S} import interrupted (its server process stopped)\n"
        )
    return ImportView(row.name, row.total, row.imported, status, log)


def request_stop(session: Session, *, now: datetime | None = None) -> ImportView:
    """Asks a running import to stop (it stops at its next chunk); clears the slot when no
    import runs. Returns the slot as it now reads. The caller commits."""
    now = now or utcnow()
    shown = current(session, now=now)
    row = session.get(ImportJob, SLOT_ID, with_for_update=True)
    if row is None:
        return shown
    if shown.status in RUNNING:
        row.cancel_requested = True
        row.status = "stopping"
        return ImportView(row.name, row.total, row.imported, row.status, row.log)
    row.name, row.status, row.total, row.imported, row.log = "", "none", 0, 0, ""
    row.owner, row.cancel_requested, row.started_at, row.updated_at = "", False, None, now
    return ImportView()


def _log_text(status: ImportStatus) -> str:
    return "".join(line + "\n" for line in status.log)
