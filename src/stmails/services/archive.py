"""The public campaign archive (listmonk's): which campaigns it shows and how they render.

A campaign is in the archive when its `archive` flag is on and it has been sent (running,
paused or finished). It is found by id or by its `archive_slug`, and rendered with its
`archive_template_id` layout (else its own template) and `archive_meta` as the subscriber
(`{"email": ..., "name": ..., "attribs": {...}}`): never a real subscriber's data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stmails.db.models import Campaign, Template
from stmails.services.errors import Conflict, InvalidInput
from stmails.services.pages import Page, check_paging, count_of, paged
from stmails.services.sending.campaigns import campaign_view, layout_for
from stmails.services.sending.compose import Links, Recipient, compile_content, template_context
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.messages import MessageError
from stmails.services.sending.templates import TemplateRenderError

SHOWN_STATUSES = ("running", "paused", "finished")
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
SLUG_MAX = 200
ARCHIVE_UUID = "00000000-0000-0000-0000-000000000000"


def _shown() -> Any:
    return (Campaign.archive.is_(True)) & Campaign.status.in_(SHOWN_STATUSES)


def listing(session: Session, *, page: int = 1, per_page: int = 20) -> Page[Campaign]:
    """The archived campaigns, newest first."""
    check_paging(page, per_page)
    query = select(Campaign).where(_shown())
    total = count_of(session, query)
    ordered = query.order_by(
        func.coalesce(Campaign.started_at, Campaign.created_at).desc(), Campaign.id.desc()
    )
    return Page(list(session.scalars(paged(ordered, page, per_page))), total, page, per_page)


def find(session: Session, id_or_slug: str) -> Campaign | None:
    """The archived campaign with this id or slug, or None."""
    key = id_or_slug.strip()[:SLUG_MAX]
    conditions = [Campaign.archive_slug == key.lower()]
    if key.isdigit() and len(key) < 12:
        conditions.append(Campaign.id == int(key))
    return session.scalars(select(Campaign).where(_shown(), or_(*conditions))).first()


def latest(session: Session) -> Campaign | None:
    """The newest archived campaign, or None."""
    found = listing(session, page=1, per_page=1).results
    return found[0] if found else None


def slug_of(campaign: Campaign) -> str:
    """The path part of the campaign in the archive: its slug, else its id."""
    return campaign.archive_slug or str(campaign.id)


def when(campaign: Campaign) -> datetime:
    """The date the archive shows for the campaign."""
    return campaign.started_at or campaign.created_at


def set_archive(
    session: Session,
    campaign: Campaign,
    *,
    archive: bool | None = None,
    slug: str | None = None,
    template_id: int | None = None,
    meta: Mapping[str, Any] | None = None,
    clear_template: bool = False,
) -> Campaign:
    """listmonk's `PUT /api/campaigns/{id}/archive`: the archive fields, checked (InvalidInput
    naming the field, Conflict for a slug in use). The caller commits."""
    if slug is not None:
        slug = slug.strip().lower()
        if slug and (len(slug) > SLUG_MAX or not SLUG.fullmatch(slug) or slug.isdigit()):
            raise InvalidInput(
                "archive_slug",
                "use lower-case letters, digits and single hyphens (not only digits)",
            )
        campaign.archive_slug = slug or None
    if template_id is not None:
        template = session.get(Template, template_id)
        if template is None or template.type != "campaign":
            raise InvalidInput("archive_template_id", f"no campaign template {template_id}")
        campaign.archive_template_id = template_id
    elif clear_template:
        campaign.archive_template_id = None
    if meta is not None:
        if not isinstance(meta, Mapping):
            raise InvalidInput("archive_meta", "must be a JSON object")
        attribs = meta.get("attribs", {})
        if not isinstance(attribs, Mapping):
            raise InvalidInput("archive_meta.attribs", "must be a JSON object")
        campaign.archive_meta = dict(meta)
    if archive is not None:
        campaign.archive = archive
    if campaign.archive and not campaign.archive_slug:
        campaign.archive_slug = default_slug(session, campaign)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("archive_slug", "another campaign uses this slug") from None
    return campaign


def default_slug(session: Session, campaign: Campaign) -> str:
    """A free slug made from the campaign's name (listmonk makes one the same way)."""
    base = re.sub(r"[^a-z0-9]+", "-", campaign.name.lower()).strip("-")[:80] or "campaign"
    if base.isdigit():
        base = f"campaign-{base}"
    candidate, n = base, 1
    while session.scalar(
        select(Campaign.id).where(Campaign.archive_slug == candidate, Campaign.id != campaign.id)
    ):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


@dataclass(frozen=True)
class ArchivedMessage:
    """A campaign as the archive shows it."""

    subject: str
    html: str | None
    text: str | None


def archive_recipient(meta: Mapping[str, Any]) -> Recipient:
    """The stand-in subscriber an archived campaign renders for (`archive_meta`)."""
    attribs = meta.get("attribs")
    return Recipient(
        id=0,
        uuid=ARCHIVE_UUID,
        email=str(meta.get("email", "") or ""),
        name=str(meta.get("name", "") or ""),
        attribs=dict(attribs) if isinstance(attribs, Mapping) else {},
    )


def render(
    session: Session, campaign: Campaign, config: SendingConfig, archive_url: str
) -> ArchivedMessage:
    """The campaign rendered for the archive; InvalidInput when its template fails."""
    layout: str | None = None
    if campaign.content_type != "plain":
        chosen = (
            session.get(Template, campaign.archive_template_id)
            if campaign.archive_template_id
            else None
        )
        layout = chosen.body if chosen is not None else layout_for(session, campaign)
    try:
        content = compile_content(
            subject=campaign.subject,
            body=campaign.body,
            content_type=campaign.content_type,
            from_email=campaign.from_email or config.from_email,
            layout=layout,
            altbody=campaign.altbody,
        )
        context = template_context(
            archive_recipient(campaign.archive_meta or {}),
            campaign=campaign_view(campaign),
            links=Links(archive_url=archive_url),
        )
        rendered = content.render(context)
    except (TemplateRenderError, MessageError) as exc:
        raise InvalidInput("body", str(exc)) from exc
    return ArchivedMessage(rendered.subject, rendered.html, rendered.text)
