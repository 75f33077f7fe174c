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
from collections.abc import Mapping, Sequence
from email.utils import parseaddr
from typing import Any

from stmails.services.errors import InvalidInput
from stmails.services.sending.smtp import SmtpServer

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
