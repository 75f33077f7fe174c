"""The plain-text alternative of an HTML body."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content is never shown as text.
_HIDDEN = {"script", "style", "head", "title", "template"}
# Elements that start a new paragraph.
_BLOCKS = {
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


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden_depth = 0
        self.links: list[str | None] = []
        self.link_text_start: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden_depth += 1
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in {"td", "th"}:
            self.parts.append(" ")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(alt)
        elif tag == "a":
            self.links.append(dict(attrs).get("href"))
            self.link_text_start.append(len(self.parts))

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden_depth = max(0, self.hidden_depth - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a" and self.links:
            href = self.links.pop()
            start = self.link_text_start.pop()
            text = "".join(self.parts[start:]).strip()
            # A link keeps its target in the text version unless the text already is the URL.
            if href and href.startswith(("http://", "https://", "mailto:")) and href != text:
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self.hidden_depth:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Readable plain text for an HTML body: paragraphs, list items, link targets kept."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = [line.strip() for line in text.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
