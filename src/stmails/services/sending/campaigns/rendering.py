"""Rendering a campaign: the template view of a subscriber and of the campaign, the message to
one recipient as the sender sends it (`render_for`), and the previews of the admin pages and
the API (`render_preview`, `preview`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from stmails.db.models import Campaign, Subscriber
from stmails.services.sending.campaigns.lifecycle import CampaignError, compile_campaign
from stmails.services.sending.compose import (
    Content,
    Envelope,
    Recipient,
    Rendered,
    campaign_links,
    senders_for,
    template_context,
    to_spec,
)
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.envelope import ReturnPaths
from stmails.services.sending.messages import Message
from stmails.services.sending.templates import TemplateRenderError


def recipient_of(subscriber: Subscriber) -> Recipient:
    """The template view of a subscriber."""
    return Recipient(
        id=subscriber.id,
        uuid=subscriber.uuid,
        email=subscriber.email,
        name=subscriber.name,
        status=subscriber.status,
        attribs=subscriber.attribs or {},
        created_at=subscriber.created_at,
        updated_at=subscriber.updated_at,
    )


def campaign_view(campaign: Campaign) -> dict[str, Any]:
    """The campaign fields templates may use."""
    return {
        "id": campaign.id,
        "uuid": campaign.uuid,
        "name": campaign.name,
        "subject": campaign.subject,
        "from_email": campaign.from_email,
        "attribs": dict(campaign.attribs or {}),
        "tags": list(campaign.tags or []),
    }


def _campaign_context(
    campaign: Campaign, recipient: Recipient, config: SendingConfig, tracking: Any = None
) -> tuple[str, dict[str, Any]]:
    """The recipient's unsubscribe URL, and the template context of the campaign for them."""
    links = campaign_links(config.root_url, campaign.uuid, recipient.uuid)
    context = template_context(
        recipient, campaign=campaign_view(campaign), links=links, tracking=tracking
    )
    return links.unsubscribe_url, context


def render_for(
    content: Content,
    campaign: Campaign,
    recipient: Recipient,
    config: SendingConfig,
    return_paths: ReturnPaths,
    message_id: str = "",
) -> Message:
    """The campaign's message to one recipient, serialized (the SMTP server it goes through
    adds its own custom headers and Return-Path: `smtp.outgoing`)."""
    url, context = _campaign_context(campaign, recipient, config, content.tracking)
    rendered = content.render(context)
    envelope = Envelope(
        senders=senders_for(return_paths, campaign.id, recipient.id, rendered),
        message_id=message_id or f"<{campaign.uuid}.{recipient.uuid}@{config.id_domain}>",
        campaign_uuid=campaign.uuid,
        unsubscribe_url=url,
        unsubscribe_mailto=config.unsubscribe_mailto,
        feedback_id=f"{campaign.id}:{campaign.uuid[:8]}:campaign:{config.feedback_id_sender}",
        header_names=content.header_names,
    )
    spec = to_spec(rendered, recipient, envelope)
    spec.attachments = content.attachments
    return spec.build()


def render_preview(
    session: Session,
    campaign: Campaign,
    subscriber: Subscriber | None,
    config: SendingConfig,
    tracking: Any = None,
) -> tuple[Rendered, str]:
    """The campaign rendered for `subscriber` (a sample one when None), and that recipient's
    unsubscribe URL; CampaignError when a template fails. Untracked unless `tracking`
    (services.tracking.links.CampaignTracking) is given."""
    content = compile_campaign(session, campaign, config)
    recipient = (
        recipient_of(subscriber)
        if subscriber is not None
        else Recipient(
            id=0,
            uuid="00000000-0000-0000-0000-000000000000",
            email="subscriber@example.com",
            name="Demo Subscriber",
            attribs={"city": "Bengaluru"},
        )
    )
    url, context = _campaign_context(campaign, recipient, config, tracking)
    try:
        return content.render(context), url
    except TemplateRenderError as exc:
        raise CampaignError(str(exc)) from exc


def preview(
    session: Session,
    campaign: Campaign,
    subscriber: Subscriber | None,
    config: SendingConfig,
    tracking: Any = None,
) -> tuple[str, str]:
    """The campaign rendered for `subscriber` (a sample one when None): (content type, body).
    Untracked unless `tracking` is given."""
    rendered, _ = render_preview(session, campaign, subscriber, config, tracking)
    if rendered.html is not None:
        return "text/html", rendered.html
    return "text/plain", rendered.text or ""
