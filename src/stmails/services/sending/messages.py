"""Outgoing messages: RFC 5322 headers and MIME bodies, serialized once to the bytes SMTP sends.

The builder writes the MIME structure directly (quoted-printable UTF-8 parts, RFC 2047 encoded
headers where needed) instead of going through `email.message`, because a campaign serializes one
message per recipient and the generic serializer costs more than the rest of the send path.
"""

from __future__ import annotations

import base64
import binascii
import functools
import mimetypes
import os
import random
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.header import Header
from email.utils import formataddr, formatdate, getaddresses, parseaddr

from stmails.services.errors import InputError

# A header field name: printable ASCII without a colon (RFC 5322 section 2.2).
_FIELD_NAME = re.compile(r"^[!-9;-~]+$")
# Headers the builder writes itself; custom headers may not replace them.
WRITTEN_HEADERS = frozenset(
    {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)
# The headers of `TrackingHeaders`, which every message of a campaign carries.
TRACKING_HEADERS = frozenset(
    {
        "x-stmails-campaign",
        "x-stmails-subscriber",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "feedback-id",
    }
)
# A caller's headers may not set these (a Return-Path is taken apart by `custom_headers`).
_RESERVED = WRITTEN_HEADERS | {"return-path"}


# Message-IDs and MIME boundaries need uniqueness, not secrecy: a generator seeded once from the
# system's randomness avoids a system call per message (costly on some virtual machines).
_UNIQUE = random.Random(os.urandom(32))


def _unique_hex(bits: int) -> str:
    return f"{_UNIQUE.getrandbits(bits):0{bits // 4}x}"


class MessageError(InputError):
    """A message that cannot be built (bad header, bad address); the text says why."""


def _single_line(value: str) -> str:
    # A CR or LF inside a value would let text from a subscriber start a new header.
    if "\r" in value or "\n" in value:
        value = re.sub(r"[\r\n]+\s*", " ", value)
    return value.strip()


# A campaign writes the same headers (From, X-Stmails-Campaign, Feedback-ID, ...) into every
# message: they are encoded once and then found here, while per-recipient values pass through.
@functools.lru_cache(maxsize=4096)
def encode_unstructured(name: str, value: str) -> str:
    """`Name: value` folded, with RFC 2047 encoding when the value is not plain ASCII."""
    value = _single_line(value)
    if value.isascii():
        if len(name) + len(value) < 76:
            return f"{name}: {value}"
        return _fold_ascii(f"{name}: {value}")
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}"


def _fold_ascii(line: str, width: int = 78) -> str:
    """An ASCII header line folded before spaces so that lines stay near `width` (RFC 5322
    section 2.2.3); a word longer than the width stays whole (the hard limit is 998)."""
    out: list[str] = []
    current = ""
    for word in line.split(" "):
        if current and len(current) + 1 + len(word) > width:
            out.append(current)
            current = " " + word
        else:
            current = f"{current} {word}" if current else word
    out.append(current)
    return "\r\n".join(out)


@functools.lru_cache(maxsize=256)
def format_address(address: str) -> str:
    """`Name <addr>` normalized, with a non-ASCII display name encoded; MessageError if empty."""
    name, addr = parseaddr(_single_line(address))
    if not addr or "@" not in addr:
        raise MessageError(f"not an e-mail address: {address[:100]!r}")
    return formataddr((name, addr))


@functools.lru_cache(maxsize=256)
def address_of(address: str) -> str:
    """The bare `local@domain` of an address written as `Name <local@domain>`."""
    return parseaddr(_single_line(address))[1]


def domain_of(address: str) -> str:
    """The lower-cased domain of an address (empty when there is none)."""
    return address_of(address).rpartition("@")[2].lower()


def new_message_id(domain: str) -> str:
    """A fresh `<random@domain>` Message-ID on our own domain."""
    return f"<{_unique_hex(128)}@{domain}>"


def quoted_printable(text: str) -> bytes:
    """`text` as UTF-8 quoted-printable (RFC 2045: lines of at most 76 characters, trailing
    whitespace encoded) with CRLF line ends, ending with CRLF."""
    # binascii's encoder is C code; it uses CRLF for soft breaks only when the input's first line
    # ends with CRLF, so every line end is made CRLF and one more is appended (the part's end).
    lines = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n") + "\r\n"
    return binascii.b2a_qp(lines.encode("utf-8"), istext=True)


def _text_part(subtype: str, text: str) -> bytes:
    return (
        f"Content-Type: text/{subtype}; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii") + quoted_printable(text)


