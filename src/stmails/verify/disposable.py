"""Disposable (throw-away) mail domains, from the maintained disposable-email-domains list."""

from __future__ import annotations

from collections.abc import Iterable

import disposable_email_domains

__all__ = ["DisposableDomains", "default_disposable_domains"]


class DisposableDomains:
    """Answers whether a domain belongs to a disposable-mail service.

    A domain matches when it or any parent domain below the top level is on the blocklist
    (``x.mailinator.com`` is disposable because ``mailinator.com`` is), which covers the
    registrable domain without a public-suffix table. A domain on the allowlist, or under an
    allowlisted parent, never matches: the allowlist corrects the list's false positives.
    """

    def __init__(self, blocklist: Iterable[str], allowlist: Iterable[str] = ()) -> None:
        self._blocked = frozenset(d.lower().strip(".") for d in blocklist)
        self._allowed = frozenset(d.lower().strip(".") for d in allowlist)
        self._cache: dict[str, bool] = {}

    def is_disposable(self, domain: str) -> bool:
        """Whether ``domain`` (ASCII or A-label form, any case) is disposable."""
        cached = self._cache.get(domain)
        if cached is None:
            cached = self._lookup(domain.lower().rstrip("."))
            # A bounded cache: bulk work sees a long tail of one-off domains.
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[domain] = cached
        return cached

    def _lookup(self, domain: str) -> bool:
        labels = domain.split(".")
        # Walk from the full name up to the second level; the first list that names a suffix
        # decides, the allowlist first, so that an allowlisted subdomain stays allowed.
        for start in range(len(labels) - 1):
            candidate = ".".join(labels[start:])
            if candidate in self._allowed:
                return False
            if candidate in self._blocked:
                return True
        return False


_DEFAULT: DisposableDomains | None = None


def default_disposable_domains() -> DisposableDomains:
    """The shared instance built from the packaged blocklist and allowlist (built once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = DisposableDomains(
            disposable_email_domains.blocklist, disposable_email_domains.allowlist
        )
    return _DEFAULT
