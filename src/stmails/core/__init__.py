"""stmails.core: pure bounce-mail classification (standard library only, no I/O).

Public API:
- `classify(raw)`: the raw bytes of one message -> a list of `BounceRecord`, one per recipient
  the message reports on (empty for ordinary mail).
- `match_reason(text, status, replycode)`: diagnostic text and optional codes -> one reason of
  the closed vocabulary `REASONS` (reused by the ESP webhook adapters).
- `is_hard(reason, status)`, `bounce_type(record)`.
"""

from stmails.core.classifier import classify_message
from stmails.core.reasons import REASONS, is_hard, match_reason
from stmails.core.record import BounceRecord, bounce_type

__all__ = ["REASONS", "BounceRecord", "bounce_type", "classify", "is_hard", "match_reason"]


def classify(raw: bytes) -> list[BounceRecord]:
    """Classify one message given as raw bytes (any line ends); never raises on bad input."""
    return classify_message(raw)
