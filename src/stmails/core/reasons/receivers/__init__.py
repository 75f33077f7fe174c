"""Receiving providers' own conventions: the codes and texts each documents for its refusals.

A provider's reply often means something its words alone do not say to a general table: Google
sends "5.2.1" for a recipient receiving mail too fast, docomo "550 Unknown user" for its
filter, Tencent "Ip frequency limited" for too many connections. One module per provider
holds `HOSTS` (the names of its inbound servers, a leading dot for a suffix) and
`reason(evidence)`; `reason_from_receiver` asks the provider whose server answered, or whose
domain the recipient is at.

Some providers' codes are distinctive enough to be read wherever they appear (Orange's
"LPN007_416", Cox's "AUP#CXBL", Yahoo's "[TSS04]" next to its name): `reason_from_provider_code`
reads those without knowing the host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import import_module
from typing import Final

from stmails.core.reasons.engine import Evidence
from stmails.core.reasons.receivers import cox, orange, yahoo
from stmails.core.reasons.receivers.cox import COX_CODE_REASONS
from stmails.core.reasons.receivers.orange import ORANGE_CODE_REASONS
from stmails.core.reasons.receivers.yahoo import YAHOO_CODE_REASONS


@dataclass(frozen=True, slots=True)
class Receiver:
    """One provider: its name, its inbound host names and the reading of its replies."""

    name: str
    hosts: tuple[str, ...]
    reason: Callable[[Evidence], str]

    def serves(self, host: str, domain: str) -> bool:
        """True when `host` is one of the provider's servers (or under one of its names) or
        `domain` is the provider's own (a parent of one of its server names)."""
        for entry in self.hosts:
            bare = entry.lstrip(".")
            if host and (host == bare or host.endswith("." + bare)):
                return True
            if domain and (bare == domain or bare.endswith("." + domain)):
                return True
        return False


def _receiver(name: str) -> Receiver:
    module = import_module(f"{__name__}.{name}")
    return Receiver(name, module.HOSTS, module.reason)


# In the order they are asked; the first that serves the host or domain decides. Each is the
# module of its name in this package.
RECEIVERS: Final[tuple[Receiver, ...]] = tuple(
    _receiver(name)
    for name in (
        "apple",
        "cox",
        "orange",
        "godaddy",
        "google",
        "iua",
        "kddi",
        "microsoft",
        "mimecast",
        "nttdocomo",
        "spectrum",
        "tencent",
        "yahoo",
    )
)


def _host_of(remote_mta: str) -> str:
    """The host name in a Remote-MTA value ("dns; mx.example [192.0.2.1]" -> "mx.example")."""
    value = remote_mta[:255].lower().rsplit(";", 1)[-1]
    for word in value.replace("[", " ").replace("]", " ").replace("(", " ").split():
        if not word.replace(".", "").isdigit():
            return word.rstrip(".").rsplit("@", 1)[-1]
    return ""


def receiver_for(remote_mta: str, recipient: str) -> Receiver | None:
    """The provider whose server answered (`remote_mta`) or whose domain `recipient` is at."""
    host = _host_of(remote_mta)
    domain = recipient.rsplit("@", 1)[-1].lower() if "@" in recipient else ""
    if not host and not domain:
        return None
    return _receiver_for(host, domain[:255], RECEIVERS)


# Cached: the recipients of a report share its hosts, and a mailbox its domains. The table is
# part of the key so that a changed table is never answered from the cache.
@lru_cache(maxsize=512)
def _receiver_for(host: str, domain: str, receivers: tuple[Receiver, ...]) -> Receiver | None:
    for receiver in receivers:
        if receiver.serves(host, domain):
            return receiver
    return None


def reason_from_receiver(remote_mta: str, recipient: str, evidence: Evidence) -> str:
    """The reason the answering provider's documented code or text states, or ""."""
    if not evidence.text:
        return ""
    receiver = receiver_for(remote_mta, recipient)
    return receiver.reason(evidence) if receiver is not None else ""


def reason_from_provider_code(text: str) -> str:
    """The reason a provider's own refusal code in `text` names (Orange/La Poste, Cox, Yahoo),
    or ""; "undefined" for a code documented only as "try again later"."""
    return (
        orange.reason_from_code(text) or cox.reason_from_code(text) or yahoo.reason_from_code(text)
    )


__all__ = [
    "COX_CODE_REASONS",
    "ORANGE_CODE_REASONS",
    "RECEIVERS",
    "YAHOO_CODE_REASONS",
    "Receiver",
    "reason_from_provider_code",
    "reason_from_receiver",
    "receiver_for",
]
