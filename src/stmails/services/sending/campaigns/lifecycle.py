"""A campaign's life cycle before and around its sends: listmonk's status rules
(`change_status`), scheduled starts, the lists and recipients it goes to, and its content
compiled (template layout and attachments), refused here when broken rather than in the sender.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from stmails.db.models import (
    Campaign,
    CampaignHold,
    CampaignList,
    CampaignMedia,
    MailingList,
    SubscriberList,
    Template,
)
from stmails.db.types import utcnow
from stmails.services import campaign_records
from stmails.services.errors import InputError, InvalidInput, NotFound
from stmails.services.media import library as media_library
from stmails.services.media.storage import StorageError
from stmails.services.sending.compose import Content, compile_content
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.messages import (
    Attachment,
    MessageError,
    attachment_filename,
    attachment_type,
    custom_headers,
)
from stmails.services.sending.routing import servers_for
from stmails.services.sending.templates import TemplateRenderError

# One logger for the package, named as before the split.
log = logging.getLogger("stmails.services.sending.campaigns")

# The pause reason of a campaign done but for the messages of domains the watcher held.
WAITING_FOR_HELD = "waiting for held domains: "


class CampaignError(InputError):
    """A campaign operation the caller asked for that cannot be done; the text says why."""


def campaign_list_ids(session: Session, campaign_id: int) -> list[int]:
    """The ids of the lists a campaign goes to (deleted lists left out)."""
    rows = session.scalars(
        select(CampaignList.list_id).where(
            CampaignList.campaign_id == campaign_id, CampaignList.list_id.is_not(None)
        )
    )
    return sorted(int(r) for r in rows if r is not None)


def optin_list_ids(session: Session, list_ids: Sequence[int]) -> list[int]:
    """The double opt-in lists among `list_ids`."""
    if not list_ids:
        return []
    rows = session.scalars(
        select(MailingList.id).where(
            MailingList.id.in_(list(list_ids)), MailingList.optin == "double"
        )
    )
    return sorted(int(r) for r in rows)


def layout_for(session: Session, campaign: Campaign) -> str | None:
    """The body of the campaign's template (the default campaign template when none is set)."""
    if campaign.template_id is not None:
        template = session.get(Template, campaign.template_id)
        return template.body if template is not None else None
    default = session.scalar(
        select(Template).where(Template.type == "campaign", Template.is_default.is_(True))
    )
    return default.body if default is not None else None


def compile_campaign(session: Session, campaign: Campaign, config: SendingConfig) -> Content:
    """The campaign's content compiled; CampaignError when a template is broken."""
    try:
        content = compile_content(
            subject=campaign.subject,
            body=campaign.body,
            content_type=campaign.content_type,
            from_email=campaign.from_email or config.from_email,
            layout=None if campaign.content_type == "plain" else layout_for(session, campaign),
            altbody=campaign.altbody,
            headers=custom_headers(campaign.headers or []),
        )
    except (TemplateRenderError, MessageError) as exc:
        raise CampaignError(str(exc)) from exc
    attachments = campaign_attachments(session, campaign.id)
    return replace(content, attachments=attachments) if attachments else content


# A campaign's attachments go into every message: their bytes in all, at most.
MAX_CAMPAIGN_ATTACHMENT_BYTES = 10 * 1024 * 1024


def campaign_attachments(session: Session, campaign_id: int) -> tuple[Attachment, ...]:
    """The campaign's media (`campaign_media`, listmonk's `media` field) as attachments of
    each message; CampaignError when one is gone or unreadable, or they are too big together,
    so that a campaign never goes out without the files it promises."""
    rows = session.execute(
        select(CampaignMedia.media_id, CampaignMedia.filename)
        .where(CampaignMedia.campaign_id == campaign_id)
        .order_by(CampaignMedia.id)
    ).all()
    attachments: list[Attachment] = []
    total = 0
    for media_id, filename in rows:
        if media_id is None:
            raise CampaignError(f"attachment {filename!r} was deleted from the media library")
        try:
            name, content_type, data = media_library.get_media_content(session, media_id)
        except (NotFound, StorageError) as exc:
            raise CampaignError(f"attachment {filename!r} cannot be read: {exc}") from None
        total += len(data)
        if total > MAX_CAMPAIGN_ATTACHMENT_BYTES:
            raise CampaignError(
                f"the campaign's attachments are over {MAX_CAMPAIGN_ATTACHMENT_BYTES} bytes in all"
            )
        attachments.append(
            Attachment(attachment_filename(name), attachment_type(name, content_type), data)
        )
    return tuple(attachments)


