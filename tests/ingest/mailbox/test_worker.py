"""The scanner inside `stmails serve`: one process per mailbox at a time, on its interval."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.config import Settings
from stmails.db.models import Bounce, Setting
from stmails.services import settings as settings_service
from stmails.services import subscribers
from stmails.services.sending.runtime import verp_maker
from stmails.workers.mailbox import MailboxWorker, configured_mailboxes, mailbox_lock

from .conftest import Mailbox
from .messages import dsn

pytestmark = pytest.mark.integration


def test_a_mailbox_is_locked_by_one_scanner_at_a_time(
    session_maker: sessionmaker[Session], tmp_path: Path
) -> None:
    with mailbox_lock(session_maker, tmp_path, "box-a") as first:
        with mailbox_lock(session_maker, tmp_path, "box-a") as second:
            assert (first, second) == (True, False)
        with mailbox_lock(session_maker, tmp_path, "box-b") as other:
            assert other
    with mailbox_lock(session_maker, tmp_path, "box-a") as again:
        assert again


def served_entry(mailbox: Mailbox) -> dict[str, Any]:
    """The `bounce.mailboxes` entry of the test IMAP mailbox."""
    config = mailbox.config("imap")
    return {
        "name": "served",
        "type": "imap",
        "host": config.host,
        "port": config.port,
        "tls_mode": "none",
        "username": config.username,
        "password": config.password,
        "scan_interval": "10m",
    }


def test_the_worker_scans_each_mailbox_when_it_is_due(
    mailbox: Mailbox, session_maker: sessionmaker[Session], db_url: str, tmp_path: Path
) -> None:
    entry = served_entry(mailbox)
    with session_maker() as session:
        # A bad entry (stored before settings were checked when saved) is passed over.
        session.merge(Setting(key="bounce.mailboxes", value=[entry, {"type": "nope"}]))
        session.commit()
    mailbox.append(dsn("mona@dest.example", subject="served-bounce"))
    worker = MailboxWorker(session_maker, Settings(database_url=db_url, data_dir=tmp_path))
    first = worker.run_due(1000.0)
    assert [s.bounces for s in first] == [1]
    mailbox.append(dsn("nina@dest.example", subject="later", message_id="later@x"))
    assert worker.run_due(1000.0 + 60) == [], "not due again before its interval"
    assert [s.bounces for s in worker.run_due(1000.0 + 601)] == [1]
    with session_maker() as session:
        assert session.scalar(select(func.count()).select_from(Bounce)) == 2


def test_a_scan_moves_the_mailbox_metrics(
    mailbox: Mailbox, session_maker: sessionmaker[Session], db_url: str, tmp_path: Path
) -> None:
    with session_maker() as session:
        settings_service.set_value(session, "bounce.mailboxes", [served_entry(mailbox)])
        session.commit()
    mailbox.append(dsn("olga@dest.example", subject="metered-bounce"))
    classified = REGISTRY.get_sample_value("stmails_classification_seconds_count") or 0.0
    stored = REGISTRY.get_sample_value(
        "stmails_events_ingested_total", {"source": "mailbox", "outcome": "stored"}
    )
    started = time.time()
    worker = MailboxWorker(session_maker, Settings(database_url=db_url, data_dir=tmp_path))
    try:
        assert [s.bounces for s in worker.run_due(1000.0)] == [1]
    finally:
        worker.stop()
    last = REGISTRY.get_sample_value(
        "stmails_mailbox_last_scan_timestamp_seconds", {"mailbox": "served"}
    )
    assert last is not None and started <= last <= time.time()
    assert REGISTRY.get_sample_value("stmails_classification_seconds_count") == classified + 1
    after = REGISTRY.get_sample_value(
        "stmails_events_ingested_total", {"source": "mailbox", "outcome": "stored"}
    )
    assert (after or 0.0) - (stored or 0.0) == 1


def test_the_worker_attributes_verp_tokens_after_the_bounce_address_local_part(
    mailbox: Mailbox, session_maker: sessionmaker[Session], db_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=db_url, data_dir=tmp_path)
    bounce_address = "returns@bounce.sender.example"
    with session_maker() as session:
        olga = subscribers.create(session, email="olga.subscriber@example.org")
        settings_service.set_value(session, "sending.bounce_address", bounce_address)
        settings_service.set_value(session, "bounce.mailboxes", [served_entry(mailbox)])
        session.commit()
        olga_id = olga.id
    # What the sender puts on a message to Olga that belongs to no campaign.
    return_path = verp_maker(settings.resolved_secret_key().encode())(bounce_address, 0, olga_id)
    mailbox.append(dsn("olga@dest.example", to=return_path, subscriber="", subject="verp"))
    assert [s.bounces for s in MailboxWorker(session_maker, settings).run_due(1000.0)] == [1]
    with session_maker() as session:
        bounce = session.scalars(select(Bounce)).one()
    assert bounce.meta["attribution"] == "verp" and bounce.subscriber_id == olga_id


def test_reading_the_mailbox_settings_never_waits_for_a_writer(
    engine: Engine,
    session_maker: sessionmaker[Session],
    write_lock_held: Callable[[Engine, str], AbstractContextManager[None]],
) -> None:
    with session_maker() as session:
        settings_service.set_value(
            session, "bounce.mailboxes", [{"enabled": True, "type": "imap", "host": "h"}]
        )
        session.commit()
    with write_lock_held(engine, "settings"):
        started = time.monotonic()
        configs = configured_mailboxes(session_maker)
        waited = time.monotonic() - started
    assert [c.host for c in configs] == ["h"]
    # The busy timeout is 5 s: a read that needed the lock would have waited for it.
    assert waited < 4
