"""The verdict vocabulary: results, reason codes and the per-address result record."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Reason", "Verdict", "VerificationResult", "combine"]


class Verdict(enum.StrEnum):
    """The overall answer for an address.

    ``valid``: every stage that ran accepted it. ``invalid``: a stage proved it undeliverable.
    ``risky``: deliverable as far as we know, but likely to hurt (disposable, role, catch-all,
    typo). ``unknown``: a stage could not decide (timeouts, SERVFAIL, greylisting, blocks).
    """

    VALID = "valid"
    INVALID = "invalid"
    RISKY = "risky"
    UNKNOWN = "unknown"


class Reason(enum.StrEnum):
    """Machine-readable reason codes; a closed vocabulary shared by every stage."""

    SYNTAX = "syntax"
    NO_MX = "no_mx"
    NULL_MX = "null_mx"
    NXDOMAIN = "nxdomain"
    MAILBOX_NOT_FOUND = "mailbox_not_found"
    MAILBOX_FULL = "mailbox_full"
    DISABLED = "disabled"
    CATCH_ALL = "catch_all"
    ACCEPT_ALL = "accept_all"
    DISPOSABLE = "disposable"
    ROLE = "role"
    GREYLISTED = "greylisted"
    BLOCKED = "blocked"
    TIMEOUT = "timeout"
    TYPO = "typo"


# Which verdict a reason implies on its own; combine() keeps the worst one.
REASON_VERDICT: dict[Reason, Verdict] = {
    Reason.SYNTAX: Verdict.INVALID,
    Reason.NO_MX: Verdict.INVALID,
    Reason.NULL_MX: Verdict.INVALID,
    Reason.NXDOMAIN: Verdict.INVALID,
    Reason.MAILBOX_NOT_FOUND: Verdict.INVALID,
    Reason.MAILBOX_FULL: Verdict.RISKY,
    Reason.DISABLED: Verdict.INVALID,
    Reason.CATCH_ALL: Verdict.RISKY,
    Reason.ACCEPT_ALL: Verdict.RISKY,
    Reason.DISPOSABLE: Verdict.RISKY,
    Reason.ROLE: Verdict.RISKY,
    Reason.GREYLISTED: Verdict.UNKNOWN,
    Reason.BLOCKED: Verdict.UNKNOWN,
    Reason.TIMEOUT: Verdict.UNKNOWN,
    Reason.TYPO: Verdict.RISKY,
}

# Severity order: a proof of undeliverability beats "could not decide", which beats a risk.
_SEVERITY = {Verdict.VALID: 0, Verdict.RISKY: 1, Verdict.UNKNOWN: 2, Verdict.INVALID: 3}


def combine(reasons: Iterable[Reason]) -> Verdict:
    """The verdict implied by a set of reasons: the most severe one, or valid when empty."""
    verdict = Verdict.VALID
    for reason in reasons:
        candidate = REASON_VERDICT[reason]
        if _SEVERITY[candidate] > _SEVERITY[verdict]:
            verdict = candidate
    return verdict


# Not frozen: bulk work builds millions of these, and a frozen dataclass costs several times
# more to construct. Treat instances as values all the same; stages make changed copies.
@dataclass(slots=True)
class VerificationResult:
    """Everything the verifier found out about one address.

    ``address`` is the input as given; ``normalized`` the canonical form when the syntax is
    accepted; ``suggestion`` a corrected address when a typo is likely; ``detail`` a human
    explanation of the deciding reason; ``smtp_reply`` the raw reply of a probe (code and text);
    ``retry_after`` seconds to wait before trying again after greylisting; ``mx`` the mail
    hosts found; ``stages`` the stages that actually ran.
    """

    address: str
    result: Verdict
    reasons: tuple[Reason, ...] = ()
    syntax_valid: bool = False
    normalized: str | None = None
    suggestion: str | None = None
    detail: str | None = None
    smtp_reply: str | None = None
    retry_after: int | None = None
    mx: tuple[str, ...] = ()
    stages: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping with stable field names (the API, CSV and JSONL use it)."""
        return {
            "address": self.address,
            "result": self.result.value,
            "reasons": [reason.value for reason in self.reasons],
            "syntax_valid": self.syntax_valid,
            "normalized": self.normalized,
            "suggestion": self.suggestion,
            "detail": self.detail,
            "smtp_reply": self.smtp_reply,
            "retry_after": self.retry_after,
            "mx": list(self.mx),
            "stages": list(self.stages),
        }
