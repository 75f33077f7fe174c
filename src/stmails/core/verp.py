"""VERP return paths that carry the subscriber and campaign, signed so that forgeries are ignored.

An outgoing message gets the envelope sender `PREFIX+TOKEN@bounce.example.com` (PREFIX is the
local part of the bounce address); its bounce is addressed to that return path, so the token
says whom and which campaign the bounce is about even when the bounce quotes nothing of the
original.

TOKEN (format 2) is 24 lower-case base32 characters (local parts are
case-insensitive in practice, and some MTAs lower-case them) of 15 bytes: the format number,
the subscriber's database id (5 bytes, big-endian), the campaign's id (3 bytes; 0 for mail of
no campaign) and a 6-byte HMAC-SHA256 tag over those nine bytes under the instance's secret
key. With a prefix of up to `MAX_PREFIX` (39) characters the local part stays within RFC 5321's
64 octets. Ids are not uuids: whoever reads a token maps them back (`VerpResolver`).

Format 1 tokens (39 characters for a subscriber alone, 64 with a campaign: base32 of the
subscriber uuid, the optional campaign uuid and an 8-byte tag) went out before; they are still
verified, so that bounces of mail sent then are attributed, but no longer made.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_PREFIX = "bounce"
# RFC 5321 section 4.5.3.1.1: a local part is at most 64 octets.
MAX_LOCAL_PART = 64
TOKEN_LENGTH = 24
# The longest prefix whose `prefix+TOKEN` still fits in a local part.
MAX_PREFIX = MAX_LOCAL_PART - 1 - TOKEN_LENGTH
# The largest ids a token holds: 5 and 3 bytes.
MAX_SUBSCRIBER_ID = 2**40 - 1
MAX_CAMPAIGN_ID = 2**24 - 1

_FORMAT = 2
_TAG_BYTES = 6
_CONTEXT = b"stmails-verp-v2\x00"
_V1_TAG_BYTES = 8
_V1_CONTEXT = b"stmails-verp-v1\x00"
_V1_LENGTHS = (39, 64)
# Only the start of a message is searched: the return path sits in its first headers.
_SCAN_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class VerpToken:
    """What a verified token says: the subscriber and (for campaign mail) the campaign.

    A format 2 token names them by database id (`subscriber_id`, `campaign_id`, 0 for none)
    and leaves the uuids empty until a `VerpResolver` fills them in; a format 1 token names
    them by uuid only.
    """

    subscriber_uuid: str = ""
    campaign_uuid: str = ""
    subscriber_id: int = 0
    campaign_id: int = 0


# Fills in the uuids of a format 2 token from its ids; None when its subscriber is gone.
VerpResolver = Callable[[VerpToken], VerpToken | None]


def _tag(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _CONTEXT + payload, hashlib.sha256).digest()[:_TAG_BYTES]


def make_token(secret: bytes, subscriber_id: int, campaign_id: int = 0) -> str:
    """The format 2 token for a subscriber (and campaign) id; ValueError for an id out of
    range (subscriber 1..2**40-1, campaign 0..2**24-1) or an empty secret."""
    if not secret:
        raise ValueError("a VERP token needs a secret key")
    if not 0 < subscriber_id <= MAX_SUBSCRIBER_ID or not 0 <= campaign_id <= MAX_CAMPAIGN_ID:
        raise ValueError("VERP ids out of range")
    payload = bytes([_FORMAT]) + subscriber_id.to_bytes(5, "big") + campaign_id.to_bytes(3, "big")
    return base64.b32encode(payload + _tag(secret, payload)).decode("ascii").lower()


def make_address(
    secret: bytes,
    domain: str,
    subscriber_id: int,
    campaign_id: int = 0,
    prefix: str = DEFAULT_PREFIX,
) -> str:
    """`prefix+TOKEN@domain`, the return path to put on one outgoing message; ValueError when
    `prefix` is longer than `MAX_PREFIX` (the local part would pass 64 octets)."""
    if len(prefix.encode()) > MAX_PREFIX:
        raise ValueError(f"a VERP prefix is at most {MAX_PREFIX} octets")
    return f"{prefix}+{make_token(secret, subscriber_id, campaign_id)}@{domain}"


def _b32decode(token: str) -> bytes | None:
    try:
        return base64.b32decode(token.upper() + "=" * (-len(token) % 8))
    except (binascii.Error, ValueError):
        return None


def verify_token(secret: bytes, token: str) -> VerpToken | None:
    """The subscriber and campaign of a genuine token (either format, any letter case); None
    for a forged or mangled one."""
    if not secret:
        return None
    if len(token) == TOKEN_LENGTH:
        raw = _b32decode(token)
        if raw is None or raw[0] != _FORMAT:
            return None
        payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        if not hmac.compare_digest(tag, _tag(secret, payload)):
            return None
        subscriber_id = int.from_bytes(payload[1:6], "big")
        return VerpToken(
            subscriber_id=subscriber_id, campaign_id=int.from_bytes(payload[6:], "big")
        )
    if len(token) in _V1_LENGTHS:
        return _verify_v1(secret, token)
    return None


def _verify_v1(secret: bytes, token: str) -> VerpToken | None:
    raw = _b32decode(token)
    if raw is None:
        return None
    payload, tag = raw[:-_V1_TAG_BYTES], raw[-_V1_TAG_BYTES:]
    expected = hmac.new(secret, _V1_CONTEXT + payload, hashlib.sha256).digest()[:_V1_TAG_BYTES]
    if len(payload) not in (16, 32) or not hmac.compare_digest(tag, expected):
        return None
    subscriber = str(uuid.UUID(bytes=payload[:16]))
    campaign = str(uuid.UUID(bytes=payload[16:])) if len(payload) == 32 else ""
    return VerpToken(subscriber, campaign)


def find_token(secret: bytes, raw: bytes, prefix: str = DEFAULT_PREFIX) -> VerpToken | None:
    """The first genuine `prefix+TOKEN@` token (either format) in the start of a message.

    Bounces are addressed to the return path, so it shows up in the bounce's own To,
    Delivered-To or X-Original-To headers and often in the quoted original; candidates that do
    not verify (forged, or another sender's) are skipped.
    """
    if not secret:
        return None
    pattern = re.compile(
        rb"(?<![A-Za-z0-9._%+-])"
        + re.escape(prefix.encode())
        + rb"\+([A-Za-z2-7]{%d,64})@" % TOKEN_LENGTH,
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
