"""The rules that pick one reason for a failure from its evidence.

A reason comes from three pieces of evidence: the remote server's words (the diagnostic text),
the RFC 3463 enhanced status code and the SMTP reply code. A status code that names a specific
reason decides; otherwise the phrase tables (`stmails.core.reasons.phrases`) are consulted,
then the status-code table, and the reply-code class is the last resort.
"""

from __future__ import annotations

import re
from functools import lru_cache

from stmails.core.reasons.phrases import REASON_PHRASES
from stmails.core.reasons.status import (
    DECISIVE_STATUSES,
    STATUS_OVERRIDABLE_BY,
    reason_from_status,
)

_TEXT_CAP = 4096
_TOKEN = re.compile(r"\w+")
_KEY = 4


def _build_index() -> tuple[dict[str, list[tuple[int, str, str]]], list[tuple[int, str, str]]]:
    # Phrases are indexed by the first characters of their first word, so a text is checked
    # only against the phrases whose first word it contains (a set intersection instead of
    # ~700 substring scans). Phrases without a word are always checked.
    index: dict[str, list[tuple[int, str, str]]] = {}
    always: list[tuple[int, str, str]] = []
    for rank, (reason, phrases) in enumerate(REASON_PHRASES):
        for phrase in phrases:
            entry = (rank, reason, phrase)
            first = _TOKEN.search(phrase)
            if first is None:
                always.append(entry)
            else:
                index.setdefault(first.group(0)[:_KEY], []).append(entry)
    return index, always


_INDEX, _ALWAYS = _build_index()
_INDEX_KEYS = frozenset(_INDEX)


def reason_from_text(text: str) -> str:
    """The first reason (in table order) whose phrase table matches `text`, or ""."""
    return _reason_from_text(text[:_TEXT_CAP])


# Cached (on at most 4 KB): a report's text is consulted once per recipient it names.
@lru_cache(maxsize=64)
def _reason_from_text(text: str) -> str:
    lowered = " ".join(text.lower().split())
    best_rank = len(REASON_PHRASES)
    best = ""
    keys = {token[:_KEY] for token in _TOKEN.findall(lowered)}
    for key in keys & _INDEX_KEYS:
        for rank, reason, phrase in _INDEX[key]:
            if rank >= best_rank:
                break
            if phrase in lowered:
                best_rank, best = rank, reason
                break
    for rank, reason, phrase in _ALWAYS:
        if rank < best_rank and phrase in lowered:
            best_rank, best = rank, reason
    return best


def match_reason(text: str, status: str = "", replycode: str = "") -> str:
    """Pick one reason of `REASONS` from a diagnostic text and optional status and reply codes.

    `status` is an RFC 3463 code ("5.1.1"), `replycode` an SMTP reply code ("550"); both may be
    empty. Delivered codes (2.x.x) give "delivered"; a status code that names a specific reason
    decides (`DECISIVE_STATUSES`, `STATUS_OVERRIDABLE_BY`); otherwise the text decides, then the
    status code, then the reply-code class ("onhold" for an unexplained temporary failure,
    "undefined" when nothing is known).
    """
    if status.startswith("2.") or (not status and replycode.startswith("2")):
        return "delivered"
    temporary = status.startswith("4") or (not status and replycode.startswith("4"))
    by_text = reason_from_text(text) if text else ""
    by_status = reason_from_status(status)
    if by_text == "hostunknown" and temporary:
        # A domain that does not resolve "for now" is a resolver problem, not a dead domain.
        return "networkerror"
    if by_status and status in STATUS_OVERRIDABLE_BY:
        allowed = STATUS_OVERRIDABLE_BY[status]
        return by_text if by_text in allowed else by_status
    if by_status and status in DECISIVE_STATUSES:
        return by_status
    if by_text:
        return by_text
    if by_status:
        return by_status
    return "onhold" if temporary else "undefined"
