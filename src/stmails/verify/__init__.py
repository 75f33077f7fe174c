"""Address verification: syntax, DNS, disposable/role lists, typo suggestions, SMTP probe.

The stages are usable alone (``check_syntax``, ``MailDomainResolver``, ``DisposableDomains``,
``is_role``, ``TypoSuggester``, ``SmtpProber``) or together through ``OfflineVerifier`` (no
network) and ``Verifier`` (async, with injected DNS and SMTP seams). Only ``stmails.core`` and
third-party libraries are imported here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stmails.verify.disposable import DisposableDomains, default_disposable_domains
    from stmails.verify.mx import DomainMail, MailDomainResolver, MailStatus
    from stmails.verify.offline import OfflineVerifier, record_json
    from stmails.verify.pipeline import (
        IntakePolicy,
        Verifier,
        averify_on_the_way_in,
        verify_on_the_way_in,
    )
    from stmails.verify.result import Reason, Verdict, VerificationResult
    from stmails.verify.role import is_role
    from stmails.verify.smtp import SmtpProber, SmtpReply, classify_rcpt_reply
    from stmails.verify.syntax import Policy, SyntaxResult, check_syntax
    from stmails.verify.typo import TypoSuggester, default_suggester

__all__ = [
    "DisposableDomains",
    "DomainMail",
    "IntakePolicy",
    "MailDomainResolver",
    "MailStatus",
    "OfflineVerifier",
    "Policy",
    "Reason",
    "SmtpProber",
    "SmtpReply",
    "SyntaxResult",
    "TypoSuggester",
    "Verdict",
    "VerificationResult",
    "Verifier",
    "averify_on_the_way_in",
    "check_syntax",
    "classify_rcpt_reply",
    "default_disposable_domains",
    "default_suggester",
    "is_role",
    "record_json",
    "verify_on_the_way_in",
]

# Exports load on first use (PEP 562): the streaming command needs only the offline stages and
# should not pay for importing dnspython at start-up.
_EXPORTS = {
    "DisposableDomains": "stmails.verify.disposable",
    "DomainMail": "stmails.verify.mx",
    "IntakePolicy": "stmails.verify.pipeline",
    "MailDomainResolver": "stmails.verify.mx",
    "MailStatus": "stmails.verify.mx",
    "OfflineVerifier": "stmails.verify.offline",
    "Policy": "stmails.verify.syntax",
    "Reason": "stmails.verify.result",
    "SmtpProber": "stmails.verify.smtp",
    "SmtpReply": "stmails.verify.smtp",
    "SyntaxResult": "stmails.verify.syntax",
    "TypoSuggester": "stmails.verify.typo",
    "Verdict": "stmails.verify.result",
    "VerificationResult": "stmails.verify.result",
    "Verifier": "stmails.verify.pipeline",
    "averify_on_the_way_in": "stmails.verify.pipeline",
    "check_syntax": "stmails.verify.syntax",
    "classify_rcpt_reply": "stmails.verify.smtp",
    "default_disposable_domains": "stmails.verify.disposable",
    "default_suggester": "stmails.verify.typo",
    "is_role": "stmails.verify.role",
    "record_json": "stmails.verify.offline",
    "verify_on_the_way_in": "stmails.verify.pipeline",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
