"""The reading shared by the providers' text tables."""

from __future__ import annotations

Texts = tuple[tuple[str, tuple[str, ...]], ...]


def first_stated(texts: Texts, text: str) -> str:
    """The reason of the first row of `texts` (reason, lowercase fragments) with a fragment in
    `text` (any case), or ""."""
    lowered = text.lower()
    for reason, fragments in texts:
        if any(fragment in lowered for fragment in fragments):
            return reason
    return ""
