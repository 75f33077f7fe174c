"""McAfee Email Gateway (Email and Web Security Appliance) delivery reports.

The gateway marks its reports with `X-NAI-Header: Modified by McAfee ...` and the subject
"Delivery Status"; it lists each recipient as `<address>   (diagnostic)` under
"--- The following addresses had delivery problems ---" and usually attaches a
message/delivery-status part. The gateway validates recipients itself, and its own
unknown-user wordings ("No such user", "User not exist", "Unknown user", "User (x) unknown.")
state that the mailbox does not exist, whatever SMTP phase the report names.
"""

from __future__ import annotations

import re

from stmails.core.context import Context
from stmails.core.fields import clean_address, find_replycode, find_status
from stmails.core.finding import Finding
from stmails.core.standard import detect_dsn

_LISTED = re.compile(r"^[ \t]*<([^<>\s@]{1,64}@[^<>\s]{1,255})>[ \t]+\((.{1,1000})\)[ \t]*$", re.M)
_UNKNOWN_USER = re.compile(
    r"no such user|user not exist|unknown user|user \(.{1,300}\) unknown\.", re.IGNORECASE
)
_LIST_HEADING = "--- The following addresses had delivery problems ---"


def detect_mcafee(ctx: Context) -> list[Finding] | None:
    """The findings of a McAfee gateway report, or None for any other message."""
    if not ctx.root.get("x-nai-header").startswith("Modified by McAfee "):
        return None
    if ctx.subject.strip() != "Delivery Status":
        return None
    findings = detect_dsn(ctx)
    if not findings:
        text = ctx.bounce_text
        start = text.find(_LIST_HEADING)
        if start < 0:
            return None
        findings = []
        for match in _LISTED.finditer(text[start : start + 8000]):
            diagnostic = match.group(2)
            status = find_status(diagnostic)
            findings.append(
                Finding(
                    recipient=clean_address(match.group(1)),
                    diagnostic=diagnostic,
                    status=status,
                    replycode=find_replycode(diagnostic, status),
                    action="failed",
                )
            )
    for finding in findings:
        if not finding.reason and _UNKNOWN_USER.search(finding.diagnostic[:1000]):
            finding.reason = "userunknown"
    return findings or None