# A file name of an attachment: plain ASCII that needs no quoting or encoding in the header.
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# A MIME type written as given: type/subtype of token characters.
_MIME_TYPE = re.compile(r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$")


@dataclass(frozen=True)
class Attachment:
    """A file attached to a message: its name (plain ASCII), MIME type and content."""

    filename: str
    content_type: str
    data: bytes

    def part(self) -> bytes:
        """The attachment as a MIME part: base64 in lines of 76 characters, CRLF line ends
        (encoded once: a campaign's attachment goes into every message)."""
        return self._part

    @functools.cached_property
    def _part(self) -> bytes:
        if not _FILENAME.fullmatch(self.filename):
            raise MessageError(f"not a plain attachment file name: {self.filename[:100]!r}")
        if not _MIME_TYPE.fullmatch(self.content_type):
            raise MessageError(f"not a MIME type: {self.content_type[:100]!r}")
        encoded = base64.encodebytes(self.data).replace(b"\n", b"\r\n")
        head = (
            f'Content-Type: {self.content_type}; name="{self.filename}"\r\n'
            "Content-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="{self.filename}"\r\n\r\n'
        )
        return head.encode("ascii") + encoded


def attachment_filename(name: str) -> str:
    """A file name given by a caller as a plain ASCII attachment name: its last path step,
    characters other than letters, digits, `.`, `_` and `-` replaced by `_`, at most 100."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in base)
    cleaned = cleaned.lstrip("._-")[:100]
    return cleaned or "attachment"


def attachment_type(name: str, declared: str) -> str:
    """The MIME type of an attachment: the caller's when it is a well-formed type, else what
    the file name suggests, else application/octet-stream."""
    declared = declared.split(";", 1)[0].strip().lower()
    if _MIME_TYPE.fullmatch(declared) and declared != "application/octet-stream":
        return declared
    guessed = mimetypes.guess_type(name)[0]
    return guessed if guessed and _MIME_TYPE.fullmatch(guessed) else "application/octet-stream"


@dataclass(frozen=True)
class Message:
    """One message to one recipient, ready for SMTP: envelope and serialized bytes.

    The SMTP server it goes through may still change two things (`smtp.outgoing`): a server
    whose custom headers hold a Return-Path sends it from the address in `server_senders` made
    for that Return-Path (unless `own_return_path`: the message's own headers chose its
    envelope sender), and a server's other custom headers are added unless the message sets
    a header of that name itself (`header_names`, lower case).
    """

    envelope_from: str
    recipient: str
    message_id: str
    data: bytes
    server_senders: tuple[tuple[str, str], ...] = ()
    own_return_path: bool = False
    header_names: frozenset[str] = frozenset()

    def sender_for(self, server_return_path: str) -> str:
        """The envelope sender through a server whose Return-Path is `server_return_path`."""
        for base, sender in self.server_senders:
            if base == server_return_path:
                return sender
        return server_return_path


@dataclass
class MessageSpec:
    """What a message says; `build()` serializes it. `html` or `text` (or both) is set."""

    from_address: str
    to_address: str
    subject: str
    html: str | None = None
    text: str | None = None
    # The envelope sender (MAIL FROM); empty: the From address. Never written as a header:
    # the receiving server records it as Return-Path (RFC 5321 section 4.4).
    return_path: str = ""
    message_id: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    # (display name, address) of the recipient when already known: spares parsing `to_address`.
    to_pair: tuple[str, str] | None = None
    # Passed on to the `Message` (see there).
    server_senders: tuple[tuple[str, str], ...] = ()
    own_return_path: bool = False
    header_names: frozenset[str] = frozenset()
    # Files attached after the body (multipart/mixed); none for campaign mail.
    attachments: tuple[Attachment, ...] = ()

    def build(self) -> Message:
        """The message serialized with CRLF line ends; MessageError on a bad header or address."""
        if self.to_pair is not None:
            to_name, recipient = _single_line(self.to_pair[0]), _single_line(self.to_pair[1])
        else:
            to_name, recipient = parseaddr(_single_line(self.to_address))
        if not recipient or "@" not in recipient:
            raise MessageError(f"not an e-mail address: {self.to_address[:100]!r}")
        if self.html is None and self.text is None:
            raise MessageError("a message needs an HTML or a text body")
        lines = [encode_unstructured("From", format_address(self.from_address))]
        lines.append(encode_unstructured("To", formataddr((to_name, recipient))))
        lines.append(encode_unstructured("Subject", self.subject))
        lines.append(f"Date: {_date_now(int(time.time()))}")
        message_id = self.message_id or new_message_id(domain_of(self.from_address))
        lines.append(f"Message-ID: {message_id}")
        lines.append("MIME-Version: 1.0")
        for name, value in self.headers:
            lines.append(encode_unstructured(validate_header_name(name), value))
        head = "\r\n".join(lines) + "\r\n"
        if self.html is not None and self.text is not None:
            # "=_" never occurs in quoted-printable text, so the boundary cannot clash.
            boundary = "=_stmails_" + _unique_hex(96)
            delimiter = f"--{boundary}\r\n".encode("ascii")
            # Folded, so the line stays under 78 characters (RFC 5322 section 2.1.1).
            content_type = f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n'
            body = b"".join(
                (
                    content_type.encode("ascii"),
                    delimiter,
                    _text_part("plain", self.text),
                    delimiter,
                    _text_part("html", self.html),
                    f"--{boundary}--\r\n".encode("ascii"),
                )
            )
        elif self.html is not None:
            body = _text_part("html", self.html)
        else:
            body = _text_part("plain", self.text or "")
        if self.attachments:
            body = _mixed(body, self.attachments)
        return Message(
            envelope_from=address_of(self.return_path) or address_of(self.from_address),
            recipient=recipient,
            message_id=message_id,
            data=head.encode("utf-8") + body,
            server_senders=self.server_senders,
            own_return_path=self.own_return_path,
            header_names=self.header_names,
        )


def _mixed(body: bytes, attachments: Sequence[Attachment]) -> bytes:
    """`body` (a MIME entity: its part headers, a blank line, its content) followed by the
    attachments, as a multipart/mixed entity. Base64 and quoted-printable never contain "=_",
    so the boundary cannot clash with any part."""
    boundary = "=_stmails_mixed_" + _unique_hex(96)
    delimiter = f"--{boundary}\r\n".encode("ascii")
    content_type = f'Content-Type: multipart/mixed;\r\n boundary="{boundary}"\r\n\r\n'
    parts = [content_type.encode("ascii"), delimiter, body]
    for attachment in attachments:
        parts += [delimiter, attachment.part()]
    parts.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(parts)


@functools.lru_cache(maxsize=2)
def _date_now(second: int) -> str:
    # One Date value per second: formatting it is costly next to the rest of a header block.
    return formatdate(second, localtime=False, usegmt=True)


@functools.lru_cache(maxsize=1024)
def validate_header_name(name: str) -> str:
    """`name` if it may be set by a caller; MessageError for a malformed or reserved one."""
    name = name.strip()
    if not _FIELD_NAME.match(name):
        raise MessageError(f"bad header name: {name[:60]!r}")
    if name.lower() in _RESERVED:
        raise MessageError(f"header {name!r} is set by stmails and cannot be overridden")
    return name


RETURN_PATH = "Return-Path"


def custom_headers(raw: object) -> list[tuple[str, str]]:
    """Headers given in listmonk's shape (`[{"name": "value"}, ...]`) or as one mapping.

    A `Return-Path` among them is kept (as `RETURN_PATH`): as in listmonk it sets the
    envelope sender and is not written as a header (see `services.sending.envelope`)."""
    items: list[tuple[str, str]] = []
    if raw is None:
        return items
    if isinstance(raw, dict):
        entries: Iterable[object] = [raw]
    elif isinstance(raw, list | tuple):
        entries = raw
    else:
        raise MessageError("headers must be a list of {name: value} objects")
    for entry in entries:
        if not isinstance(entry, dict):
            raise MessageError("headers must be a list of {name: value} objects")
        for name, value in entry.items():
            if str(name).strip().lower() == "return-path":
                items.append((RETURN_PATH, str(value)))
                continue
            items.append((validate_header_name(str(name)), str(value)))
    return items


@dataclass(frozen=True)
class TrackingHeaders:
    """The headers every stmails message carries so bounces and complaints find their way back."""

    campaign_uuid: str
    subscriber_uuid: str
    unsubscribe_url: str
    unsubscribe_mailto: str
    feedback_id: str

    def as_list(self) -> list[tuple[str, str]]:
        """The headers in the order they are written."""
        headers: list[tuple[str, str]] = []
        if self.campaign_uuid:
            headers.append(("X-Stmails-Campaign", self.campaign_uuid))
        if self.subscriber_uuid:
            headers.append(("X-Stmails-Subscriber", self.subscriber_uuid))
        targets = []
        if self.unsubscribe_mailto:
            targets.append(f"<mailto:{self.unsubscribe_mailto}>")
        if self.unsubscribe_url:
            targets.append(f"<{self.unsubscribe_url}>")
        if targets:
            headers.append(("List-Unsubscribe", ", ".join(targets)))
        # RFC 8058: one-click needs an https target and this exact header.
        if self.unsubscribe_url.startswith("https://") or self.unsubscribe_url.startswith(
            "http://"
        ):
            headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        if self.feedback_id:
            headers.append(("Feedback-ID", self.feedback_id))
        return headers


def recipients_of(values: Sequence[str]) -> list[str]:
    """Bare addresses from To/Cc style values."""
    return [addr for _, addr in getaddresses(list(values)) if addr]
