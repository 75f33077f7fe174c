"""Google Groups refusals: a post to a group that does not exist or does not accept the sender.

Google sends them from mailer-daemon with the group's address in X-Failed-Recipients and a
localized explanation that carries no SMTP code; the sender was refused, so the reason is
"rejected" (the group address itself may well exist).
"""

from __future__ import annotations

from stmails.core.context import Context
from stmails.core.fields import ADDRESS, clean_address, collapse
from stmails.core.finding import Finding

GROUP_DOMAIN = "@googlegroups.com"


def detect_googlegroups(ctx: Context) -> list[Finding] | None:
    """One "rejected" finding per group named in X-Failed-Recipients, or None."""
    failed = ctx.root.get("x-failed-recipients").lower()
    if GROUP_DOMAIN not in failed or not ctx.sender.endswith(("google.com", "googlemail.com")):
        return None
    groups = [clean_address(m.group(0)) for m in ADDRESS.finditer(failed[:4000])]
    diagnostic = collapse(ctx.bounce_text, 500)
    return [
        Finding(recipient=group, reason="rejected", diagnostic=diagnostic, action="failed")
        for group in dict.fromkeys(groups)
        if group.endswith(GROUP_DOMAIN)
    ] or None
