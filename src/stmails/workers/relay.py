"""`stmails relay`: an SMTP submission server that enforces the suppression list.

Applications submit mail over SMTP with AUTH (PLAIN or LOGIN, checked against stmails' API users
whose role grants `relay:send`; STARTTLS offered when a certificate is configured, and AUTH
refused before it unless `allow_plain_auth` is set for loopback use). When the
`relay.sender_domains` setting lists domains, MAIL FROM and the From header must be addresses of
one of them (`553 5.7.1` / `550 5.7.1` otherwise). A RCPT TO of a suppressed address is answered
`550 5.7.1` naming the suppression's reason; accepted mail is forwarded to the configured
upstream SMTP servers, from our envelope sender (`services.sending.envelope`: the upstream's
Return-Path header, else the bounce address, VERP when enabled, else the client's MAIL FROM),
with a Message-ID and tracking headers. A Return-Path header from the client is dropped (the
receiving server writes it).

Replies after DATA: 250 once every recipient was forwarded; when the upstream refused some but
not all, still 250 (the refusals are recorded as bounces, as a relay that accepted the message
would report them by DSN); when it refused all, the upstream's own code (5xx or 4xx) goes back
to the client so it can decide.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate, getaddresses
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from stmails.db.engine import read_only
from stmails.services import dkim_keys, roles, subscribers, suppression, users
from stmails.services import settings as settings_service
from stmails.services.sending.campaigns import BounceRecorder, Transport, smtp_event
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.envelope import ReturnPaths
from stmails.services.sending.messages import Message, new_message_id
from stmails.services.sending.signing import signed

log = logging.getLogger("stmails.relay")

# The permission an API user's role needs to submit mail through the relay.
RELAY_PERMISSION = "relay:send"
# Checks a username and secret (an API user's token): None when they may relay, else the
# SMTP reply that refuses them.
Authenticate = Callable[[str, str], str | None]
INVALID_CREDENTIALS = "535 5.7.8 Authentication credentials invalid"
# Largest message accepted, in bytes.
MAX_MESSAGE_BYTES = 25 * 1024 * 1024
MAX_RECIPIENTS = 100
# Headers the relay writes itself; the client's copies are dropped.
_OWN_HEADERS = {b"return-path", b"x-stmails-subscriber", b"feedback-id"}


def _split_head(data: bytes) -> tuple[list[bytes], bytes]:
    """The header lines (folded continuations joined to their field) and the rest."""
    data = data.replace(b"\r\n", b"\n")
    head, sep, body = data.partition(b"\n\n")
    if not sep:
        head, body = data, b""
    fields: list[bytes] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\n" + line
        elif line:
            fields.append(line)
    return fields, body


def header_names(data: bytes) -> frozenset[str]:
    """The lower-case names of a message's header fields."""
    fields, _ = _split_head(data)
    return frozenset(f.split(b":", 1)[0].strip().lower().decode("ascii", "replace") for f in fields)


def _one_line(value: str) -> str:
    return re.sub(r"[\r\n]+", " ", value)


def rewrite_headers(data: bytes, added: list[tuple[str, str]], id_domain: str) -> bytes:
    """The message with our headers first, the client's copies of them dropped, a Message-ID
    and a Date added when missing; CRLF line ends throughout."""
    fields, body = _split_head(data)
    kept = [f for f in fields if f.split(b":", 1)[0].strip().lower() not in _OWN_HEADERS]
    names = {f.split(b":", 1)[0].strip().lower() for f in kept}
    extra = [f"{name}: {_one_line(value)}".encode() for name, value in added]
    if b"message-id" not in names:
        extra.append(f"Message-ID: {new_message_id(id_domain)}".encode())
    if b"date" not in names:
        extra.append(f"Date: {formatdate(usegmt=True)}".encode())
    head = b"\r\n".join(extra + kept).replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")
    return head + b"\r\n\r\n" + body.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")


def relay_login(factory: sessionmaker[DbSession]) -> Authenticate:
    """The relay's credential check: an enabled API user's token, and a role with
    `relay:send` (otherwise AUTH fails naming the missing permission)."""

    def check(username: str, secret: str) -> str | None:
        with factory() as session:
            user = users.authenticate_token(session, username, secret)
            if user is None:
                return INVALID_CREDENTIALS
            if RELAY_PERMISSION not in roles.effective_permissions(user.role):
                return f"535 5.7.8 permission denied: {RELAY_PERMISSION} required"
        return None

    return check


def domain_of(address: str) -> str:
    """The lower-case domain of a bare address ('' when there is none)."""
    return address.rpartition("@")[2].strip().lower().rstrip(".") if "@" in address else ""


