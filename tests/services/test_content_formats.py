"""services.content_formats: listmonk's content types converted into each other, template
actions intact, in time linear in the input."""

from __future__ import annotations

import json

import pytest

from stmails.services.content_formats import (
    MAX_BLOCK_LINES,
    MAX_MARKDOWN_CHARS,
    convert,
    visual_blocks,
)
from stmails.services.errors import InvalidInput


def test_every_pair_of_types_converts() -> None:
    types = ("richtext", "html", "markdown", "plain", "visual")
    samples = {
        "richtext": "<p>Hi {{ .Subscriber.Name }}</p>",
        "html": "<h1>T</h1><p>x_y</p>",
        "markdown": "# T\n\nx *y*",
        "plain": "line one\nline <two>",
        "visual": "<div><p>visual</p></div>",
    }
    for source in types:
        for target in types:
            out = convert(samples[source], source, target)
            assert isinstance(out, str)
            if target == "visual":
                assert json.loads(out)["root"]["type"] == "EmailLayout"
    assert "{{ .Subscriber.Name }}" in convert(samples["richtext"], "richtext", "markdown")
    assert convert(samples["plain"], "plain", "html") == "line one<br>\nline &lt;two&gt;"
    with pytest.raises(InvalidInput, match="to"):
        convert("x", "html", "pdf")


def test_visual_blocks_split_headings_from_text() -> None:
    doc = visual_blocks("Intro\n\n## Part\ntext\n\nTitle\n=====\nmore\n####### not a heading")
    kinds = [(doc[i]["type"], doc[i]["data"]["props"]) for i in doc["root"]["data"]["childrenIds"]]
    assert kinds == [
        ("Text", {"markdown": True, "text": "Intro"}),
        ("Heading", {"text": "Part", "level": "h2"}),
        ("Text", {"markdown": True, "text": "text"}),
        ("Heading", {"text": "Title", "level": "h1"}),
        ("Text", {"markdown": True, "text": "more\n####### not a heading"}),
    ]


def test_what_cannot_be_converted_in_bounded_time_is_refused() -> None:
    # Python-Markdown's time grows with the square of a block's length: long blocks and long
    # texts are refused, before any work.
    block = "title\n=\n" * (MAX_BLOCK_LINES // 2 + 1)
    with pytest.raises(InvalidInput, match="block"):
        convert(block, "markdown", "html")
    with pytest.raises(InvalidInput, match="longer"):
        convert(("x" * 70 + "\n\n") * (MAX_MARKDOWN_CHARS // 72 + 1), "markdown", "plain")
    # The same text in blocks of the allowed length converts.
    allowed = "\n\n".join(["title\n=\n" * (MAX_BLOCK_LINES // 2)] * 3)
    assert convert(allowed, "markdown", "html").count("<h1>") == 3 * (MAX_BLOCK_LINES // 2)
    # HTML too deep for the converter's walk is refused, not a crash.
    with pytest.raises(InvalidInput, match="nests"):
        convert("<div>" * 5000 + "x", "html", "markdown")
