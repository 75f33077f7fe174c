"""The plain-text alternative of an HTML body.

One linear pass over the tags (a campaign converts every recipient's HTML, so this is on the
hot path): hidden elements dropped, blocks become paragraphs, list items dashes, links keep their
target in parentheses, entities decoded.
"""

from __future__ import annotations

import re
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
            parts.append(_attr(_ALT, token) or "")
        elif name == "a" and not closing:
            links.append((_attr(_HREF, token), len(parts)))
        elif name == "a" and links:
            href, start = links.pop()
            text = "".join(parts[start:]).strip()
            # A link keeps its target in the text version unless the text already is the URL.
            if href and href.startswith(("http://", "https://", "mailto:")) and href != text:
                parts.append(f" ({href})")
    lines = [line.strip() for line in "".join(parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
