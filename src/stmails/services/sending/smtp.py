"""The SMTP connection pool, the send-rate limiter and the classification of SMTP answers.

Servers are configured in listmonk's `smtp` settings shape (a list of objects with host, port,
auth_protocol, username, password, tls_type, max_conns, max_msg_retries, idle_timeout, ...;
validated by `services.sending.config`). `SmtpPool.send()` is thread-safe: each server keeps up
to `max_conns` open connections, reused across messages.

Every message ends in a `SendResult` that says what happened and where in the exchange:

- `sent`: the server accepted the data (250 after the final dot);
- `hard` / `soft`: the server refused the recipient (RCPT TO) or the message (DATA, or the
  answer to the data) with a 5xx / another code: a bounce;
- `error`: nothing can have been delivered, because the failure came before the end of the
  data was sent: opening the connection, TLS, AUTH, MAIL FROM, a lost connection before the
  final dot, or our relay refusing to relay. The recipient may be tried again. `fatal` marks
  the errors that trying again cannot mend (wrong password, a certificate that does not
  verify, AUTH or STARTTLS not offered, the sender refused with 5xx): the settings are wrong;
- `in_doubt`: the data and its final dot were sent but no answer came (connection lost or
  timed out): the server may have accepted the message, so it is not sent again.
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

from stmails import metrics
from stmails.services.sending.messages import Message, encode_unstructured

Outcome = Literal["sent", "hard", "soft", "error", "in_doubt"]
# Where in the exchange a result was decided: opening the session (connect, tls, helo, auth),
# the transaction (mail, rcpt, data), the session as a whole, never tried (queue), or before
# SMTP: the message could not be DKIM-signed (sign).
Stage = Literal[
    "connect", "tls", "helo", "auth", "mail", "rcpt", "data", "session", "queue", "sign"
]

# A reply whose text says our upstream refuses to relay for us, or that it wants us to log in:
# the sender's configuration is wrong, the recipient is fine (Postfix, Exim, Exchange wording).
_NOT_OUR_RECIPIENT = re.compile(
    r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited)|unable to relay"
    r"|not permitted to relay|authentication required",
    re.IGNORECASE,
)


def parse_duration(value: Any, default: float) -> float:
    """A listmonk duration ("15s", "1m", "500ms") or a number of seconds."""
    if value is None or value == "":
        return default
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"\s*(\d{1,9}(?:\.\d{1,9})?)\s*(ms|s|m|h)?\s*", str(value))
    if not match:
        raise ValueError(f"bad duration: {value!r}")
    number = float(match.group(1))
    return number * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]


@dataclass(frozen=True)
class SmtpServer:
    """One upstream SMTP server, as in listmonk's `smtp` settings.

    `email_headers` are the custom headers written into every message sent through it
    (except those the message sets itself); `return_path` is the address of its `Return-Path`
    custom header, which becomes the envelope sender instead of a header (listmonk's rule).
    `msg_retry_delay`: seconds between two tries of one message; `name` makes the server the
    messenger `email-<name>`; `from_addresses`: the From addresses (bare, lower case) routed
    to it (`services.sending.routing`)."""

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
    return_path: str = ""
    msg_retry_delay: float = 0.0
    name: str = ""
    from_addresses: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # Credentials never reach logs through a repr.
        return f"SmtpServer(host={self.host!r}, port={self.port}, tls_type={self.tls_type!r})"

    @classmethod
    def from_settings(cls, entry: Mapping[str, Any]) -> SmtpServer:
        """A server from one element of listmonk's `smtp` list; ValueError (InvalidInput
        naming the field) on bad values."""
        # The settings models build on this module, so they are imported when used.
        from stmails.services.sending.config import server_from_setting

        return server_from_setting(entry)


def servers_from_settings(smtp: Sequence[Mapping[str, Any]]) -> list[SmtpServer]:
    """The enabled servers of listmonk's `smtp` setting (entries with `enabled: false` skipped);
    kept here for its callers, the validation lives in `services.sending.config`."""
    # The settings models build on this module, so they are imported when used.
    from stmails.services.sending import config

    return config.servers_from_settings(smtp)


def server_label(server: SmtpServer) -> str:
    """The server as the metrics name it: `host:port`."""
    return f"{server.host}:{server.port}"


@dataclass(frozen=True)
class SendResult:
    """The answer to one message: outcome, SMTP code, the server's text, the stage, and
    whether the error is one that trying again cannot mend (`fatal`)."""

    outcome: Outcome
    code: int = 0
    text: str = ""
    stage: str = ""
    fatal: bool = False

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

    def describe(self) -> str:
        """One line for logs and the campaign's last errors: `stage: code text`."""
        code = f"{self.code} " if self.code else ""
        return f"{self.stage}: {code}{self.text}".replace("\n", " ")[:500]


