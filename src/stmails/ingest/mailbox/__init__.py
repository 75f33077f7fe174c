"""Bounce mailboxes (POP3 and IMAP): settings, the server clients, and the scanner.

`connect(config)` opens a mailbox; `Scanner(config, record, ledger).scan(client)` reads it,
records bounces through the injected `record` callable and only then removes them.
"""

from __future__ import annotations

from stmails.ingest.mailbox.client import MailboxClient, MailboxError, MessageRef, connect
from stmails.ingest.mailbox.config import MailboxConfig, MailboxConfigError, mailboxes_from_settings
from stmails.ingest.mailbox.scanner import (
    Ledger,
    MemoryLedger,
    MessageState,
    RecordUnavailable,
    Scanner,
    ScanSummary,
    message_events,
)

__all__ = [
    "Ledger",
    "MailboxClient",
    "MailboxConfig",
    "MailboxConfigError",
    "MailboxError",
    "MemoryLedger",
    "MessageRef",
    "MessageState",
    "RecordUnavailable",
    "ScanSummary",
    "Scanner",
    "connect",
    "mailboxes_from_settings",
    "message_events",
]
