"""Templating (Jinja2 and listmonk's Go expressions), MIME building and SMTP answer handling."""

from __future__ import annotations

import smtplib
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from stmails.services.sending.compose import (
    Links,
    Recipient,
    compile_content,
    template_context,
)
from stmails.services.sending.messages import MessageError, MessageSpec, custom_headers
from stmails.services.sending.plaintext import html_to_text
from stmails.services.sending.smtp import RateLimiter, SmtpServer, classify_error
from stmails.services.sending.templates import (
    TemplateRenderError,
    compile_template,
    translate_go_template,
)

ALICE = Recipient(
    id=7,
    uuid="11111111-2222-4333-8444-555555555555",
    email="alice@example.com",
    name="Alice Liddell",
    attribs={"city": "Bengaluru", "projects": 3, "tags": ["a", "b"], "items": "x"},
)


def render(source: str, *, html: bool = True, **extra: object) -> str:
    context = template_context(
        ALICE,
        campaign={
            "uuid": "c-uuid",
            "name": "Spring",
            "subject": "S",
            "attribs": {"owner": "marketing", "season": {"name": "spring"}},
            "tags": ["t1", "t2"],
        },
        tx_data={"code": "X1", "order": {"id": 42}},
        links=Links(unsubscribe_url="https://l.example/u/1"),
    )
    context.update(extra)
    return compile_template(source, html=html).render(context)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ .Subscriber.Name }}", "Alice Liddell"),
        ("{{ .Subscriber.FirstName }}/{{ .Subscriber.LastName }}", "Alice/Liddell"),
        ("{{ .Subscriber.Email }} {{ .Subscriber.UUID }}", f"{ALICE.email} {ALICE.uuid}"),
        ("{{ .Subscriber.Attribs.city }}", "Bengaluru"),
        ("{{ .Subscriber.Attribs.items }}", "x"),
        ("{{ .Tx.Data.code }}-{{ .Tx.Data.order.id }}", "X1-42"),
        ("{{ .Campaign.Name }}", "Spring"),
        ("{{ .Campaign.Attribs.owner }}/{{ .Campaign.Attribs.season.name }}", "marketing/spring"),
        ('{{ join "," .Campaign.Tags }}', "t1,t2"),
        ("{{ UnsubscribeURL }}", "https://l.example/u/1"),
        ("[{{ TrackView }}]", "[]"),
        ('{{ TrackLink "https://a.example/x" }}', "https://a.example/x"),
        ('<a href="https://a.example/y@TrackLink">', '<a href="https://a.example/y">'),
        ('{{ if eq .Subscriber.Attribs.city "Bengaluru" }}BLR{{ else }}other{{ end }}', "BLR"),
        (
            '{{ if ne .Subscriber.Attribs.city "Bengaluru" }}a'
            "{{ else if .Tx.Data.code }}b{{ end }}",
            "b",
        ),
        ("{{ if gt .Subscriber.Attribs.projects 2 }}many{{ end }}", "many"),
        ("{{ if and .Subscriber.Name (not .Subscriber.Attribs.none) }}y{{ end }}", None),
        ("{{ range .Subscriber.Attribs.tags }}<{{ . }}>{{ end }}", "<a><b>"),
        ("{{ range $i, $t := .Subscriber.Attribs.tags }}{{ $i }}={{ $t }};{{ end }}", "0=a;1=b;"),
        ("{{ with .Subscriber.Attribs.city }}in {{ . }}{{ end }}", "in Bengaluru"),
        ("{{ .Subscriber.Attribs.missing }}|", "|"),
        ("{{ .Subscriber.Name | upper }}", "ALICE LIDDELL"),
        ("{{ len .Subscriber.Attribs.tags }}", "2"),
        ('{{ index .Subscriber.Attribs "city" }}', "Bengaluru"),
        ('{{ Safe "<!-- x -->" }}', "<!-- x -->"),
        ("{{ subscriber.name }} {{ subscriber.attribs.city }} {{ tx.data.code }}", None),
        ("{%- if subscriber.attribs.projects > 1 %}jinja{% endif %}", "jinja"),
    ],
)
def test_expressions_render(source: str, expected: str | None) -> None:
    if expected is None:
        # Parenthesised Go sub-expressions are refused rather than guessed.
        if "(" in source:
            with pytest.raises(TemplateRenderError):
                render(source)
            return
        expected = "Alice Liddell Bengaluru X1"
    assert render(source) == expected


