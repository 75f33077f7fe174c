"""The closed reason vocabulary and the rules that pick one reason for a failure.

The package keeps Sisimai's layout of the facts: the vocabulary (`vocabulary`), each reason's
phrase table in a module of its own (`phrases`), the enhanced status code tables (`status`),
the receiving providers' documented codes and texts, one module per provider (`receivers`),
the reporting MTAs' own sentences (`mtas`), and the rules that weigh them (`engine`). The
names below are the public API, importable as `from stmails.core.reasons import ...`.
"""

from typing import Final

from stmails.core.reasons.engine import (
    SMTP_ORDER,
    TEXT_ORDER,
    Evidence,
    decide,
    match_reason,
    reason_from_text,
)
from stmails.core.reasons.mtas import MTA_MESSAGES, stated_by_mta
from stmails.core.reasons.phrases import TABLES, Said, phrases_of, scan
from stmails.core.reasons.receivers import (
    COX_CODE_REASONS,
    ORANGE_CODE_REASONS,
    RECEIVERS,
    YAHOO_CODE_REASONS,
    reason_from_provider_code,
    reason_from_receiver,
    receiver_for,
)
from stmails.core.reasons.status import (
    REASON_STATUS_DETAIL,
    STATUS_REASONS,
    infer_status,
    reason_from_status,
)
from stmails.core.reasons.vocabulary import (
    HARD_REASONS,
    NON_FAILURE_REASONS,
    REASONS,
    REVISABLE_REASONS,
    is_hard,
)

# Every reason's phrases, in the order the SMTP checks and then the text checks consult them.
REASON_PHRASES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = tuple(
    (reason, phrases_of(reason))
    for reason in dict.fromkeys([name for name, _ in SMTP_ORDER] + list(TEXT_ORDER))
)

__all__ = [
    "COX_CODE_REASONS",
    "HARD_REASONS",
    "MTA_MESSAGES",
    "NON_FAILURE_REASONS",
    "ORANGE_CODE_REASONS",
    "REASONS",
    "REASON_PHRASES",
    "REASON_STATUS_DETAIL",
    "RECEIVERS",
    "REVISABLE_REASONS",
    "SMTP_ORDER",
    "STATUS_REASONS",
    "TABLES",
    "TEXT_ORDER",
    "YAHOO_CODE_REASONS",
    "Evidence",
    "Said",
    "decide",
    "infer_status",
    "is_hard",
    "match_reason",
    "reason_from_provider_code",
    "reason_from_receiver",
    "reason_from_status",
    "reason_from_text",
    "receiver_for",
    "scan",
    "stated_by_mta",
]
