"""What every detector sees: the parsed message and the views of it they all need."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from stmails.core.fields import clean_address
from stmails.core.message import (
    Part,
    decode_header,
    normalize,
    parse_part,
    split_headers,
    walk,
)

MAX_BOUNCE_TEXT = 32 * 1024
MAX_REPORT_LINES = 2000

# Lines that start the quoted copy of the original message in a human-readable bounce.
_MARKER_PATTERN = (
    r"^[ \t>]*(?:[-=*_#]{2,}[ \t]*)?(?:"
    r"original message|copy of (?:the |your )?(?:original )?message|returned message|"
    r"undelivered message|original message headers|message headers follow|"
    r"below this line is a copy|below is a copy of|the header of the original|original mail|"
    r"unsent message|"
    r"this is a copy of|headers of the original|the original message was|"
    r"your message reads|original email|header of (?:the )?original|bounced e-?mail:|"
    r"content-type: message/rfc822|received:[ \t]*from |return-path:[ \t]*<"
    r")"
)
_ORIGINAL_MARKER = re.compile(_MARKER_PATTERN, re.IGNORECASE | re.MULTILINE)
# The same on lowercased ASCII text, without the slower case-insensitive matching.
_ORIGINAL_MARKER_LOWER = re.compile(_MARKER_PATTERN, re.MULTILINE)
_FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|fw|tr|wg|rv|i)\s*:", re.IGNORECASE)
_QUOTE_PREFIX = re.compile(r"^> ?(?!>)", re.MULTILINE)
_TAG = re.compile(r"<[^<>]{0,2000}>")
_ENTITY = re.compile(r"&(nbsp|lt|gt|amp|quot|#\d{1,5});")
_ENTITIES = {"nbsp": " ", "lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_BREAK_TAG = re.compile(r"<\s*(?:br|/p|/div|/tr|/li|/h\d)[^<>]{0,200}>", re.IGNORECASE)
MAX_HTML = 32 * 1024
_QUOTED_HEADER = re.compile(
    r"^(message-id|subject|from|to|date|x-stmails-campaign|x-stmails-subscriber|x-listmonk-campaign|"
    r"x-listmonk-subscriber|list-post|"
    r"x-beenthere)[ \t]*:[ \t]*(.*)$",
    re.IGNORECASE | re.MULTILINE,
)


def _entity(match: re.Match[str]) -> str:
    name = match.group(1)
    if name.startswith("#"):
        code = int(name[1:])
        return chr(code) if 0 < code < 0x110000 else " "
    return _ENTITIES[name]


def _drop_blocks(html: str) -> str:
    # Remove <style>/<script> blocks with plain searches (linear, unlike a lazy regex).
    lowered = html.lower()
    pieces: list[str] = []
    pos = 0
    while True:
        starts = [i for i in (lowered.find("<style", pos), lowered.find("<script", pos)) if i >= 0]
        if not starts:
            break
        start = min(starts)
        name = "</style" if lowered.startswith("<style", start) else "</script"
        end = lowered.find(name, start)
        pieces.append(html[pos:start])
        if end < 0:
            pos = len(html)
            break
        close = lowered.find(">", end)
        pos = len(html) if close < 0 else close + 1
    pieces.append(html[pos:])
    return " ".join(pieces)


def html_to_text(html: str) -> str:
    """A rough text rendering of HTML: scripts and styles dropped, tags removed."""
    html = _drop_blocks(html[:MAX_HTML])
    html = _BREAK_TAG.sub("\n", html)
    return _ENTITY.sub(_entity, _TAG.sub(" ", html))


def _text_kind(part: Part) -> str:
    """ "plain" or "html" for the parts read as the report's text, else ""."""
    ctype = part.content_type
    if ctype == "text/html":
        return "html"
    # A multipart without parts is text in practice (its delimiters are broken or missing).
    if ctype == "text/plain" or (ctype.startswith("multipart/") and not part.children):
        return "plain"
    return ""


@dataclass(slots=True)
class Original:
    """Headers recovered from the original (bounced) message."""

    message_id: str = ""
    subject: str = ""
    from_: str = ""
    to: str = ""
    campaign: str = ""
    subscriber: str = ""
    # The posting address of the mailing list that sent it (List-Post, X-BeenThere): the To
    # of every message a list sends, never one member's address.
    list_address: str = ""


def _original_from_headers(headers: list[tuple[str, str]]) -> Original:
    found = Original()
    ours: set[str] = set()
    for name, value in headers:
        if name == "message-id" and not found.message_id:
            found.message_id = value.strip()[:500]
        elif name == "subject" and not found.subject:
            found.subject = decode_header(value)[:500]
        elif name == "from" and not found.from_:
            found.from_ = clean_address(decode_header(value))
        elif name == "to" and not found.to:
            found.to = clean_address(decode_header(value))
        elif name == "x-stmails-campaign" and "campaign" not in ours:
            found.campaign = value.strip()[:200]
            ours.add("campaign")
        elif name == "x-stmails-subscriber" and "subscriber" not in ours:
            found.subscriber = value.strip()[:200]
            ours.add("subscriber")
        # listmonk's own headers name the same uuids in mail that listmonk sent (kept by
        # `stmails import listmonk`); ours win when both are there.
        elif name == "x-listmonk-campaign" and not found.campaign:
            found.campaign = value.strip()[:200]
        elif name == "x-listmonk-subscriber" and not found.subscriber:
            found.subscriber = value.strip()[:200]
        elif name in ("list-post", "x-beenthere") and not found.list_address:
            found.list_address = clean_address(value.replace("mailto:", " "))
    return found


