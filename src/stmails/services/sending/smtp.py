"""The SMTP connection pool, the send-rate limiter and the classification of SMTP answers.

Servers are configured in listmonk's `smtp` settings shape (a list of objects with host, port,
auth_protocol, username, password, tls_type, max_conns, max_msg_retries, idle_timeout, ...).
`SmtpPool.send()` is thread-safe: each server keeps up to `max_conns` open connections, reused
across messages, and the answer to every message is classified as sent, hard (a 5xx for the
recipient at RCPT TO or DATA), soft (a 4xx) or error (our side: connection, MAIL FROM, auth).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import queue
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from stmails.services.sending.messages import Message

Outcome = Literal["sent", "hard", "soft", "error"]


def parse_duration(value: Any, default: float) -> float:
    """A listmonk duration ("15s", "1m", "500ms") or a number of seconds."""
    if value is None or value == "":
        return default
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", str(value))
    if not match:
        raise ValueError(f"bad duration: {value!r}")
    number = float(match.group(1))
    return number * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]


@dataclass(frozen=True)
class SmtpServer:
    """One upstream SMTP server, as in listmonk's `smtp` settings."""

    host: str
    port: int = 25
    hello_hostname: str = ""
    auth_protocol: str = "none"
    username: str = ""
    password: str = ""
    tls_type: str = "none"
    tls_skip_verify: bool = False
    max_conns: int = 10
    max_msg_retries: int = 2
    idle_timeout: float = 15.0
    wait_timeout: float = 5.0
    timeout: float = 30.0
    email_headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_settings(cls, entry: Mapping[str, Any]) -> SmtpServer:
        """A server from one element of listmonk's `smtp` list; ValueError on bad values."""
        headers: list[tuple[str, str]] = []
        for item in entry.get("email_headers") or []:
            if isinstance(item, Mapping):
                headers.extend((str(k), str(v)) for k, v in item.items())
        tls = str(entry.get("tls_type") or "none")
        if tls.lower() not in {"none", "starttls", "tls"}:
            raise ValueError(f"tls_type must be none, STARTTLS or TLS, not {tls!r}")
        auth = str(entry.get("auth_protocol") or "none").lower()
        if auth not in {"none", "plain", "login", "cram"}:
            raise ValueError(f"auth_protocol must be none, plain, login or cram, not {auth!r}")
        host = str(entry.get("host") or "")
        if not host:
            raise ValueError("an SMTP server needs a host")
        return cls(
            host=host,
            port=int(entry.get("port") or 25),
            hello_hostname=str(entry.get("hello_hostname") or ""),
            auth_protocol=auth,
            username=str(entry.get("username") or ""),
            password=str(entry.get("password") or ""),
            tls_type=tls.lower(),
            tls_skip_verify=bool(entry.get("tls_skip_verify", False)),
            max_conns=max(1, int(entry.get("max_conns") or 10)),
            max_msg_retries=max(0, int(entry.get("max_msg_retries", 2))),
            idle_timeout=parse_duration(entry.get("idle_timeout"), 15.0),
            wait_timeout=parse_duration(entry.get("wait_timeout"), 5.0),
            email_headers=tuple(headers),
        )


def servers_from_settings(smtp: Sequence[Mapping[str, Any]]) -> list[SmtpServer]:
    """The enabled servers of listmonk's `smtp` setting (entries with `enabled: false` skipped)."""
    return [SmtpServer.from_settings(e) for e in smtp if e.get("enabled", True)]


@dataclass(frozen=True)
class SendResult:
    """The answer to one message: outcome, SMTP code, the server's text and the stage."""

    outcome: Outcome
    code: int = 0
    text: str = ""
    stage: str = ""

    @property
    def enhanced_status(self) -> str:
        """The RFC 3463 status in the reply text ("5.1.1"), or one derived from the code."""
        match = re.search(r"\b([245]\.\d{1,3}\.\d{1,3})\b", self.text)
        if match:
            return match.group(1)
        if self.code >= 500:
            return "5.0.0"
        if self.code >= 400:
            return "4.0.0"
        return ""