def _reply_text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    # Server text is data from the outside: keep it short.
    return text[:1000]


class SetupError(smtplib.SMTPException):
    """Opening a session failed at `stage` (connect, tls, helo, auth): nothing was sent.
    `fatal` when the settings are wrong (trying again cannot help)."""

    def __init__(self, stage: Stage, text: str, code: int = 0, *, fatal: bool = False) -> None:
        super().__init__(text)
        self.stage: Stage = stage
        self.text = text[:1000]
        self.code = code
        self.fatal = fatal


class ConnectionLost(smtplib.SMTPServerDisconnected):
    """The connection ended (closed, reset, timed out, unreadable reply) while the client
    waited at `stage`; `in_doubt` when the whole data had been sent."""

    def __init__(self, stage: Stage, text: str, *, in_doubt: bool = False) -> None:
        super().__init__(text)
        self.stage: Stage = stage
        self.text = text[:1000]
        self.in_doubt = in_doubt


def lost_text(detail: object | None) -> str:
    """smtplib's words for a connection that ended, with what ended it."""
    return "Connection unexpectedly closed" + (f": {detail}" if detail else "")


def lost(stage: Stage, detail: object | None, in_doubt: bool = False) -> SendResult:
    """The result of a connection that ended at `stage` (see `ConnectionLost`)."""
    if in_doubt:
        return SendResult(
            "in_doubt",
            0,
            f"no answer after the data was sent, it may have been delivered ({lost_text(detail)})",
            stage,
        )
    return SendResult("error", 0, lost_text(detail), stage)


def refusal(stage: Stage, code: int, raw: bytes | str) -> SendResult:
    """The result of a reply that refused the sender (mail), the recipient (rcpt) or the
    message (data)."""
    text = _reply_text(raw)
    if stage == "mail":
        # MAIL FROM refused says nothing about the recipient; a 5xx refuses our sender.
        return SendResult("error", code, text, "mail", fatal=code >= 500)
    if code == 530 or (stage == "rcpt" and _NOT_OUR_RECIPIENT.search(text)):
        # Our upstream wants AUTH or does not relay for us: recording bounces here would
        # suppress good addresses. The settings are wrong.
        return SendResult("error", code, text, stage, fatal=True)
    return SendResult("hard" if code >= 500 else "soft", code, text, stage)


def classify_error(exc: Exception) -> SendResult:
    """What an exception of an exchange says about the message (see the module docstring)."""
    if isinstance(exc, SetupError):
        return SendResult("error", exc.code, exc.text, exc.stage, exc.fatal)
    if isinstance(exc, ConnectionLost):
        return SendResult("in_doubt" if exc.in_doubt else "error", 0, exc.text, exc.stage)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, raw = next(iter(exc.recipients.values()))
        return refusal("rcpt", code, raw)
    if isinstance(exc, smtplib.SMTPDataError):
        return refusal("data", exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return refusal("mail", exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPResponseException):
        return SendResult("error", exc.smtp_code, _reply_text(exc.smtp_error), "session")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return SendResult("error", 0, str(exc)[:1000] or lost_text(None), "session")
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
    """An open, authenticated SMTP session to `server` (the default connection seam).

    Raises `SetupError` naming the stage that failed (connect, tls, helo, auth) and whether
    the settings are to blame (`fatal`): a certificate that does not verify, TLS spoken to a
    plain port (or the reverse), STARTTLS or the configured AUTH mechanism not offered,
    credentials refused with 5xx, or a 5xx greeting.
    """
    # Loading the system's CA certificates costs tens of milliseconds: only for TLS sessions.
    context = _tls_context(server.tls_skip_verify) if server.tls_type != "none" else None
    hostname = server.hello_hostname or None
    conn: smtplib.SMTP
    try:
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
    except ssl.SSLError as exc:
        raise _tls_failure(exc) from exc
    except smtplib.SMTPConnectError as exc:
        text = _reply_text(exc.smtp_error)
        raise SetupError("connect", text, exc.smtp_code, fatal=exc.smtp_code >= 500) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise SetupError("connect", f"{type(exc).__name__}: {exc}") from exc
    stage: Stage = "helo"
    try:
        _hello(conn)
        if server.tls_type == "starttls":
            stage = "tls"
            _starttls(conn, context)
            stage = "helo"
            _hello(conn)
        if server.auth_protocol != "none":
            stage = "auth"
            _authenticate(conn, server)
        return conn
    except SetupError:
        conn.close()
        raise
    except ssl.SSLError as exc:
        conn.close()
        raise _tls_failure(exc) from exc
    except smtplib.SMTPResponseException as exc:
        conn.close()
        text = _reply_text(exc.smtp_error)
        raise SetupError(stage, text, exc.smtp_code, fatal=exc.smtp_code >= 500) from exc
    except (OSError, smtplib.SMTPException) as exc:
        conn.close()
        raise SetupError(stage, lost_text(exc)) from exc
    except Exception as exc:
        # Our own mistake (a bug): it recurs on every try, so it is reported as fatal rather
        # than retried, and nothing was sent.
        conn.close()
        raise SetupError(stage, f"{type(exc).__name__}: {exc}", fatal=True) from exc


# TLS errors that say the connection ended, not that the two sides cannot agree.
_TLS_CUT = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)


