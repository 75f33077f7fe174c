"""Each reason's phrase table, one module per reason, and the scan that finds them in a text.

A module holds, for its reason:

- `PHRASES`: lowercase fragments of the diagnostic (whitespace collapsed), any of which states
  the reason: the vocabulary of Sisimai's reason classes and the providers' published error
  texts;
- `SEQUENCES` (optional): fragments that state the reason when they all occur in this order
  ("user " ... " does not exist");
- `EXCEPT` (optional): fragments that mean the phrases are about something else ("recipient
  address rejected" is not a refused sender);
- `LOOSE` (optional): broad words ("spam", "policy", "blacklist") consulted only when nothing
  else states any reason.

A phrase is looked for where a word of the text is its first word and the next word starts
like its second (a text is checked only against the phrases whose first two words it holds,
a set intersection instead of a thousand substring scans); a one-word phrase, where a word of
the text starts like it. `scan(text)` returns every reason the tables state, so that the
rules in `stmails.core.reasons.engine` can weigh them in their own order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import import_module
from itertools import pairwise
from pkgutil import iter_modules
from types import ModuleType
from typing import Final

# Every module of this package is the phrase table of the reason it is named after.
TABLES: Final[dict[str, ModuleType]] = {
    info.name: import_module(f"{__name__}.{info.name}")
    for info in sorted(iter_modules(__path__), key=lambda info: info.name)
}

# The order broad words are weighed in when nothing else states a reason: the most specific
# complaint first ("spam" in a policy refusal is the cause; "policy" alone says little).
LOOSE_ORDER: Final[tuple[str, ...]] = (
    "mailboxfull",
    "userunknown",
    "suspend",
    "virusdetected",
    "spamdetected",
    "authfailure",
    "requireptr",
    "badreputation",
    "blocked",
    "rejected",
    "filtered",
    "hostunknown",
    "notaccept",
    "mailererror",
    "contenterror",
    "exceedlimit",
    "toomanyconn",
    "networkerror",
    "expired",
    "systemerror",
    "securityerror",
    "syntaxerror",
    "policyviolation",
)

MAX_TEXT = 4096
_TOKEN = re.compile(r"\w+")
_KEY = 4

# Kinds of entries in the index.
_PHRASE, _SEQUENCE, _EXCEPT, _LOOSE = range(4)
_Entry = tuple[str, int, tuple[str, ...]]


def _key(fragment: str) -> str:
    """The index key of a fragment: its first word and the start of its second ("user
    unkn"), or the start of its only word ("spam")."""
    words = _TOKEN.findall(fragment[:100])
    if len(words) >= 2:
        return f"{words[0]} {words[1][:_KEY]}"
    return words[0][:_KEY] if words else ""


def _build() -> tuple[dict[str, list[_Entry]], list[_Entry]]:
    index: dict[str, list[_Entry]] = {}
    always: list[_Entry] = []
    for reason, module in TABLES.items():
        entries: list[_Entry] = []
        entries += [(reason, _PHRASE, (p,)) for p in getattr(module, "PHRASES", ())]
        entries += [(reason, _SEQUENCE, tuple(s)) for s in getattr(module, "SEQUENCES", ())]
        entries += [(reason, _EXCEPT, (p,)) for p in getattr(module, "EXCEPT", ())]
        entries += [(reason, _LOOSE, (p,)) for p in getattr(module, "LOOSE", ())]
        for entry in entries:
            key = _key(entry[2][0])
            if key:
                index.setdefault(key, []).append(entry)
            else:
                always.append(entry)
    return index, always


_INDEX, _ALWAYS = _build()
_INDEX_KEYS = frozenset(_INDEX)


def _text_keys(lowered: str) -> set[str]:
    """The keys a text offers: every word's start, and every word with the start of the
    word after it."""
    words = _TOKEN.findall(lowered)
    keys = {word[:_KEY] for word in words}
    keys.update(f"{first} {second[:_KEY]}" for first, second in pairwise(words))
    return keys


@dataclass(frozen=True, slots=True)
class Said:
    """What the phrase tables find in one text: the reasons its phrases state (`EXCEPT`
    applied) and the reasons only broad words suggest."""

    reasons: frozenset[str]
    loose: frozenset[str]

    def states(self, reason: str) -> bool:
        """True when a phrase or sequence of `reason`'s table occurs in the text."""
        return reason in self.reasons

    def first_loose(self) -> str:
        """The first reason in `LOOSE_ORDER` a broad word suggests, or ""."""
        for reason in LOOSE_ORDER:
            if reason in self.loose:
                return reason
        return ""


NOTHING = Said(frozenset(), frozenset())


def _in_order(text: str, fragments: tuple[str, ...]) -> bool:
    position = 0
    for fragment in fragments:
        found = text.find(fragment, position)
        if found < 0:
            return False
        position = found + len(fragment)
    return True


def normalize(text: str) -> str:
    """The form phrases are matched against: lowercase, whitespace collapsed, capped."""
    return " ".join(text[: MAX_TEXT * 2].lower().split())[:MAX_TEXT]


def scan(text: str) -> Said:
    """Every reason the tables state in `text` (any case, any whitespace)."""
    return _scan(normalize(text)) if text else NOTHING


# Cached (on at most 4 KB): a report's text is consulted once per recipient it names.
@lru_cache(maxsize=128)
def _scan(lowered: str) -> Said:
    stated: set[str] = set()
    loose: set[str] = set()
    excepted: set[str] = set()
    candidates = [entry for key in _text_keys(lowered) & _INDEX_KEYS for entry in _INDEX[key]]
    for reason, kind, fragments in candidates + _ALWAYS:
        if kind == _SEQUENCE:
            if reason not in stated and _in_order(lowered, fragments):
                stated.add(reason)
        elif fragments[0] in lowered:
            if kind == _PHRASE:
                stated.add(reason)
            elif kind == _EXCEPT:
                excepted.add(reason)
            else:
                loose.add(reason)
    return Said(frozenset(stated - excepted), frozenset(loose))


def phrases_of(reason: str) -> tuple[str, ...]:
    """The `PHRASES` of one reason's table (empty for reasons without one)."""
    module = TABLES.get(reason)
    return tuple(getattr(module, "PHRASES", ())) if module is not None else ()


__all__ = ["LOOSE_ORDER", "NOTHING", "TABLES", "Said", "normalize", "phrases_of", "scan"]
