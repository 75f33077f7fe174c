"""Converting a campaign body between listmonk's content types (`POST /api/campaigns/{id}/content`).

listmonk converts Markdown to HTML on the server and leaves the other conversions to its
editor; stmails does them all here, so that any client gets them:

| from | to | result |
| --- | --- | --- |
| markdown | html, richtext | the HTML the sender would make of it |
| markdown | plain | that HTML as text |
| html, richtext, visual | plain | the text of the HTML (the plain-text alternative's converter) |
| html, richtext, visual | markdown | Markdown (markdownify) |
| plain | html, richtext | the text escaped, line breaks as `<br>` |
| plain | markdown | unchanged |
| html, richtext, visual | html, richtext | unchanged (the same HTML) |
| any | visual | the visual editor's block document (JSON text; see `visual_blocks`) |

Template actions (`{{ ... }}`) pass through every conversion as written. The input is bounded
by the request size cap. Markdown is converted by Python-Markdown, whose time grows with the
square of a block's length (a block re-split after each heading or rule it finds), so Markdown
to convert is held to MAX_MARKDOWN_CHARS and its blocks (text between blank lines) to
MAX_BLOCK_LINES lines: InvalidInput beyond. HTML nested too deep to walk is InvalidInput too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import escape
from typing import Any

from markdownify import MarkdownConverter

from stmails.db.models import CONTENT_TYPES
from stmails.services.errors import InvalidInput
from stmails.services.sending.plaintext import html_to_text
from stmails.services.sending.templates import markdown_to_html

HTML_TYPES = frozenset({"html", "richtext", "visual"})
MAX_MARKDOWN_CHARS = 256 * 1024
MAX_BLOCK_LINES = 300
# A shielded template action: a character no HTML or Markdown converter touches, its number,
# the same character again.
_MARK = "\ue000"
_SHIELDED = re.compile(f"{_MARK}(\\d+){_MARK}")
_BLANK_LINES = re.compile(r"\n{3,}")
# The padding of the visual editor's blocks (listmonk's editor uses the same).
_PADDING = {"top": 16, "bottom": 16, "right": 24, "left": 24}


def convert(body: str, source: str, target: str) -> str:
    """`body` of content type `source` as content type `target`; InvalidInput naming `from`
    or `to` for an unknown type."""
    for field, value in (("from", source), ("to", target)):
        if value not in CONTENT_TYPES:
            raise InvalidInput(field, f"must be one of {', '.join(CONTENT_TYPES)}")
    if target == "visual":
        return json.dumps(visual_blocks(_as_markdown(body, source)), ensure_ascii=False)
    if source == target or (source in HTML_TYPES and target in HTML_TYPES):
        return body
    if source == "markdown":
        _check_markdown(body)
        html = _shielded(body, markdown_to_html)
        return html_to_text(html).strip() if target == "plain" else html
    if source == "plain":
        if target == "markdown":
            return body
        return "<br>\n".join(escape(line, quote=False) for line in body.split("\n"))
    # From HTML to plain or Markdown.
    if target == "plain":
        return html_to_text(body).strip()
    return _as_markdown(body, source)


class _ToMarkdown(MarkdownConverter):
    """markdownify's converter, dropping what a reader never sees (scripts, styles)."""

    def convert_script(self, *_: Any, **__: Any) -> str:
        return ""

    convert_style = convert_script
    convert_head = convert_script


def _check_markdown(body: str) -> None:
    """InvalidInput when Markdown is too long to convert in bounded time."""
    if len(body) > MAX_MARKDOWN_CHARS:
        raise InvalidInput("body", f"Markdown longer than {MAX_MARKDOWN_CHARS} characters")
    run = 0
    for line in body.split("\n"):
        run = run + 1 if line.strip() else 0
        if run > MAX_BLOCK_LINES:
            raise InvalidInput(
                "body", f"a Markdown block of more than {MAX_BLOCK_LINES} lines (add blank lines)"
            )


def _as_markdown(body: str, source: str) -> str:
    if source not in HTML_TYPES:
        return body
    converter = _ToMarkdown(heading_style="ATX", bullets="-")
    try:
        converted = _shielded(body, converter.convert)
    except RecursionError:
        raise InvalidInput("body", "the HTML nests too deeply to convert") from None
    return _BLANK_LINES.sub("\n\n", converted).strip()


def _shielded(text: str, work: Callable[[str], str]) -> str:
    """`work(text)` with every `{{ ... }}` template action kept exactly as written."""
    saved: list[str] = []
    parts: list[str] = []
    done = 0
    while True:
        start = text.find("{{", done)
        end = text.find("}}", start + 2) if start != -1 else -1
        if end == -1:
            break
        parts.append(text[done:start])
        parts.append(f"{_MARK}{len(saved)}{_MARK}")
        saved.append(text[start : end + 2])
        done = end + 2
    parts.append(text[done:])
    result = work("".join(parts))
    return _SHIELDED.sub(lambda m: saved[int(m.group(1))], result)


def _atx_heading(line: str) -> tuple[int, str] | None:
    """(level, text) of an ATX heading line (`## Title ##`), else None."""
    level = len(line) - len(line.lstrip("#"))
    if not 1 <= level <= 6 or line[level : level + 1] not in (" ", "\t"):
        return None
    return level, line[level:].strip().rstrip("#").rstrip()


def visual_blocks(markdown: str) -> dict[str, Any]:
    """The visual editor's document for `markdown`: an EmailLayout root whose children are a
    Heading block per ATX (`# x`) or setext (`x` over `===`/`---`) heading and a Markdown Text
    block for each run of other lines."""
    blocks: list[tuple[str, dict[str, Any]]] = []
    text: list[str] = []

    def flush() -> None:
        if any(line.strip() for line in text):
            blocks.append(("Text", {"markdown": True, "text": "\n".join(text).strip("\n")}))
        text.clear()

    for line in markdown.split("\n"):
        heading = _atx_heading(line)
        underline = line.strip()
        if heading is not None:
            flush()
            blocks.append(("Heading", {"text": heading[1], "level": f"h{heading[0]}"}))
        elif underline and set(underline) in ({"="}, {"-"}) and text and text[-1].strip():
            title = text.pop()
            flush()
            level = "h1" if underline[0] == "=" else "h2"
            blocks.append(("Heading", {"text": title.strip(), "level": level}))
        else:
            text.append(line)
    flush()
    ids = [f"block-{n + 1}" for n in range(len(blocks))]
    document: dict[str, Any] = {
        "root": {"type": "EmailLayout", "data": {"childrenIds": ids}},
    }
    for block_id, (kind, props) in zip(ids, blocks, strict=True):
        document[block_id] = {
            "type": kind,
            "data": {"props": props, "style": {"padding": dict(_PADDING)}},
        }
    return document
