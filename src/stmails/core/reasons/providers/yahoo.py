"""Yahoo: the bracketed codes its refusals carry."""

from __future__ import annotations

from typing import Final

# Yahoo puts a bracketed code in its refusals and links its error-codes page, where each code's
# meaning is documented (TSS04: deferred for unexpected volume or user complaints; TSS09/TSS11:
# all mail from the IP permanently deferred; BL21/BL23: the IP is on a Spamhaus list; PH01:
# not accepted for policy reasons).
YAHOO_CODE_REASONS: Final[dict[str, str]] = {
    "TSS04": "badreputation",
    "TSS09": "rejected",
    "TSS11": "rejected",
    "BL21": "blocked",
    "BL23": "blocked",
    "PH01": "policyviolation",
}
