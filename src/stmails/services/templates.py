"""The rules of stored templates (listmonk's types `campaign` and `tx`), for the API and the
admin pages alike.

- A template has a name, a type (`TYPES`), a body and, for a
  tx template, a subject. Its body must compile and render a sample subscriber within the
  render budget (`services.sending.template_budget`): a template that cannot is refused when
  saved, not when a campaign goes out.
- Exactly one campaign template may be the default (`set_default`); a tx template cannot be.
- The default template cannot be deleted, nor one a campaign uses (`delete`).

Rendering runs in the caller's thread: the web calls these on a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from stmails.db.models import Campaign, Template
from stmails.db.types import utcnow
from stmails.services.errors import InvalidInput, NotFound
from stmails.services.sending.compose import Recipient, compile_content, template_context
from stmails.services.sending.templates import TemplateRenderError

__all__ = [
    "SAMPLE_BODY",
    "TYPES",
    "DefaultNotDeletable",
    "NotACampaignTemplate",
    "TemplateInUse",
    "TemplateRenderError",
    "delete",
    "get",
    "listed",
    "render_sample",
    "set_default",
    "store",
    "validate",
]

TYPES = ("campaign", "tx")
SAMPLE_BODY = (
    "<h3>Hello</h3><p>This is sample campaign content, shown where "
    '<code>{{ template "content" . }}</code> sits in the template.</p>'
)
_SAMPLE = Recipient(
    id=0,
    uuid="00000000-0000-0000-0000-000000000000",
    email="subscriber@example.com",
    name="Demo Subscriber",
    attribs={"city": "Bengaluru"},
)


class NotACampaignTemplate(InvalidInput):
    """Only a campaign template can be the default."""

    def __init__(self) -> None:
        super().__init__("type", "only a campaign template can be the default")


class DefaultNotDeletable(InvalidInput):
    """The default template cannot be deleted (make another one the default first)."""

    def __init__(self) -> None:
        super().__init__("template", "the default template cannot be deleted")


class TemplateInUse(InvalidInput):
    """Campaigns use the template; `campaigns` says how many, `first` names one."""

    def __init__(self, campaigns: int, first: int) -> None:
        super().__init__("template", f"the template is used by campaign {first}")
        self.campaigns = campaigns
        self.first = first


def get(session: Session, template_id: int) -> Template:
    """The template of one of `TYPES` with this id; NotFound otherwise."""
    found = session.get(Template, template_id)
    if found is None or found.type not in TYPES:
        raise NotFound("template not found")
    return found


def listed(session: Session) -> list[Template]:
    """Every template of one of `TYPES`, by id."""
    rows = session.scalars(select(Template).order_by(Template.id))
    return [t for t in rows if t.type in TYPES]


def render_sample(kind: str, body: str, subject: str = "") -> str:
    """The template rendered for a sample subscriber (a campaign template around sample
    content); TemplateRenderError when it does not compile, render or fit the budget."""
    if kind == "campaign":
        content = compile_content(
            subject="", body=SAMPLE_BODY, content_type="html", from_email="", layout=body
        )
    else:
        content = compile_content(subject=subject, body=body, content_type="html", from_email="")
    rendered = content.render(template_context(_SAMPLE, tx_data={"sample": True}))
    return rendered.html or ""


def validate(body: Mapping[str, Any], current: Template | None = None) -> dict[str, Any]:
    """The stored fields (`name`, `type`, `body`, `subject`) of `body` over `current`'s;
    InvalidInput naming the field when one is missing or wrong, or the body does not render."""
    name = body.get("name", current.name if current else None)
    kind = body.get("type", current.type if current else None)
    text = body.get("body", current.body if current else None)
    subject = body.get("subject", current.subject if current else "") or ""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name", "required")
    if kind not in TYPES:
        raise InvalidInput("type", "expected campaign or tx")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("body", "required")
    if not isinstance(subject, str):
        raise InvalidInput("subject", "expected text")
    try:
        render_sample(kind, text, subject)
    except TemplateRenderError as exc:
        raise InvalidInput("body", str(exc)) from None
    return {"name": name.strip()[:500], "type": kind, "body": text, "subject": subject[:1000]}


def store(template: Template, values: Mapping[str, Any]) -> None:
    """Stores validated `values` (see `validate`) in `template`; the caller commits."""
    template.name = values["name"]
    template.type = values.get("type", template.type)
    template.subject = values["subject"]
    template.body = values["body"]
    template.updated_at = utcnow()


def set_default(session: Session, template_id: int) -> Template:
    """Makes the campaign template the default (and no other); the caller commits."""
    template = get(session, template_id)
    if template.type != "campaign":
        raise NotACampaignTemplate()
    session.execute(update(Template).values(is_default=False))
    template.is_default = True
    session.flush()
    return template


def delete(session: Session, template_id: int) -> None:
    """Deletes the template unless it is the default or a campaign uses it; the caller
    commits."""
    template = get(session, template_id)
    if template.is_default:
        raise DefaultNotDeletable()
    used = session.execute(
        select(func.count(), func.min(Campaign.id)).where(Campaign.template_id == template_id)
    ).one()
    if used[0]:
        raise TemplateInUse(int(used[0]), int(used[1]))
    session.delete(template)


def campaign_choices(session: Session) -> list[tuple[int, str, bool]]:
    """Every campaign template as (id, name, is default), by name: what a campaign form
    offers to pick from."""
    rows = session.execute(
        select(Template.id, Template.name, Template.is_default)
        .where(Template.type == "campaign")
        .order_by(Template.name)
    )
    return [(int(i), str(n), bool(d)) for i, n, d in rows]


def by_type_and_name(session: Session) -> list[Template]:
    """Every template of one of `TYPES`, by type then name (the admin list's order)."""
    rows = session.scalars(select(Template).order_by(Template.type, Template.name))
    return [t for t in rows if t.type in TYPES]


def campaign_counts(session: Session) -> dict[int, int]:
    """How many campaigns use each template, by template id; a template no campaign uses
    is absent."""
    rows = session.execute(
        select(Campaign.template_id, func.count())
        .where(Campaign.template_id.is_not(None))
        .group_by(Campaign.template_id)
    )
    return {int(t): int(count) for t, count in rows if t is not None}
