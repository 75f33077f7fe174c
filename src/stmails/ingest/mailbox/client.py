"""The seam between the scanner and a mail server: one small protocol POP3 and IMAP implement.

Deletions are staged and take effect only at `commit()` (POP3 QUIT, IMAP UID EXPUNGE), so a
process that dies before committing leaves every message in place; `abandon()` drops the
connection without applying anything.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from stmails.ingest.mailbox.config import MailboxConfig


class MailboxError(Exception):
    """The server refused something or the connection failed; the scan stops, nothing is lost."""


@dataclass(frozen=True, slots=True)
class MessageRef:
    """One message on the server: its stable key (POP3 UIDL or IMAP UID) and its size."""

    key: str
    size: int


class MailboxClient(Protocol):
    """An open, authenticated mailbox session."""

    @property
    def uidvalidity(self) -> str:
        """IMAP's UIDVALIDITY of the folder; "" for POP3 (UIDLs are stable on their own)."""
        ...

    @property
    def can_move(self) -> bool:
        """True when messages can be moved to other folders (IMAP)."""
        ...

    def list_messages(self) -> list[MessageRef]:
        """Every message in the folder, oldest first."""
        ...

    def fetch(self, refs: Sequence[MessageRef]) -> dict[str, bytes]:
        """The raw bytes of these messages by key, without marking them read (BODY.PEEK)."""
        ...

    def delete(self, keys: Sequence[str]) -> None:
        """Stage these messages for deletion at `commit()`."""
        ...

    def move(self, keys: Sequence[str], folder: str) -> None:
        """Move these messages to `folder` (created when missing); final at `commit()`."""
        ...

    def commit(self) -> None:
        """Apply staged deletions and close the session."""
        ...

    def abandon(self) -> None:
        """Close the connection without applying staged deletions."""
        ...


def tls_context(config: MailboxConfig) -> ssl.SSLContext:
    """The TLS context for a mailbox: system CAs (or `ca_file`), or no checks when skip-verify."""
    context = ssl.create_default_context(cafile=config.ca_file or None)
    if config.tls_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def connect(config: MailboxConfig) -> MailboxClient:
    """Open and authenticate the mailbox `config` describes."""
    if config.type == "pop":
        from stmails.ingest.mailbox.pop3 import Pop3Mailbox

        return Pop3Mailbox.open(config)
    from stmails.ingest.mailbox.imap import ImapMailbox

    return ImapMailbox.open(config)
