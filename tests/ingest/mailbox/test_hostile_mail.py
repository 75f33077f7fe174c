"""Hostile mail in a real Dovecot mailbox: a message that hangs the classifier, or kills the
scan, uses up its tries and is quarantined; the other messages are recorded all the same."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.core import BounceRecord, classify
from stmails.db.models import Bounce, MailboxMessage
from stmails.ingest.isolated import ClassifierClosed, IsolatedClassifier
from stmails.ingest.mailbox import Scanner, connect
from stmails.ingest.mailbox.scanner import INTERRUPTED
from stmails.services.mailbox_ledger import SqlLedger
from stmails.workers.mailbox import make_recorder

from .conftest import Mailbox
from .hostile import HOSTILE_HEADER, hanging_classify, hostile_bounce
from .messages import dsn

pytestmark = pytest.mark.integration


class Crash(BaseException):
    """Stands for the process dying while it classifies (nothing may catch it)."""


@pytest.fixture(scope="module")
def hanging() -> Iterator[IsolatedClassifier]:
    """Worker processes running `hanging_classify`, shared by the tests of this module."""
    with IsolatedClassifier(classifier=hanging_classify) as isolated:
        yield isolated


def recorded(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(Bounce.email)))


def ledger_rows(sessions: sessionmaker[Session]) -> dict[str, tuple[str, int, str]]:
    with sessions() as session:
        return {
            row.uid: (row.status, row.attempts, row.last_error)
            for row in session.scalars(select(MailboxMessage))
        }


def scan(config: Any, sessions: sessionmaker[Session], classifier: Any) -> Any:
    scanner = Scanner(config, make_recorder(sessions), SqlLedger(sessions), classifier=classifier)
    return scanner.scan(connect(config))


@pytest.mark.parametrize("kind", ["imap", "pop"])
def test_a_message_that_hangs_the_classifier_is_quarantined_after_its_tries(
    mailbox: Mailbox,
    session_maker: sessionmaker[Session],
    hanging: IsolatedClassifier,
    kind: str,
) -> None:
    mailbox.append(
        dsn("first@dest.example", subject="first", message_id="1@x"),
        hostile_bounce(subject="hostile"),
        dsn("last@dest.example", subject="last", message_id="2@x"),
    )
    config = mailbox.config(kind, classify_timeout=1, max_tries=3)
    summaries = [scan(config, session_maker, hanging) for _ in range(3)]
    # The other two are recorded by the first scan, which the hostile one does not stop.
    assert (summaries[0].read, summaries[0].bounces) == (2, 2)
    assert recorded(session_maker) == ["first@dest.example", "last@dest.example"]
    assert [s.failed for s in summaries] == [1, 1, 1]
    assert [s.quarantined for s in summaries] == [0, 0, 1]
    (failed,) = [row for row in ledger_rows(session_maker).values() if row[0] == "failed"]
    assert failed[1] == 3 and "ClassificationTimeout" in failed[2]
    if kind == "imap":
        assert mailbox.subjects() == []
        assert mailbox.subjects("Quarantine") == ["hostile"]
    else:
        assert mailbox.subjects() == ["hostile"]
        assert summaries[2].skipped
    # Never read again: a later scan costs nothing.
    later = scan(config, session_maker, hanging)
    assert later.failed == 0 and later.read == 0


def test_each_try_is_counted_before_the_message_is_read(
    mailbox: Mailbox, session_maker: sessionmaker[Session]
) -> None:
    mailbox.append(
        dsn("gus@dest.example", subject="a", message_id="a@x"),
        dsn("hal@dest.example", subject="b", message_id="b@x"),
    )
    seen_by_the_classifier: list[dict[str, tuple[str, int, str]]] = []

    def looking(raw: bytes) -> list[BounceRecord]:
        # What another process (a server started after a crash) would find at this moment.
        seen_by_the_classifier.append(ledger_rows(session_maker))
        return classify(raw)

    scan(mailbox.config("imap"), session_maker, looking)
    assert len(seen_by_the_classifier) == 2
    for rows in seen_by_the_classifier:
        assert sorted(rows.values()) == [("failed", 1, INTERRUPTED)] * 2
    assert sorted(v[:2] for v in ledger_rows(session_maker).values()) == [("processed", 1)] * 2


@pytest.mark.parametrize("kind", ["imap", "pop"])
def test_a_message_that_kills_the_scan_is_quarantined_after_its_tries(
    mailbox: Mailbox, session_maker: sessionmaker[Session], kind: str
) -> None:
    mailbox.append(
        hostile_bounce(subject="killer"),
        dsn("ida@dest.example", subject="ida", message_id="i@x"),
        dsn("jon@dest.example", subject="jon", message_id="j@x"),
    )
    config = mailbox.config(kind, max_tries=3)
    reads: list[bytes] = []

    def dying(raw: bytes) -> list[BounceRecord]:
        reads.append(raw)
        if raw.startswith(HOSTILE_HEADER):
            raise Crash
        return classify(raw)

    crashes = 0
    for _restart in range(10):
        try:
            summary = scan(config, session_maker, dying)
        except Crash:
            crashes += 1
            continue
        break
    else:
        pytest.fail("the scan crashed on every restart")
    # One try in a batch, then alone: it has had its three tries when the fourth scan starts.
    assert crashes == 3
    assert summary.quarantined == 1 and summary.bounces == 2
    assert recorded(session_maker) == ["ida@dest.example", "jon@dest.example"]
    hostile_reads = [raw for raw in reads if raw.startswith(HOSTILE_HEADER)]
    assert len(hostile_reads) == 3, "the quarantined message is not read a fourth time"
    # The others were read in the crashed batch and once more alone, never more.
    assert len(reads) - len(hostile_reads) <= 4
    statuses = sorted(v[:2] for v in ledger_rows(session_maker).values())
    assert statuses == [("failed", 3), ("processed", 1), ("processed", 2)] or statuses == [
        ("failed", 3),
        ("processed", 2),
        ("processed", 2),
    ]
    if kind == "imap":
        assert mailbox.subjects("Quarantine") == ["killer"]
        assert mailbox.subjects() == []
    else:
        assert mailbox.subjects() == ["killer"]


def test_a_server_stopping_mid_scan_takes_back_the_tries_it_cost(
    mailbox: Mailbox, session_maker: sessionmaker[Session]
) -> None:
    mailbox.append(hostile_bounce(subject="slow"), dsn("lou@dest.example", subject="l"))
    config = mailbox.config("imap", classify_timeout=300)
    isolated = IsolatedClassifier(classifier=hanging_classify)
    # The server's shutdown closes the classifier while the hostile message is being read.
    closer = threading.Timer(2.0, isolated.close)
    closer.start()
    with pytest.raises(ClassifierClosed):
        scan(config, session_maker, isolated)
    closer.join()
    assert ledger_rows(session_maker) == {}, "no message was blamed for the shutdown"
    assert mailbox.subjects() == ["slow", "l"]


def test_a_dead_database_takes_back_the_tries_it_cost(
    mailbox: Mailbox, session_maker: sessionmaker[Session]
) -> None:
    from stmails.ingest.mailbox import RecordUnavailable

    mailbox.append(dsn("kay@dest.example", subject="k", message_id="k@x"))
    config = mailbox.config("imap")

    def unavailable(events: list[Any]) -> None:
        raise RecordUnavailable("database is down")

    scanner = Scanner(config, unavailable, SqlLedger(session_maker), classifier=classify)
    with pytest.raises(RecordUnavailable):
        scanner.scan(connect(config))
    assert ledger_rows(session_maker) == {}, "the message was not blamed"
    assert mailbox.subjects() == ["k"]
    summary = scan(config, session_maker, classify)
    assert summary.bounces == 1 and recorded(session_maker) == ["kay@dest.example"]
