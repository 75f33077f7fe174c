"""Typo suggestions for the domain of an address (gmial.com -> gmail.com, gmail.con -> gmail.com).

A suggestion is offered only when it is very likely right; otherwise the stage abstains:

1. A domain on the list of known mailbox providers (or the caller's extra known domains) is
   never corrected: ``proton.me``, ``pm.me`` and ``hey.com`` are real.
2. A top-level name that is a known mistyping of a common one and is not itself a delegated
   TLD (``con``, ``cmo``, ``ogr``...) is corrected (``example.con`` -> ``example.com``).
3. The domain (after step 2) is compared with the known providers by optimal string alignment
   distance (insertions, deletions, substitutions, adjacent transpositions). A provider is a
   candidate at distance 1 only if its name (the part before the public suffix) has at least 5
   characters: short names (``mail.com``, ``gmx.de``, ``aol.com``) have too many real
   neighbours (``mailw.com`` is a real domain), so they are never suggested by distance.
4. A top-level name that is not delegated at all (IANA's root zone list, shipped offline in
   ``data/``) cannot receive mail, so when the rest of the domain is exactly a provider's
   name, that provider's suffix within distance 2 is suggested (``comcast.nry`` ->
   ``comcast.net``).
5. More than one candidate at the best distance is a tie. A tie is settled only when exactly
   one of the tied candidates is one of the few global providers that hold most mailboxes
   (:data:`DOMINANT_MAILBOX_DOMAINS`): ``hotmail.co`` is one edit from both ``hotmail.com``
   and ``hotmail.ca``, and the first is far more common. Any other tie abstains.

Candidates are found with a symmetric-deletion index, so a lookup costs a few dictionary probes
rather than a comparison with every provider.
"""

from __future__ import annotations

from collections.abc import Iterable

from stmails.verify.tlds import is_delegated_tld

__all__ = [
    "DOMINANT_MAILBOX_DOMAINS",
    "KNOWN_MAILBOX_DOMAINS",
    "REGIONAL_MAILBOX_DOMAINS",
    "TLD_TYPOS",
    "TypoSuggester",
    "default_suggester",
]

# Widely used mailbox providers, by region. Both targets for corrections and real domains the
# stage must leave alone.
KNOWN_MAILBOX_DOMAINS = frozenset(
    {
        # Global.
        "gmail.com", "googlemail.com", "yahoo.com", "ymail.com", "rocketmail.com",
        "hotmail.com", "outlook.com", "live.com", "msn.com", "icloud.com", "me.com", "mac.com",
        "aol.com", "aim.com", "protonmail.com", "protonmail.ch", "proton.me", "pm.me",
        "zoho.com", "zohomail.com", "gmx.com", "gmx.net", "mail.com", "email.com", "yandex.com",
        "fastmail.com", "fastmail.fm", "hey.com", "tutanota.com", "tuta.io", "hushmail.com",
        "inbox.com", "mailbox.org", "posteo.de", "posteo.net", "duck.com",
        # North America.
        "comcast.net", "verizon.net", "att.net", "sbcglobal.net", "bellsouth.net", "cox.net",
        "charter.net", "earthlink.net", "juno.com", "optonline.net", "frontier.com",
        "windstream.net", "centurylink.net", "q.com", "shaw.ca", "rogers.com", "sympatico.ca",
        "telus.net", "videotron.ca", "bell.net", "yahoo.ca", "hotmail.ca",
        # Europe.
        "yahoo.co.uk", "hotmail.co.uk", "outlook.co.uk", "live.co.uk", "btinternet.com",
        "sky.com", "virginmedia.com", "talktalk.net", "ntlworld.com", "blueyonder.co.uk",
        "gmx.de", "web.de", "t-online.de", "freenet.de", "arcor.de", "online.de", "yahoo.de",
        "hotmail.de", "outlook.de", "gmx.at", "gmx.ch", "bluewin.ch", "orange.fr", "wanadoo.fr",
        "free.fr", "laposte.net", "sfr.fr", "neuf.fr", "yahoo.fr", "hotmail.fr", "outlook.fr",
        "live.fr", "libero.it", "virgilio.it", "alice.it", "tiscali.it", "yahoo.it",
        "hotmail.it", "outlook.it", "live.it", "telefonica.net", "yahoo.es", "hotmail.es",
        "outlook.es", "terra.es", "ziggo.nl", "kpnmail.nl", "planet.nl", "home.nl",
        "hotmail.nl", "live.nl", "telenet.be", "skynet.be", "hotmail.be", "seznam.cz",
        "centrum.cz", "wp.pl", "o2.pl", "onet.pl", "interia.pl", "op.pl", "yandex.ru",
        "mail.ru", "bk.ru", "inbox.ru", "list.ru", "rambler.ru", "ya.ru", "ukr.net",
        "abv.bg", "freemail.hu", "sapo.pt", "hotmail.se", "telia.com", "online.no",
        # Asia, Oceania, Latin America, Africa.
        "qq.com", "163.com", "126.com", "yeah.net", "sina.com", "sohu.com", "foxmail.com",
        "aliyun.com", "naver.com", "daum.net", "hanmail.net", "yahoo.co.jp", "docomo.ne.jp",
        "ezweb.ne.jp", "softbank.ne.jp", "rediffmail.com", "yahoo.co.in", "yahoo.com.sg",
        "yahoo.com.au", "bigpond.com", "bigpond.net.au", "optusnet.com.au", "xtra.co.nz",
        "yahoo.com.br", "hotmail.com.br", "bol.com.br", "uol.com.br", "terra.com.br",
        "yahoo.com.mx", "hotmail.com.mx", "prodigy.net.mx", "yahoo.com.ar", "hotmail.com.ar",
        "yahoo.com.ph", "yahoo.com.tw", "yahoo.com.hk", "netvigator.com", "mweb.co.za",
        "webmail.co.za",
    }
)  # fmt: skip

