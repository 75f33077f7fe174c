"""Role accounts: mailboxes that reach a function or a team rather than one person.

Mail to them is deliverable but risky for marketing (many readers, complaint-prone, often
forwarded to ticket systems), so the verifier flags them ``risky`` with ``role``, never invalid.
"""

from __future__ import annotations

__all__ = ["ROLE_LOCAL_PARTS", "is_role"]

# RFC 2142 mailbox names plus the functional names most lists are full of.
ROLE_LOCAL_PARTS = frozenset(
    {
        # RFC 2142.
        "abuse", "ftp", "hostmaster", "info", "marketing", "news", "noc", "postmaster",
        "sales", "security", "support", "usenet", "uucp", "webmaster", "www",
        # Administration and infrastructure.
        "admin", "administrator", "root", "sysadmin", "it", "devnull", "mailer-daemon",
        "nobody", "noreply", "no-reply", "donotreply", "do-not-reply", "bounce", "bounces",
        # Teams and functions.
        "accounting", "accounts", "billing", "careers", "compliance", "contact", "contactus",
        "customerservice", "enquiries", "enquiry", "everyone", "feedback", "finance", "hello",
        "help", "helpdesk", "hr", "inquiries", "inquiry", "jobs", "legal", "list", "mail",
        "media", "newsletter", "office", "orders", "press", "privacy", "purchasing",
        "reception", "service", "services", "staff", "subscribe", "team", "unsubscribe",
    }
)  # fmt: skip


def is_role(local_part: str, roles: frozenset[str] = ROLE_LOCAL_PARTS) -> bool:
    """Whether the local part names a role in ``roles`` (lower-case names; the check is
    case-insensitive and ignores a ``+tag``)."""
    return local_part.partition("+")[0].lower() in roles
