"""A small, bounded MIME reader: enough of RFC 5322/2045/2047 to read bounce messages.

The stdlib `email` package is slow and takes seconds on adversarial input, so this reader does
the few things a bounce classifier needs, each with a cap: line ends are normalized first (so
CRLF, CR-only and LF input read the same), the message is truncated to `MAX_MESSAGE_BYTES`, at
most `MAX_HEADERS` header fields are read per part, multipart bodies are walked at most
`MAX_DEPTH` levels deep and `MAX_PARTS` parts in all, and each decoded text is capped.

The raw message is decoded as Latin-1 (one character per byte, lossless and fast); text parts
are re-decoded with their declared charset, replacing what cannot be decoded.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from dataclasses import dataclass, field

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
MAX_HEADERS = 300
MAX_HEADER_VALUE = 8192
MAX_DEPTH = 12
MAX_PARTS = 120
MAX_TEXT = 256 * 1024
MAX_ENCODED_WORDS = 64
MAX_PARAMS = 32

_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,40})\?([bBqQ])\?([^?\s]{0,1000})\?=")
_ENCODED_GAP = re.compile(r"(\?=)[ \t]+(=\?)")
_PARAM = re.compile(r';\s*([A-Za-z0-9_\-*.]{1,60})\s*=\s*("[^"\n]{0,1000}"|[^;\s]{0,1000})')
# The lookbehind starts a match only where a run of blanks starts, so that a long run not
# followed by a line end is scanned once, not once from each of its positions.
_FOLD = re.compile(r"(?<![ \t])[ \t]*\n[ \t]*")
# One header field with its continuation lines; unambiguous, so linear in the block size.
_FIELD = re.compile(r"([!-9;-~]{1,100})[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)\n?")


@dataclass(slots=True)
class Part:
    """One MIME entity: its header fields (lowercased names, unfolded values, in order),
    its content type and parameters, and either its raw body (Latin-1 text) or its children."""

    headers: list[tuple[str, str]]
    content_type: str
    params: dict[str, str]
    body: str
    children: list[Part] = field(default_factory=list)

    def get(self, name: str, default: str = "") -> str:
        """The first value of header `name` (lowercase), raw (not RFC 2047 decoded)."""
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of header `name` (lowercase), in order."""
        return [value for key, value in self.headers if key == name]

    def text(self, limit: int = MAX_TEXT) -> str:
        """The decoded body: transfer encoding undone, charset applied, about `limit`
        characters at most (MAX_TEXT by default)."""
        return decode_body(self.body, self.get("content-transfer-encoding"), self.params, limit)


def normalize(raw: bytes) -> str:
    """Cap the message size, unify line ends to LF and decode bytes one-to-one (Latin-1)."""
    data = raw[:MAX_MESSAGE_BYTES]
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if b"\x00" in data:
        data = data.replace(b"\x00", b"")
    return data.decode("latin-1")


def split_headers(text: str) -> tuple[list[tuple[str, str]], str]:
    """Split an entity into its unfolded header fields and its body.

    A line that is neither a header field nor a continuation ends the header block (mail
    without a blank line after the headers exists); a leading mbox "From " line is skipped.
    """
    headers: list[tuple[str, str]] = []
    pos = 0
    if text.startswith("From "):
        first_end = text.find("\n")
        pos = len(text) if first_end < 0 else first_end + 1
    end = len(text)
    while pos < end:
        if text.startswith("\n", pos):
            return headers, text[pos + 1 :]
        match = _FIELD.match(text, pos)
        if match is None:
            return headers, text[pos:]
        if len(headers) < MAX_HEADERS:
            value = match.group(2)[:MAX_HEADER_VALUE]
            if "\n" in value:
                value = _FOLD.sub(" ", value)
            headers.append((match.group(1).lower(), value.strip()))
        pos = match.end()
    return headers, ""


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """The lowercased media type and up to MAX_PARAMS parameters (names lowercased)."""
    head, _, rest = value[:MAX_HEADER_VALUE].partition(";")
    ctype = head.strip().lower() or "text/plain"
    if " " in ctype:
        # "text/plain charset=..." without the semicolon.
        ctype, _, extra = ctype.partition(" ")
        rest = extra + ";" + rest
    params: dict[str, str] = {}
    if rest:
        for count, match in enumerate(_PARAM.finditer(";" + rest)):
            if count >= MAX_PARAMS:
                break
            name = match.group(1).lower()
            val = match.group(2)
            if val.startswith('"') and val.endswith('"') and len(val) >= 2:
                val = val[1:-1]
            params.setdefault(name.rstrip("*"), val)
    return ctype, params


