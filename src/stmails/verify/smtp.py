"""The optional SMTP probe: ask the domain's mail host whether it would take the recipient.

A probe connects to the first reachable MX, says EHLO (HELO if refused) with the configured
name, gives ``MAIL FROM`` the configured sender, asks ``RCPT TO`` for the address, then RSET and
QUIT: no message is ever sent. The first probe of a domain also asks for one random local part
in the same session; if that is accepted too the domain is a catch-all and the answer is cached.

Replies map to verdicts conservatively: only a permanent "no such user" is ``invalid``;
temporary failures (greylisting) are ``unknown`` with a retry delay; policy and blocklist
refusals (5.7.x) are ``unknown`` with ``blocked``, because they are about us, not the address.

Off by default (outbound port 25 is often closed). The connection is injectable: a
``ConnectionFactory`` returns an :class:`SmtpConnection`; the default speaks SMTP over asyncio
streams with bounded reads, and only to public addresses: an MX that resolves to a loopback,
private or link-local address is not probed unless ``allow_private_targets`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from stmails.verify.result import Reason

__all__ = [
    "ProbeOutcome",
    "SmtpConnection",
    "SmtpProber",
    "SmtpReply",
    "classify_rcpt_reply",
    "open_smtp_connection",
]

MAX_REPLY_LINE = 1024
MAX_REPLY_LINES = 64
DEFAULT_RETRY_AFTER = 300


@dataclass(frozen=True, slots=True)
class SmtpReply:
    """One SMTP reply: the three-digit code and the text of all its lines joined by newlines."""

    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}"

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 enhanced status code at the start of the text (``5.1.1``), if any."""
        match = _ENHANCED.match(self.text)
        return match.group(0) if match else None


class SmtpConnection(Protocol):
    """The probe's I/O seam: one SMTP client session."""

    async def read_reply(self) -> SmtpReply:
        """Reads one (possibly multi-line) reply."""
        ...

    async def command(self, line: str) -> SmtpReply:
        """Sends one command line (without CRLF) and reads its reply."""
        ...

    async def close(self) -> None:
        """Closes the session without waiting for the server."""
        ...


ConnectionFactory = Callable[[str, int, float], Awaitable[SmtpConnection]]

_ENHANCED = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_RETRY_SECONDS = re.compile(r"(\d{1,6})\s*(?:s\b|sec|second)", re.IGNORECASE)
_RETRY_MINUTES = re.compile(r"(\d{1,4})\s*(?:m\b|min|minute)", re.IGNORECASE)
_BLOCK_TEXT = re.compile(
    r"block|blacklist|denylist|spamhaus|spamcop|barracuda|sorbs|\brbl\b|dnsbl|reputation"
    r"|listed (?:at|on|by)|banned|policy|not allowed|access denied",
    re.IGNORECASE,
)
_GREYLIST_TEXT = re.compile(r"grey|gray|try again|later|deferred", re.IGNORECASE)
_FULL_TEXT = re.compile(r"mailbox (?:is )?full|over ?quota|quota exceeded", re.IGNORECASE)
_DISABLED_TEXT = re.compile(r"disabled|deactivated|inactive|suspended", re.IGNORECASE)


class _StreamConnection:
    """:class:`SmtpConnection` over asyncio streams; every read is bounded in size and time."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = timeout

    async def read_reply(self) -> SmtpReply:
        lines: list[str] = []
        code = 0
        for _ in range(MAX_REPLY_LINES):
            raw = await asyncio.wait_for(self._reader.readline(), self._timeout)
            if not raw:
                raise ConnectionError("the server closed the connection")
            line = raw[:MAX_REPLY_LINE].decode("utf-8", "replace").rstrip("\r\n")
            if len(line) < 3 or not line[:3].isdigit():
                raise ConnectionError(f"malformed SMTP reply: {line[:80]!r}")
            code = int(line[:3])
            lines.append(line[4:])
            if line[3:4] != "-":
                return SmtpReply(code, "\n".join(lines))
        raise ConnectionError("the SMTP reply has too many lines")

    async def command(self, line: str) -> SmtpReply:
        self._writer.write(line.encode("utf-8") + b"\r\n")
        await asyncio.wait_for(self._writer.drain(), self._timeout)
        return await self.read_reply()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)


async def open_smtp_connection(host: str, port: int, timeout: float) -> SmtpConnection:
    """A TCP connection with ``timeout`` for connecting and each command (any target)."""
    # The StreamReader limit bounds readline(): an endless line cannot take unbounded memory.
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, limit=4 * MAX_REPLY_LINE), timeout
    )
    return _StreamConnection(reader, writer, timeout)


class PrivateTarget(OSError):
    """An MX host resolves to an address that is not on the public internet."""


def is_public_address(address: str) -> bool:
    """Whether an IP address is globally routable: not loopback, private, link-local, shared
    (CGNAT), unspecified, multicast or reserved."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return parsed.is_global and not parsed.is_multicast


