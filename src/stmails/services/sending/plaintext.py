"""The plain-text alternative of an HTML body.

One linear pass over the tags (a campaign converts every recipient's HTML, so this is on the
hot path): hidden elements dropped, blocks become paragraphs, list items dashes, links keep their
target in parentheses, entities decoded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import unescape

# Elements whose content is never shown as text.
_HIDDEN = frozenset({"script", "style", "head", "title", "template"})
# Elements that start a new paragraph.
_BLOCKS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "table",
        "tr",
        "ul",
        "ol",
        "blockquote",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "pre",
    }
)
# A tag: `<` up to the next `>` (no nested quantifiers: linear time).
_TAG = re.compile(r"(<[^<>]*>)")
_NAME = re.compile(r"<\s*(/?)\s*([a-zA-Z][a-zA-Z0-9]*)")
_ATTR = r"""\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))"""
_HREF = re.compile(r"\bhref" + _ATTR, re.IGNORECASE)
_ALT = re.compile(r"\balt" + _ATTR, re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def _attr(pattern: re.Pattern[str], tag: str) -> str | None:
    match = pattern.search(tag)
    if match is None:
        return None
    return unescape(next(g for g in match.groups() if g is not None))


def _without_comments(html: str) -> str:
    # str.find keeps this linear even with many unterminated comments.
    out: list[str] = []
    position = 0
    while True:
        start = html.find("<!--", position)
        if start < 0:
            out.append(html[position:])
            return "".join(out)
        out.append(html[position:start])
        end = html.find("-->", start + 4)
        if end < 0:
            return "".join(out)
        position = end + 3


def html_to_text(html: str) -> str:
    """Readable plain text for an HTML body: paragraphs, list items, link targets kept."""
    return _convert(html, _attr, _keeps_target)


def _keeps_target(href: str | None, text: str) -> bool:
    # A link keeps its target in the text version unless the text already is the URL.
    return href is not None and href.startswith(("http://", "https://", "mailto:")) and href != text


def _convert(
    html: str,
    attr: Callable[[re.Pattern[str], str], str | None],
    keeps_target: Callable[[str | None, str], bool],
) -> str:
    """`html_to_text` with its two data-dependent steps passed in: reading a tag's attribute
    and deciding whether a link keeps its target (the template-level conversion replaces them)."""
    parts: list[str] = []
    hidden = 0
    links: list[tuple[str | None, int]] = []
    for index, token in enumerate(_TAG.split(_without_comments(html))):
        if index % 2 == 0:
            if token and not hidden:
                parts.append(_SPACE.sub(" ", unescape(token)))
            continue
        match = _NAME.match(token)
        if match is None:
            continue
        closing, name = match.group(1) == "/", match.group(2).lower()
        if name in _HIDDEN:
            hidden = max(0, hidden - 1) if closing else hidden + 1
        elif hidden:
            continue
        elif name in _BLOCKS:
            parts.append("\n\n")
        elif name == "br":
            parts.append("\n")
        elif name == "li" and not closing:
            parts.append("\n- ")
        elif name in {"td", "th"} and not closing:
            parts.append(" ")
        elif name == "img":
            parts.append(attr(_ALT, token) or "")
        elif name == "a" and not closing:
            links.append((attr(_HREF, token), len(parts)))
        elif name == "a" and links:
            href, start = links.pop()
            if keeps_target(href, "".join(parts[start:]).strip()):
                parts.append(f" ({href})")
    lines = [line.strip() for line in "".join(parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


# -- The text alternative of templated HTML, converted once per template ---------------------
# A campaign's HTML is one template rendered per recipient: the literal parts (the skeleton) are
# the same for everyone and only the expression values differ. `text_of_marked` converts the
# skeleton once, with numbered slots where the values go, and then fills the slots per recipient.
# The result is always exactly `html_to_text(html)`: a slot is filled only where the conversion
# cannot depend on the value beyond copying it (its tokens, entities, whitespace and the tags it
# sits in are checked), links whose target decision depends on a value are decided per recipient,
# and anything else falls back to converting the whole HTML.

# A slot in a skeleton: NUL, its number, NUL (templates with NUL are never marked).
_SLOT = "\x00"
# Skeletons kept at most; a campaign has one per distinct branch of its template.
_MAX_SKELETONS = 64
# A longer skeleton is not kept (the cache's memory stays bounded); its HTML is converted whole.
_MAX_SKELETON_CHARS = 256 * 1024
# The cache's mark for a skeleton seen once: it is planned when it comes again, so a template
# whose literal parts differ for every recipient costs no more than converting each HTML.
_SEEN_ONCE = "seen once"
# A literal ending in an unfinished character reference, which a value could complete.
_OPEN_REFERENCE = re.compile(r"&[^\t\n\f <&;]*$")
# An ampersand that does not start a complete character reference.
_BARE_AMPERSAND = re.compile(r"&(?![a-zA-Z][a-zA-Z0-9]*;|#[0-9]+;|#[xX][0-9a-fA-F]+;)")


def _program(text: str) -> str:
    """A text with slots as a format string (`{N}` per slot, braces doubled) for `_fill`."""
    pieces = text.split(_SLOT)
    return "".join(
        piece.replace("{", "{{").replace("}", "}}") if n % 2 == 0 else "{" + piece + "}"
        for n, piece in enumerate(pieces)
    )


def _fill(program: str, values: Sequence[str]) -> str:
    return program.format(*values)


def _is_simple(value: str) -> bool:
    # Non-empty, no whitespace at the ends, single spaces inside: whitespace collapsing and line
    # stripping then treat the value as they treat its slot.
    return bool(value) and " ".join(value.split()) == value


@dataclass
class _Skeleton:
    """What converting one skeleton needs per recipient."""

    slots: int
    # Slots in text (not inside a tag): their values are copied into the text.
    text_slots: frozenset[int]
    # Tags with slots whose attribute the text uses (a href, img alt): the attribute's slot
    # number, the attribute pattern, and the tag as a program over the escaped values.
    attributes: list[tuple[int, re.Pattern[str], str]]
    # Links whose target decision depends on values: (href, link text) as programs.
    links: list[tuple[str | None, str]]
    source: str
    # The converted text per tuple of link decisions.
    texts: dict[tuple[bool, ...], str] = field(default_factory=dict)

    def convert(self, decisions: tuple[bool, ...]) -> str:
        """The skeleton converted with the dynamic links decided as given."""
        program = self.texts.get(decisions)
        if program is None:
            program = _program(_trace(self.source, self.slots, decisions)[0])
            self.texts[decisions] = program
        return program


def _trace(
    skeleton: str, slots: int, decisions: tuple[bool, ...]
) -> tuple[str, dict[tuple[re.Pattern[str], str], int], list[tuple[str | None, str]]]:
    """The skeleton converted, the attributes read from tags with slots (numbered after the
    value slots), and the links whose decision depended on a slot (decided by `decisions`)."""
    attributes: dict[tuple[re.Pattern[str], str], int] = {}
    links: list[tuple[str | None, str]] = []

    def attr(pattern: re.Pattern[str], tag: str) -> str | None:
        if _SLOT not in tag:
            return _attr(pattern, tag)
        number = attributes.setdefault((pattern, tag), slots + len(attributes))
        return f"{_SLOT}{number}{_SLOT}"

    def keeps_target(href: str | None, text: str) -> bool:
        if _SLOT not in (href or "") + text:
            return _keeps_target(href, text)
        links.append((href, text))
        return decisions[len(links) - 1] if len(links) <= len(decisions) else False

    return _convert(skeleton, attr, keeps_target), attributes, links


def _analyse(skeleton: str, slots: int) -> _Skeleton | None:
    """The skeleton's conversion plan, or None when some slot could change more than its own
    text (inside a comment, a tag name or an unfinished reference, or in nested links)."""
    cleaned = _without_comments(skeleton)
    if cleaned.count(_SLOT) != 2 * slots:
        return None
    text_slots: set[int] = set()
    open_links = 0
    for index, token in enumerate(_TAG.split(cleaned)):
        if index % 2 == 0:
            pieces = token.split(_SLOT)
            for n in range(1, len(pieces), 2):
                if _OPEN_REFERENCE.search(pieces[n - 1]):
                    return None
                text_slots.add(int(pieces[n]))
            continue
        match = _NAME.match(token)
        if _SLOT in token and (match is None or token.index(_SLOT) <= match.end()):
            return None
        if match is not None and match.group(2).lower() == "a":
            if match.group(1):
                open_links = max(0, open_links - 1)
            elif open_links:
                return None
            else:
                open_links += 1
    text, attributes, links = _trace(skeleton, slots, ())
    plan = _Skeleton(
        slots=slots,
        text_slots=frozenset(text_slots),
        attributes=[(n, pattern, _program(tag)) for (pattern, tag), n in attributes.items()],
        links=[(None if href is None else _program(href), _program(t)) for href, t in links],
        source=skeleton,
    )
    plan.texts[(False,) * len(links)] = _program(text)
    return plan


_SKELETONS: dict[str, _Skeleton | str | None] = {}


def text_of_marked(marked: str, start: str, end: str) -> tuple[str, str]:
    """(html, html_to_text(html)) for a template output whose expression values are enclosed
    in the `start` and `end` characters (which occur nowhere else in it)."""
    html = marked.replace(start, "").replace(end, "")
    pieces = marked.split(start)
    skeleton = [pieces[0]]
    escaped: list[str] = []
    for piece in pieces[1:]:
        value, found, literal = piece.partition(end)
        if not found or end in literal:
            return html, html_to_text(html)
        if value:
            skeleton.append(f"{_SLOT}{len(escaped)}{_SLOT}")
            escaped.append(value)
        skeleton.append(literal)
    key = "".join(skeleton)
    if len(key) > _MAX_SKELETON_CHARS:
        return html, html_to_text(html)
    # One lookup and at most one store: other threads may clear the cache meanwhile.
    plan = _SKELETONS.get(key, "")
    # A known plan first, and by type: comparing a plan with a string runs the dataclass's
    # __eq__, twice per message.
    if isinstance(plan, _Skeleton):
        text = _text(plan, escaped)
        return html, text if text is not None else html_to_text(html)
    if plan == "":
        if len(_SKELETONS) >= _MAX_SKELETONS:
            _SKELETONS.clear()
        _SKELETONS[key] = _SEEN_ONCE
    elif plan == _SEEN_ONCE:
        plan = _analyse(key, len(escaped))
        _SKELETONS[key] = plan
    text = _text(plan, escaped) if isinstance(plan, _Skeleton) else None
    return html, text if text is not None else html_to_text(html)


def _text(plan: _Skeleton, escaped: Sequence[str]) -> str | None:
    """The plan filled with one recipient's values; None when a value needs the full conversion."""
    values: list[str] = []
    for number, value in enumerate(escaped):
        if "<" in value or ">" in value:
            return None
        plain = unescape(value) if "&" in value else value
        if number in plan.text_slots and (
            not _is_simple(plain) or _BARE_AMPERSAND.search(value) is not None
        ):
            return None
        values.append(plain)
    for _, pattern, tag in plan.attributes:
        found = _attr(pattern, _fill(tag, escaped))
        if pattern is _ALT and not _is_simple(found or ""):
            return None
        values.append(found or "")
    decisions = []
    for href, link_text in plan.links:
        target = None if href is None else _fill(href, values)
        decisions.append(_keeps_target(target, _fill(link_text, values)))
        if decisions[-1] and "\n" in (target or ""):
            return None
    return _fill(plan.convert(tuple(decisions)), values)