def change_status(
    session: Session, campaign: Campaign, status: str, config: SendingConfig
) -> Campaign:
    """Moves a campaign to `status` under listmonk's rules (services.campaign_records.set_status);
    CampaignError when not allowed.

    Starting or scheduling compiles the content first, so a broken template is refused here
    rather than failing in the sender; starting needs an enabled SMTP server and counts the
    recipients (`to_send`). A change of status clears the reason of an automatic pause.
    The caller commits.
    """
    if status == campaign.status:
        return campaign
    if status in {"running", "scheduled"}:
        compile_campaign(session, campaign, config)
        if not campaign_list_ids(session, campaign.id):
            raise CampaignError("the campaign has no lists")
    if status == "running" and not config.smtp:
        raise CampaignError("no SMTP server is enabled (settings: smtp)")
    if status == "running":
        # Its messenger must be an enabled server, and some server must take its From.
        try:
            servers_for(config.smtp, campaign.messenger, campaign.from_email or config.from_email)
        except InvalidInput as exc:
            raise CampaignError(str(exc)) from None
    if status == "finished":
        raise CampaignError("only the sender finishes a campaign")
    first_start = status == "running" and campaign.started_at is None
    figures = dict(campaign.alert_figures or {})
    if status == "scheduled" and campaign.status == "paused" and figures.get("held_scheduled"):
        # A scheduled campaign the deliverability watcher held goes back to its schedule.
        if campaign.send_at is None:
            raise CampaignError("send_at is required to schedule a campaign")
        campaign.status = "scheduled"
        campaign.updated_at = utcnow()
    else:
        try:
            campaign_records.set_status(session, campaign, status)
        except InvalidInput as exc:
            raise CampaignError(str(exc)) from None
    if status == "running" and campaign.pause_reason.startswith(WAITING_FOR_HELD):
        # Resumed without releasing the held domains: their messages are dropped (they stay
        # skipped, `held:<domain>`) and the campaign can finish.
        session.execute(delete(CampaignHold).where(CampaignHold.campaign_id == campaign.id))
        log.warning("campaign %s: held messages dropped on resume", campaign.id)
    if figures and status in {"running", "scheduled"}:
        # The watcher's window restarts: sends before now no longer count (services.alerts).
        campaign.alert_figures = {**figures, "resumed_at": utcnow().isoformat()}
    campaign.pause_reason = ""
    campaign.wait_reason = ""
    if first_start:
        campaign.to_send = count_recipients(session, campaign.id)
    return campaign


def count_recipients(session: Session, campaign_id: int) -> int:
    """How many distinct subscribers the campaign's lists hold."""
    lists = campaign_list_ids(session, campaign_id)
    if not lists:
        return 0
    count = session.scalar(
        select(func.count(func.distinct(SubscriberList.subscriber_id))).where(
            SubscriberList.list_id.in_(lists)
        )
    )
    return int(count or 0)


def start_due_campaigns(session: Session, now: datetime | None = None) -> list[int]:
    """Scheduled campaigns whose send_at has come are set running; returns their ids.

    Every sender runs this on each pass: on PostgreSQL a campaign another sender is starting
    right now is skipped (its row is locked), so each campaign is started by one of them."""
    now = now or utcnow()
    due = list(
        session.scalars(
            select(Campaign)
            .where(Campaign.status == "scheduled", Campaign.send_at <= now)
            .with_for_update(skip_locked=True)
        )
    )
    for campaign in due:
        campaign.status = "running"
        campaign.started_at = campaign.started_at or now
        campaign.to_send = count_recipients(session, campaign.id)
    return [c.id for c in due]