async def open_public_smtp_connection(host: str, port: int, timeout: float) -> SmtpConnection:
    """The default factory: like `open_smtp_connection`, to a public address only.

    The host is resolved here and the connection made to the address that was checked, so a
    second lookup cannot swap in another. An MX that names (or resolves to) a loopback,
    private or link-local address is refused with PrivateTarget: a domain's owner chooses its
    MX records, and the probe must not become a way to reach this network's own hosts.
    """
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP), timeout
    )
    addresses = [str(info[4][0]) for info in infos]
    public = [a for a in addresses if is_public_address(a)]
    if not public:
        raise PrivateTarget(
            f"{host} resolves to {', '.join(sorted(set(addresses))) or 'nothing'}, not a public"
            " address; probing it needs allow_private_targets"
        )
    return await open_smtp_connection(public[0], port, timeout)


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """What the probe learned: the reasons it adds (empty when the mailbox was accepted),
    whether it proved deliverability, the raw reply and a retry delay for greylisting."""

    reasons: tuple[Reason, ...] = ()
    accepted: bool = False
    reply: str | None = None
    retry_after: int | None = None
    detail: str | None = None


def _retry_after(reply: SmtpReply) -> int:
    seconds = _RETRY_SECONDS.search(reply.text)
    if seconds:
        return int(seconds.group(1))
    minutes = _RETRY_MINUTES.search(reply.text)
    if minutes:
        return 60 * int(minutes.group(1))
    return DEFAULT_RETRY_AFTER


def classify_rcpt_reply(reply: SmtpReply) -> ProbeOutcome:
    """Maps a reply to RCPT TO (or a refusal earlier in the session) to a probe outcome.

    The enhanced status code decides first (RFC 3463: x.7.x is policy, 5.1.x the address,
    x.2.2 a full mailbox, 5.2.1 a disabled one), then the text. Temporary failures are
    greylisting unless they name a blocklist; a permanent 550/551/553 without a policy hint
    means the mailbox does not exist; any other permanent refusal is about us (``blocked``).
    """
    raw = str(reply)
    enhanced = reply.enhanced or ""
    text = reply.text
    if reply.code in (250, 251):
        return ProbeOutcome(accepted=True, reply=raw)
    if reply.code == 252:
        return ProbeOutcome((Reason.ACCEPT_ALL,), reply=raw, detail="the server cannot verify")
    if enhanced.endswith(".2.2") or reply.code == 552 or _FULL_TEXT.search(text):
        return ProbeOutcome((Reason.MAILBOX_FULL,), reply=raw, detail="the mailbox is full")
    if 400 <= reply.code < 500:
        if _BLOCK_TEXT.search(text) and not _GREYLIST_TEXT.search(text):
            return ProbeOutcome((Reason.BLOCKED,), reply=raw, detail="the server refused us")
        return ProbeOutcome(
            (Reason.GREYLISTED,),
            reply=raw,
            retry_after=_retry_after(reply),
            detail="temporary failure; try again later",
        )
    # 5.1.7 and 5.1.8 are about our sender address, not the recipient.
    recipient_status = enhanced.startswith("5.1.") and enhanced not in ("5.1.7", "5.1.8")
    if enhanced.startswith("5.7.") or (not recipient_status and _BLOCK_TEXT.search(text)):
        return ProbeOutcome((Reason.BLOCKED,), reply=raw, detail="the server refused us")
    if enhanced == "5.2.1" or (not recipient_status and _DISABLED_TEXT.search(text)):
        return ProbeOutcome((Reason.DISABLED,), reply=raw, detail="the mailbox is disabled")
    if recipient_status or (not enhanced and reply.code in (550, 551, 553)):
        return ProbeOutcome(
            (Reason.MAILBOX_NOT_FOUND,), reply=raw, detail="the mailbox does not exist"
        )
    return ProbeOutcome((Reason.BLOCKED,), reply=raw, detail="the server refused the probe")