def _reply_text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    # Server text is data from the outside: keep it short.
    return text[:1000]


def classify_error(exc: Exception) -> SendResult:
    """What an smtplib exception says about the recipient."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, raw = next(iter(exc.recipients.values()))
        outcome: Outcome = "hard" if code >= 500 else "soft"
        return SendResult(outcome, code, _reply_text(raw), "rcpt")
    if isinstance(exc, smtplib.SMTPDataError):
        outcome = "hard" if exc.smtp_code >= 500 else "soft"
        return SendResult(outcome, exc.smtp_code, _reply_text(exc.smtp_error), "data")
    if isinstance(exc, smtplib.SMTPSenderRefused):
        # MAIL FROM refused says nothing about the recipient: our problem, retried.
        return SendResult("error", exc.smtp_code, _reply_text(exc.smtp_error), "mail")
    if isinstance(exc, smtplib.SMTPResponseException):
        return SendResult("error", exc.smtp_code, _reply_text(exc.smtp_error), "session")
    return SendResult("error", 0, f"{type(exc).__name__}: {exc}"[:1000], "connect")


Connector = Callable[[SmtpServer], smtplib.SMTP]


@functools.cache
def _tls_context(skip_verify: bool) -> ssl.SSLContext:
    # One context per verification mode, shared by every session (SSLContext is thread-safe).
    context = ssl.create_default_context()
    if skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def connect(server: SmtpServer) -> smtplib.SMTP:
    """An open, authenticated SMTP session to `server` (the default connection seam)."""
    # Loading the system's CA certificates costs tens of milliseconds: only for TLS sessions.
    context = _tls_context(server.tls_skip_verify) if server.tls_type != "none" else None
    hostname = server.hello_hostname or None
    conn: smtplib.SMTP
    if server.tls_type == "tls":
        conn = smtplib.SMTP_SSL(
            server.host,
            server.port,
            local_hostname=hostname,
            timeout=server.timeout,
            context=context,
        )
    else:
        conn = smtplib.SMTP(
            server.host, server.port, local_hostname=hostname, timeout=server.timeout
        )
    try:
        conn.ehlo()
        if server.tls_type == "starttls":
            conn.starttls(context=context)
            conn.ehlo()
        if server.auth_protocol != "none" and server.username:
            if server.auth_protocol == "plain":
                conn.auth("PLAIN", conn.auth_plain, initial_response_ok=True)
            elif server.auth_protocol == "cram":
                conn.auth("CRAM-MD5", conn.auth_cram_md5, initial_response_ok=False)
            else:
                conn.auth("LOGIN", conn.auth_login, initial_response_ok=True)
        return conn
    except BaseException:
        conn.close()
        raise


# Any line end: CRLF, or a bare LF or CR.
_LINE_END = re.compile(rb"\r\n|\n|\r")


def transact(conn: smtplib.SMTP, message: Message) -> None:
    """One MAIL FROM / RCPT TO / DATA exchange for `message` on an open session.

    The same answers and exceptions as `smtplib.SMTP.sendmail` with one recipient (a refused
    recipient raises SMTPRecipientsRefused, a refused message SMTPDataError, a refused sender
    SMTPSenderRefused; the transaction is reset, or the session closed after a 421), with less
    work per message: data already in CRLF lines (as the builder writes it) is only dot-stuffed
    (RFC 5321 section 4.5.2), and the addresses are bare, so they are not parsed again.
    """
    sender, recipient, data = message.envelope_from, message.recipient, message.data
    if not (sender.isascii() and recipient.isascii()) or "\n" in sender + recipient:
        # SMTPUTF8 (and anything unusual) takes smtplib's general path.
        conn.sendmail(sender, [recipient], data)
        return
    size = f" SIZE={len(data)}" if conn.does_esmtp and conn.has_extn("size") else ""
    code, reply = conn.docmd("MAIL", f"FROM:<{sender}>{size}")
    if code != 250:
        _abandon(conn, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = conn.docmd("RCPT", f"TO:<{recipient}>")
    if code not in (250, 251):
        _abandon(conn, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    code, reply = conn.docmd("DATA")
    if code != 354:
        _abandon(conn, code)
        raise smtplib.SMTPDataError(code, reply)
    conn.send(dot_stuffed(data) + b".\r\n")
    code, reply = conn.getreply()
    if code != 250:
        _abandon(conn, code)
        raise smtplib.SMTPDataError(code, reply)


def dot_stuffed(data: bytes) -> bytes:
    """Message data as DATA sends it, minus the final ".": CRLF lines (bare CR or LF, in a
    relayed message say, become CRLF as smtplib makes them), each leading dot doubled (RFC 5321
    section 4.5.2), ending with CRLF."""
    if data.count(b"\n") != data.count(b"\r\n") or data.count(b"\r") != data.count(b"\r\n"):
        data = _LINE_END.sub(b"\r\n", data)
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed


def _abandon(conn: smtplib.SMTP, code: int) -> None:
    # After 421 the server is closing the session; otherwise the transaction is reset so the
    # session can carry the next message.
    if code == 421:
        conn.close()
    else:
        with contextlib.suppress(smtplib.SMTPServerDisconnected):
            conn.rset()


@dataclass
class _Idle:
    conn: smtplib.SMTP
    since: float


@dataclass
class _ServerSlot:
    server: SmtpServer
    # Idle connections, the most recently used last, guarded by `lock`. The lock and the token
    # queue below are C primitives: taking them costs far less than a Python-level semaphore or
    # queue.Queue, and a campaign takes them twice per message.
    idle: list[_Idle] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # One token per connection the server allows; a send holds one while it runs.
    tokens: queue.SimpleQueue[None] = field(default_factory=queue.SimpleQueue)

    def __post_init__(self) -> None:
        for _ in range(self.server.max_conns):
            self.tokens.put(None)


# The answer to a message the server accepted.
SENT = SendResult("sent", 250, "accepted", "data")
# The answer when every connection stayed taken for the server's whole wait.
NO_CONNECTION = SendResult("error", 0, "no SMTP connection became free", "connect")


@dataclass
class Lease:
    """One connection's worth of a server, held by one sender at a time (`SmtpPool.lease`)."""

    pool: SmtpPool
    slot: _ServerSlot
    conn: smtplib.SMTP | None = None
    # False once the session is in an unknown state: it is closed instead of reused.
    reusable: bool = True

    @property
    def server(self) -> SmtpServer:
        return self.slot.server

    @property
    def attempts(self) -> int:
        """How many times a message may be tried when the connection fails."""
        return self.slot.server.max_msg_retries + 1

    def open(self) -> smtplib.SMTP:
        """The lease's session: an idle one of the pool, or a new one (which may raise)."""
        if self.conn is None or self.conn.sock is None:
            self.conn = self.pool._checkout(self.slot)
            self.reusable = True
        return self.conn

    def failed(self, exc: Exception) -> SendResult:
        """The result of a message whose exchange raised `exc`. A refusal for the recipient
        keeps the session (smtplib reset the transaction); anything else closes it."""
        result = classify_error(exc)
        conn = self.conn
        if conn is not None and (result.outcome == "error" or conn.sock is None):
            self.conn = None
            _quit(conn)
        return result


