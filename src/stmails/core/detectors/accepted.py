"""A rule shared by the formats whose reports are written after the message was accepted."""

from __future__ import annotations

from stmails.core.finding import Finding
from stmails.core.reasons import match_reason


def unknown_user_after_acceptance(findings: list[Finding]) -> list[Finding]:
    """Mark the unknown-user failures of a post-acceptance report as `filtered`.

    Such a report names no SMTP phase because there was none left: the server took the
    message and its delivery stage refused the recipient afterwards. An unknown-user refusal
    after acceptance is the destination's filter, as the classifier reads one at DATA.
    """
    for finding in findings:
        decided = match_reason(finding.diagnostic, finding.status, finding.replycode)
        if not finding.reason and decided == "userunknown":
            finding.reason = "filtered"
    return findings
