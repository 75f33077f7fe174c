"""Each reason's phrase table, one module per reason, and the order in which they are consulted.

A module holds `PHRASES` (lowercase fragments of the whitespace-collapsed diagnostic text) and,
for a few reasons, `FIRST`: phrases that decide before any other reason's table because a more
general phrase elsewhere would misread them. `REASON_PHRASES` assembles the tables in
precedence order: every `FIRST` table (in `FIRST_ORDER`), then every `PHRASES` table (in
`ORDER`); the first reason with a matching phrase wins.
"""

from __future__ import annotations

from types import ModuleType
from typing import Final

from stmails.core.reasons.phrases import (
    authfailure,
    badreputation,
    blocked,
    contenterror,
    exceedlimit,
    expired,
    filtered,
    hasmoved,
    hostunknown,
    mailboxfull,
    mailererror,
    mesgtoobig,
    networkerror,
    norelaying,
    notaccept,
    notcompliantrfc,
    policyviolation,
    rejected,
    requireptr,
    securityerror,
    spamdetected,
    speeding,
    suspend,
    syntaxerror,
    systemerror,
    systemfull,
    toomanyconn,
    userunknown,
    virusdetected,
)

# Transient resolver errors read like unknown hosts; block lists name spam in their URLs;
# "550 : User unknown" with the address left out is how au/KDDI report a recipient's domain
# filter; Orange's and Yahoo's codes and Mimecast's virus wording name their cause.
FIRST_ORDER: Final[tuple[ModuleType, ...]] = (
    filtered,
    spamdetected,
    systemerror,
    rejected,
    virusdetected,
    blocked,
    networkerror,
)
ORDER: Final[tuple[ModuleType, ...]] = (
    mailboxfull,
    mesgtoobig,
    exceedlimit,
    suspend,
    hasmoved,
    norelaying,
    authfailure,
    userunknown,
    filtered,
    requireptr,
    notcompliantrfc,
    badreputation,
    rejected,
    hostunknown,
    spamdetected,
    speeding,
    toomanyconn,
    blocked,
    virusdetected,
    policyviolation,
    contenterror,
    securityerror,
    systemfull,
    systemerror,
    networkerror,
    expired,
    syntaxerror,
    mailererror,
    notaccept,
)


def _name(module: ModuleType) -> str:
    return module.__name__.rsplit(".", 1)[1]


# Diagnostic fragments per reason, in precedence order: the first reason with a match wins.
REASON_PHRASES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = tuple(
    (_name(module), tuple(module.FIRST)) for module in FIRST_ORDER
) + tuple((_name(module), tuple(module.PHRASES)) for module in ORDER)

__all__ = ["FIRST_ORDER", "ORDER", "REASON_PHRASES"]