# The global providers that hold most of the world's mailboxes (each counts its users in the
# hundreds of millions). In a tie between one of them and a smaller provider, the dominant one is
# far more likely to be what was meant (rule 5). Every one of them is in KNOWN_MAILBOX_DOMAINS.
DOMINANT_MAILBOX_DOMAINS = frozenset(
    {
        "gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com", "icloud.com",
        "aol.com", "qq.com", "163.com",
    }
)  # fmt: skip

# The big webmail brands run one domain per country; every one of them is real, so none may be
# "corrected" into another (hotmail.cz is not a typo of hotmail.ca).
_REGIONAL_SUFFIXES = (
    "com", "co.uk", "fr", "de", "es", "it", "nl", "be", "ch", "at", "se", "dk", "no", "fi",
    "pl", "pt", "gr", "ie", "cz", "sk", "hu", "ro", "ca", "com.br", "com.mx", "com.ar", "cl",
    "co.jp", "co.kr", "co.in", "com.au", "co.nz", "com.sg", "com.ph", "com.tw", "com.hk",
    "co.id", "co.th", "com.vn", "com.tr", "co.za", "co.il", "sa", "my", "rs", "lv",
)  # fmt: skip
REGIONAL_MAILBOX_DOMAINS = frozenset(
    f"{brand}.{suffix}"
    for brand in ("hotmail", "outlook", "yahoo", "yandex")
    for suffix in (*_REGIONAL_SUFFIXES, "ru", "ua", "by", "kz")
)

# Mistyped top-level names that are not delegated TLDs, and what was meant. Real ccTLDs that
# look like typos (.co, .cm, .om, .ne) are deliberately absent: they hold real domains.
TLD_TYPOS: dict[str, str] = {
    "con": "com", "cmo": "com", "ocm": "com", "cpm": "com", "vom": "com", "xom": "com",
    "comm": "com", "coom": "com", "ccom": "com", "comn": "com", "cim": "com", "c0m": "com",
    "clm": "com", "coim": "com", "cokm": "com", "conm": "com", "copm": "com", "dom": "com",
    "nte": "net", "nett": "net", "ner": "net", "nwt": "net", "met": "net",
    "ogr": "org", "orgg": "org", "rog": "org", "prg": "org", "irg": "org",
    "couk": "co.uk", "co.uj": "co.uk", "co.ul": "co.uk", "cojp": "co.jp",
}  # fmt: skip

# Second-level names shorter than this are never suggested by edit distance (rules 3 and 4).
MIN_NAME_LENGTH = 5
# How far an undelegated top-level name may be from the provider's suffix (rule 4).
MAX_SUFFIX_DISTANCE = 2
# Public suffixes of the providers above that have two labels; the name precedes them.
_TWO_LABEL_SUFFIXES = ("co.uk", "co.jp", "ne.jp", "co.in", "co.nz", "co.za", "net.au")