def _decode_word(match: re.Match[str]) -> str:
    charset, encoding, payload = match.group(1), match.group(2), match.group(3)
    charset = charset.split("*", 1)[0]
    try:
        if encoding in "bB":
            data = base64.b64decode(payload + "=" * (-len(payload) % 4))
        else:
            data = quopri.decodestring(payload.replace("_", " ").encode("latin-1"), header=True)
    except (binascii.Error, ValueError):
        return match.group(0)
    return decode_charset(data, charset)


def decode_header(value: str) -> str:
    """Decode RFC 2047 encoded-words (at most MAX_ENCODED_WORDS of them) in a header value."""
    if "=?" not in value:
        return _latin1_to_text(value)
    value = _ENCODED_GAP.sub(r"\1\2", value[:MAX_HEADER_VALUE])
    return _ENCODED_WORD.sub(_decode_word, value, count=MAX_ENCODED_WORDS)


def _latin1_to_text(value: str) -> str:
    # Raw 8-bit header bytes are most often UTF-8; fall back to Latin-1 otherwise.
    if value.isascii():
        return value
    # Values taken from already decoded text are not Latin-1 byte strings: keep them as they are.
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


_BARE_JIS_IN = re.compile(rb"(?<!\x1b)\$B(?=[\x21-\x7e]{2})")
_BARE_JIS_OUT = re.compile(rb"(?<!\x1b)\(B")


