"""The closed reason vocabulary: every reason a record can carry, and which ones say the
address is bad."""

from __future__ import annotations

from typing import Final

# Sisimai's vocabulary plus the three non-failure kinds (delivered, feedback, vacation).
REASONS: Final[frozenset[str]] = frozenset(
    {
        "authfailure",
        "badreputation",
        "blocked",
        "contenterror",
        "delivered",
        "exceedlimit",
        "expired",
        "feedback",
        "filtered",
        "hasmoved",
        "hostunknown",
        "mailboxfull",
        "mailererror",
        "mesgtoobig",
        "networkerror",
        "norelaying",
        "notaccept",
        "notcompliantrfc",
        "onhold",
        "policyviolation",
        "rejected",
        "requireptr",
        "securityerror",
        "spamdetected",
        "speeding",
        "suspend",
        "syntaxerror",
        "systemerror",
        "systemfull",
        "toomanyconn",
        "undefined",
        "userunknown",
        "vacation",
        "virusdetected",
    }
)

# Reasons that say the address itself is bad (a hard bounce when the failure is permanent).
HARD_REASONS: Final[frozenset[str]] = frozenset(
    {"userunknown", "hostunknown", "hasmoved", "notaccept"}
)

# Reasons that are not delivery failures at all.
NON_FAILURE_REASONS: Final[frozenset[str]] = frozenset({"delivered", "feedback", "vacation"})

# Reasons a report format or an MTA's own wording may state but the rules still revise: each
# is also what an MTA says when it knows little (a generic "user unknown", "system error",
# "expired"), so the server's codes and words weigh in before it stands.
REVISABLE_REASONS: Final[frozenset[str]] = frozenset(
    {
        "undefined",
        "onhold",
        "systemerror",
        "securityerror",
        "expired",
        "suspend",
        "networkerror",
        "hostunknown",
        "userunknown",
    }
)


def is_hard(reason: str, status: str = "") -> bool:
    """True when the address itself is bad: userunknown, hostunknown, hasmoved, or notaccept
    unless temporary (a 4.x.x status: the domain may accept mail again)."""
    if reason == "notaccept":
        return not status.startswith("4")
    return reason in HARD_REASONS
