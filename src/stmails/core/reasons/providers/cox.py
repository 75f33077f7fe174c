"""Cox Communications: the AUP# codes its refusals end with."""

from __future__ import annotations

from typing import Final

# Cox ends its refusals with "AUP#<code>", documented on its email-error-codes page; the IPBL
# family names the block lists the sending IP is on, URLBL those a URL in the body is on.
COX_CODE_REASONS: Final[dict[str, str]] = {
    "CXBL": "blocked",
    "CDRBL": "blocked",
    "CXDNS": "requireptr",
    "CXSNDR": "authfailure",
    "CXSMTP": "rejected",
    "CXCNCT": "toomanyconn",
    "CXMXRT": "toomanyconn",
    "CXTHRT": "securityerror",
    "CXMJ": "securityerror",
}
