"""The delegated top-level domains (IANA's root zone list), shipped with stmails, read offline.

The list is a snapshot (see ``data/README.md`` for its version): a TLD delegated after it was
taken is missing from it, so the list is used only where a miss costs nothing, to decide that a
typed top-level name is a typo (``comcast.nry``), never to refuse an address.
"""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["delegated_tlds", "is_delegated_tld", "tld_list_version"]

_DATA_FILE = "tlds-alpha-by-domain.txt"


def _read() -> tuple[str, frozenset[str]]:
    text = resources.files("stmails.verify").joinpath("data", _DATA_FILE).read_text("ascii")
    version = ""
    names: set[str] = set()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            if not version and "version" in line.lower():
                version = line.lower().split("version", 1)[1].strip(" .:").split()[0].rstrip(".,")
            continue
        if line:
            names.add(line.lower())
    return version, frozenset(names)


@functools.cache
def _loaded() -> tuple[str, frozenset[str]]:
    return _read()


def delegated_tlds() -> frozenset[str]:
    """Every delegated top-level domain, lower-case (IDN TLDs as A-labels, ``xn--...``)."""
    return _loaded()[1]


def is_delegated_tld(label: str) -> bool:
    """Whether ``label`` (any case; an IDN TLD as its A-label) is a delegated top-level domain."""
    return label.lower() in _loaded()[1]


def tld_list_version() -> str:
    """The version of the shipped list (IANA's ``Version`` stamp, e.g. ``2026102900``)."""
    return _loaded()[0]
