"""fml mailing-list manager notices: a post refused because the sender is not a member, or a
message dropped as a loop. They name the affected address in the subject or the text."""

from __future__ import annotations

import re

from stmails.core.context import Context
from stmails.core.fields import ADDRESS, clean_address, collapse
from stmails.core.finding import Finding

_NOT_MEMBER = re.compile(r"not (?:a )?member", re.IGNORECASE)
_LOOP = re.compile(r"loop|duplicated message-id", re.IGNORECASE)


def detect_fml(ctx: Context) -> list[Finding] | None:
    """One finding for an fml notice (X-MLServer: fml), or None."""
    if not ctx.root.get("x-mlserver").lower().startswith("fml"):
        return None
    text = ctx.bounce_text
    if _NOT_MEMBER.search(ctx.subject) or _NOT_MEMBER.search(text[:2000]):
        reason = "rejected"
    elif _LOOP.search(ctx.subject) or _LOOP.search(text[:2000]):
        reason = "systemerror"
    else:
        return None
    for source in (ctx.subject, text[:2000]):
        for match in ADDRESS.finditer(source):
            address = clean_address(match.group(0))
            if address and address != ctx.sender:
                diagnostic = collapse(text, 300)
                return [Finding(recipient=address, reason=reason, diagnostic=diagnostic)]
    return None
