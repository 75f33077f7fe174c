"""The text alternative converted once per template equals converting each recipient's HTML."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from stmails.services.sending import plaintext
from stmails.services.sending.plaintext import html_to_text, text_of_marked
from stmails.services.sending.templates import VALUE_END, VALUE_START, compile_template

# Literal pieces chosen to sit next to values in every way the conversion cares about: inside
# tags and attributes, after unfinished references, in comments, hidden elements and links.
LITERALS = [
    "",
    " ",
    "  \n ",
    "<p>",
    "</p>",
    "<br>",
    "<li>",
    "<a href='",
    "<a href=",
    '<a href="https://example.org/x">',
    "'>",
    '">',
    ">",
    "</a>",
    "<img alt='",
    "<img src=x alt=",
    "<h",
    "<",
    "<!--",
    "-->",
    "<!-",
    "<script>",
    "</script>",
    "&",
    "&am",
    "&amp;",
    "&#3",
    "x",
    "Hello ",
    ",",
    "<td>",
    "<div class='",
    "https://",
    "mailto:",
]
VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "Ann",
            "Ann Lee",
            " Ann",
            "Ann  Lee",
            "a\nb",
            "https://lists.example.org/u/1",
            "mailto:x@y.z",
            "p;",
            "amp;",
            "<b>",
            "&",
            "x' href='https://evil.example",
            "alt=z",
            "1",
            "\x00",
            "\x02",
        ]
    ),
    st.text(alphabet="ab &;<>'\"=/:.\n\t", max_size=8),
)


def convert(source: str, values: dict[str, Any]) -> tuple[str, str] | None:
    template = compile_template(source, html=True, marked=True)
    marked = template.render_marked(values)
    if marked is None:
        return None
    html, text = text_of_marked(marked, VALUE_START, VALUE_END)
    assert html == template.render(values)
    return html, text


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.tuples(st.sampled_from(LITERALS), VALUES), min_size=1, max_size=6),
    tail=st.sampled_from(LITERALS),
    others=st.lists(VALUES, min_size=6, max_size=6),
)
def test_equals_converting_the_html(
    pieces: list[tuple[str, str]], tail: str, others: list[str]
) -> None:
    source = "".join(f"{literal}{{{{ v{n} }}}}" for n, (literal, _) in enumerate(pieces)) + tail
    # Each recipient twice: a skeleton is planned the second time it is seen.
    first = [v for _, v in pieces]
    for values in (first, first, others, others):
        result = convert(source, {f"v{n}": value for n, value in enumerate(values)})
        if result is not None:
            html, text = result
            assert text == html_to_text(html)


LAYOUT = (
    "<html><body><p>Hello {{ name }},</p><p>News from {{ city }}: read "
    '<a href="https://example.org/news">our site</a>.</p>'
    "{% if vip %}<p>Thanks for being with us!</p>{% endif %}"
    "<p><a href='{{ url }}'>Unsubscribe</a> {{ pixel }}</p></body></html>"
)


def test_typical_template_is_converted_once_then_filled(monkeypatch: pytest.MonkeyPatch) -> None:
    template = compile_template(LAYOUT, html=True, marked=True)
    people = [
        {"name": "Ann", "city": "Paris", "vip": True, "url": "https://x.example/u/1"},
        {"name": "Bob Ray", "city": "Lyon", "vip": False, "url": "https://x.example/u/2"},
        {"name": "Cy", "city": "Oslo", "vip": True, "url": "https://x.example/u/3"},
    ]
    expected = [html_to_text(template.render({**p, "pixel": Markup("")})) for p in people]
    # The first sighting of each branch of the template is converted whole.
    for person in people[:2]:
        marked = template.render_marked({**person, "pixel": Markup("")})
        assert marked is not None
        text_of_marked(marked, VALUE_START, VALUE_END)

    def whole_conversion(html: str) -> str:
        raise AssertionError("the per-template plan should have been used")

    monkeypatch.setattr(plaintext, "html_to_text", whole_conversion)
    texts = []
    for person in people:
        marked = template.render_marked({**person, "pixel": Markup("")})
        assert marked is not None
        texts.append(text_of_marked(marked, VALUE_START, VALUE_END)[1])
    assert texts == expected
    assert texts[1] == (
        "Hello Bob Ray,\n\nNews from Lyon: read our site (https://example.org/news).\n\n"
        "Unsubscribe (https://x.example/u/2)\n"
    )


def test_values_the_plan_cannot_copy_fall_back_to_the_whole_conversion() -> None:
    template = compile_template(LAYOUT, html=True, marked=True)
    person = {"name": "  Ann\n Lee ", "city": "A & B", "vip": False, "url": "not a url"}
    marked = template.render_marked(person)
    assert marked is not None
    html, text = text_of_marked(marked, VALUE_START, VALUE_END)
    assert text == html_to_text(html)
    assert "Hello Ann Lee ," in text and "A & B" in text and "not a url" not in text


def test_a_marker_in_a_value_renders_unmarked() -> None:
    template = compile_template("<p>{{ name }}</p>", html=True, marked=True)
    assert template.render_marked({"name": "a\x02b"}) is None
    assert compile_template("<p>{{ name }}</p>", html=True).render_marked({"name": "x"}) is None
