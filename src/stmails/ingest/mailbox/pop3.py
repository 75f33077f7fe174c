"""POP3 bounce mailboxes over the standard library's poplib (with timeouts and TLS).

POP3 has no folders and no flags: a processed message is deleted (DELE, effective only at
QUIT), everything else stays; the scanner remembers UIDLs so nothing is read twice.
"""

from __future__ import annotations

import poplib
from collections.abc import Sequence

from stmails.ingest.mailbox.client import MailboxError, MessageRef, tls_context
from stmails.ingest.mailbox.config import MailboxConfig

# poplib refuses lines longer than 2 KiB by default; real bounces quote HTML with longer lines.
# The message as a whole is still capped by `max_message_bytes` before it is retrieved.
_MAX_LINE = 1024 * 1024
if getattr(poplib, "_MAXLINE", 0) < _MAX_LINE:
    setattr(poplib, "_MAXLINE", _MAX_LINE)  # noqa: B010 - the attribute is private to poplib.


class Pop3Mailbox:
    """`MailboxClient` over POP3; keys are UIDLs, mapped to this session's message numbers."""

    def __init__(self, connection: poplib.POP3) -> None:
        self._conn = connection
        self._numbers: dict[str, int] = {}

    @classmethod
    def open(cls, config: MailboxConfig) -> Pop3Mailbox:
        """Connect (implicit TLS, STLS or plain), then USER/PASS."""
        connection: poplib.POP3 | None = None
        try:
            if config.tls_mode == "tls":
                connection = poplib.POP3_SSL(
                    config.host, config.port, timeout=config.timeout, context=tls_context(config)
                )
            else:
                connection = poplib.POP3(config.host, config.port, timeout=config.timeout)
                if config.tls_mode == "starttls":
                    connection.stls(context=tls_context(config))
            if config.auth_protocol != "none":
                connection.user(config.username)
                connection.pass_(config.password)
        except (OSError, poplib.error_proto) as exc:
            # A refused login must not leak the connection.
            if connection is not None:
                connection.close()
            raise MailboxError(f"POP3 {config.host}:{config.port}: {exc}") from exc
        return cls(connection)

    @property
    def uidvalidity(self) -> str:
        return ""

    @property
    def can_move(self) -> bool:
        return False

    def list_messages(self) -> list[MessageRef]:
        try:
            _, uidl_lines, _ = self._conn.uidl()
            _, size_lines, _ = self._conn.list()
        except (OSError, poplib.error_proto) as exc:
            raise MailboxError(f"POP3 UIDL/LIST: {exc}") from exc
        sizes = {}
        for line in size_lines:
            number, _, size = line.decode("ascii", "replace").partition(" ")
            sizes[number] = int(size) if size.isdigit() else 0
        refs = []
        for line in uidl_lines:
            number, _, uid = line.decode("ascii", "replace").partition(" ")
            if number.isdigit() and uid:
                self._numbers[uid] = int(number)
                refs.append(MessageRef(uid, sizes.get(number, 0)))
        return refs

    def fetch(self, refs: Sequence[MessageRef]) -> dict[str, bytes]:
        out = {}
        for ref in refs:
            try:
                _, lines, _ = self._conn.retr(self._numbers[ref.key])
            except (OSError, poplib.error_proto) as exc:
                raise MailboxError(f"POP3 RETR: {exc}") from exc
            out[ref.key] = b"\r\n".join(lines) + b"\r\n"
        return out

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            try:
                self._conn.dele(self._numbers[key])
            except (OSError, poplib.error_proto) as exc:
                raise MailboxError(f"POP3 DELE: {exc}") from exc

    def move(self, keys: Sequence[str], folder: str) -> None:
        raise MailboxError("POP3 mailboxes have no folders")

    def commit(self) -> None:
        try:
            self._conn.quit()
        except (OSError, poplib.error_proto) as exc:
            raise MailboxError(f"POP3 QUIT: {exc}") from exc

    def abandon(self) -> None:
        # Without QUIT the server never enters the UPDATE state: no DELE takes effect.
        self._conn.close()
