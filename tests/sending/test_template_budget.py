"""The render budget: hostile templates are refused quickly, through every path that renders
(the template API's previews, campaigns, transactional mail), and ordinary ones still render."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Campaign, CampaignSend
from stmails.services import roles, users
from stmails.services.sending import template_budget
from stmails.services.sending.templates import (
    TemplateRenderError,
    compile_template,
    markdown_to_html,
    translate_go_template,
)

from .conftest import Sink, make_world
from .test_api import configure_smtp
from .test_campaign_sender import config_for, runner_for, start

# Long enough for any correct implementation on a loaded machine; the quadratic or unbounded
# ones these tests guard against take minutes to hours on the same inputs.
PATIENCE_SECONDS = 60.0


def finishes(work: Callable[[], Any]) -> Any:
    """`work()`'s result or exception, failing the test when it is still running after
    PATIENCE_SECONDS (the thread is a daemon: a runaway render cannot hold the test run)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(PATIENCE_SECONDS)
    assert not thread.is_alive(), "still running: the work is not bounded"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def render(source: str, html: bool = True, **context: Any) -> str:
    return compile_template(source, html=html).render(context)


def _doubled(times: int, start: str, step: str) -> str:
    return start + "".join(step for _ in range(times)) + "{{ a }}"


HOSTILE = {
    "nested ranges": (
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    ),
    "string repetition": "{{ 'x' * 50000000 }}",
    "doubling with ~": _doubled(
        9, "{% set a = 'xxxxxxxxxx' %}", "{% set a = a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a %}"
    ),
    "self-nested lists": _doubled(
        9,
        "{% set a = [1, 2, 3, 4, 5, 6, 7, 8, 9] %}",
        "{% set a = [a, a, a, a, a, a, a, a, a, a] %}",
    ),
    "exponential macro": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"
    ),
    "literal text in a loop": (
        "{% set x %}{% for i in range(100000) %}" + "A" * 100_000 + "{% endfor %}{% endset %}"
    ),
    "format width": "{{ '%999999999s'|format('x') }}",
    "percent width": "{{ '%0999999999d' % 1 }}",
    "center": "{{ 'x'|center(999999999) }}",
    "batch fill": "{{ [1]|batch(999999999, 0)|list|length }}",
    "slice count": "{{ [1]|slice(999999999)|list|length }}",
    "replace with empty": "{{ ('x' * 1000000)|replace('', 'yyyyyyyyyy') }}",
    "join of shared lists": (
        "{% set a = range(100000)|list %}{{ [a, a, a, a, a, a, a, a, a, a, a, a]|join(',') }}"
    ),
    "integer power": "{{ 9 ** 999999999 }}",
    "integer doubling": (
        "{% set ns = namespace(x=1) %}"
        "{% for i in range(100000) %}{% set ns.x = ns.x * ns.x + 2 %}{% endfor %}{{ ns.x }}"
    ),
    "str.format width": "{{ '{:>999999999}'.format('x') }}",
    "ljust": "{{ 'x'.ljust(999999999) }}",
    "list extend": "{% set a = [1] %}{% for i in range(60) %}{{ a.extend(a) }}{% endfor %}",
    "lipsum": "{{ lipsum(9999999) }}",
    "huge range": "{{ range(100000000)|list|length }}",
    "recursive loop": "{% for x in [1] recursive %}{{ loop([1, 1]) }}{% endfor %}",
    "deeply nested ifs": "{% if 1 %}" * 300 + "x" + "{% endif %}" * 300,
    "deeply nested parentheses": "{{ " + "(" * 20000 + "1" + ")" * 20000 + " }}",
    "print of large values": "{{ print('x' * 3000000, 'x' * 3000000) }}",
}


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_templates_are_refused_before_they_exhaust_the_worker(source: str) -> None:
    with pytest.raises(TemplateRenderError):
        finishes(lambda: render(source))


# Translation inputs that took quadratic time: unclosed actions, long pipelines, many URLs.
SLOW_TO_TRANSLATE = {
    "unclosed actions": "{{" * 200_000 + "x",
    "unclosed actions in markdown": "a {{ b " * 80_000,
    "unclosed statements in markdown": "a {% b " * 80_000,
    "URLs without @TrackLink": "http://a" * 60_000,
    "long pipeline": "{{ .Subscriber.Name" + " | lower" * 60_000 + " }}",
    "range with spaces": "{{ range $a" + " " * 200_000 + "x }}{{ end }}",
}


