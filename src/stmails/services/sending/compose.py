"""From a campaign or transactional template plus one recipient to a `MessageSpec`.

The content is compiled once (`compile_content`) and rendered per recipient (`Content.render`).
Bodies are HTML (`richtext`, `html`, `visual`), Markdown (converted to HTML) or plain text. An
HTML body is placed inside its layout template (at `{{ template "content" . }}`) and gets a
plain-text alternative: the rendered `altbody` when one is given, else text made from the HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from markupsafe import Markup

from stmails.services.sending.envelope import ReturnPaths, Senders
from stmails.services.sending.messages import (
    RETURN_PATH,
    Attachment,
    MessageError,
    MessageSpec,
    TrackingHeaders,
    address_of,
)
from stmails.services.sending.plaintext import html_to_text, text_of_marked
from stmails.services.sending.templates import (
    VALUE_END,
    VALUE_START,
    CompiledTemplate,
    TemplateRenderError,
    compile_template,
    compile_with_content,
    markdown_to_html,
    uses_content,
)

HTML_TYPES = {"richtext", "html", "visual", "markdown"}


@dataclass(frozen=True)
class Recipient:
    """The subscriber fields templates and headers use."""

    id: int
    uuid: str
    email: str
    name: str = ""
    status: str = "enabled"
    attribs: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Links:
    """URLs that templates and headers point at, for one campaign and recipient."""

    unsubscribe_url: str = ""
    message_url: str = ""
    optin_url: str = ""
    manage_url: str = ""
    archive_url: str = ""


def unsubscribe_url(root_url: str, campaign_uuid: str, subscriber_uuid: str) -> str:
    """The unsubscribe page and RFC 8058 one-click target (listmonk's `/subscription/` path)."""
    campaign = campaign_uuid or "00000000-0000-0000-0000-000000000000"
    return f"{root_url.rstrip('/')}/subscription/{campaign}/{subscriber_uuid}"


def campaign_links(root_url: str, campaign_uuid: str, subscriber_uuid: str) -> Links:
    """A campaign message's links, each naming the campaign and subscriber as a pair:
    unsubscribe (and RFC 8058 one-click), the message in a browser, the preferences page
    (`?manage=true`, as listmonk), the opt-in confirmation (for `optin` campaigns) and the
    public archive."""
    root = root_url.rstrip("/")
    unsubscribe = unsubscribe_url(root, campaign_uuid, subscriber_uuid)
    return Links(
        unsubscribe_url=unsubscribe,
        message_url=f"{root}/campaign/{campaign_uuid}/{subscriber_uuid}",
        manage_url=f"{unsubscribe}?manage=true",
        optin_url=f"{root}/subscription/optin/{subscriber_uuid}?c={campaign_uuid}",
        archive_url=f"{root}/archive",
    )


class Tracking(Protocol):
    """How a campaign's messages are tracked (services.tracking.links.CampaignTracking)."""

    def template_values(self, subscriber_uuid: str) -> dict[str, Any]:
        """`TrackView`, `TrackLink` and `MessageURL` for one recipient."""
        ...


def template_context(
    recipient: Recipient,
    *,
    campaign: Mapping[str, Any] | None = None,
    tx_data: Mapping[str, Any] | None = None,
    links: Links | None = None,
    tracking: Tracking | None = None,
) -> dict[str, Any]:
    """What templates see, under listmonk's names (`Subscriber`, `Campaign`, `Tx`) and ours
    (`subscriber`, `campaign`, `tx`, `data`). Without `tracking` the pixel is empty and
    `TrackLink` leaves its URL as it is."""
    # Built for every message of a campaign: plain dict displays, no helper calls.
    if links is None:
        links = _NO_LINKS
    name = recipient.name
    parts = name.split()
    first = parts[0] if parts else ""
    last = " ".join(parts[1:]) if len(parts) > 1 else ""
    attribs = dict(recipient.attribs) if recipient.attribs else {}
    campaign = dict(campaign) if campaign else {}
    data = dict(tx_data) if tx_data else {}
    context = {
        "Subscriber": {
            "ID": recipient.id,
            "UUID": recipient.uuid,
            "Email": recipient.email,
            "Name": name,
            "FirstName": first,
            "LastName": last,
            "Status": recipient.status,
            "Attribs": attribs,
            "CreatedAt": recipient.created_at,
            "UpdatedAt": recipient.updated_at,
        },
        "subscriber": {
            "id": recipient.id,
            "uuid": recipient.uuid,
            "email": recipient.email,
            "name": name,
            "first_name": first,
            "last_name": last,
            "status": recipient.status,
            "attribs": attribs,
        },
        "Campaign": {
            "ID": campaign.get("id", 0),
            "UUID": campaign.get("uuid", ""),
            "Name": campaign.get("name", ""),
            "Subject": campaign.get("subject", ""),
            "FromEmail": campaign.get("from_email", ""),
            # listmonk's campaign `attribs` (v6) and tags.
            "Attribs": campaign.get("attribs") or {},
            "Tags": campaign.get("tags") or [],
        },
        "campaign": campaign,
        "Tx": {"Data": data},
        "tx": {"data": data},
        "data": data,
        "UnsubscribeURL": links.unsubscribe_url,
        "MessageURL": links.message_url,
        "OptinURL": links.optin_url,
        "ManageURL": links.manage_url,
        "ArchiveURL": links.archive_url,
        # Untracked unless the campaign's tracking supplies TrackView, TrackLink and MessageURL.
        "TrackView": _NO_PIXEL,
        "TrackLink": _untracked_link,
    }
    if tracking is not None:
        context.update(tracking.template_values(recipient.uuid))
    return context


_NO_LINKS = Links()
_NO_PIXEL = Markup("")


def _untracked_link(url: str, *_: Any) -> str:
    return url


@dataclass(frozen=True)
class Rendered:
    """One recipient's rendered message content."""

    subject: str
    from_email: str
    html: str | None
    text: str | None
    headers: list[tuple[str, str]]
    # The message's own Return-Path (its envelope sender), '' when its headers set none.
    return_path: str = ""


@dataclass(frozen=True)
class Content:
    """Compiled subject, sender, body, layout, alternative and headers of one message kind.

    A `Return-Path` among the headers is kept apart (`return_path`): it is the envelope sender,
    not a header (see `services.sending.envelope`)."""

    subject: CompiledTemplate
    from_email: CompiledTemplate
    body: CompiledTemplate
    layout: CompiledTemplate | None
    altbody: CompiledTemplate | None
    headers: tuple[tuple[str, CompiledTemplate], ...]
    is_html: bool
    # Set for a campaign's run (services.tracking.links.prepare): the pixel and tracked links.
    tracking: Tracking | None = None
    return_path: CompiledTemplate | None = None
    # The lower-case names of the custom headers this content sets itself.
    header_names: frozenset[str] = frozenset()
    # Files attached to every message (a campaign's media, as listmonk attaches them).
    attachments: tuple[Attachment, ...] = ()

    def render(self, context: Mapping[str, Any]) -> Rendered:
        """The content for one recipient; TemplateRenderError when a template fails."""
        html: str | None = None
        text: str | None
        marked = None
        if self.is_html and self.layout is None and self.altbody is None:
            marked = self.body.render_marked(context)
        if marked is not None:
            # The text alternative from the template's literal parts, converted once.
            html, text = text_of_marked(marked, VALUE_START, VALUE_END)
        elif self.is_html:
            html = self.body.render(context)
            if self.layout is not None:
                html = self.layout.render({**context, "content": Markup(html)})
            text = self.altbody.render(context) if self.altbody is not None else html_to_text(html)
        else:
            body = self.body.render(context)
            text = body
            if self.layout is not None:
                text = self.layout.render({**context, "content": body})
        return_path = ""
        if self.return_path is not None:
            return_path = address_of(self.return_path.render(context))
            if "@" not in return_path:
                raise MessageError("header Return-Path: not an e-mail address")
        return Rendered(
            subject=self.subject.render(context),
            from_email=self.from_email.render(context),
            html=html,
            text=text,
            headers=[(name, value.render(context)) for name, value in self.headers],
            return_path=return_path,
        )


def compile_content(
    *,
    subject: str,
    body: str,
    content_type: str,
    from_email: str,
    layout: str | None = None,
    altbody: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> Content:
    """Compiles a message kind once; TemplateRenderError names the part that does not compile.

    A layout must contain `{{ template "content" . }}` (listmonk's rule) or it is refused.
    """
    is_html = content_type in HTML_TYPES
    source = markdown_to_html(body) if content_type == "markdown" else body
    compiled_layout = None
    if layout is not None and layout.strip():
        if not uses_content(layout):
            raise TemplateRenderError('the template must contain {{ template "content" . }}')
        compiled_layout = compile_template(layout, html=is_html)

    # An HTML body without a given alternative gets its text made from the HTML: the body is
    # also compiled to mark its values, so that the conversion runs once per template.
    marked = is_html and not altbody

    def whole_body() -> CompiledTemplate:
        # HTML mail renders layout and body as one template; plain text keeps them apart.
        if compiled_layout is not None and is_html:
            try:
                return compile_with_content(layout or "", source, html=True, marked=marked)
            except TemplateRenderError as exc:
                raise TemplateRenderError(f"body: {exc}") from exc
        return part("body", source, is_html, marked)

    def part(name: str, text: str, html: bool, marked: bool = False) -> CompiledTemplate:
        try:
            return compile_template(text, html=html, marked=marked)
        except TemplateRenderError as exc:
            raise TemplateRenderError(f"{name}: {exc}") from exc

    own = [v for n, v in headers if n == RETURN_PATH]
    return Content(
        subject=part("subject", subject, False),
        from_email=part("from_email", from_email, False),
        body=whole_body(),
        layout=None if is_html else compiled_layout,
        altbody=part("altbody", altbody, False) if altbody else None,
        headers=tuple((n, part(f"header {n}", v, False)) for n, v in headers if n != RETURN_PATH),
        is_html=is_html,
        return_path=part("header Return-Path", own[-1], False) if own else None,
        header_names=frozenset(n.lower() for n, _ in headers if n != RETURN_PATH),
    )


# The envelope sender of one message, from (campaign id, subscriber id); campaign id 0: none.
# `envelope.ReturnPaths` is the one the senders use.
ReturnPath = Callable[[int, int], str]


@dataclass(frozen=True)
class Envelope:
    """Where a message comes from and what marks it as ours."""

    senders: Senders
    message_id: str
    campaign_uuid: str
    unsubscribe_url: str
    unsubscribe_mailto: str
    feedback_id: str
    # Lower-case names of the headers the message sets itself (custom ones).
    header_names: frozenset[str] = frozenset()


def senders_for(
    paths: ReturnPaths, campaign_id: int, subscriber_id: int, rendered: Rendered
) -> Senders:
    """The envelope senders of a rendered message (its own Return-Path first)."""
    return paths.senders(campaign_id, subscriber_id, rendered.return_path)


def to_spec(rendered: Rendered, recipient: Recipient, envelope: Envelope) -> MessageSpec:
    """The rendered content and envelope as a message spec addressed to `recipient`."""
    tracking = TrackingHeaders(
        campaign_uuid=envelope.campaign_uuid,
        subscriber_uuid=recipient.uuid,
        unsubscribe_url=envelope.unsubscribe_url,
        unsubscribe_mailto=envelope.unsubscribe_mailto,
        feedback_id=envelope.feedback_id,
    )
    return MessageSpec(
        from_address=rendered.from_email,
        # The pair below is what the message uses; the address alone names it in errors.
        to_address=recipient.email,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        return_path=envelope.senders.default,
        message_id=envelope.message_id,
        headers=[*tracking.as_list(), *rendered.headers],
        to_pair=(recipient.name, recipient.email),
        server_senders=envelope.senders.servers,
        own_return_path=envelope.senders.own,
        header_names=envelope.header_names,
    )
