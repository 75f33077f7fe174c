"""Receiving providers' own refusal codes: a code in a reply names its cause more precisely than
the generic words around it. One module per provider holds its documented code table."""

from __future__ import annotations

import re

from stmails.core.reasons.providers.cox import COX_CODE_REASONS
from stmails.core.reasons.providers.orange import ORANGE_CODE_REASONS
from stmails.core.reasons.providers.yahoo import YAHOO_CODE_REASONS

_TEXT_CAP = 4096
# One scan finds any provider's code: Orange's in group 1, Cox's in group 2, Yahoo's in 3.
_PROVIDER_CODE = re.compile(
    r"\b(?:(?:lpn|lpnaaa|ofr|ouk)(?:_|\d{3}[-_])(\d{3})\b|aup#([0-9a-z]+))"
    r"|\[((?:tss|bl|ph)\d{2})\]"
)
# Substrings every provider code contains: texts without any skip the pattern scan.
_PROVIDER_CODE_HINTS = ("lpn", "ofr", "ouk", "aup#", "yahoo")


def reason_from_provider_code(text: str) -> str:
    """The reason a provider's own refusal code in `text` names (Orange/La Poste, Cox, Yahoo),
    or ""."""
    lowered = text[:_TEXT_CAP].lower()
    if not any(hint in lowered for hint in _PROVIDER_CODE_HINTS):
        return ""
    found = _PROVIDER_CODE.search(lowered)
    if found is None:
        return ""
    if found.group(1):
        return ORANGE_CODE_REASONS.get(found.group(1), "")
    if found.group(2):
        code = found.group(2).upper()
        if code.startswith("IPBL"):
            return "blocked"
        if code.startswith("URLBL"):
            return "spamdetected"
        return COX_CODE_REASONS.get(code, "")
    if found.group(3) and "yahoo" in lowered:
        return YAHOO_CODE_REASONS.get(found.group(3).upper(), "")
    return ""


__all__ = [
    "COX_CODE_REASONS",
    "ORANGE_CODE_REASONS",
    "YAHOO_CODE_REASONS",
    "reason_from_provider_code",
]
