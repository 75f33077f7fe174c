"""Messages/s scanned from a local Dovecot IMAP mailbox: classified, recorded, expunged.

Starts a throw-away Dovecot on loopback (the test suite's launcher), delivers N distinct bounce
reports (RFC 3464, one recipient each) into the INBOX maildir, then runs the production scanner
(`Scanner` with `services.bounces.record` on a fresh SQLite database and the `mailbox_state`
ledger, classifying in the worker processes of an `IsolatedClassifier` as the server does) once
and times it. The workers are started before the clock runs, as the server keeps them between
scans; their start-up time is printed apart. As a baseline, the same run first measures a bare
IMAP read of the same messages (UID FETCH BODY.PEEK[] in batches of 100, nothing else) and
prints the ratio.
Afterwards it checks that every bounce is stored exactly once and the INBOX is empty.

    .venv/bin/python benchmarks/scan_mailbox.py            # 5,000 bounces (target >= 300/s)
    .venv/bin/python benchmarks/scan_mailbox.py --quick    # 500 bounces
"""

from __future__ import annotations

import argparse
import imaplib
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import func, select

from stmails.config import Settings
from stmails.db.engine import session_factory
from stmails.db.migrate import open_database
from stmails.db.models import Bounce
from stmails.ingest.isolated import IsolatedClassifier, default_workers
from stmails.ingest.mailbox import MailboxConfig, Scanner, connect
from stmails.ingest.mailbox.imap import uid_sets
from stmails.services.mailbox_ledger import SqlLedger
from stmails.workers.mailbox import make_recorder

REPO = Path(__file__).resolve().parent.parent


def dovecot_launcher() -> ModuleType:
    """The test suite's Dovecot launcher (tests/ingest/mailbox/dovecot.py)."""
    sys.path.insert(0, str(REPO / "tests"))
    return importlib.import_module("ingest.mailbox.dovecot")


def bounce(number: int) -> bytes:
    rcpt = f"user{number}@dest.example"
    return (
        "Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.sender.example>\r\n"
        f"To: bounces@sender.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <dsn-{number}@mx.sender.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.sender.example\r\n\r\n"
        f"Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown\r\n"
        "\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: news@sender.example\r\nTo: {rcpt}\r\nSubject: News\r\n"
        f"Message-ID: <orig-{number}@sender.example>\r\n\r\n--B--\r\n"
    ).encode()


def fill(server: Any, count: int) -> float:
    """Deliver the bounces into the maildir (as a local delivery agent would)."""
    started = time.perf_counter()
    server.deliver([bounce(number) for number in range(count)])
    return time.perf_counter() - started


def bare_read(port: int, user: str, password: str) -> tuple[int, float]:
    """The baseline: read every message once over IMAP, nothing else."""
    started = time.perf_counter()
    conn = imaplib.IMAP4("127.0.0.1", port)
    conn.login(user, password)
    conn.select("INBOX", readonly=True)
    _, data = conn.uid("SEARCH", None, "ALL")
    uids = [u.decode() for u in data[0].split()]
    read = 0
    for start in range(0, len(uids), 100):
        for uid_set in uid_sets(uids[start : start + 100]):
            _, fetched = conn.uid("FETCH", uid_set, "(UID BODY.PEEK[])")
            read += sum(1 for item in fetched if isinstance(item, tuple))
    conn.logout()
    return read, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 messages instead of 5,000")
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    count = 500 if args.quick else args.messages
    dovecot_mod = dovecot_launcher()
    server = dovecot_mod.Dovecot()
    server.start()
    try:
        port = server.ports["imap"]
        user, password = dovecot_mod.USER, dovecot_mod.PASSWORD
        fill_seconds = fill(server, count)
        read, read_seconds = bare_read(port, user, password)
        with tempfile.TemporaryDirectory(prefix="stmails-bench-") as tmp:
            settings = Settings(database_url=f"sqlite:///{tmp}/bench.db", data_dir=Path(tmp))
            engine = open_database(settings)
            sessions = session_factory(engine)
            config = MailboxConfig.from_setting(
                {"name": "bench", "type": "imap", "host": "127.0.0.1", "port": port,
                 "tls_mode": "none", "username": user, "password": password,
                 "max_messages": count}
            )  # fmt: skip
            with IsolatedClassifier() as isolated:
                started = time.perf_counter()
                isolated.classify_many([bounce(count)], 60)
                workers_seconds = time.perf_counter() - started
                scanner = Scanner(
                    config, make_recorder(sessions), SqlLedger(sessions), classifier=isolated
                )
                started = time.perf_counter()
                summary = scanner.scan(connect(config))
                seconds = time.perf_counter() - started
            with sessions() as session:
                stored = session.scalar(select(func.count()).select_from(Bounce)) or 0
                distinct = session.scalar(select(func.count(func.distinct(Bounce.email)))) or 0
            engine.dispose()
        left, _ = bare_read(port, user, password)
    finally:
        server.stop()
    rate = summary.read / seconds if seconds else 0.0
    baseline = read / read_seconds if read_seconds else 0.0
    print(
        f"scan_mailbox: Dovecot IMAP on loopback (plain), {count} bounces delivered to its maildir "
        f"in {fill_seconds:.1f} s; SQLite (WAL) via services.bounces.record_many; "
        f"{os.cpu_count()} cores shared with Dovecot; load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"classifier worker processes: {default_workers()}, started in {workers_seconds:.2f} s "
        "(once per server process)"
    )
    print(
        f"scanned {summary.read} messages in {seconds:.2f} s = {rate:,.0f} messages/s "
        f"(bounces {summary.bounces}, ignored {summary.ignored}, failed {summary.failed}, "
        f"removed {summary.removed})"
    )
    print(
        f"baseline bare IMAP read: {baseline:,.0f} messages/s; scanner/baseline ratio "
        f"{rate / baseline if baseline else float('nan'):.0%}"
    )
    print(f"stored {stored} bounces ({distinct} distinct addresses); {left} messages left in INBOX")
    target = "met" if rate >= 300 else "NOT met"
    print(f"target >= 300 messages/s: {target}")
    if stored != count or distinct != count or left != 0:
        print("ERROR: not every bounce was recorded exactly once and expunged")
        sys.exit(1)


if __name__ == "__main__":
    main()
