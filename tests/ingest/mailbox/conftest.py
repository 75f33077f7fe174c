"""A real Dovecot for the mailbox tests, emptied before each test, and message builders."""

from __future__ import annotations

import imaplib
from collections.abc import Iterator
from typing import Any

import pytest

from stmails.ingest.mailbox import MailboxConfig

from .dovecot import PASSWORD, USER, Dovecot, dovecot_binary


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One Dovecot for the session; skipped when Dovecot is not installed."""
    if dovecot_binary() is None:
        pytest.skip("dovecot is not installed (make setup installs it)")
    server = Dovecot()
    server.start()
    yield server
    server.stop()


class Mailbox:
    """The test user's mailbox, seen through a plain IMAP session of the test itself."""

    def __init__(self, server: Dovecot) -> None:
        self.server = server

    def _session(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.server.ports["imap"], timeout=10)
        conn.login(USER, PASSWORD)
        return conn

    def append(self, *messages: bytes, folder: str = "INBOX") -> None:
        conn = self._session()
        try:
            for raw in messages:
                typ, data = conn.append(f'"{folder}"', None, None, raw)
                assert typ == "OK", data
        finally:
            conn.logout()

    def subjects(self, folder: str = "INBOX", *, flagged_deleted: bool = False) -> list[str]:
        """The Subject of each message in `folder`, in UID order; those flagged \\Deleted (not
        yet expunged) only when `flagged_deleted`."""
        conn = self._session()
        try:
            typ, _ = conn.select(f'"{folder}"', readonly=True)
            if typ != "OK":
                return []
            typ, data = conn.uid("SEARCH", None, "ALL" if flagged_deleted else "UNDELETED")
            uids = data[0].split() if data and data[0] else []
            out = []
            for uid in uids:
                _, fetched = conn.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                header = fetched[0][1] if isinstance(fetched[0], tuple) else b""
                out.append(header.decode(errors="replace").partition(":")[2].strip())
            return out
        finally:
            conn.logout()

    def clear(self) -> None:
        conn = self._session()
        try:
            _, folders = conn.list()
            names = [line.decode().rsplit(' "/" ', 1)[-1].strip('"') for line in folders]
            # Children before their parents, so that every folder can be deleted.
            for name in sorted(names, key=len, reverse=True):
                typ, count = conn.select(f'"{name}"')
                if typ != "OK":
                    conn.delete(f'"{name}"')
                    continue
                if count and count[0] not in (b"0", None):
                    conn.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
                    conn.expunge()
                if name != "INBOX":
                    conn.close()
                    conn.delete(f'"{name}"')
        finally:
            conn.logout()

    def config(self, kind: str = "imap", tls: str = "none", **overrides: Any) -> MailboxConfig:
        port = {
            ("imap", "tls"): "imaps",
            ("pop", "tls"): "pop3s",
            ("imap", "none"): "imap",
            ("imap", "starttls"): "imap",
            ("pop", "none"): "pop3",
            ("pop", "starttls"): "pop3",
        }[(kind, tls)]
        entry = {
            "name": f"test-{kind}",
            "type": kind,
            "host": "127.0.0.1",
            "port": self.server.ports[port],
            "tls_mode": tls,
            "ca_file": str(self.server.cert),
            "username": USER,
            "password": PASSWORD,
            "timeout": 10,
            **overrides,
        }
        return MailboxConfig.from_setting(entry)


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Mailbox:
    box = Mailbox(dovecot)
    box.clear()
    return box
