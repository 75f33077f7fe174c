"""The mailbox scanner's ledger on `mailbox_state` (services.mailbox_ledger), on the test DB."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import MailboxMessage
from stmails.ingest.mailbox import MessageState
from stmails.ingest.mailbox.scanner import INTERRUPTED
from stmails.services.mailbox_ledger import IGNORED_NOTE, SqlLedger


def rows(sessions: sessionmaker[Session]) -> dict[tuple[str, str], tuple[str, int, str]]:
    with sessions() as session:
        return {
            (r.uidvalidity, r.uid): (r.status, r.attempts, r.last_error)
            for r in session.scalars(select(MailboxMessage).where(MailboxMessage.mailbox == "m"))
        }


def test_outcomes_are_remembered_per_mailbox_and_uidvalidity(
    session_maker: sessionmaker[Session],
) -> None:
    ledger = SqlLedger(session_maker)
    ledger.mark("m", "1", ["a", "b"], "processed")
    ledger.mark("m", "1", ["c"], "ignored")
    # Another process (a new ledger on the same table) knows them.
    states = SqlLedger(session_maker).states("m", "1")
    assert states == {
        "a": MessageState("processed", 0),
        "b": MessageState("processed", 0),
        "c": MessageState("ignored", 0),
    }
    assert rows(session_maker)[("1", "c")] == ("processed", 0, IGNORED_NOTE)
    assert ledger.states("m", "2") == {} and ledger.states("other", "1") == {}


def test_attempts_count_up_fail_keeps_the_larger_and_forgive_counts_down(
    session_maker: sessionmaker[Session],
) -> None:
    ledger = SqlLedger(session_maker)
    ledger.attempt("m", "1", ["x", "y"])
    assert rows(session_maker)[("1", "x")] == ("failed", 1, INTERRUPTED)
    ledger.attempt("m", "1", ["x"])
    assert ledger.fail("m", "1", "x", "bad MIME", tries=1) == 2
    assert ledger.fail("m", "1", "z", "e" * 3000, tries=3) == 3
    assert rows(session_maker)[("1", "z")] == ("failed", 3, "e" * 2000)
    # A try that was not the message's fault is given back; a message tried once is forgotten.
    ledger.forgive("m", "1", ["x", "y"])
    assert ("1", "y") not in rows(session_maker)
    assert ledger.states("m", "1")["x"] == MessageState("failed", 1)
    # Marked processed, a failed message stays processed.
    ledger.mark("m", "1", ["x"], "processed")
    assert rows(session_maker)[("1", "x")] == ("processed", 1, "")


def test_prune_forgets_messages_gone_and_other_uidvalidities(
    session_maker: sessionmaker[Session],
) -> None:
    ledger = SqlLedger(session_maker)
    ledger.mark("m", "old", ["a"], "processed")
    keys = [str(n) for n in range(1200)]
    ledger.mark("m", "1", keys, "processed")
    ledger.prune("m", "1", {"5", "1100"})
    assert set(rows(session_maker)) == {("1", "5"), ("1", "1100")}
    # Empty lists are no-ops.
    ledger.mark("m", "1", [], "failed")
    ledger.attempt("m", "1", [])
    ledger.forgive("m", "1", [])
    assert len(rows(session_maker)) == 2
