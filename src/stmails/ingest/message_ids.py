"""Message-IDs that prove a message came from stmails, and the ones a bounce refers to.

Transactional mail and campaign test sends go out with the Message-ID `<NONCE.TAG@domain>`:
NONCE is 32 random hex digits, TAG 16 lower-case base32 characters of an HMAC-SHA256, under
the instance's secret key, over the nonce and the recipient's address. A bounce that returns
such a Message-ID for the address it reports is a bounce of mail stmails sent to that
address, and nobody without the key can make one for another address; nothing needs to be
stored per message. Campaign mail is recognized by its Message-IDs in the send ledger
instead (`campaign_sends`, matched in `services.bounces`).

`referenced_ids(raw)` reads the Message-IDs a bounce's own In-Reply-To and References headers
name (some reports quote nothing of the original but refer to it there).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable

_CONTEXT = b"stmails-message-id-v1\x00"
_TAG_BYTES = 10
TAG_LENGTH = 16
_NONCE_HEX = 32
# At most this many Message-IDs are taken from one bounce.
MAX_REFERENCES = 20
# The bounce's own header block is looked for in its first bytes only.
_HEAD_BYTES = 64 * 1024
# One `<id>`: no nested brackets or spaces, of bounded length (a linear scan).
_ID = re.compile(r"<([^<>\s]{1,250})>")
_REFERRING = (b"in-reply-to", b"references")


def _tag(secret: bytes, nonce: str, recipient: str) -> str:
    payload = _CONTEXT + nonce.encode("ascii") + b"\x00" + recipient.strip().lower().encode()
    digest = hmac.new(secret, payload, hashlib.sha256).digest()[:_TAG_BYTES]
    return base64.b32encode(digest).decode("ascii").lower()


def make_message_id(secret: bytes, domain: str, recipient: str) -> str:
    """A fresh Message-ID on `domain` for a message to `recipient`, signed with `secret`;
    ValueError for an empty secret."""
    if not secret:
        raise ValueError("a signed Message-ID needs a secret key")
    nonce = secrets.token_hex(_NONCE_HEX // 2)
    return f"<{nonce}.{_tag(secret, nonce, recipient)}@{domain}>"


def sent_to(secret: bytes, message_id: str, recipient: str) -> bool:
    """True when `message_id` is one `make_message_id` made for `recipient` (any letter case
    of the tag and address) under `secret`."""
    if not secret or not recipient:
        return False
    inner = message_id.strip().removeprefix("<").removesuffix(">")
    local = inner.rpartition("@")[0]
    nonce, dot, tag = local.rpartition(".")
    if not dot or len(nonce) != _NONCE_HEX or len(tag) != TAG_LENGTH or not nonce.isascii():
        return False
    expected = _tag(secret, nonce.lower(), recipient)
    return hmac.compare_digest(tag.lower().encode(), expected.encode())


def normalized(message_id: str) -> str:
    """The first `<id>` of a header value, as `<id>`; "" when there is none."""
    found = _ID.search(message_id[:1000])
    return f"<{found.group(1)}>" if found else ""


def _header_block(raw: bytes) -> bytes:
    head = raw[:_HEAD_BYTES]
    ends = [i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0]
    return head[: min(ends)] if ends else head


def referenced_ids(raw: bytes) -> list[str]:
    """The Message-IDs named by the In-Reply-To and References headers of the message itself
    (not of a part), in order, as `<id>`, at most `MAX_REFERENCES`."""
    values: list[bytes] = []
    wanted = False
    for line in _header_block(raw).splitlines():
        if line[:1] in (b" ", b"\t"):
            # A folded continuation of the header before it.
            if wanted:
                values.append(line)
            continue
        name, colon, value = line.partition(b":")
        wanted = bool(colon) and name.strip().lower() in _REFERRING
        if wanted:
            values.append(value)
    text = b" ".join(values).decode("ascii", "replace")
    return unique(f"<{found}>" for found in _ID.findall(text))


def unique(message_ids: Iterable[str]) -> list[str]:
    """Non-empty Message-IDs in their first order, without repeats, at most `MAX_REFERENCES`."""
    out: list[str] = []
    for message_id in message_ids:
        if message_id and message_id not in out:
            out.append(message_id)
            if len(out) >= MAX_REFERENCES:
                break
    return out