@dataclass
class RelayHandler:
    """aiosmtpd handler: sender domains at MAIL FROM, suppression at RCPT TO, the From
    domain and forwarding after DATA."""

    factory: sessionmaker[DbSession]
    transport: Transport
    config: SendingConfig
    return_paths: ReturnPaths
    record_bounce: BounceRecorder
    # The app's secret key, which decrypts the stored DKIM keys (see `_forward`).
    dkim_secret: bytes | None = None

    def _sender_domains(self) -> list[str]:
        # Read per transaction, so that a change of the setting applies at once; read-only, so
        # that it never queues for SQLite's write lock.
        with read_only(self.factory)() as session:
            return list(settings_service.get_valid(session, "relay.sender_domains") or [])

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        allowed = await asyncio.to_thread(self._sender_domains)
        if allowed and domain_of(address) not in allowed:
            log.info("relay refused sender %s: domain not allowed", address[:200])
            return "553 5.7.1 sender domain not allowed (relay.sender_domains)"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    def _refusal(self, address: str) -> str | None:
        with self.factory() as session:
            hit = suppression.find(session, address, list_ids=[])
        if hit is None:
            return None
        since = hit.created_at.date().isoformat()
        return f"550 5.7.1 <{address}> is {hit.describe()} since {since}; not relayed"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 too many recipients"
        if "@" not in address:
            return "501 5.1.3 bad recipient address"
        refusal = await asyncio.to_thread(self._refusal, address)
        if refusal is not None:
            log.info("relay refused %s: suppressed", address)
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        sender = str(envelope.mail_from or "")
        return await asyncio.to_thread(self._deliver, sender, list(envelope.rcpt_tos), content)

    def _deliver(self, sender: str, recipients: list[str], content: bytes) -> str:
        allowed = self._sender_domains()
        if allowed:
            fields, _ = _split_head(content)
            froms = [
                f.split(b":", 1)[1].decode("utf-8", "replace")
                for f in fields
                if f.split(b":", 1)[0].strip().lower() == b"from" and b":" in f
            ]
            addresses = [a for _, a in getaddresses(froms)]
            if not addresses or any(domain_of(a) not in allowed for a in addresses):
                log.info("relay refused a message: From domain not allowed")
                return "550 5.7.1 From domain not allowed (relay.sender_domains)"
        return self._forward(sender, recipients, content)

    def _subscribers(self, recipients: list[str]) -> dict[str, tuple[int, str]]:
        """(id, uuid) of each recipient that is a subscriber, by lower-cased address."""
        with self.factory() as session:
            found = subscribers.get_many_by_email(session, recipients)
            return {key: (s.id, s.uuid) for key, s in found.items()}

    def _forward(self, sender: str, recipients: list[str], content: bytes) -> str:
        known = self._subscribers(recipients)
        names = header_names(content)
        # Relayed mail is signed like our own, with the keys as stored now.
        with read_only(self.factory)() as session:
            transport = signed(self.transport, dkim_keys.load_signer(session, self.dkim_secret))
        replies: list[str] = []
        delivered = 0
        for rcpt in recipients:
            subscriber_id, subscriber_uuid = known.get(subscribers.email_key(rcpt), (0, ""))
            senders = self.return_paths.senders(0, subscriber_id)
            added = []
            if subscriber_uuid:
                added.append(("X-Stmails-Subscriber", subscriber_uuid))
            added.append(("Feedback-ID", f"relay:stmails:{self.config.feedback_id_sender}"))
            data = rewrite_headers(content, added, self.config.id_domain)
            message = Message(
                envelope_from=senders.default or sender,
                recipient=rcpt,
                message_id="",
                data=data,
                server_senders=senders.servers,
                header_names=names,
            )
            result = transport(message)
            if result.outcome == "sent":
                delivered += 1
                continue
            if result.outcome == "hard":
                with self.factory() as session, session.begin():
                    self.record_bounce(
                        session, smtp_event(result, message, "", subscriber_uuid, "hard")
                    )
            code = result.code if result.outcome in {"hard", "soft"} else 451
            replies.append(f"{code} {result.text or 'upstream failure'}".strip())
        if delivered or not replies:
            return "250 2.0.0 accepted for delivery"
        return replies[0].splitlines()[0][:500]


def make_authenticator(check: Authenticate) -> Callable[..., AuthResult]:
    """aiosmtpd's authenticator from a username/secret check (PLAIN and LOGIN)."""

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if mechanism not in {"PLAIN", "LOGIN"} or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        username = auth_data.login.decode("utf-8", "replace")
        secret = auth_data.password.decode("utf-8", "replace")
        refusal = check(username, secret)
        if refusal is not None:
            log.info("relay refused AUTH for %r: %s", username[:100], refusal)
            return AuthResult(success=False, handled=False, message=refusal)
        return AuthResult(success=True, handled=False, auth_data=auth_data)

    return authenticator


def tls_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """A server TLS context for STARTTLS."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context


def make_controller(
    handler: RelayHandler,
    authenticate: Authenticate,
    *,
    host: str,
    port: int,
    tls: ssl.SSLContext | None = None,
    allow_plain_auth: bool = False,
) -> Controller:
    """The relay server (not started): AUTH required for every transaction."""
    return Controller(
        handler,
        hostname=host,
        port=port,
        tls_context=tls,
        require_starttls=False,
        auth_required=True,
        auth_require_tls=not allow_plain_auth,
        authenticator=make_authenticator(authenticate),
        data_size_limit=MAX_MESSAGE_BYTES,
    )