class SmtpPool:
    """A thread-safe pool of SMTP connections over one or more servers (round robin)."""

    def __init__(
        self,
        servers: Sequence[SmtpServer],
        connector: Connector | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not servers:
            raise ValueError("no SMTP server is configured (settings: smtp)")
        self._slots = [_ServerSlot(s) for s in servers]
        self._next = itertools.cycle(range(len(self._slots)))
        self._lock = threading.Lock()
        self._connector = connector or self._default_connect
        self._clock = clock
        self._closed = False

    @staticmethod
    def _default_connect(server: SmtpServer) -> smtplib.SMTP:
        return connect(server)

    @property
    def servers(self) -> list[SmtpServer]:
        """The configured servers."""
        return [slot.server for slot in self._slots]

    @property
    def max_connections(self) -> int:
        """How many connections the pool may hold open at once."""
        return sum(slot.server.max_conns for slot in self._slots)

    def _pick(self) -> _ServerSlot:
        if len(self._slots) == 1:
            return self._slots[0]
        with self._lock:
            return self._slots[next(self._next)]

    def _checkout(self, slot: _ServerSlot) -> smtplib.SMTP:
        while True:
            with slot.lock:
                idle = slot.idle.pop() if slot.idle else None
            if idle is None:
                return self._connector(slot.server)
            if self._clock() - idle.since <= slot.server.idle_timeout:
                return idle.conn
            _quit(idle.conn)

    def lease(self, wait: bool = True) -> Lease | None:
        """The right to use one connection of the next server (round robin), or None when
        every connection is taken (after `wait_timeout` x 12 when `wait`, else at once).
        Open it with `Lease.open()`; give it back with `give_back()`."""
        slot = self._pick()
        try:
            if wait:
                slot.tokens.get(timeout=max(slot.server.wait_timeout, 0.001) * 12)
            else:
                slot.tokens.get_nowait()
        except queue.Empty:
            return None
        return Lease(self, slot)

    def give_back(self, lease: Lease) -> None:
        """Ends a lease: its open connection goes back to the idle ones when `lease.reusable`,
        else it is closed."""
        conn, lease.conn = lease.conn, None
        try:
            if conn is not None:
                if lease.reusable and conn.sock is not None:
                    self._checkin(lease.slot, conn)
                else:
                    _quit(conn)
        finally:
            lease.slot.tokens.put(None)

    def send(self, message: Message) -> SendResult:
        """Sends one message; connection failures are retried up to the server's budget."""
        lease = self.lease()
        if lease is None:
            return NO_CONNECTION
        result = SendResult("error", 0, "not attempted", "connect")
        try:
            for _ in range(lease.attempts):
                try:
                    transact(lease.open(), message)
                except (smtplib.SMTPException, OSError) as exc:
                    result = lease.failed(exc)
                    if result.outcome != "error":
                        return result
                    continue
                return SENT
            return result
        finally:
            self.give_back(lease)

    def _checkin(self, slot: _ServerSlot, conn: smtplib.SMTP) -> None:
        # Checked under the lock, so a connection cannot slip in after close() emptied the slot.
        with slot.lock:
            if not self._closed:
                slot.idle.append(_Idle(conn, self._clock()))
                return
        _quit(conn)

    def close(self) -> None:
        """Closes every idle connection (QUIT); in-flight sends close theirs when done."""
        self._closed = True
        for slot in self._slots:
            with slot.lock:
                idle, slot.idle = slot.idle, []
            for entry in idle:
                _quit(entry.conn)


def _quit(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


class RateLimiter:
    """A token bucket: `acquire()` blocks so that no more than `rate` calls pass per second.

    A rate of 0 means no limit. The bucket holds at most one second of tokens, so a pause does
    not turn into a burst larger than the configured rate.
    """

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._tokens = max(rate, 1.0)
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Waits for one token."""
        if self.rate <= 0:
            return
        capacity = max(self.rate, 1.0)
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(capacity, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                # The tolerance absorbs float rounding, which could otherwise leave the bucket
                # a hair under one token forever.
                if self._tokens >= 1.0 - 1e-9:
                    self._tokens -= 1.0
                    return
                wait = max((1.0 - self._tokens) / self.rate, 0.001)
            self._sleep(wait)
