"""Which SMTP servers carry a message: listmonk's messengers and `from_addresses` routing.

The messenger `email` is every enabled server; a server with a `name` is also the messenger
`email-<name>` (the name in lower case, other characters than letters, digits and `-` made `-`,
as listmonk names it; a name stored as `email-...` by listmonk stays as it is), which campaigns
and transactional mail may pick (`messenger`). Within the messenger `email`, a message whose
From address one server lists in its `from_addresses` goes through that server, else one whose
list holds the address's domain; the servers that list nothing take every other From address.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parseaddr
from typing import Any

from stmails.services.errors import InvalidInput
from stmails.services.sending.messages import Message
from stmails.services.sending.smtp import SendResult, SmtpPool, SmtpServer

# A per-message transport (`SmtpPool.send`).
Transport = Callable[[Message], SendResult]

DEFAULT_MESSENGER = "email"
_PREFIX = "email-"
_NOT_NAME = re.compile(r"[^a-z0-9-]")


def messenger_of(server: SmtpServer | Mapping[str, Any]) -> str:
    """The messenger a named server is ('' for a server without a name)."""
    name = server.name if isinstance(server, SmtpServer) else str(server.get("name") or "")
    name = _NOT_NAME.sub("-", name.strip().lower())
    if not name:
        return ""
    return name if name.startswith(_PREFIX) else f"{_PREFIX}{name}"


def messengers(servers: Sequence[SmtpServer]) -> list[str]:
    """The messengers `servers` (the enabled ones) offer: `email` and `email-<name>`."""
    named = [messenger_of(s) for s in servers if s.name]
    return [DEFAULT_MESSENGER, *named] if servers else []


def check_messenger(smtp: Sequence[Mapping[str, Any]], messenger: str, where: str) -> None:
    """InvalidInput naming `where` unless `messenger` is `email` or names a server of the
    stored `smtp` setting (enabled or not: a disabled one is refused when sending starts)."""
    if messenger == DEFAULT_MESSENGER:
        return
    known = [messenger_of(entry) for entry in smtp if isinstance(entry, Mapping)]
    if messenger not in known:
        offered = ", ".join([DEFAULT_MESSENGER, *sorted(k for k in known if k)])
        raise InvalidInput(where, f"unknown messenger {messenger[:100]!r} (there are: {offered})")


def servers_for(
    servers: Sequence[SmtpServer], messenger: str, from_email: str
) -> tuple[SmtpServer, ...]:
    """The enabled servers a message from `from_email` sent with `messenger` goes through;
    InvalidInput (`messenger` or `from_email`) when none can take it."""
    messenger = messenger or DEFAULT_MESSENGER
    if not servers:
        raise InvalidInput("smtp", "no SMTP server is enabled")
    if messenger != DEFAULT_MESSENGER:
        chosen = tuple(s for s in servers if messenger_of(s) == messenger)
        if not chosen:
            raise InvalidInput(
                "messenger",
                f"{messenger[:100]!r} is not an enabled SMTP server (settings: smtp, its name)",
            )
        return chosen
    address = parseaddr(from_email)[1].strip().lower()
    domain = address.rpartition("@")[2]
    listed = tuple(s for s in servers if address and address in s.from_addresses)
    if listed:
        return listed
    listed = tuple(s for s in servers if domain and domain in s.from_addresses)
    if listed:
        return listed
    rest = tuple(s for s in servers if not s.from_addresses)
    if not rest:
        raise InvalidInput(
            "from_email",
            f"no enabled SMTP server takes From {address or from_email[:100]!r}: every one "
            "lists other from_addresses",
        )
    return rest


class RoutedPools:
    """The connection pools of the servers messages are routed to: one `SmtpPool` per set of
    servers (`servers_for`), all closed and forgotten when the enabled servers change.
    Thread-safe."""

    def __init__(self) -> None:
        self._enabled: tuple[SmtpServer, ...] = ()
        self._pools: dict[tuple[SmtpServer, ...], SmtpPool] = {}
        self._lock = threading.Lock()

    def pool(self, enabled: Sequence[SmtpServer], servers: Sequence[SmtpServer]) -> SmtpPool:
        """The pool of `servers`, a subset of the `enabled` servers of the settings now."""
        stale: list[SmtpPool] = []
        with self._lock:
            if tuple(enabled) != self._enabled:
                stale = list(self._pools.values())
                self._pools = {}
                self._enabled = tuple(enabled)
            key = tuple(servers)
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = SmtpPool(key)
        for old in stale:
            old.close()
        return pool

    def router(
        self,
        enabled: Sequence[SmtpServer],
        messenger: str,
        wrap: Callable[[Transport], Transport] = lambda send: send,
    ) -> Callable[[str], Transport]:
        """The transport of a message from a given From address sent with `messenger`
        (`wrap`ped, e.g. DKIM-signing); InvalidInput when no server takes it."""

        def route(from_address: str) -> Transport:
            return wrap(self.pool(enabled, servers_for(enabled, messenger, from_address)).send)

        return route

    def transport(
        self,
        enabled: Sequence[SmtpServer],
        wrap: Callable[[Transport], Transport] = lambda send: send,
    ) -> Transport:
        """A transport that routes each message by the From header in its data (for mail
        stmails did not compose: the relay); a message no server takes fails, fatal."""
        route = self.router(enabled, DEFAULT_MESSENGER, wrap)

        def send(message: Message) -> SendResult:
            head = BytesHeaderParser(policy=compat32).parsebytes(message.data, headersonly=True)
            try:
                chosen = route(str(head.get("From") or ""))
            except InvalidInput as exc:
                return SendResult("error", 0, str(exc)[:1000], "queue", fatal=True)
            return chosen(message)

        return send

    def close(self) -> None:
        """Closes every pool's idle connections."""
        with self._lock:
            pools, self._pools, self._enabled = list(self._pools.values()), {}, ()
        for pool in pools:
            pool.close()