@dataclass(slots=True)
class Context:
    """A parsed message with lazily computed views shared by the detectors."""

    root: Part
    parts: list[Part]
    subject: str
    sender: str
    to: str
    _bounce_text: str | None = None
    _full_text: str | None = None
    _original: Original | None = None
    _quoted_start: int = -1
    _report_lines_lower: list[str] | None = None
    _report_lines: list[str] | None = None
    part_types: set[str] = field(default_factory=set)

    @classmethod
    def from_root(cls, root: Part) -> Context:
        """Build the context of a parsed message."""
        parts = walk(root)
        return cls(
            root=root,
            parts=parts,
            subject=decode_header(root.get("subject"))[:1000],
            sender=clean_address(decode_header(root.get("from"))),
            to=clean_address(decode_header(root.get("to"))),
            part_types={p.content_type for p in parts},
        )

    def first_part(self, *content_types: str) -> Part | None:
        """The first entity (depth first) with one of the content types."""
        for part in self.parts:
            if part.content_type in content_types:
                return part
        return None

    def report_parts(self) -> list[Part]:
        """Every entity of the report itself, depth first: the parts of an attached message
        (the returned original, which may itself be a bounce) left out."""
        out: list[Part] = []
        stack = [self.root]
        while stack:
            part = stack.pop()
            out.append(part)
            if part.content_type in ("message/rfc822", "message/global") and part is not self.root:
                continue
            stack.extend(reversed(part.children))
        return out

    def human_parts(self) -> list[Part]:
        """The text parts of the report itself, not of an attached original message."""
        out: list[Part] = []
        stack = [self.root]
        while stack:
            part = stack.pop()
            if part.children:
                if (
                    part.content_type in ("message/rfc822", "message/global")
                    and part is not self.root
                ):
                    continue
                stack.extend(reversed(part.children))
                continue
            if (
                _text_kind(part)
                and "attachment" not in part.get("content-disposition").lower()[:20]
            ):
                out.append(part)
        return out

    @property
    def full_text(self) -> str:
        """The report's human-readable text (plain preferred to HTML), including any quoted
        copy of the original message."""
        if self._full_text is None:
            parts = self.human_parts()
            plain = [p for p in parts if _text_kind(p) == "plain"]
            chosen = plain if plain else parts
            texts: list[str] = []
            size = 0
            for part in chosen:
                html = _text_kind(part) == "html"
                text = part.text(MAX_HTML if html else MAX_BOUNCE_TEXT)
                if html:
                    text = html_to_text(text)
                texts.append(text)
                size += len(text)
                if size > MAX_BOUNCE_TEXT:
                    break
            # Encoded bodies keep their own line ends: unify them like the raw message's.
            text = "\n".join(texts)[:MAX_BOUNCE_TEXT].replace("\r\n", "\n").replace("\r", "\n")
            if _FORWARD_SUBJECT.match(self.subject):
                # A forwarded bounce quotes the report with "> ": read it unquoted.
                text = _QUOTE_PREFIX.sub("", text)
            self._full_text = text
        return self._full_text

    @property
    def bounce_text(self) -> str:
        """`full_text` cut before the quoted original message."""
        if self._bounce_text is None:
            text = self.full_text
            cut = len(text)
            # Lowercasing keeps offsets only for ASCII text.
            if text.isascii():
                markers = _ORIGINAL_MARKER_LOWER.finditer(text.lower())
            else:
                markers = _ORIGINAL_MARKER.finditer(text)
            for match in markers:
                if match.start() > 0 and text[: match.start()].strip():
                    cut = match.start()
                    break
            self._quoted_start = cut
            self._bounce_text = text[:cut]
        return self._bounce_text

    def report_lines(self) -> list[str]:
        """`bounce_text` split into lines, at most MAX_REPORT_LINES of them."""
        if self._report_lines is None:
            self._report_lines = self.bounce_text.split("\n")[:MAX_REPORT_LINES]
        return self._report_lines

    def report_lines_lower(self) -> list[str]:
        """`report_lines()` in lowercase (for finding addresses, which compare lowercase)."""
        if self._report_lines_lower is None:
            self._report_lines_lower = [line.lower() for line in self.report_lines()]
        return self._report_lines_lower

    @property
    def original(self) -> Original:
        """The original message's headers: from an attached message/rfc822 or
        text/rfc822-headers part, else from header lines quoted in the report's text."""
        if self._original is None:
            found: Original | None = None
            for part in self.parts:
                if part is self.root:
                    continue
                if part.content_type in ("message/rfc822", "message/global") and part.children:
                    found = _original_from_headers(part.children[0].headers)
                    break
                if part.content_type in ("text/rfc822-headers", "message/rfc822-headers") or (
                    part.content_type in ("message/rfc822", "message/global")
                ):
                    headers, _ = split_headers(part.text().lstrip("\n"))
                    found = _original_from_headers(headers)
                    break
            if found is None:
                _ = self.bounce_text
                quoted = self.full_text[self._quoted_start :]
                lines = [(m.group(1).lower(), m.group(2)) for m in _QUOTED_HEADER.finditer(quoted)]
                found = _original_from_headers(lines)
            self._original = found
        return self._original


def context_of(raw: bytes) -> Context:
    """Parse raw bytes into a Context."""
    return Context.from_root(parse_part(normalize(raw)))
