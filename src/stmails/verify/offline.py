"""The stages that need no network: syntax, disposable domains, role accounts, typo suggestions.

``OfflineVerifier.verify_full`` runs the stages one by one and is the reference.
``OfflineVerifier.verify`` gives the same result, answering the common case (an ASCII dot-atom
at an ASCII hostname) from a per-domain cache of what the domain stages decided.
``OfflineVerifier.jsonl`` renders many addresses as JSON lines from the same cache, whose entries
also hold pre-rendered JSON fragments: a line then costs one regular expression match, one set
lookup for the role check and a string concatenation. Anything else goes through
``verify_full`` and ``json.dumps``. Tests hold all three paths to identical output.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from stmails.verify.disposable import DisposableDomains, default_disposable_domains
from stmails.verify.export import csv_line, result_row
from stmails.verify.result import Reason, Verdict, VerificationResult, combine
from stmails.verify.role import ROLE_LOCAL_PARTS, is_role
from stmails.verify.syntax import (
    COMMON_ADDRESS,
    MAX_ADDRESS_OCTETS,
    MAX_LOCAL_OCTETS,
    Policy,
    check_domain,
    check_syntax,
)
from stmails.verify.typo import TypoSuggester, default_suggester

__all__ = ["JSONL_FIELDS", "OFFLINE_STAGES", "OfflineVerifier", "Outcomes", "record_json"]

# Per address, in order: the verdict and the reasons (for callers that tally a bulk run).
Outcomes = list[tuple[Verdict, tuple[Reason, ...]]]

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
class _DomainFacts:
    """What the offline stages know about one domain string, ready to use.

    Pairs are indexed by whether the local part is a role account (0: no, 1: yes). The
    ``json_*`` and ``csv_*`` pieces are pre-rendered fragments for :meth:`OfflineVerifier.jsonl`
    and :meth:`OfflineVerifier.csv_lines`.
    """

    reasons: tuple[tuple[Reason, ...], tuple[Reason, ...]]
    verdicts: tuple[Verdict, Verdict]
    unicode_domain: str
    suggested_domain: str | None
    ascii_length: int
    json_middle: tuple[str, str]
    json_domain: str
    json_suggestion: str | None
    csv_middle: tuple[str, str]


# Marks a domain the fast path must not answer (the policy rejects it): its length never fits.
_SLOW_PATH = _DomainFacts(
    reasons=((), ()),
    verdicts=(Verdict.INVALID, Verdict.INVALID),
    unicode_domain="",
    suggested_domain=None,
    ascii_length=MAX_ADDRESS_OCTETS + 1,
    json_middle=("", ""),
    json_domain="",
    json_suggestion=None,
    csv_middle=("", ""),
)


def _json_text(text: str) -> str:
    """``text`` as it appears inside a JSON string (hostnames in ASCII need no escaping)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return json.dumps(text)[1:-1]


def _json_middle(reasons: tuple[Reason, ...]) -> str:
    """The record text from after the address up to the local part of ``normalized``."""
    names = ",".join(f'"{reason.value}"' for reason in reasons)
    return (
        f',"result":"{combine(reasons).value}","reasons":[{names}],'
        '"syntax_valid":true,"normalized":"'
    )


def _csv_middle(reasons: tuple[Reason, ...]) -> str:
    """The CSV text between the address and the normalized address."""
    return f",{combine(reasons).value},{';'.join(reasons)},true,"


def _json_common_line(address: str, local: str, facts: _DomainFacts, role: bool) -> str:
    suggestion = "null" if facts.json_suggestion is None else f'"{local}{facts.json_suggestion}"'
    return (
        f'{{"address":"{address}"{facts.json_middle[role]}{local}{facts.json_domain}'
        f'","suggestion":{suggestion},"detail":null}}'
    )


def _csv_common_line(address: str, local: str, facts: _DomainFacts, role: bool) -> str:
    # Cells starting like a spreadsheet formula get a quote, as csv_cell() does; the address,
    # the normalized form and the suggestion all start with the local part.
    quote = "'" if local[0] in "=+-" else ""
    suggested = facts.suggested_domain
    suggestion = "" if suggested is None else f"{quote}{local}@{suggested}"
    return (
        f"{quote}{address}{facts.csv_middle[role]}{quote}{local}@{facts.unicode_domain}"
        f",{suggestion},,,,"
    )


def _csv_full_line(result: VerificationResult) -> str:
    return csv_line(result_row(result))


