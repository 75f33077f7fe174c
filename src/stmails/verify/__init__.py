"""Address verification: syntax, DNS, disposable/role lists, typo suggestions, SMTP probe.

The stages are usable alone (``check_syntax``, ``MailDomainResolver``, ``DisposableDomains``,
``is_role``, ``TypoSuggester``, ``SmtpProber``) or together through ``OfflineVerifier`` (no
network) and ``Verifier`` (async, with injected DNS and SMTP seams). Only ``stmails.core`` and
third-party libraries are imported here.
"""

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