def _tls_failure(exc: ssl.SSLError) -> SetupError:
    # A certificate that does not verify, or TLS spoken to a plain port (WRONG_VERSION_NUMBER),
    # recurs until the settings change; a connection cut during the handshake may not.
    return SetupError("tls", f"TLS failed: {exc}", fatal=not isinstance(exc, _TLS_CUT))


def _hello(conn: smtplib.SMTP) -> None:
    code, reply = conn.ehlo()
    if code != 250:
        code, reply = conn.helo()
        if code != 250:
            raise SetupError("helo", _reply_text(reply), code, fatal=code >= 500)


def _starttls(conn: smtplib.SMTP, context: ssl.SSLContext | None) -> None:
    if not conn.has_extn("starttls"):
        raise SetupError("tls", "the server does not offer STARTTLS", fatal=True)
    conn.starttls(context=context)


# Our auth_protocol names -> the SASL mechanisms.
_MECHANISMS = {"plain": "PLAIN", "login": "LOGIN", "cram": "CRAM-MD5"}


def _authenticate(conn: smtplib.SMTP, server: SmtpServer) -> None:
    """AUTH with the configured mechanism; SetupError unless the server says 235."""
    mechanism = _MECHANISMS.get(server.auth_protocol)
    if mechanism is None or not server.username:
        raise SetupError(
            "auth", f"auth_protocol {server.auth_protocol!r} needs a username", fatal=True
        )
    offered = conn.esmtp_features.get("auth", "").upper().split() if conn.does_esmtp else []
    if mechanism not in offered:
        # Sending without AUTH would only make the server refuse to relay, and every refusal
        # would look like a bounce of a good address.
        found = ", ".join(offered) or "none (does it need STARTTLS first?)"
        raise SetupError(
            "auth", f"the server does not offer AUTH {mechanism}; it offers {found}", fatal=True
        )
    # smtplib's AUTH methods read the credentials from these attributes.
    conn.user, conn.password = server.username, server.password
    try:
        if mechanism == "PLAIN":
            code, reply = conn.auth("PLAIN", conn.auth_plain, initial_response_ok=True)
        elif mechanism == "LOGIN":
            code, reply = conn.auth("LOGIN", conn.auth_login, initial_response_ok=True)
        else:
            code, reply = conn.auth("CRAM-MD5", conn.auth_cram_md5, initial_response_ok=False)
    except smtplib.SMTPAuthenticationError as exc:
        text = _reply_text(exc.smtp_error)
        raise SetupError("auth", text, exc.smtp_code, fatal=exc.smtp_code >= 500) from exc
    if code != 235:
        # smtplib takes 503 for success ("already authenticated"); servers also send it for
        # "AUTH not enabled", so only 235 counts.
        raise SetupError("auth", _reply_text(reply), code, fatal=True)


@functools.lru_cache(maxsize=256)
def _server_head(headers: tuple[tuple[str, str], ...], skip: frozenset[str]) -> bytes:
    lines = [encode_unstructured(n, v) for n, v in headers if n.lower() not in skip]
    return "".join(f"{line}\r\n" for line in lines).encode("utf-8")


def outgoing(server: SmtpServer | None, message: Message) -> tuple[str, bytes]:
    """The envelope sender and the data of `message` as it goes out through `server`: the
    server's Return-Path makes the envelope sender unless the message chose its own, and the
    server's custom headers come first, except those the message sets itself."""
    if server is None or not (server.return_path or server.email_headers):
        return message.envelope_from, message.data
    sender = message.envelope_from
    if server.return_path and not message.own_return_path:
        sender = message.sender_for(server.return_path)
    if not server.email_headers:
        return sender, message.data
    return sender, _server_head(server.email_headers, message.header_names) + message.data


# Any line end: CRLF, or a bare LF or CR.
_LINE_END = re.compile(rb"\r\n|\n|\r")


