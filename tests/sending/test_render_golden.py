"""Rendered campaign messages are byte-for-byte what they were before the send path was made
faster: `data/rendered_messages.txt` holds messages serialized by the earlier code (the same
recipients, campaigns and tracking), and every change to rendering must keep them.

Only what differs per run is set aside: the Date header's value is replaced by a fixed text and
the random MIME boundaries come from a seeded generator. Regenerate the file only for an
intended change of the output: `STMAILS_REGENERATE_GOLDEN=1 pytest` on this file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from stmails.db.models import Campaign
from stmails.services.sending import messages
from stmails.services.sending.campaigns import render_for
from stmails.services.sending.compose import Content, Recipient, compile_content
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.messages import custom_headers
from stmails.services.sending.runtime import return_path_for
from stmails.services.tracking.links import CampaignTracking, TrackingConfig

GOLDEN = Path(__file__).parent / "data" / "rendered_messages.txt"
SEPARATOR = "\n=== message ===\n"
ROOT = "https://lists.example.org"
CAMPAIGN_UUID = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"

LAYOUT = (
    "<html><body><div class='c'>{{ template \"content\" . }}</div>{{ TrackView }}"
    "<p><a href='{{ UnsubscribeURL }}'>Unsubscribe</a> | "
    "<a href='{{ MessageURL }}'>View</a></p></body></html>"
)
HTML_BODY = (
    "<p>Hello {{ .Subscriber.FirstName }},</p><p>News from {{ .Subscriber.Attribs.city }} "
    "for {{ .Campaign.Name }} ({{ .Subscriber.Email }}): read "
    '<a href="{{ TrackLink "https://example.org/news" }}">our news</a> or '
    '<a href="{{ TrackLink "https://example.org/other" }}">other</a>.</p>'
    "<ul>{% for t in subscriber.attribs.get('tags', []) %}<li>{{ t }}</li>{% endfor %}</ul>"
    "<p>{{ .Subscriber.Attribs.note }}</p>"
)
MARKDOWN_BODY = (
    "# News for {{ .Subscriber.Name }}\n\nA *short* note with a [link]"
    '({{ TrackLink "https://example.org/md" }}).\n\n- one\n- two\n'
)
PLAIN_BODY = "Hi {{ .Subscriber.Name }},\n\nPlain news from {{ .Subscriber.Attribs.city }}.\n"

RECIPIENTS = [
    Recipient(
        id=11,
        uuid="11111111-2222-4333-8444-555555555555",
        email="alice@example.com",
        name="Alice Liddell",
        attribs={"city": "Paris", "tags": ["a", "b"], "note": "<b>bold & plain</b>"},
    ),
    Recipient(
        id=12,
        uuid="22222222-3333-4444-8555-666666666666",
        email="zhang@example.cn",
        name="张 伟",
        attribs={"city": "北京", "note": "第一行\n第二行 " + "很长的文字" * 20},
    ),
    Recipient(
        id=13,
        uuid="33333333-4444-4555-8666-777777777777",
        email="marker@example.com",
        name="Mark \x02 Er",
        attribs={"city": "Nowhere \x03", "tags": []},
    ),
    Recipient(
        id=14,
        uuid="44444444-5555-4666-8777-888888888888",
        email="long@example.com",
        name="A Very Long Display Name That Goes On And On To Make The Header Fold",
        attribs={},
    ),
]


def _config() -> SendingConfig:
    server = {"host": "127.0.0.1", "port": 2525, "auth_protocol": "none", "tls_type": "none"}
    return SendingConfig.from_settings(
        {
            "smtp": [server],
            "sending.bounce_address": "bounces@mail.example.org",
            "app.root_url": ROOT,
        }
    )


def _campaign(**fields: object) -> Campaign:
    base: dict[str, object] = {
        "id": 42,
        "uuid": CAMPAIGN_UUID,
        "name": "Spring & Summer",
        "subject": "News for {{ .Subscriber.Name }}",
        "from_email": "News Desk <news@sender.example>",
        "attribs": {"season": "spring"},
        "tags": ["news"],
    }
    base.update(fields)
    return Campaign(**base)


def _tracking(*, disabled: bool = False, individual: bool = False) -> CampaignTracking:
    return CampaignTracking(
        root_url=ROOT,
        campaign_uuid=CAMPAIGN_UUID,
        config=TrackingConfig(disabled=disabled, individual=individual),
        links={"https://example.org/news": "aaaaaaaa-1111-4222-8333-444444444444"},
    )


def _kinds() -> Iterator[tuple[str, Campaign, Content]]:
    headers = custom_headers(
        [{"X-Campaign-Kind": "monthly"}, {"X-Note": "été {{ .Campaign.Name }}"}]
    )
    html = compile_content(
        subject="News for {{ .Subscriber.Name }}",
        body=HTML_BODY,
        content_type="html",
        from_email="News Desk <news@sender.example>",
        layout=LAYOUT,
        headers=headers,
    )
    yield "html-anonymous", _campaign(), replace(html, tracking=_tracking())
    yield "html-individual", _campaign(), replace(html, tracking=_tracking(individual=True))
    yield "html-untracked", _campaign(), replace(html, tracking=_tracking(disabled=True))
    yield "html-no-tracking", _campaign(), html
    markdown = compile_content(
        subject="Überschrift: {{ .Campaign.Name }} for {{ .Subscriber.FirstName }}",
        body=MARKDOWN_BODY,
        content_type="markdown",
        from_email="Équipe <team@sender.example>",
        layout=LAYOUT,
        altbody="Text for {{ .Subscriber.Name }}: {{ UnsubscribeURL }}",
    )
    yield "markdown-altbody", _campaign(), replace(markdown, tracking=_tracking())
    plain = compile_content(
        subject="Plain {{ .Subscriber.Email }}",
        body=PLAIN_BODY,
        content_type="plain",
        from_email="plain@sender.example",
        layout='Top\n{{ template "content" . }}\nBottom {{ UnsubscribeURL }}\n',
    )
    yield "plain-layout", _campaign(), replace(plain, tracking=_tracking())
    bare = compile_content(
        subject="Bare",
        body="<p>Hi {{ .Subscriber.FirstName }} {{ TrackView }}</p>",
        content_type="richtext",
        from_email="bare@sender.example",
    )
    yield "richtext-no-layout", _campaign(), replace(bare, tracking=_tracking())


def _normalized(data: bytes) -> str:
    return re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: (the time)\r\n", data).decode("utf-8")


def _render_all() -> list[str]:
    config = _config()
    paths = return_path_for(config, None)
    state = messages._UNIQUE.getstate()
    messages._UNIQUE.seed(20261206)
    try:
        out = []
        for name, campaign, content in _kinds():
            for recipient in RECIPIENTS:
                message = render_for(content, campaign, recipient, config, paths)
                header = f"{name} {recipient.id} {message.envelope_from} {message.recipient}"
                out.append(f"{header}\n{_normalized(message.data)}")
        return out
    finally:
        messages._UNIQUE.setstate(state)


@pytest.fixture(scope="module")
def rendered() -> list[str]:
    got = _render_all()
    if os.environ.get("STMAILS_REGENERATE_GOLDEN"):
        GOLDEN.write_text(SEPARATOR.join(got), encoding="utf-8", newline="")
    return got


def test_rendered_messages_are_unchanged(rendered: list[str]) -> None:
    expected = GOLDEN.read_bytes().decode("utf-8").split(SEPARATOR)
    assert len(rendered) == len(expected) == 7 * len(RECIPIENTS)
    for got, want in zip(rendered, expected, strict=True):
        assert got == want


def test_the_golden_messages_cover_what_they_claim(rendered: list[str]) -> None:
    # A guard against a golden file that lost its point: tracking, fallbacks and encodings.
    whole = "\n".join(rendered)
    assert "/link/aaaaaaaa-1111-4222-8333-444444444444/" in whole
    assert "/px.png" in whole
    assert "=?utf-8?" in whole
    assert "&lt;b&gt;bold &amp; plain&lt;/b&gt;" in whole
    assert "Content-Type: multipart/alternative" in whole
    assert "Content-Type: text/plain; charset=utf-8" in whole