def test_sandbox_hides_python_internals() -> None:
    assert render("{{ subscriber.__class__ }}{{ .Subscriber.__init__ }}") == ""


def test_subscriber_data_is_escaped_in_html_only() -> None:
    evil = Recipient(id=1, uuid="u", email="e@x.y", name="<script>x</script>")
    context = template_context(evil)
    assert "&lt;script&gt;" in compile_template("{{ .Subscriber.Name }}", html=True).render(context)
    assert compile_template("{{ .Subscriber.Name }}", html=False).render(context) == evil.name


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ if .A }}never closed",
        "{{ end }}",
        '{{ template "other" . }}',
        "{{ bogus .A .B }}",
        "{% for x in range(10**9) %}{% endfor %}",
    ],
)
def test_unsafe_or_broken_templates_are_refused(source: str) -> None:
    with pytest.raises(TemplateRenderError):
        render(source)


def test_layout_wraps_body_and_text_alternative_is_generated() -> None:
    content = compile_content(
        subject="Hi {{ .Subscriber.FirstName }}",
        body="# Title\n\nSome **bold** text for {{ .Subscriber.Attribs.city }}.",
        content_type="markdown",
        from_email="News <news@example.org>",
        layout='<html><body><header>Top</header>{{ template "content" . }}'
        '<a href="{{ UnsubscribeURL }}">unsubscribe</a></body></html>',
    )
    rendered = content.render(
        template_context(ALICE, links=Links(unsubscribe_url="https://u.example/x"))
    )
    assert rendered.subject == "Hi Alice"
    assert rendered.html is not None
    assert "<h1>Title</h1>" in rendered.html and "<strong>bold</strong>" in rendered.html
    assert rendered.text == (
        "Top\n\nTitle\n\nSome bold text for Bengaluru.\n\nunsubscribe (https://u.example/x)\n"
    )
    with pytest.raises(TemplateRenderError, match="content"):
        compile_content(
            subject="s", body="b", content_type="html", from_email="a@b.c", layout="<p>x</p>"
        )


def test_translation_keeps_jinja_and_trim_markers() -> None:
    assert translate_go_template("{{- .Subscriber.Name -}}") == "{{- Subscriber['Name'] -}}"
    assert translate_go_template("{{ subscriber.name }}") == "{{ subscriber.name }}"


def test_html_to_text() -> None:
    html = (
        "<html><head><style>p{}</style></head><body><h1>Hi &amp; welcome</h1>"
        "<!-- hidden --><p>One<br>two</p><ul><li>a</li><li>b</li></ul>"
        '<a href="https://x.example/?a=1&amp;b=2">site</a></body></html>'
    )
    assert html_to_text(html) == (
        "Hi & welcome\n\nOne\ntwo\n\n- a\n- b\n\nsite (https://x.example/?a=1&b=2)\n"
    )
    # Linear on hostile input: many unterminated comments and tags.
    assert html_to_text("<!--" * 20000 + "<a" * 20000) == "\n"


