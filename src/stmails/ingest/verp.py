"""VERP return paths that carry the subscriber and campaign, signed so that forgeries are ignored.

An outgoing message gets the envelope sender `bounce+TOKEN@bounce.example.com`; its bounce is
addressed to that return path, so the token says whom and which campaign the bounce is about
even when the bounce quotes nothing of the original. TOKEN is lower-case base32 (local parts
are case-insensitive in practice) of the subscriber uuid, the optional campaign uuid and an
8-byte HMAC-SHA256 tag over both under the instance's secret key.

The token is 39 characters for a subscriber alone and 64 with a campaign; with the default
prefix the local part is then 71 characters, above RFC 5321's 64-octet recommendation but
accepted by the MTAs in common use (Postfix, Exim, Sendmail, Exchange, Gmail, SES).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass

DEFAULT_PREFIX = "bounce"
_TAG_BYTES = 8
_CONTEXT = b"stmails-verp-v1\x00"
# Only the start of a message is searched: the return path sits in its first headers.
_SCAN_BYTES = 256 * 1024
_TOKEN_LENGTHS = (39, 64)


@dataclass(frozen=True, slots=True)
class VerpToken:
    """What a verified token says: the subscriber and (for campaign mail) the campaign."""

    subscriber_uuid: str
    campaign_uuid: str = ""


def _tag(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _CONTEXT + payload, hashlib.sha256).digest()[:_TAG_BYTES]


def make_token(secret: bytes, subscriber_uuid: str, campaign_uuid: str = "") -> str:
    """The token for a subscriber (and campaign); ValueError for a non-uuid or empty secret."""
    if not secret:
        raise ValueError("a VERP token needs a secret key")
    payload = uuid.UUID(subscriber_uuid).bytes
    if campaign_uuid:
        payload += uuid.UUID(campaign_uuid).bytes
    raw = payload + _tag(secret, payload)
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def make_address(
    secret: bytes,
    domain: str,
    subscriber_uuid: str,
    campaign_uuid: str = "",
    prefix: str = DEFAULT_PREFIX,
) -> str:
    """`prefix+TOKEN@domain`, the return path to put on one outgoing message."""
    return f"{prefix}+{make_token(secret, subscriber_uuid, campaign_uuid)}@{domain}"


def verify_token(secret: bytes, token: str) -> VerpToken | None:
    """The subscriber and campaign of a genuine token; None for a forged or mangled one."""
    if not secret or len(token) not in _TOKEN_LENGTHS:
        return None
    padded = token.upper() + "=" * (-len(token) % 8)
    try:
        raw = base64.b32decode(padded)
    except (binascii.Error, ValueError):
        return None
    payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
    if len(payload) not in (16, 32) or not hmac.compare_digest(tag, _tag(secret, payload)):
        return None
    subscriber = str(uuid.UUID(bytes=payload[:16]))
    campaign = str(uuid.UUID(bytes=payload[16:])) if len(payload) == 32 else ""
    return VerpToken(subscriber, campaign)


def find_token(secret: bytes, raw: bytes, prefix: str = DEFAULT_PREFIX) -> VerpToken | None:
    """The first genuine `prefix+TOKEN@` token in the start of a message, else None.

    Bounces are addressed to the return path, so it shows up in the bounce's own To,
    Delivered-To or X-Original-To headers and often in the quoted original; candidates that do
    not verify (forged, or another sender's) are skipped.
    """
    if not secret:
        return None
    pattern = re.compile(
        rb"(?<![A-Za-z0-9._%+-])" + re.escape(prefix.encode()) + rb"\+([A-Za-z2-7]{39,64})@",
        re.IGNORECASE,
    )
    seen: set[bytes] = set()
    for match in pattern.finditer(raw[:_SCAN_BYTES]):
        candidate = match.group(1)
        if candidate in seen:
            continue
        seen.add(candidate)
        found = verify_token(secret, candidate.decode("ascii").lower())
        if found is not None:
            return found
        if len(seen) >= 20:
            break
    return None