def decode_charset(data: bytes, charset: str) -> str:
    """Decode bytes with a declared charset, replacing errors; unknown charsets mean UTF-8."""
    name = charset.strip().strip('"').lower()
    if not name:
        # Undeclared 7-bit Japanese mail is ISO-2022-JP more often than not.
        name = "iso-2022-jp" if b"\x1b$B" in data else "utf-8"
    if name in ("us-ascii", "ascii", "utf-8", "utf8"):
        return data.decode("utf-8", "replace")
    if name == "iso-2022-jp" and _BARE_JIS_IN.search(data):
        # Some gateways strip the ESC bytes of ISO-2022-JP; put them back.
        data = _BARE_JIS_OUT.sub(b"\x1b(B", _BARE_JIS_IN.sub(b"\x1b$B", data))
    try:
        return data.decode(name, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def decode_body(
    body: str, transfer_encoding: str, params: dict[str, str], limit: int = MAX_TEXT
) -> str:
    """Undo a transfer encoding and apply the part's charset; output capped to `limit`."""
    limit = min(limit, MAX_TEXT)
    cte = transfer_encoding.strip().lower()
    if cte == "base64":
        compact = "".join(body[: limit * 2].split())
        compact = compact[: len(compact) - len(compact) % 4]
        try:
            data = base64.b64decode(compact)
        except (binascii.Error, ValueError):
            data = body[:limit].encode("latin-1")
    elif cte == "quoted-printable":
        data = quopri.decodestring(body[: limit * 2].encode("latin-1"))
    else:
        raw = body[:limit]
        # 7-bit text needs no decoding, except the escape-based ISO-2022 charsets.
        if raw.isascii() and "\x1b" not in raw and "$B" not in raw:
            return raw
        data = raw.encode("latin-1")
    return decode_charset(data[:limit], params.get("charset", ""))


@dataclass(slots=True)
class _Budget:
    parts: int = 0


# The header fields read from an attached original message (see `parse_part(shallow=True)`).
_WANTED = re.compile(
    r"^(message-id|subject|from|to|date|x-stmails-campaign|x-stmails-subscriber|x-listmonk-campaign|"
    r"x-listmonk-subscriber|list-post|"
    r"x-beenthere)[ \t]*:"
    r"([^\n]*(?:\n[ \t][^\n]*)*)",
    re.IGNORECASE | re.MULTILINE,
)


_SNIFFED_BOUNDARY = re.compile(r"^--([^\s\n]{1,200})[ \t]*$", re.MULTILINE)


def _wanted_headers(text: str) -> list[tuple[str, str]]:
    blank = text.find("\n\n")
    block = text[: blank if blank >= 0 else min(len(text), MAX_HEADER_VALUE * 8)]
    headers: list[tuple[str, str]] = []
    for match in _WANTED.finditer(block):
        value = match.group(2)[:MAX_HEADER_VALUE]
        if "\n" in value:
            value = _FOLD.sub(" ", value)
        headers.append((match.group(1).lower(), value.strip()))
        if len(headers) >= MAX_HEADERS:
            break
    return headers


def parse_part(
    text: str,
    depth: int = 0,
    budget: _Budget | None = None,
    in_report: bool = False,
    shallow: bool = False,
) -> Part:
    """Parse one entity (a whole message or a body part) and its multipart children.

    The original message attached to a multipart/report is read `shallow` (its headers only):
    nothing a classifier needs lives in its body parts.
    """
    if budget is None:
        budget = _Budget()
    budget.parts += 1
    if shallow:
        return Part(_wanted_headers(text), "text/plain", {}, "")
    headers, body = split_headers(text)
    ctype_value = ""
    for name, value in headers:
        if name == "content-type":
            ctype_value = value
            break
    ctype, params = parse_content_type(ctype_value) if ctype_value else ("text/plain", {})
    part = Part(headers, ctype, params, body)
    if ctype.startswith("multipart/") and depth < MAX_DEPTH:
        boundary = params.get("boundary", "")
        if not boundary or ("--" + boundary) not in body[: MAX_TEXT * 4]:
            # A missing or mistyped boundary parameter: use the body's first delimiter line.
            sniffed = _SNIFFED_BOUNDARY.search(body, 0, MAX_TEXT)
            boundary = sniffed.group(1) if sniffed else ""
        if boundary:
            report = in_report or ctype == "multipart/report"
            part.children = _split_multipart(body, boundary, depth, budget, report)
    elif (
        ctype in ("message/rfc822", "message/global")
        and depth < MAX_DEPTH
        and budget.parts < MAX_PARTS
    ):
        part.children = [parse_part(body.lstrip("\n"), depth + 1, budget, shallow=in_report)]
    return part


def _split_multipart(
    body: str, boundary: str, depth: int, budget: _Budget, in_report: bool
) -> list[Part]:
    delimiter = "--" + boundary
    children: list[Part] = []
    start = body.find(delimiter)
    if start < 0:
        return children
    pos = start + len(delimiter)
    while budget.parts < MAX_PARTS:
        if body.startswith("--", pos):
            break
        line_end = body.find("\n", pos)
        if line_end < 0:
            break
        nxt = body.find("\n" + delimiter, line_end)
        chunk = body[line_end + 1 : nxt if nxt >= 0 else len(body)]
        children.append(parse_part(chunk, depth + 1, budget, in_report))
        if nxt < 0:
            break
        pos = nxt + 1 + len(delimiter)
    return children


def parse_message(raw: bytes) -> Part:
    """Parse the raw bytes of a message into a `Part` tree, within the module's caps."""
    return parse_part(normalize(raw))


def walk(part: Part) -> list[Part]:
    """Every entity of the tree in depth-first order, the root first."""
    out: list[Part] = []
    stack = [part]
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(reversed(current.children))
    return out