def transact(
    conn: smtplib.SMTP, message: Message, server: SmtpServer | None = None
) -> tuple[int, bytes]:
    """One MAIL FROM / RCPT TO / DATA exchange for `message` on an open session (through
    `server`, whose Return-Path and custom headers apply: `outgoing`).

    The same answers and exceptions as `smtplib.SMTP.sendmail` with one recipient (a refused
    recipient raises SMTPRecipientsRefused, a refused message SMTPDataError, a refused sender
    SMTPSenderRefused; the transaction is reset, or the session closed after a 421), except
    that a connection that ends raises `ConnectionLost` naming the stage, in doubt once the
    whole data was sent. Less work per message than sendmail: data already in CRLF lines (as
    the builder writes it) is only dot-stuffed (RFC 5321 section 4.5.2), and the addresses
    are bare, so they are not parsed again. Returns the server's answer to the data.
    """
    sender, data = outgoing(server, message)
    recipient = message.recipient
    if not (sender.isascii() and recipient.isascii()) or "\n" in sender + recipient:
        # SMTPUTF8 (and anything unusual) takes smtplib's general path.
        conn.sendmail(sender, [recipient], data)
        return 250, b"accepted"
    stage: Stage = "mail"
    try:
        size = f" SIZE={len(data)}" if conn.does_esmtp and conn.has_extn("size") else ""
        code, reply = conn.docmd("MAIL", f"FROM:<{sender}>{size}")
        if code != 250:
            _abandon(conn, code)
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        stage = "rcpt"
        code, reply = conn.docmd("RCPT", f"TO:<{recipient}>")
        if code not in (250, 251):
            _abandon(conn, code)
            raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        stage = "data"
        code, reply = conn.docmd("DATA")
        if code != 354:
            _abandon(conn, code)
            raise smtplib.SMTPDataError(code, reply)
        conn.send(dot_stuffed(data) + b".\r\n")
    except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused):
        # Answers, not a lost connection (smtplib's exceptions are OSErrors too).
        raise
    except OSError as exc:
        # Closed, reset or timed out (SMTPServerDisconnected included) before the data's end.
        conn.close()
        raise ConnectionLost(stage, lost_text(_lost_detail(exc))) from exc
    try:
        code, reply = conn.getreply()
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException, OSError) as exc:
        # The data is out: whatever ended the session, the server may have taken the message.
        conn.close()
        text = lost("data", _lost_detail(exc), in_doubt=True).text
        raise ConnectionLost("data", text, in_doubt=True) from exc
    if code != 250:
        _abandon(conn, code)
        raise smtplib.SMTPDataError(code, reply)
    return code, reply


def try_server(server: SmtpServer, message: Message) -> SendResult:
    """Sends `message` once through a new session to `server` (no pool, no second try) and
    answers with the server's own reply to the data, or the failure and its stage."""
    try:
        conn = connect(server)
    except SetupError as exc:
        return classify_error(exc)
    try:
        code, reply = transact(conn, message, server)
    except (smtplib.SMTPException, OSError) as exc:
        return classify_error(exc)
    finally:
        _quit(conn)
    return SendResult("sent", code, _reply_text(reply), "data")


def _lost_detail(exc: BaseException) -> str:
    # smtplib already words its own disconnections; other errors get its words around them.
    text = str(exc)
    if isinstance(exc, smtplib.SMTPServerDisconnected) and text.startswith("Connection"):
        return text.removeprefix("Connection unexpectedly closed").removeprefix(": ")
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_reply_text(exc.smtp_error)}"
    return text


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
# The answer for a message that was not tried (an earlier message showed the settings wrong).
NOT_ATTEMPTED = SendResult("error", 0, "not attempted", "queue")


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
        or the message keeps the session (the transaction was reset); anything else closes
        it."""
        result = classify_error(exc)
        conn = self.conn
        if conn is not None and (result.outcome not in ("hard", "soft") or conn.sock is None):
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
        """Sends one message; errors that may pass (a connection lost before the end of the
        data, a server busy) are tried again on a new connection, up to the server's budget."""
        lease = self.lease()
        if lease is None:
            return NO_CONNECTION
        result = self._send(lease, message)
        metrics.smtp_result(server_label(lease.server), result.outcome)
        return result

    def _send(self, lease: Lease, message: Message) -> SendResult:
        result = NOT_ATTEMPTED
        try:
            for attempt in range(lease.attempts):
                if attempt and lease.server.msg_retry_delay > 0:
                    # listmonk's msg_retry_delay: this message waits, other sends do not.
                    time.sleep(lease.server.msg_retry_delay)
                try:
                    transact(lease.open(), message, lease.server)
                except (smtplib.SMTPException, OSError) as exc:
                    result = lease.failed(exc)
                    if result.outcome != "error" or result.fatal:
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
