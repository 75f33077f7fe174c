"""The bounce-mailbox scanner's ledger on the `mailbox_state` table, shared by every process.

The scanner (`ingest.mailbox.scanner`) asks a `Ledger` which messages of a mailbox it has
already processed, ignored or failed on, and records each outcome; this is that ledger in the
database, so another worker process (or the next run of `stmails bounces scan`) knows what was
read. Each call commits on its own: a scan interrupted half-way keeps what it recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import MailboxMessage
from stmails.ingest.mailbox import MessageState
from stmails.ingest.mailbox.scanner import INTERRUPTED, Status

__all__ = ["IGNORED_NOTE", "SqlLedger"]

# mailbox_state knows "processed" and "failed"; a message that is not a bounce and was left in
# place is a processed row with this note, so that it is not read again.
IGNORED_NOTE = "not a bounce"


class SqlLedger:
    """The scanner's `Ledger` on the `mailbox_state` table; each call commits on its own."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def states(self, mailbox: str, uidvalidity: str) -> dict[str, MessageState]:
        with self._sessions() as session:
            rows = session.scalars(
                select(MailboxMessage).where(
                    MailboxMessage.mailbox == mailbox, MailboxMessage.uidvalidity == uidvalidity
                )
            )
            out: dict[str, MessageState] = {}
            for row in rows:
                status: Status = "failed" if row.status == "failed" else "processed"
                if row.status == "processed" and row.last_error == IGNORED_NOTE:
                    status = "ignored"
                out[row.uid] = MessageState(status, row.attempts)
            return out

    def mark(self, mailbox: str, uidvalidity: str, keys: Sequence[str], status: Status) -> None:
        if not keys:
            return
        note = IGNORED_NOTE if status == "ignored" else ""
        stored = "failed" if status == "failed" else "processed"
        with self._sessions() as session:
            existing = self._rows(session, mailbox, uidvalidity, keys)
            for key in keys:
                row = existing.get(key)
                if row is None:
                    session.add(
                        MailboxMessage(
                            mailbox=mailbox,
                            uidvalidity=uidvalidity,
                            uid=key,
                            status=stored,
                            last_error=note,
                        )
                    )
                else:
                    row.status, row.last_error = stored, note
            session.commit()

    def _rows(
        self, session: Session, mailbox: str, uidvalidity: str, keys: Sequence[str]
    ) -> dict[str, MailboxMessage]:
        return {
            row.uid: row
            for row in session.scalars(
                select(MailboxMessage).where(
                    MailboxMessage.mailbox == mailbox,
                    MailboxMessage.uidvalidity == uidvalidity,
                    MailboxMessage.uid.in_(list(keys)),
                )
            )
        }

    def attempt(self, mailbox: str, uidvalidity: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        with self._sessions() as session:
            existing = self._rows(session, mailbox, uidvalidity, keys)
            for key in keys:
                row = existing.get(key)
                if row is None:
                    row = MailboxMessage(
                        mailbox=mailbox, uidvalidity=uidvalidity, uid=key, attempts=0
                    )
                    session.add(row)
                row.status = "failed"
                row.attempts = (row.attempts or 0) + 1
                row.last_error = INTERRUPTED
            session.commit()

    def fail(self, mailbox: str, uidvalidity: str, key: str, error: str, *, tries: int = 0) -> int:
        with self._sessions() as session:
            row = self._rows(session, mailbox, uidvalidity, [key]).get(key)
            if row is None:
                row = MailboxMessage(
                    mailbox=mailbox, uidvalidity=uidvalidity, uid=key, status="failed", attempts=0
                )
                session.add(row)
            row.status = "failed"
            row.attempts = max(row.attempts or 0, tries)
            row.last_error = error[:2000]
            attempts = row.attempts
            session.commit()
            return attempts

    def forgive(self, mailbox: str, uidvalidity: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        with self._sessions() as session:
            for row in self._rows(session, mailbox, uidvalidity, keys).values():
                if (row.attempts or 0) <= 1:
                    session.delete(row)
                else:
                    row.attempts -= 1
            session.commit()

    def prune(self, mailbox: str, uidvalidity: str, present: set[str]) -> None:
        with self._sessions() as session:
            session.execute(
                delete(MailboxMessage).where(
                    MailboxMessage.mailbox == mailbox, MailboxMessage.uidvalidity != uidvalidity
                )
            )
            known = session.scalars(
                select(MailboxMessage.uid).where(
                    MailboxMessage.mailbox == mailbox, MailboxMessage.uidvalidity == uidvalidity
                )
            ).all()
            gone = [uid for uid in known if uid not in present]
            for start in range(0, len(gone), 500):
                session.execute(
                    delete(MailboxMessage).where(
                        MailboxMessage.mailbox == mailbox,
                        MailboxMessage.uidvalidity == uidvalidity,
                        MailboxMessage.uid.in_(gone[start : start + 500]),
                    )
                )
            session.commit()
