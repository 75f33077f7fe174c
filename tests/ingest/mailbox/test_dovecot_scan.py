"""The scanner against a real Dovecot (IMAP and POP3), recording through services.bounces."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.core.verp import make_address
from stmails.db.models import Bounce, Subscriber
from stmails.ingest.mailbox import (
    MailboxClient,
    MailboxError,
    MemoryLedger,
    Scanner,
    connect,
)
from stmails.services.mailbox_ledger import SqlLedger
from stmails.workers.mailbox import make_recorder, verp_resolver

from ..test_verp import format1_token
from .conftest import Mailbox
from .dovecot import OAUTH_TOKEN
from .messages import CAMPAIGN, core_sample, dsn, human_reply

pytestmark = pytest.mark.integration

SECRET = b"test-verp-secret"


class Crash(BaseException):
    """Stands for the process dying (not an Exception: nothing may catch it)."""


def bounces(sessions: sessionmaker[Session]) -> list[Bounce]:
    with sessions() as session:
        return list(session.scalars(select(Bounce).order_by(Bounce.id)))


def scanner(mailbox_config: Any, sessions: sessionmaker[Session], **kw: Any) -> Scanner:
    kw.setdefault("verp_secret", SECRET)
    record = kw.pop("record", None) or make_recorder(sessions)
    ledger = kw.pop("ledger", None) or SqlLedger(sessions)
    return Scanner(mailbox_config, record, ledger, **kw)


@pytest.mark.parametrize(
    ("kind", "tls"),
    [("imap", "tls"), ("imap", "starttls"), ("pop", "tls"), ("pop", "starttls"), ("pop", "none")],
)
def test_bounces_are_recorded_then_removed_and_the_rest_left(
    mailbox: Mailbox, session_maker: sessionmaker[Session], kind: str, tls: str
) -> None:
    mailbox.append(
        dsn("alice@dest.example", subject="bounce-1"),
        core_sample("arf-abuse.eml"),
        core_sample("autoreply-rfc3834.eml"),
        human_reply("reply-1"),
    )
    config = mailbox.config(kind, tls)
    summary = scanner(config, session_maker).scan(connect(config))
    assert (summary.read, summary.bounces, summary.complaints, summary.ignored) == (4, 1, 1, 2)
    assert summary.quarantined == summary.failed == 0
    rows = bounces(session_maker)
    assert sorted((r.email, r.type, r.source) for r in rows) == [
        ("alice@dest.example", "hard", "mailbox"),
        ("carol@isp.example", "complaint", "mailbox"),
    ]
    alice = next(r for r in rows if r.email == "alice@dest.example")
    assert (alice.reason, alice.status) == ("userunknown", "5.1.1")
    # Nothing ties these bounces to mail stmails sent: recorded, with the campaign they claim,
    # but acting on nobody (bounce.mailbox_trust; tests/services/test_bounce_attribution.py).
    assert not alice.attributed and alice.meta["claimed_campaign"] == CAMPAIGN
    complaint = next(r for r in rows if r.type == "complaint")
    assert complaint.feedback_type == "abuse"
    # Only the auto-reply and the human reply are left, untouched.
    remaining = mailbox.subjects()
    assert len(remaining) == 2 and "reply-1" in remaining

    # A second scan reads nothing again and records nothing more.
    again = scanner(config, session_maker).scan(connect(config))
    assert (again.read, again.events) == (0, 0)
    assert len(bounces(session_maker)) == 2


def test_a_wrong_certificate_is_refused(mailbox: Mailbox) -> None:
    config = mailbox.config("imap", "tls", ca_file="")
    with pytest.raises(MailboxError):
        connect(config)
    skip_verify = mailbox.config("imap", "tls", ca_file="", tls_skip_verify=True)
    connect(skip_verify).abandon()


def test_imap_moves_processed_and_non_bounces_to_folders(
    mailbox: Mailbox, session_maker: sessionmaker[Session]
) -> None:
    mailbox.append(dsn("bob@dest.example", subject="bounce-2"), human_reply("reply-2"))
    config = mailbox.config(
        "imap",
        "starttls",
        processed_action="move",
        processed_folder="Bounces/Done",
        non_bounce_action="move",
        non_bounce_folder="Not bounces",
    )
    summary = scanner(config, session_maker).scan(connect(config))
    assert (summary.bounces, summary.ignored, summary.removed) == (1, 1, 1)
    assert mailbox.subjects() == []
    assert mailbox.subjects("Bounces/Done") == ["bounce-2"]
    assert mailbox.subjects("Not bounces") == ["reply-2"]


def test_imap_folder_names_outside_ascii(
    mailbox: Mailbox, session_maker: sessionmaker[Session]
) -> None:
    # Dovecot refuses a name that is not valid modified UTF-7, so the move proves the encoding.
    mailbox.append(dsn("carol@dest.example", subject="bounce-3"))
    config = mailbox.config(
        "imap", "starttls", processed_action="move", processed_folder="Bounces/Trait\u00e9s \u5df2"
    )
    summary = scanner(config, session_maker).scan(connect(config))
    assert (summary.bounces, summary.removed) == (1, 1)
    assert mailbox.subjects() == []
    assert mailbox.subjects("Bounces/Trait&AOk-s &XfI-") == ["bounce-3"]


@pytest.mark.parametrize("kind", ["imap", "pop"])
def test_a_crash_between_commit_and_delete_records_once(
    mailbox: Mailbox, session_maker: sessionmaker[Session], kind: str
) -> None:
    mailbox.append(dsn("carol@dest.example", subject="bounce-3"))
    config = mailbox.config(kind)
    record = make_recorder(session_maker)

    def record_then_die(events: list[Any]) -> None:
        record(events)
        raise Crash

    with pytest.raises(Crash):
        scanner(config, session_maker, record=record_then_die).scan(connect(config))
    assert mailbox.subjects() == ["bounce-3"], "nothing is removed before the scan commits"
    assert len(bounces(session_maker)) == 1

    summary = scanner(config, session_maker).scan(connect(config))
    assert summary.bounces == 1 and summary.removed == 1
    assert len(bounces(session_maker)) == 1, "the second recording was a duplicate"
    assert mailbox.subjects() == []


@pytest.mark.parametrize("kind", ["imap", "pop"])
def test_a_crash_before_the_expunge_removes_without_recording_again(
    mailbox: Mailbox, session_maker: sessionmaker[Session], kind: str
) -> None:
    mailbox.append(dsn("dave@dest.example", subject="bounce-4"))
    config = mailbox.config(kind)

    class DiesAtCommit:
        def __init__(self, inner: MailboxClient) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def commit(self) -> None:
            raise Crash

    with pytest.raises(Crash):
        scanner(config, session_maker).scan(DiesAtCommit(connect(config)))  # type: ignore[arg-type]
    assert mailbox.subjects(flagged_deleted=True) == ["bounce-4"], "not expunged"
    recorded = []

    def counting(events: list[Any]) -> None:
        recorded.extend(events)
        make_recorder(session_maker)(events)

    summary = scanner(config, session_maker, record=counting).scan(connect(config))
    assert recorded == [] and summary.removed == 1
    assert mailbox.subjects() == []
    assert len(bounces(session_maker)) == 1


def poisoned(raw: bytes) -> list[Any]:
    if b"POISON" in raw:
        raise ValueError("classifier failed on this message")
    from stmails.core import classify

    return classify(raw)


@pytest.mark.parametrize("kind", ["imap", "pop"])
def test_a_message_failing_three_times_is_quarantined_and_the_scan_goes_on(
    mailbox: Mailbox, session_maker: sessionmaker[Session], kind: str
) -> None:
    mailbox.append(
        dsn("erin@dest.example", subject="POISON"),
        dsn("frank@dest.example", subject="bounce-5", message_id="m5@sender.example"),
    )
    config = mailbox.config(kind)
    ledger = SqlLedger(session_maker)
    results = [
        scanner(config, session_maker, ledger=ledger, classifier=poisoned).scan(connect(config))
        for _ in range(3)
    ]
    assert [r.failed for r in results] == [1, 1, 1]
    assert results[0].bounces == 1
    assert [r.quarantined for r in results] == [0, 0, 1]
    assert [b.email for b in bounces(session_maker)] == ["frank@dest.example"]
    if kind == "imap":
        assert mailbox.subjects() == []
        assert mailbox.subjects("Quarantine") == ["POISON"]
    else:
        # POP3 has no folders: the message stays, is skipped and reported, never retried.
        assert mailbox.subjects() == ["POISON"]
        assert results[2].skipped
        later = scanner(config, session_maker, ledger=ledger, classifier=poisoned).scan(
            connect(config)
        )
        assert later.failed == 0 and later.quarantined == 1


def test_verp_tokens_attribute_and_forged_ones_are_ignored(
    mailbox: Mailbox, session_maker: sessionmaker[Session]
) -> None:
    # A token of the first format, on mail sent before tokens named ids.
    legacy_subscriber = "11111111-2222-4333-8444-555555555555"
    with session_maker() as session:
        gina = subscriber_with(session, "gina.subscriber@example.org")
        iris = subscriber_with(session, "iris@dest.example", uuid=legacy_subscriber)
        session.commit()
        gina_id, iris_id = gina.id, iris.id
    domain = "bounce.sender.example"
    genuine = make_address(SECRET, domain, gina_id)
    forged = make_address(b"someone-else", domain, gina_id)
    legacy = f"bounce+{format1_token(SECRET, legacy_subscriber, CAMPAIGN)}@{domain}"
    gone = make_address(SECRET, domain, gina_id + 1000)
    mailbox.append(
        dsn("gina@dest.example", to=genuine, subject="verp", subscriber="", message_id="v1@x"),
        dsn("hank@dest.example", to=forged, subject="forged", message_id="v2@x"),
        dsn("iris@dest.example", to=legacy, subject="legacy", subscriber="", message_id="v3@x"),
        dsn("jack@dest.example", to=gone, subject="gone", message_id="v4@x"),
    )
    config = mailbox.config("imap")
    resolver = verp_resolver(session_maker)
    scanner(config, session_maker, verp_resolver=resolver).scan(connect(config))
    by_email = {b.email: b for b in bounces(session_maker)}
    # The token names gina, whose address is acted on; the address reported is kept.
    gina_bounce = by_email["gina.subscriber@example.org"]
    assert gina_bounce.meta["attribution"] == "verp" and gina_bounce.attributed
    assert gina_bounce.subscriber_id == gina_id
    assert gina_bounce.meta["reported_recipient"] == "gina@dest.example"
    assert by_email["iris@dest.example"].meta["attribution"] == "verp"
    assert by_email["iris@dest.example"].subscriber_id == iris_id
    assert by_email["iris@dest.example"].campaign_uuid == CAMPAIGN
    # A forged token, or a genuine one whose subscriber is gone, attributes nothing: the
    # headers are only a claim.
    for name in ("hank@dest.example", "jack@dest.example"):
        assert by_email[name].meta["attribution"] == "none" and not by_email[name].attributed
        assert by_email[name].meta["claimed_campaign"] == CAMPAIGN


def subscriber_with(session: Session, email: str, uuid: str = "") -> Subscriber:
    found = Subscriber(email=email, **({"uuid": uuid} if uuid else {}))
    session.add(found)
    session.flush()
    return found


def test_dry_run_changes_nothing(mailbox: Mailbox, session_maker: sessionmaker[Session]) -> None:
    mailbox.append(dsn("ivan@dest.example", subject="bounce-6"))
    config = mailbox.config("imap")
    ledger = MemoryLedger()
    summary = scanner(config, session_maker, ledger=ledger, dry_run=True).scan(connect(config))
    assert (summary.read, summary.bounces, summary.removed) == (1, 1, 0)
    assert mailbox.subjects() == ["bounce-6"]
    assert bounces(session_maker) == [] and ledger.rows == {}


def test_oversized_messages_are_quarantined_unread(
    mailbox: Mailbox, session_maker: sessionmaker[Session]
) -> None:
    mailbox.append(dsn("judy@dest.example", subject="huge") + b"x" * 5000 + b"\r\n")
    config = mailbox.config("imap", max_message_bytes=4000)
    summary = scanner(config, session_maker).scan(connect(config))
    assert (summary.read, summary.quarantined) == (0, 1)
    assert mailbox.subjects("Quarantine") == ["huge"]


def test_max_messages_bounds_one_scan(
    mailbox: Mailbox, session_maker: sessionmaker[Session]
) -> None:
    mailbox.append(
        *(dsn(f"u{i}@dest.example", subject=f"b{i}", message_id=f"{i}@x") for i in range(5))
    )
    config = mailbox.config("pop", max_messages=3)
    first = scanner(config, session_maker).scan(connect(config))
    second = scanner(config, session_maker).scan(connect(config))
    assert (first.bounces, second.bounces) == (3, 2)
    assert len(bounces(session_maker)) == 5


def test_the_sisimai_corpus_scans_without_failures(
    mailbox: Mailbox, session_maker: sessionmaker[Session], shared_dir: Any
) -> None:
    folder = shared_dir / "corpus" / "sisimai" / "eml"
    if not folder.is_dir():
        pytest.skip("the sisimai corpus is absent")
    from stmails.core import classify

    files = sorted(folder.glob("*.eml"))[::8]
    raws = [path.read_bytes() for path in files]
    mailbox.append(*raws)
    typed = [any(r.type is not None and (r.recipient) for r in classify(raw)) for raw in raws]
    config = mailbox.config("imap")
    summary = scanner(config, session_maker).scan(connect(config))
    assert summary.read == len(raws) and summary.failed == 0
    assert summary.bounces + summary.complaints == sum(typed)
    assert summary.ignored == len(raws) - sum(typed)
    assert len(mailbox.subjects()) == summary.ignored


def test_imap_xoauth2(mailbox: Mailbox, session_maker: sessionmaker[Session]) -> None:
    mailbox.append(dsn("lena@dest.example", subject="oauth-bounce"))
    config = mailbox.config(
        "imap", "starttls", auth_protocol="xoauth2", password="", oauth_token=OAUTH_TOKEN
    )
    summary = scanner(config, session_maker).scan(connect(config))
    assert summary.bounces == 1 and mailbox.subjects() == []
    wrong = mailbox.config("imap", "starttls", auth_protocol="xoauth2", oauth_token="expired")
    with pytest.raises(MailboxError):
        connect(wrong)


@pytest.mark.parametrize("kind", ["imap", "pop"])
def test_a_wrong_password_is_a_mailbox_error(mailbox: Mailbox, kind: str) -> None:
    with pytest.raises(MailboxError):
        connect(mailbox.config(kind, "starttls", password="wrong"))