def _provider_name(domain: str) -> str:
    """The part of a provider domain before its public suffix (``yahoo`` in ``yahoo.co.uk``)."""
    labels = domain.split(".")
    if len(labels) >= 3 and (
        ".".join(labels[-2:]) in _TWO_LABEL_SUFFIXES or labels[-2] in ("com", "net", "co")
    ):
        return ".".join(labels[:-2])
    return ".".join(labels[:-1])


_NOTHING: frozenset[str] = frozenset()


def _deletions(text: str) -> set[str]:
    return {text[:i] + text[i + 1 :] for i in range(len(text))}


def osa_distance(first: str, second: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions)."""
    previous2: list[int] = []
    previous = list(range(len(second) + 1))
    for i, a in enumerate(first, start=1):
        current = [i] + [0] * len(second)
        for j, b in enumerate(second, start=1):
            cost = 0 if a == b else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a == second[j - 2] and first[i - 2] == b:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


class TypoSuggester:
    """Suggests a corrected domain, or abstains (see the module docstring for the rules)."""

    def __init__(self, known_domains: Iterable[str], extra_known: Iterable[str] = ()) -> None:
        targets = frozenset(d.lower() for d in known_domains)
        self._known = targets | frozenset(d.lower() for d in extra_known)
        # Symmetric-deletion index over the targets eligible for distance corrections, and the
        # same targets by provider name (rule 4).
        self._index: dict[str, set[str]] = {}
        self._by_name: dict[str, set[str]] = {}
        for target in targets:
            name = _provider_name(target)
            if len(name) < MIN_NAME_LENGTH:
                continue
            self._by_name.setdefault(name, set()).add(target)
            for key in _deletions(target) | {target}:
                self._index.setdefault(key, set()).add(target)
        self._cache: dict[str, str | None] = {}

    def suggest(self, domain: str) -> str | None:
        """A corrected domain for ``domain`` (lower-case ASCII/A-label), or None to abstain."""
        if domain in self._cache:
            return self._cache[domain]
        suggestion = self._suggest(domain)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[domain] = suggestion
        return suggestion

    def _suggest(self, domain: str) -> str | None:
        if domain in self._known:
            return None
        fixed = self._fix_tld(domain)
        if fixed in self._known:
            return fixed
        candidates: set[str] = set()
        for key in _deletions(fixed) | {fixed}:
            candidates |= self._index.get(key, _NOTHING)
        close = {c for c in candidates if osa_distance(fixed, c) == 1}
        if close:
            return _settle(close)
        if fixed != domain:
            # Only the TLD correction applies, and it is certain enough on its own.
            return fixed
        return self._same_name(domain)

    def _same_name(self, domain: str) -> str | None:
        """Rule 4: an undelegated top-level name after exactly a provider's name."""
        labels = domain.split(".")
        if len(labels) < 2 or is_delegated_tld(labels[-1]):
            return None
        name = _provider_name(domain)
        suffix = domain[len(name) + 1 :]
        by_distance: dict[int, set[str]] = {}
        for target in self._by_name.get(name, _NOTHING):
            distance = osa_distance(suffix, target[len(name) + 1 :])
            if distance <= MAX_SUFFIX_DISTANCE:
                by_distance.setdefault(distance, set()).add(target)
        if not by_distance:
            return None
        return _settle(by_distance[min(by_distance)])

    @staticmethod
    def _fix_tld(domain: str) -> str:
        labels = domain.split(".")
        # Two-label typos first ("co.uj"), then the top label alone.
        for count in (2, 1):
            if len(labels) > count:
                tail = ".".join(labels[-count:])
                meant = TLD_TYPOS.get(tail)
                if meant is not None:
                    return domain[: -len(tail)] + meant
        return domain


def _settle(tied: set[str]) -> str | None:
    """The one candidate of equally close ones, or None when the tie stands (rule 5)."""
    if len(tied) == 1:
        return next(iter(tied))
    dominant = tied & DOMINANT_MAILBOX_DOMAINS
    return dominant.pop() if len(dominant) == 1 else None


_DEFAULT: TypoSuggester | None = None


def default_suggester() -> TypoSuggester:
    """The shared suggester over :data:`KNOWN_MAILBOX_DOMAINS` (built once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = TypoSuggester(KNOWN_MAILBOX_DOMAINS, REGIONAL_MAILBOX_DOMAINS)
    return _DEFAULT
