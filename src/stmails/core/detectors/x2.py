"""The qmail-derived reports of old Yahoo! and its Japanese sibling ("Unknown MTA #2" in
Sisimai's catalogue).

They come from MAILER-DAEMON, open with "Message from <domain>." and "Unable to deliver
message to the following address(es).", give each recipient as a `<address>:` line followed by
the cause, and end with "--- Original message follows.". The domain's own server writes them
after accepting the message, so its failures are post-acceptance.
"""

from __future__ import annotations

from stmails.core.context import Context
from stmails.core.detectors.accepted import unknown_user_after_acceptance
from stmails.core.finding import Finding
from stmails.core.generic import detect_generic

_OPENING = "Unable to deliver message to the following address"
_CLOSING = "--- Original message follows."


def detect_x2(ctx: Context) -> list[Finding] | None:
    """The findings of such a report, or None for any other message."""
    if "mailer-daemon@" not in ctx.root.get("from").lower()[:500]:
        return None
    head = ctx.full_text[:8000]
    if _OPENING not in head or _CLOSING not in head:
        return None
    findings = detect_generic(ctx)
    return unknown_user_after_acceptance(findings) if findings else None