def _parse(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_message_headers_are_encoded_and_cannot_be_injected() -> None:
    spec = MessageSpec(
        from_address="Zoë Sender <news@example.org>",
        to_address="Bob <bob@example.net>",
        subject="Ünïcode subject\r\nBcc: victim@example.com",
        html="<p>héllo</p>",
        text="héllo",
        return_path="bounce@example.org",
        headers=[("X-Custom", "v\nInjected: yes")],
    )
    message = spec.build()
    assert message.envelope_from == "bounce@example.org"
    assert message.recipient == "bob@example.net"
    assert b"\nBcc:" not in message.data and b"\nInjected:" not in message.data
    assert all(line.endswith(b"\r") or not line for line in message.data.split(b"\n")[:-1])
    parsed = _parse(message.data)
    assert parsed["Subject"] == "Ünïcode subject Bcc: victim@example.com"
    assert parsed["From"].addresses[0].display_name == "Zoë Sender"
    assert parsed["Message-ID"].endswith("@example.org>")
    assert parsed.get_body(("plain",)).get_content().strip() == "héllo"  # type: ignore[union-attr]
    for bad in ([{"Subject": "x"}], [{"Bad Name": "x"}], "nope"):
        with pytest.raises(MessageError):
            custom_headers(bad)
    assert custom_headers([{"X-A": "1"}, {"X-B": 2}]) == [("X-A", "1"), ("X-B", "2")]


@pytest.mark.parametrize(
    "text",
    [
        "plain ascii\n",
        "trailing spaces   \n.leading dot\n.\n= equals =3D\n",
        "é" * 120 + "\n" + "x" * 200,
        "tabs\tand\r\nCRLF\rlone CR\n\n\n",
        "",
    ],
)
def test_bodies_are_quoted_printable_that_the_email_package_reads_back(text: str) -> None:
    spec = MessageSpec(
        from_address="News <news@example.org>",
        to_address="bob@example.net",
        subject="s",
        html="<p>" + text + "</p>",
        text=text,
    )
    data = spec.build().data
    lines = data.split(b"\r\n")
    assert all(len(line) <= 78 and b"\n" not in line and b"\r" not in line for line in lines)
    assert data.isascii()
    parsed = _parse(data)
    plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None and html is not None
    assert plain["Content-Transfer-Encoding"] == "quoted-printable"
    # Every line end was sent as CRLF (a lone CR was a line end too); nothing else changed.
    expected = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    assert plain.get_content() == expected
    assert html.get_content() == "<p>" + expected + "</p>"


def test_smtp_answers_are_classified() -> None:
    refused = smtplib.SMTPRecipientsRefused({"a@b.c": (550, b"5.1.1 user unknown")})
    assert classify_error(refused).outcome == "hard"
    assert classify_error(refused).enhanced_status == "5.1.1"
    later = smtplib.SMTPRecipientsRefused({"a@b.c": (451, b"try later")})
    assert classify_error(later).outcome == "soft"
    assert classify_error(later).enhanced_status == "4.0.0"
    assert classify_error(smtplib.SMTPDataError(554, b"spam")).outcome == "hard"
    assert classify_error(smtplib.SMTPSenderRefused(553, b"bad sender", "x")).outcome == "error"
    assert classify_error(ConnectionRefusedError()).outcome == "error"


def test_listmonk_smtp_settings_are_read() -> None:
    server = SmtpServer.from_settings(
        {
            "host": "smtp.example.com",
            "port": 587,
            "auth_protocol": "login",
            "username": "mailer",
            "password": "secret",
            "tls_type": "STARTTLS",
            "idle_timeout": "15s",
            "wait_timeout": "500ms",
            "max_conns": 3,
            "email_headers": [{"X-Mailer": "stmails"}, {"Return-Path": "<b@mail.example.org>"}],
        }
    )
    assert (server.tls_type, server.idle_timeout, server.wait_timeout) == ("starttls", 15.0, 0.5)
    # The Return-Path header is the envelope sender, not one of the headers written.
    assert server.email_headers == (("X-Mailer", "stmails"),)
    assert server.return_path == "b@mail.example.org"
    assert "secret" not in repr(server)
    with pytest.raises(ValueError, match="tls_type"):
        SmtpServer.from_settings({"host": "x", "tls_type": "SSLv2"})


def test_rate_limiter_spaces_calls() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(10, clock=lambda: now[0], sleep=sleep)
    for _ in range(30):
        limiter.acquire()
    # 30 calls at 10/s with a one-second bucket: about two seconds of waiting.
    assert 1.9 <= sum(slept) <= 2.1