@pytest.mark.parametrize("source", SLOW_TO_TRANSLATE.values(), ids=SLOW_TO_TRANSLATE.keys())
def test_translation_is_linear(source: str) -> None:
    def work() -> None:
        markdown_to_html(source)
        with contextlib.suppress(TemplateRenderError):
            translate_go_template(source)

    finishes(work)


def test_long_pipelines_are_refused_with_a_reason_and_short_ones_translate() -> None:
    with pytest.raises(TemplateRenderError, match="pipeline of more than"):
        translate_go_template("{{ .A" + " | lower" * 40 + " }}")
    assert render("{{ .Subscriber.Name | lower | title }}", Subscriber={"Name": "AB"}) == "Ab"
    assert render("{{ .Subscriber.Name | lower | upper }}", Subscriber={"Name": "Ab"}) == "AB"
    assert render('{{ .A | eq "x" }}', A="x") == "True"


def test_the_tracklink_shorthand_and_markdown_shield_still_work() -> None:
    text = 'See https://example.com/a?b=1@TrackLink and "http://x.org/@TrackLink" {{ 1 }}'
    assert translate_go_template(text) == (
        'See {{ TrackLink("https://example.com/a?b=1") }} and "{{ TrackLink("http://x.org/") }}"'
        " {{ 1 }}"
    )
    assert translate_go_template("mail me@TrackLink http://@TrackLink") == (
        "mail me@TrackLink http://@TrackLink"
    )
    html = markdown_to_html("Hello _{{ .Subscriber.first_name_x }}_ {% if a_b_c %}x{% endif %}")
    assert "{{ .Subscriber.first_name_x }}" in html and "{% if a_b_c %}" in html
    assert "<em>" in html


def test_ordinary_templates_render_within_the_budget() -> None:
    items = [{"name": f"item {i}", "price": i} for i in range(500)]
    source = (
        "{% for item in data['items'] %}{{ loop.index }}. {{ item.name|upper }} "
        "{{ '%.2f'|format(item.price) }}{% if not loop.last %}, {% endif %}{% endfor %}|"
        "{{ data['items']|map(attribute='name')|join(', ')|length }}|"
        "{{ 'ab' * 3 }}|{{ [1, 2] + [3] }}|{{ 'a-b'.split('-') }}|{{ 2 ** 10 }}|"
        "{% macro row(x) %}<{{ x }}>{% endmacro %}{{ row('r') }}|"
        "{% for k, v in {'a': 1}.items() %}{{ k }}={{ v }}{% endfor %}|"
        "{{ 'abc'|center(7) }}|{{ 'a b'|replace(' ', '_') }}|{{ ('x' ~ 'y') * 2 }}"
    )
    out = render(source, data={"items": items})
    assert out.startswith("1. ITEM 0 0.00, 2. ITEM 1 1.00")
    assert out.endswith(
        "|ababab|[1, 2, 3]|[&#39;a&#39;, &#39;b&#39;]|1024|<r>|a=1|  abc  |a_b|xyxy"
    )
    assert render("{% for i in range(3) %}{{ i }}{% endfor %}", html=False) == "012"


def test_the_budget_is_per_render_not_per_template() -> None:
    # Near the step limit once, the same template renders again with a fresh budget.
    steps = template_budget.DEFAULT_LIMITS.steps
    template = compile_template("{% for i in range(n) %}{% endfor %}done", html=False)
    for _ in range(3):
        assert template.render({"n": min(steps - 10, 100_000)}) == "done"


