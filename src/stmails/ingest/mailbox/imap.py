"""IMAP bounce mailboxes over the standard library's imaplib (timeouts, TLS, XOAUTH2).

Messages are addressed by UID within the folder's UIDVALIDITY, read with BODY.PEEK so their
flags do not change, and removed only at `commit()` with UID EXPUNGE (plain EXPUNGE when the
server lacks UIDPLUS) or UID MOVE when the server supports MOVE.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import re
from collections.abc import Iterable, Sequence

from stmails.ingest.mailbox.client import MailboxError, MessageRef, tls_context
from stmails.ingest.mailbox.config import MailboxConfig

_UID = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
# UID sets are sent in chunks so that no command line grows without bound.
_SET_CHUNK = 400


def _modified_base64(run: str) -> str:
    encoded = base64.b64encode(run.encode("utf-16-be")).decode("ascii")
    return "&" + encoded.rstrip("=").replace("/", ",") + "-"


def mailbox_name(name: str) -> str:
    """`name` in IMAP's modified UTF-7 (RFC 3501 section 5.1.3), the only form IMAP4rev1 allows.

    Printable ASCII stands for itself except "&", which becomes "&-"; every run of other
    characters becomes "&", the modified base64 (comma for slash, no padding) of its UTF-16BE
    form, and "-". An ASCII name without "&" is unchanged.
    """
    out: list[str] = []
    run: list[str] = []
    for char in name:
        if " " <= char <= "~":
            if run:
                out.append(_modified_base64("".join(run)))
                run.clear()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    if run:
        out.append(_modified_base64("".join(run)))
    return "".join(out)


def quote(name: str) -> str:
    """A folder name as an IMAP quoted string, in modified UTF-7 (see `mailbox_name`)."""
    encoded = mailbox_name(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def uid_sets(keys: Iterable[str]) -> list[str]:
    """UIDs as compact IMAP sets ("1:4,7,9:10"), each of at most `_SET_CHUNK` ranges."""
    numbers = sorted({int(k) for k in keys})
    ranges: list[str] = []
    start = prev = None
    for n in numbers:
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            ranges.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = n
    if start is not None:
        ranges.append(str(start) if start == prev else f"{start}:{prev}")
    return [",".join(ranges[i : i + _SET_CHUNK]) for i in range(0, len(ranges), _SET_CHUNK)]


class ImapMailbox:
    """`MailboxClient` over IMAP4rev1 for one selected folder."""

    def __init__(self, connection: imaplib.IMAP4, folder: str) -> None:
        self._conn = connection
        self._folder = folder
        self._expunge: set[str] = set()
        self._created: set[str] = set()
        capabilities = {c.upper() for c in connection.capabilities}
        self._has_move = "MOVE" in capabilities
        self._has_uidplus = "UIDPLUS" in capabilities
        self._uidvalidity = ""

    @classmethod
    def open(cls, config: MailboxConfig) -> ImapMailbox:
        """Connect (implicit TLS, STARTTLS or plain), authenticate, select the folder."""
        connection: imaplib.IMAP4 | None = None
        try:
            if config.tls_mode == "tls":
                connection = imaplib.IMAP4_SSL(
                    config.host,
                    config.port,
                    ssl_context=tls_context(config),
                    timeout=config.timeout,
                )
            else:
                connection = imaplib.IMAP4(config.host, config.port, timeout=config.timeout)
                if config.tls_mode == "starttls":
                    connection.starttls(ssl_context=tls_context(config))
            if config.auth_protocol == "xoauth2":
                token = f"user={config.username}\x01auth=Bearer {config.oauth_token}\x01\x01"
                connection.authenticate("XOAUTH2", lambda _challenge: token.encode())
            elif config.auth_protocol == "userpass":
                connection.login(config.username, config.password)
            mailbox = cls(connection, config.folder)
            mailbox._select()
        except (OSError, imaplib.IMAP4.error) as exc:
            # A refused login must not leak the connection.
            if connection is not None:
                with contextlib.suppress(OSError):
                    connection.shutdown()
            raise MailboxError(f"IMAP {config.host}:{config.port}: {exc}") from exc
        return mailbox

    def _select(self) -> None:
        typ, _ = self._conn.select(quote(self._folder))
        if typ != "OK":
            raise MailboxError(f"IMAP cannot select {self._folder!r}")
        _, data = self._conn.response("UIDVALIDITY")
        self._uidvalidity = (data[0] or b"").decode("ascii", "replace") if data else ""
        # Capabilities may grow after authentication (Dovecot announces MOVE then).
        typ, caps = self._conn.capability()
        if typ == "OK" and caps and isinstance(caps[0], bytes):
            names = {c.upper() for c in caps[0].decode("ascii", "replace").split()}
            self._has_move = self._has_move or "MOVE" in names
            self._has_uidplus = self._has_uidplus or "UIDPLUS" in names

    @property
    def uidvalidity(self) -> str:
        return self._uidvalidity

    @property
    def can_move(self) -> bool:
        return True

    def _uid(self, command: str, *args: str) -> list[object]:
        try:
            typ, data = self._conn.uid(command, *args)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"IMAP UID {command}: {exc}") from exc
        if typ != "OK":
            raise MailboxError(f"IMAP UID {command} answered {typ}")
        return list(data)

    def list_messages(self) -> list[MessageRef]:
        _, data = self._conn.select(quote(self._folder))
        if not data or data[0] in (b"0", None):
            return []
        refs = []
        for item in self._uid("FETCH", "1:*", "(UID RFC822.SIZE)"):
            line = item[0] if isinstance(item, tuple) else item
            if not isinstance(line, bytes):
                continue
            uid, size = _UID.search(line), _SIZE.search(line)
            if uid:
                refs.append(MessageRef(uid.group(1).decode(), int(size.group(1)) if size else 0))
        refs.sort(key=lambda ref: int(ref.key))
        return refs

    def fetch(self, refs: Sequence[MessageRef]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for uid_set in uid_sets(ref.key for ref in refs):
            for item in self._uid("FETCH", uid_set, "(UID BODY.PEEK[])"):
                if isinstance(item, tuple) and len(item) == 2:
                    found = _UID.search(item[0])
                    if found and isinstance(item[1], bytes):
                        out[found.group(1).decode()] = item[1]
        return out

    def delete(self, keys: Sequence[str]) -> None:
        for uid_set in uid_sets(keys):
            self._uid("STORE", uid_set, "+FLAGS.SILENT", "(\\Deleted)")
        self._expunge.update(keys)

    def move(self, keys: Sequence[str], folder: str) -> None:
        if not keys:
            return
        self._ensure_folder(folder)
        for uid_set in uid_sets(keys):
            if self._has_move:
                self._uid("MOVE", uid_set, quote(folder))
            else:
                self._uid("COPY", uid_set, quote(folder))
                self._uid("STORE", uid_set, "+FLAGS.SILENT", "(\\Deleted)")
        if not self._has_move:
            self._expunge.update(keys)

    def _ensure_folder(self, folder: str) -> None:
        if folder in self._created:
            return
        try:
            typ, data = self._conn.list('""', quote(folder))
            if typ == "OK" and not any(data):
                self._conn.create(quote(folder))
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"IMAP cannot create {folder!r}: {exc}") from exc
        self._created.add(folder)

    def commit(self) -> None:
        try:
            if self._expunge:
                if self._has_uidplus:
                    for uid_set in uid_sets(self._expunge):
                        self._uid("EXPUNGE", uid_set)
                else:
                    self._conn.expunge()
            self._expunge.clear()
            self._conn.close()
            self._conn.logout()
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"IMAP EXPUNGE/LOGOUT: {exc}") from exc

    def abandon(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.shutdown()
