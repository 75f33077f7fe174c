"""The rules of stored templates (services.templates), on the test database."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from stmails.db.models import Campaign, Template
from stmails.services import templates
from stmails.services.errors import InputError, InvalidInput, NotFound
from stmails.services.sending.templates import TemplateRenderError

LAYOUT = '<html><body>{{ template "content" . }}</body></html>'


@pytest.fixture
def clean(session: Session) -> Session:
    # The migrations install default templates; these tests start from none.
    session.execute(delete(Template))
    session.commit()
    return session


def create(session: Session, **fields: str) -> Template:
    template = Template(**templates.validate(fields))
    session.add(template)
    session.flush()
    return template


def test_validate_names_the_field_at_fault() -> None:
    cases = [
        ({"type": "campaign", "body": LAYOUT}, "name: required"),
        ({"name": "x", "type": "letter", "body": LAYOUT}, "type: expected campaign or tx"),
        ({"name": "x", "type": "tx", "body": "  "}, "body: required"),
        ({"name": "x", "type": "tx", "body": "b", "subject": 3}, "subject: expected text"),
        ({"name": "x", "type": "tx", "body": "{{ if .X }}open"}, "body: "),
    ]
    for body, message in cases:
        with pytest.raises(InvalidInput) as caught:
            templates.validate(body)
        assert str(caught.value).startswith(message), (body, str(caught.value))


def test_validate_trims_and_keeps_the_current_values() -> None:
    current = Template(name="Old", type="tx", body="<p>B</p>", subject="S")
    assert templates.validate({"name": "  New  "}, current) == {
        "name": "New",
        "type": "tx",
        "body": "<p>B</p>",
        "subject": "S",
    }


def test_a_sample_renders_and_a_broken_template_is_a_render_error() -> None:
    html = templates.render_sample("campaign", LAYOUT)
    assert "sample campaign content" in html and html.startswith("<html>")
    assert "Demo Subscriber" in templates.render_sample("tx", "<p>{{ .Subscriber.Name }}</p>")
    with pytest.raises(TemplateRenderError) as caught:
        templates.render_sample("tx", "{{ if .X }}open")
    # One input-error base: the web answers it with 400 in one place.
    assert isinstance(caught.value, InputError)


def test_only_one_campaign_template_is_the_default(clean: Session) -> None:
    first = create(clean, name="One", type="campaign", body=LAYOUT)
    second = create(clean, name="Two", type="campaign", body=LAYOUT)
    tx = create(clean, name="Tx", type="tx", body="<p>b</p>", subject="S")
    templates.set_default(clean, first.id)
    templates.set_default(clean, second.id)
    defaults = clean.scalars(select(Template.name).where(Template.is_default)).all()
    assert defaults == ["Two"]
    with pytest.raises(templates.NotACampaignTemplate):
        templates.set_default(clean, tx.id)
    with pytest.raises(NotFound):
        templates.set_default(clean, 999_999)
    assert [t.name for t in templates.listed(clean)] == ["One", "Two", "Tx"]


def test_the_default_and_templates_in_use_are_not_deleted(clean: Session) -> None:
    used = create(clean, name="Used", type="campaign", body=LAYOUT)
    default = create(clean, name="Default", type="campaign", body=LAYOUT)
    free = create(clean, name="Free", type="campaign", body=LAYOUT)
    templates.set_default(clean, default.id)
    campaigns = [Campaign(name=n, subject=n, template_id=used.id) for n in ("a", "b")]
    clean.add_all(campaigns)
    clean.flush()
    with pytest.raises(templates.DefaultNotDeletable):
        templates.delete(clean, default.id)
    with pytest.raises(templates.TemplateInUse) as caught:
        templates.delete(clean, used.id)
    assert caught.value.campaigns == 2
    assert caught.value.first == min(c.id for c in campaigns)
    templates.delete(clean, free.id)
    clean.flush()
    assert [t.name for t in templates.listed(clean)] == ["Used", "Default"]
    with pytest.raises(NotFound):
        templates.delete(clean, free.id)