def _with_role(reasons: tuple[Reason, ...]) -> tuple[Reason, ...]:
    """Adds ``role`` in stage order (after ``disposable``, before ``typo``)."""
    at = 1 if Reason.DISPOSABLE in reasons else 0
    return (*reasons[:at], Reason.ROLE, *reasons[at:])


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
        self._facts: dict[str, _DomainFacts] = {}

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
        return is_role(local, self._roles)

    def verify(self, address: str) -> VerificationResult:
        """The offline verdict for one address; never raises on any string.

        The common case is answered from the per-domain cache; the result is always the one
        :meth:`verify_full` gives.
        """
        common = self._common_case(address)
        if common is None:
            return self.verify_full(address)
        local, facts, role = common
        suggested = facts.suggested_domain
        return VerificationResult(
            address=address,
            result=facts.verdicts[role],
            reasons=facts.reasons[role],
            syntax_valid=True,
            normalized=f"{local}@{facts.unicode_domain}",
            suggestion=f"{local}@{suggested}" if suggested else None,
            stages=OFFLINE_STAGES,
        )

    def _common_case(self, address: str) -> tuple[str, _DomainFacts, bool] | None:
        """(local part, domain facts, is a role) for an address the per-domain cache can
        answer: an ASCII dot-atom at a hostname the policy accepts, within the lengths."""
        # An over-long line goes to the full path, which refuses it before any caching.
        found = COMMON_ADDRESS.fullmatch(address) if len(address) <= MAX_ADDRESS_OCTETS else None
        if found is None:
            return None
        local, domain = found.groups()
        facts = self._facts.get(domain) or self._domain_facts(domain)
        # The slow-path marker's length fails this test, so rejected domains fall through.
        if len(local) > MAX_LOCAL_OCTETS or len(local) + facts.ascii_length > MAX_ADDRESS_OCTETS:
            return None
        return local, facts, local.partition("+")[0].lower() in self._roles

    def verify_full(self, address: str) -> VerificationResult:
        """The offline verdict computed stage by stage, without the per-domain shortcut."""
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
        domain_reasons, suggested_domain = self.domain_reasons(syntax.ascii_domain)
        reasons = tuple(domain_reasons)
        if self.is_role(syntax.local):
            reasons = _with_role(reasons)
        return VerificationResult(
            address=address,
            result=combine(reasons),
            reasons=reasons,
            syntax_valid=True,
            normalized=syntax.normalized,
            suggestion=f"{syntax.local}@{suggested_domain}" if suggested_domain else None,
            stages=OFFLINE_STAGES,
        )

    def jsonl(self, addresses: Iterable[str], outcomes: Outcomes | None = None) -> list[str]:
        """One JSON record (see :func:`record_json`) per address, in input order.

        When ``outcomes`` is given, each address's (verdict, reasons) is appended to it.
        """
        return self._render(addresses, outcomes, _json_common_line, record_json)

    def csv_lines(self, addresses: Iterable[str], outcomes: Outcomes | None = None) -> list[str]:
        """One CSV line (no line end) per address, exactly as ``csv.writer`` writes
        :func:`~stmails.verify.export.result_row`; ``outcomes`` as for :meth:`jsonl`."""
        return self._render(addresses, outcomes, _csv_common_line, _csv_full_line)

    def _render(
        self,
        addresses: Iterable[str],
        outcomes: Outcomes | None,
        common_line: Callable[[str, str, _DomainFacts, bool], str],
        full_line: Callable[[VerificationResult], str],
    ) -> list[str]:
        """Renders each address from the per-domain cache when it can, else from the full
        result; records the outcomes when asked."""
        out: list[str] = []
        for address in addresses:
            common = self._common_case(address)
            if common is None:
                result = self.verify_full(address)
                out.append(full_line(result))
                if outcomes is not None:
                    outcomes.append((result.result, result.reasons))
                continue
            local, facts, role = common
            out.append(common_line(address, local, facts, role))
            if outcomes is not None:
                outcomes.append((facts.verdicts[role], facts.reasons[role]))
        return out

    def _domain_facts(self, domain: str) -> _DomainFacts:
        """Works out (and caches) what the stages say about a domain, or the slow-path marker."""
        syntax = check_domain(domain)
        facts = _SLOW_PATH
        if syntax.error(self.policy) is None:
            found, suggestion = self.domain_reasons(syntax.ascii_domain)
            plain = tuple(found)
            reasons = (plain, _with_role(plain))
            facts = _DomainFacts(
                reasons=reasons,
                verdicts=(combine(reasons[0]), combine(reasons[1])),
                unicode_domain=syntax.unicode_domain,
                suggested_domain=suggestion,
                ascii_length=1 + len(syntax.ascii_domain),
                json_middle=(_json_middle(reasons[0]), _json_middle(reasons[1])),
                csv_middle=(_csv_middle(reasons[0]), _csv_middle(reasons[1])),
                json_domain=_json_text("@" + syntax.unicode_domain),
                json_suggestion=_json_text("@" + suggestion) if suggestion else None,
            )
        # A bounded cache: a long tail of one-off domains must not grow memory without limit.
        if len(self._facts) > 200_000:
            self._facts.clear()
        self._facts[domain] = facts
        return facts
