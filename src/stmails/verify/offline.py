"""The stages that need no network: syntax, disposable domains, role accounts, typo suggestions.

``OfflineVerifier.verify`` gives a full :class:`VerificationResult` for one address.
``OfflineVerifier.jsonl`` renders many addresses as JSON lines and is the bulk fast path: the
common case (ASCII dot-atom at an ASCII hostname) is answered from a per-domain cache of
pre-rendered JSON fragments, so a line costs one regular expression match, one set lookup
for the role check and a string concatenation. Anything else goes through ``verify`` and
``json.dumps``; both paths produce byte-identical records (a test holds them to that).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from stmails.verify.disposable import DisposableDomains, default_disposable_domains
from stmails.verify.result import Reason, Verdict, VerificationResult, combine
from stmails.verify.role import ROLE_LOCAL_PARTS
from stmails.verify.syntax import (
    COMMON_ADDRESS,
    MAX_ADDRESS_OCTETS,
    MAX_LOCAL_OCTETS,
    Policy,
    check_domain,
    check_syntax,
)
from stmails.verify.typo import TypoSuggester, default_suggester

__all__ = ["JSONL_FIELDS", "OFFLINE_STAGES", "OfflineVerifier", "record_json"]

OFFLINE_STAGES = ("syntax", "disposable", "role", "typo")
# The fields of one JSON-lines record, in order.
JSONL_FIELDS = (
    "address",
    "result",
    "reasons",
    "syntax_valid",
    "normalized",
    "suggestion",
    "detail",
)


def record_json(result: VerificationResult) -> str:
    """One compact JSON object with :data:`JSONL_FIELDS` (ASCII-only; non-ASCII is escaped)."""
    full = result.to_dict()
    return json.dumps({name: full[name] for name in JSONL_FIELDS}, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class _DomainFragments:
    """Pre-rendered JSON pieces for addresses at one domain (index 0: not a role, 1: a role)."""

    middle: tuple[str, str]
    normalized_domain: str
    suggestion_domain: str | None
    ascii_length: int


# Marks a domain the fast path must not answer (the policy rejects it): its length never fits.
_SLOW_PATH = _DomainFragments(("", ""), "", None, MAX_ADDRESS_OCTETS + 1)


class OfflineVerifier:
    """Runs the offline stages; each can be switched off, and each list is injectable."""

    def __init__(
        self,
        policy: Policy = Policy.MAILING,
        *,
        disposable: DisposableDomains | None = None,
        suggester: TypoSuggester | None = None,
        role_local_parts: frozenset[str] = ROLE_LOCAL_PARTS,
        check_disposable: bool = True,
        check_role: bool = True,
        suggest_typos: bool = True,
    ) -> None:
        self.policy = policy
        self._disposable = (
            (disposable or default_disposable_domains()) if check_disposable else None
        )
        self._suggester = (suggester or default_suggester()) if suggest_typos else None
        self._roles = role_local_parts if check_role else frozenset()
        self._fragments: dict[str, _DomainFragments] = {}

    def domain_reasons(self, ascii_domain: str) -> tuple[list[Reason], str | None]:
        """The domain-level reasons (disposable, typo) and the suggested domain, if any."""
        reasons: list[Reason] = []
        if self._disposable is not None and self._disposable.is_disposable(ascii_domain):
            reasons.append(Reason.DISPOSABLE)
        suggestion = self._suggester.suggest(ascii_domain) if self._suggester else None
        if suggestion is not None:
            reasons.append(Reason.TYPO)
        return reasons, suggestion

    def is_role(self, local: str) -> bool:
        """Whether the local part is a role account (``+tag`` ignored, case-insensitive)."""
        return local.partition("+")[0].lower() in self._roles

    def verify(self, address: str) -> VerificationResult:
        """The offline verdict for one address; never raises on any string."""
        syntax = check_syntax(address, self.policy)
        if not syntax.valid:
            return VerificationResult(
                address=address,
                result=Verdict.INVALID,
                reasons=(Reason.SYNTAX,),
                detail=syntax.error,
                stages=("syntax",),
            )
        assert syntax.local is not None and syntax.ascii_domain is not None
        reasons, suggested_domain = self.domain_reasons(syntax.ascii_domain)
        if self.is_role(syntax.local):
            reasons.insert(1 if Reason.DISPOSABLE in reasons else 0, Reason.ROLE)
        return VerificationResult(
            address=address,
            result=combine(reasons),
            reasons=tuple(reasons),
            syntax_valid=True,
            normalized=syntax.normalized,
            suggestion=f"{syntax.local}@{suggested_domain}" if suggested_domain else None,
            stages=OFFLINE_STAGES,
        )

    def jsonl(self, addresses: Iterable[str]) -> list[str]:
        """One JSON record (see :func:`record_json`) per address, in input order."""
        match = COMMON_ADDRESS.fullmatch
        fragments = self._fragments
        roles = self._roles
        out: list[str] = []
        append = out.append
        for address in addresses:
            # An over-long line goes to the full path, which refuses it before any caching.
            found = match(address) if len(address) <= MAX_ADDRESS_OCTETS else None
            if found is not None:
                local, domain = found.groups()
                parts = fragments.get(domain)
                if parts is None:
                    parts = self._domain_fragments(domain)
                # The slow-path marker's length fails this test, so rejected domains fall through.
                if (
                    len(local) <= MAX_LOCAL_OCTETS
                    and len(local) + parts.ascii_length <= MAX_ADDRESS_OCTETS
                ):
                    middle = parts.middle[local.partition("+")[0].lower() in roles]
                    if parts.suggestion_domain is None:
                        append(
                            f'{{"address":"{address}"{middle}{local}{parts.normalized_domain}'
                            '","suggestion":null,"detail":null}'
                        )
                    else:
                        append(
                            f'{{"address":"{address}"{middle}{local}{parts.normalized_domain}'
                            f'","suggestion":"{local}{parts.suggestion_domain}","detail":null}}'
                        )
                    continue
            append(record_json(self.verify(address)))
        return out

    def _domain_fragments(self, domain: str) -> _DomainFragments:
        """Renders (and caches) the per-domain JSON pieces, or the slow-path marker."""
        syntax = check_domain(domain)
        parts = _SLOW_PATH
        if syntax.error(self.policy) is None:
            reasons, suggestion = self.domain_reasons(syntax.ascii_domain)
            middles: list[str] = []
            for role in (False, True):
                line_reasons = list(reasons)
                if role:
                    line_reasons.insert(1 if Reason.DISPOSABLE in reasons else 0, Reason.ROLE)
                names = ",".join(f'"{reason.value}"' for reason in line_reasons)
                middles.append(
                    f',"result":"{combine(line_reasons).value}","reasons":[{names}],'
                    '"syntax_valid":true,"normalized":"'
                )
            parts = _DomainFragments(
                middle=(middles[0], middles[1]),
                normalized_domain=json.dumps("@" + syntax.unicode_domain)[1:-1],
                suggestion_domain=json.dumps("@" + suggestion)[1:-1] if suggestion else None,
                ascii_length=1 + len(syntax.ascii_domain),
            )
        # A bounded cache: a long tail of one-off domains must not grow memory without limit.
        if len(self._fragments) > 200_000:
            self._fragments.clear()
        self._fragments[domain] = parts
        return parts
