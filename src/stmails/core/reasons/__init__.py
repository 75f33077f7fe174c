"""The closed reason vocabulary and the rules that pick one reason for a failure.

The package keeps Sisimai's layout: the vocabulary (`vocabulary`), each reason's phrase table in
a module of its own (`phrases`), the enhanced status code tables (`status`), the receiving
providers' own code tables (`providers`), and the rules that weigh them (`engine`). The names
below are the public API, importable as `from stmails.core.reasons import ...`.
"""

from stmails.core.reasons.engine import match_reason, reason_from_text
from stmails.core.reasons.phrases import REASON_PHRASES
from stmails.core.reasons.providers import (
    COX_CODE_REASONS,
    ORANGE_CODE_REASONS,
    YAHOO_CODE_REASONS,
    reason_from_provider_code,
)
from stmails.core.reasons.status import (
    DECISIVE_STATUSES,
    REASON_STATUS_DETAIL,
    STATUS_OVERRIDABLE_BY,
    STATUS_REASONS,
    TEXT_FIRST_REASONS,
    infer_status,
    reason_from_status,
)
from stmails.core.reasons.vocabulary import HARD_REASONS, NON_FAILURE_REASONS, REASONS, is_hard

__all__ = [
    "COX_CODE_REASONS",
    "DECISIVE_STATUSES",
    "HARD_REASONS",
    "NON_FAILURE_REASONS",
    "ORANGE_CODE_REASONS",
    "REASONS",
    "REASON_PHRASES",
    "REASON_STATUS_DETAIL",
    "STATUS_OVERRIDABLE_BY",
    "STATUS_REASONS",
    "TEXT_FIRST_REASONS",
    "YAHOO_CODE_REASONS",
    "infer_status",
    "is_hard",
    "match_reason",
    "reason_from_provider_code",
    "reason_from_status",
    "reason_from_text",
]
