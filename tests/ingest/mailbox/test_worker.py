"""The scanner inside `stmails serve`: one process per mailbox at a time, on its interval."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.config import Settings
from stmails.db.models import Bounce
from stmails.services import settings as settings_service
from stmails.workers.mailbox import MailboxWorker, mailbox_lock

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


def test_the_worker_scans_each_mailbox_when_it_is_due(
    mailbox: Mailbox, session_maker: sessionmaker[Session], db_url: str, tmp_path: Path
) -> None:
    config = mailbox.config("imap")
    entry = {
        "name": "served",
        "type": "imap",
        "host": config.host,
        "port": config.port,
        "tls_mode": "none",
        "username": config.username,
        "password": config.password,
        "scan_interval": "10m",
    }
    with session_maker() as session:
        settings_service.set_value(session, "bounce.mailboxes", [entry, {"type": "nope"}])
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