@dataclass(slots=True)
class _DomainState:
    catch_all: bool | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SmtpProber:
    """Runs probes with a HELO name and sender, timeouts, and per-host concurrency limits.

    ``connect_timeout`` bounds the TCP connect, ``command_timeout`` each reply, and
    ``total_timeout`` a whole probe; ``per_host`` caps simultaneous sessions to one MX host.
    """

    def __init__(
        self,
        *,
        helo_name: str,
        mail_from: str,
        port: int = 25,
        connect_timeout: float = 10.0,
        command_timeout: float = 15.0,
        total_timeout: float = 45.0,
        per_host: int = 2,
        max_hosts_tried: int = 2,
        connection_factory: ConnectionFactory | None = None,
        allow_private_targets: bool = False,
    ) -> None:
        self.helo_name = helo_name
        self.mail_from = mail_from
        self.port = port
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.total_timeout = total_timeout
        self._per_host = per_host
        self._max_hosts_tried = max_hosts_tried
        # Without a factory of its own, a prober reaches public addresses only, unless asked.
        default = open_smtp_connection if allow_private_targets else open_public_smtp_connection
        self._connect = connection_factory or default
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._domains: dict[str, _DomainState] = {}

    def is_catch_all(self, ascii_domain: str) -> bool | None:
        """The cached catch-all answer for a domain (None when not probed yet)."""
        state = self._domains.get(ascii_domain)
        return state.catch_all if state else None

    async def probe(self, address: str, ascii_domain: str, hosts: tuple[str, ...]) -> ProbeOutcome:
        """Probes ``address`` (local part plus A-label domain) on ``hosts`` in order."""
        state = self._domains.setdefault(ascii_domain, _DomainState())
        try:
            async with asyncio.timeout(self.total_timeout):
                # The first probe of a domain also settles catch-all; later ones wait for it
                # so that a domain gets exactly one random-address test.
                if state.catch_all is None:
                    async with state.lock:
                        return await self._probe_hosts(address, ascii_domain, hosts, state)
                return await self._probe_hosts(address, ascii_domain, hosts, state)
        except TimeoutError:
            return ProbeOutcome((Reason.TIMEOUT,), detail="the SMTP probe timed out")

    async def _probe_hosts(
        self, address: str, ascii_domain: str, hosts: tuple[str, ...], state: _DomainState
    ) -> ProbeOutcome:
        last = ProbeOutcome((Reason.TIMEOUT,), detail="no mail host answered")
        for host in hosts[: self._max_hosts_tried]:
            slot = self._host_slots.setdefault(host, asyncio.Semaphore(self._per_host))
            async with slot:
                try:
                    connection = await asyncio.wait_for(
                        self._connect(host, self.port, self.command_timeout),
                        self.connect_timeout,
                    )
                except (OSError, TimeoutError) as exc:
                    last = ProbeOutcome((Reason.TIMEOUT,), detail=f"{host}: {exc or 'timeout'}")
                    continue
                try:
                    return await self._session(connection, address, ascii_domain, state)
                except (OSError, TimeoutError, ConnectionError) as exc:
                    last = ProbeOutcome((Reason.TIMEOUT,), detail=f"{host}: {exc or 'timeout'}")
                finally:
                    await connection.close()
        return last

    async def _session(
        self, connection: SmtpConnection, address: str, ascii_domain: str, state: _DomainState
    ) -> ProbeOutcome:
        greeting = await connection.read_reply()
        if greeting.code != 220:
            return classify_rcpt_reply(greeting)
        hello = await connection.command(f"EHLO {self.helo_name}")
        if hello.code >= 500:
            hello = await connection.command(f"HELO {self.helo_name}")
        if hello.code != 250:
            return classify_rcpt_reply(hello)
        # A UTF-8 local part is announced with SMTPUTF8 (RFC 6531) when the server offers it;
        # otherwise the server's own answer to the RCPT says what it makes of the address.
        offers_utf8 = "SMTPUTF8" in hello.text.upper().split()
        extension = " SMTPUTF8" if offers_utf8 and not address.isascii() else ""
        sender = await connection.command(f"MAIL FROM:<{self.mail_from}>{extension}")
        if sender.code != 250:
            return classify_rcpt_reply(sender)
        rcpt = await connection.command(f"RCPT TO:<{address}>")
        outcome = classify_rcpt_reply(rcpt)
        if outcome.accepted and state.catch_all is None:
            random_local = f"stmails-probe-{secrets.token_hex(8)}"
            random_reply = await connection.command(f"RCPT TO:<{random_local}@{ascii_domain}>")
            state.catch_all = random_reply.code in (250, 251)
        elif Reason.MAILBOX_NOT_FOUND in outcome.reasons:
            # A server that rejects an unknown user is not a catch-all.
            state.catch_all = False
        await connection.command("RSET")
        # A server that hangs up on QUIT has still answered everything we asked.
        with contextlib.suppress(OSError, TimeoutError, ConnectionError):
            await connection.command("QUIT")
        if outcome.accepted and state.catch_all:
            return ProbeOutcome((Reason.CATCH_ALL,), accepted=True, reply=outcome.reply)
        return outcome
