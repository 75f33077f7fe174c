"""Recognising a DMARC aggregate report (RFC 7489 section 7.2) among the messages of a mailbox.

Receivers mail aggregate reports to the domain's `rua` address as an attachment: gzip, zip or
XML, usually named `receiver!policy-domain!begin!end[!id].xml.gz` (RFC 7489 section 7.2.1.1), in
a message whose subject starts with "Report Domain:". A mailbox that gets bounces may get them
too (one inbox for both is common). `report_attachments(raw)` returns the attachments that may
be a report, so that the caller (which owns the storage) can read and keep them instead of
taking the message for a bounce. It only looks: a quick test of the raw bytes first, then a MIME
walk of at most `MAX_PARTS` parts; reading the report is the caller's (with its XML budgets).
"""

from __future__ import annotations

import email
import email.policy
from email.message import Message

MAX_PARTS = 20
MAX_ATTACHMENTS = 3
# What the quick test looks for in the first bytes of a message (lowercase).
_HINTS = (
    b"report domain:",
    b"report-id:",
    b"application/gzip",
    b"application/x-gzip",
    b"application/zip",
    b"application/x-zip-compressed",
    b".xml.gz",
    b".xml.zip",
)
_HEAD_BYTES = 64 * 1024
_TYPES = frozenset(
    {
        "application/gzip",
        "application/x-gzip",
        "application/zip",
        "application/x-zip-compressed",
        "application/xml",
        "text/xml",
        "application/octet-stream",
    }
)
_SUFFIXES = (".xml", ".xml.gz", ".gz", ".zip")


def might_hold_report(raw: bytes) -> bool:
    """A cheap test: whether the start of the message mentions a report or an archive."""
    head = raw[:_HEAD_BYTES].lower()
    return any(hint in head for hint in _HINTS)


def report_attachments(raw: bytes) -> list[bytes]:
    """The payloads of the attachments of `raw` that may hold an aggregate report (archives or
    XML; octet-stream only with a report-like file name); [] for any other message."""
    if not might_hold_report(raw):
        return []
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # a message the parser cannot read holds no report we can use
        return []
    found: list[bytes] = []
    for number, part in enumerate(message.walk()):
        if number >= MAX_PARTS or len(found) >= MAX_ATTACHMENTS:
            break
        if part.is_multipart() or not _is_candidate(part):
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload:
            found.append(payload)
    return found


def _is_candidate(part: Message) -> bool:
    kind = part.get_content_type().lower()
    name = (part.get_filename() or "").lower()
    if kind not in _TYPES:
        return False
    if kind == "application/octet-stream":
        return name.endswith(_SUFFIXES)
    return True