def test_time_is_bounded_even_when_steps_are_plenty(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = template_budget.RenderLimits(steps=10**12, seconds=0.2)
    monkeypatch.setattr(template_budget, "DEFAULT_LIMITS", limits)
    with pytest.raises(TemplateRenderError, match=r"longer than 0\.2 seconds"):
        finishes(lambda: render(HOSTILE["nested ranges"]))


# Through the API, the sender and transactional mail (the app and client fixtures of
# conftest.py).


def _user_with(session_maker: sessionmaker[Session], *permissions: str) -> tuple[str, str]:
    name = "u-" + "-".join(p.replace(":", "_") for p in permissions)
    with session_maker() as session:
        role = roles.create(session, name, permissions)
        _, token = users.create_api_user(session, name, role=role)
        session.commit()
    return name, token


def test_previewing_unsaved_text_needs_templates_manage(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    reader = _user_with(session_maker, "templates:get")
    body = {"type": "tx", "body": "<p>{{ .Subscriber.Name }}</p>"}
    refused = client.post("/api/templates/preview", json=body, auth=reader)
    assert refused.status_code == 403
    assert refused.json()["message"] == "permission denied: templates:manage required"
    manager = _user_with(session_maker, "templates:manage")
    shown = client.post("/api/templates/preview", json=body, auth=manager)
    assert shown.status_code == 200 and "Demo Subscriber" in shown.text


@pytest.mark.parametrize("name", ["nested ranges", "string repetition", "self-nested lists"])
def test_hostile_previews_and_saves_are_400_with_the_reason(client: TestClient, name: str) -> None:
    body = {"type": "tx", "name": "t", "body": HOSTILE[name]}
    preview = finishes(lambda: client.post("/api/templates/preview", json=body))
    assert preview.status_code == 400, preview.text
    assert preview.json()["message"].startswith("body: template error: the template")
    saved = finishes(lambda: client.post("/api/templates", json=body))
    assert saved.status_code == 400
    assert client.get("/api/templates").json()["data"] == [] or all(
        t["name"] != "t" for t in client.get("/api/templates").json()["data"]
    )


def test_a_preview_renders_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A render that runs for its whole (lengthened) time budget.
    limits = template_budget.RenderLimits(steps=10**12, seconds=3.0)
    monkeypatch.setattr(template_budget, "DEFAULT_LIMITS", limits)
    body = {"type": "tx", "body": HOSTILE["nested ranges"]}
    answers: list[int] = []
    preview = threading.Thread(
        target=lambda: answers.append(client.post("/api/templates/preview", json=body).status_code)
    )
    preview.start()
    # The server answers other requests while the preview is still rendering.
    health = client.get("/health")
    still_rendering = preview.is_alive()
    preview.join(PATIENCE_SECONDS)
    assert health.status_code == 200
    assert still_rendering, "the preview ended before /health answered: nothing was shown"
    assert answers == [400]


def test_a_campaign_with_a_hostile_body_skips_its_recipients_and_finishes(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=2)
    with world.factory() as session, session.begin():
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        campaign.body = "<p>Hi {{ .Subscriber.Name }}</p>" + HOSTILE["nested ranges"]
    config = config_for(smtp_sink)
    start(world, config)
    runner, pool = runner_for(world, config)
    report = finishes(lambda: runner.run(world.campaign_id))
    pool.close()
    assert report.finished and report.sent == 0 and report.skipped == 2
    assert smtp_sink.handler.messages == []
    with world.factory() as session:
        reasons = session.scalars(
            select(CampaignSend.reason).where(CampaignSend.campaign_id == world.campaign_id)
        ).all()
    assert len(reasons) == 2
    assert all("more than 200000 steps" in (reason or "") for reason in reasons)


def test_tx_with_a_hostile_template_fails_that_message(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    make_world(session_maker, count=1)
    configure_smtp(client, smtp_sink)
    made = client.post(
        "/api/templates", json={"name": "ok", "type": "tx", "body": "<p>{{ .Tx.Data.n }}</p>"}
    )
    assert made.status_code == 200, made.text
    # The template is fine by itself; the data makes its loop hostile.
    template_id = made.json()["data"]["id"]
    hostile = (
        "{% for a in range(.Tx.Data.n) %}{% for b in range(.Tx.Data.n) %}{% endfor %}{% endfor %}"
    )
    updated = client.put(
        f"/api/templates/{template_id}",
        json={
            "name": "loop",
            "type": "tx",
            "body": hostile.replace(".Tx.Data.n", "tx.data.n|default(1)"),
        },
    )
    assert updated.status_code == 200, updated.text
    sent = finishes(
        lambda: client.post(
            "/api/tx",
            json={
                "subscriber_emails": ["user0@example.com"],
                "template_id": template_id,
                "data": {"n": 100000},
            },
        )
    )
    # Nothing was sent: the caller's template is at fault (400, as listmonk answers a render
    # error).
    assert sent.status_code == 400, sent.text
    (result,) = sent.json()["data"]["results"]
    assert result["status"] == "failed" and "more than 200000 steps" in result["error"]
    assert smtp_sink.handler.messages == []


def test_each_render_has_a_budget_of_its_own_and_leaves_none_behind() -> None:
    # The budget a render charges is made for it and dropped after it, failed or not: an
    # earlier render's spending never counts against the next one.
    greedy = compile_template("{{ 'x' * 1000 }}{{ 'y' * 1000 }}", html=False)
    before = template_budget._BUDGET.get()
    for _ in range(3):
        assert greedy.render({}) == "x" * 1000 + "y" * 1000
        assert template_budget._BUDGET.get() is before
    huge = compile_template("{{ 'x' * 100000000 }}", html=False)
    with pytest.raises(TemplateRenderError):
        huge.render({})
    assert template_budget._BUDGET.get() is before
    assert greedy.render({}) == "x" * 1000 + "y" * 1000
