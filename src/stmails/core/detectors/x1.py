"""Mail2000-style reports ("Unknown MTA #1" in Sisimai's catalogue).

The reporting server signs as `"Mail Deliver System" <MAILER-DAEMON...>` with the subject
"Returned Mail: <cause>", opens with "The original message was received at <date>" and lists
each recipient as `address [cause]` under "---The following addresses had delivery errors---".
The report comes after the server accepted the message, so its failures are post-acceptance.
"""

from __future__ import annotations

from stmails.core.context import Context
from stmails.core.detectors.accepted import unknown_user_after_acceptance
from stmails.core.finding import Finding
from stmails.core.generic import detect_generic

_FROM_NAME = "mail deliver system"
_OPENING = "The original message was received at "


def detect_x1(ctx: Context) -> list[Finding] | None:
    """The findings of a Mail2000-style report, or None for any other message."""
    if not ctx.subject.startswith("Returned Mail: "):
        return None
    # The display name, quoted or not.
    if not ctx.root.get("from").lower().lstrip(' \t"').startswith(_FROM_NAME):
        return None
    if _OPENING not in ctx.bounce_text[:4000]:
        return None
    findings = detect_generic(ctx)
    return unknown_user_after_acceptance(findings) if findings else None
