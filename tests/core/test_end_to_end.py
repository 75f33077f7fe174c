"""Reports of the newly read formats, from raw bytes to the database the way the mailbox
scanner takes them: classified, turned into events (attributed by the returned original's
X-Stmails headers), recorded by services.bounces in one transaction, and acted on (a hard
bounce or a complaint blocklists and suppresses; a soft bounce does not)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Bounce, Subscriber
from stmails.ingest.mailbox.scanner import message_events
from stmails.services import settings, subscribers, suppression
from stmails.workers.mailbox import make_recorder

DATA = Path(__file__).resolve().parent.parent / "data" / "core"
# The subscriber uuids our own samples carry in their returned original.
SAMPLE_SUBSCRIBERS = (
    "7b0c6f0e-0000-4000-8000-0000000000a1",
    "7b0c6f0e-0000-4000-8000-0000000000b2",
    "7b0c6f0e-0000-4000-8000-0000000000c3",
)


@pytest.fixture(autouse=True)
def trust_every_report(session_maker: sessionmaker[Session]) -> None:
    """The samples answer no mail this test database sent: let a mailbox report act on the
    address it names (`bounce.mailbox_trust` "any"), where stmails has that setting."""
    if "bounce.mailbox_trust" in settings.DEFAULTS:
        with session_maker() as session:
            settings.set_value(session, "bounce.mailbox_trust", "any")
            session.commit()


def deliver(sessions: sessionmaker[Session], name: str, subscriber_uuid: str) -> None:
    """Classify one sample as if it arrived for `subscriber_uuid`, and record its events."""
    raw = (DATA / name).read_bytes()
    for placeholder in SAMPLE_SUBSCRIBERS:
        raw = raw.replace(placeholder.encode(), subscriber_uuid.encode())
    events = message_events(raw, "bounces")
    assert events, name
    make_recorder(sessions)(events)


def subscriber(sessions: sessionmaker[Session], email: str) -> str:
    with sessions() as session:
        sub = subscribers.create(session, email=email)
        session.commit()
        return sub.uuid


def state(sessions: sessionmaker[Session], email: str) -> tuple[str, bool, list[str]]:
    """The subscriber's status, whether the address is suppressed, and its bounce reasons."""
    with sessions() as session:
        sub = session.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        reasons = [
            f"{b.type}:{b.reason}"
            for b in session.scalars(
                select(Bounce).where(Bounce.subscriber_id == sub.id).order_by(Bounce.id)
            )
        ]
        return sub.status, suppression.is_suppressed(session, email), reasons


@pytest.mark.parametrize(
    ("name", "email", "expected"),
    [
        # Hard: the address is bad; blocklisted and suppressed.
        (
            "sendmail-expanded-from.eml",
            "vic@dest.example",
            ("blocklisted", True, ["hard:userunknown"]),
        ),
        (
            "exim-mx-nonexistent.eml",
            "lou@nomx.example",
            ("blocklisted", True, ["hard:hostunknown"]),
        ),
        (
            "exchange-x400-address.eml",
            "ben@corp.example",
            ("blocklisted", True, ["hard:userunknown"]),
        ),
        # Soft: the address is fine; nothing is done on one bounce.
        ("google-receiving-rate.eml", "mio@gmail.example", ("enabled", False, ["soft:speeding"])),
        ("yahoo-tss04.eml", "jim@yahoo.example", ("enabled", False, ["soft:rejected"])),
        ("ses-quoted-status.eml", "una@dest.example", ("enabled", False, ["soft:securityerror"])),
        # The address the list sent to, not the one a forward turned it into.
        (
            "dsn-original-recipient.eml",
            "yuki@dest.example",
            ("enabled", False, ["soft:mailboxfull"]),
        ),
    ],
)
def test_a_report_reaches_the_subscriber_it_names(
    session_maker: sessionmaker[Session], name: str, email: str, expected: tuple[object, ...]
) -> None:
    uuid = subscriber(session_maker, email)
    deliver(session_maker, name, uuid)
    assert state(session_maker, email) == expected


def test_a_complaint_whose_report_hides_the_recipient_reaches_the_subscriber(
    session_maker: sessionmaker[Session],
) -> None:
    # The complainant's provider writes "To: undisclosed-recipients"; the original still
    # carries our X-Stmails-Subscriber header.
    uuid = subscriber(session_maker, "quiet@isp.example")
    deliver(session_maker, "arf-undisclosed-recipient.eml", uuid)
    assert state(session_maker, "quiet@isp.example") == (
        "blocklisted",
        True,
        ["complaint:feedback"],
    )
