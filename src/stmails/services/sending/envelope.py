"""The envelope sender (MAIL FROM, the address bounces go back to) of every message.

The first of these that is set decides, on every send path (campaigns, test sends,
transactional mail, the relay's upstream):

1. a `Return-Path` among the message's own headers (a campaign's `headers`, the `headers` of a
   `POST /api/tx` request);
2. a `Return-Path` among the `email_headers` of the SMTP server the message goes through
   (listmonk's documented way to set a bounce mailbox);
3. `sending.bounce_address`;
4. the From address (for the relay: the client's own MAIL FROM).

With `sending.verp`, an address chosen by 1 to 3 carries the subscriber's and campaign's token:
`local+TOKEN@domain` (`stmails.core.verp`; mail to no subscriber keeps the plain address, as
does an address whose local part leaves no room for the token). As in listmonk, a Return-Path
given as a header is not written into the message: the receiving server adds Return-Path from
MAIL FROM (RFC 5321 section 4.4), and stmails writes none of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from stmails.core import verp
from stmails.core.verp import MAX_PREFIX

log = logging.getLogger("stmails.sender")

# Makes a VERP address from (bounce address, campaign id, subscriber id); campaign id 0: none.
VerpMaker = Callable[[str, int, int], str]


def verp_maker(secret: bytes) -> VerpMaker:
    """VERP addresses signed with `secret`: `local+TOKEN@domain` of the bounce address."""

    def make(address: str, campaign_id: int, subscriber_id: int) -> str:
        local, _, domain = address.rpartition("@")
        return verp.make_address(secret, domain, subscriber_id, campaign_id, prefix=local)

    return make


def fits_verp(address: str) -> bool:
    """Whether `address`'s local part leaves room for a VERP token."""
    return len(address.rpartition("@")[0].encode()) <= MAX_PREFIX


@dataclass(frozen=True)
class Senders:
    """The envelope senders of one message (see `messages.Message`)."""

    # When the server sets none: the bounce address ('' = the From address).
    default: str
    # (server Return-Path, the sender made from it) for each server that sets one.
    servers: tuple[tuple[str, str], ...] = ()
    # True when the message's own Return-Path decided (`default` holds it).
    own: bool = False


@dataclass(frozen=True)
class ReturnPaths:
    """Makes envelope senders under the precedence of the module docstring.

    Called with (campaign id, subscriber id) it answers the sender of a message that neither
    sets its own nor goes through a server with a Return-Path: the bounce address (VERP when
    on), or '' for the From address.
    """

    bounce_address: str = ""
    # The distinct Return-Path headers of the enabled SMTP servers.
    server_return_paths: tuple[str, ...] = ()
    # Whether some server sets none (else the default sender is never used).
    needs_default: bool = True
    verp: VerpMaker | None = None
    # The senders of every message when there is no VERP (see `__post_init__`).
    _fixed: Senders | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Without VERP every message gets the same senders: made once, not per message.
        fixed = None
        if self.verp is None:
            servers = tuple((base, base) for base in self.server_return_paths)
            fixed = Senders(self.bounce_address if self.needs_default else "", servers)
        object.__setattr__(self, "_fixed", fixed)
        if self.verp is None:
            return
        for address in (self.bounce_address, *self.server_return_paths):
            if address and not fits_verp(address):
                log.warning(
                    "bounce address %r: local part over %d octets, too long for VERP; "
                    "sending without VERP",
                    address[:200],
                    MAX_PREFIX,
                )

    def address(self, base: str, campaign_id: int, subscriber_id: int) -> str:
        """`base` with the VERP token of the subscriber and campaign when VERP is on."""
        if not base or self.verp is None or not subscriber_id or not fits_verp(base):
            return base
        return self.verp(base, campaign_id, subscriber_id)

    def __call__(self, campaign_id: int, subscriber_id: int) -> str:
        return self.address(self.bounce_address, campaign_id, subscriber_id)

    def senders(self, campaign_id: int, subscriber_id: int, own: str = "") -> Senders:
        """The senders of one message; `own` is the Return-Path among its own headers."""
        if own:
            return Senders(self.address(own, campaign_id, subscriber_id), own=True)
        if self._fixed is not None:
            return self._fixed
        default = self(campaign_id, subscriber_id) if self.needs_default else ""
        servers = tuple(
            (base, self.address(base, campaign_id, subscriber_id))
            for base in self.server_return_paths
        )
        return Senders(default, servers)
