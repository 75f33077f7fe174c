"""How deeply a parsed JSON value nests, measured without recursion.

Python's own JSON encoder and decoder (and code that walks values recursively) fail with
RecursionError near a thousand levels, and orjson reads up to 1,024: a value from outside is
refused past MAX_JSON_DEPTH levels where it is read, so nothing downstream meets such nesting.
"""

from __future__ import annotations

from typing import Any

# Levels of arrays and objects a value from outside may nest.
MAX_JSON_DEPTH = 64


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the lists and dicts in `value` nest more than `limit` levels."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
