"""Tracking a campaign's messages: the pixel, tracked links and the message's web page.

listmonk's template functions, with listmonk's URLs:

- `{{ TrackView }}`: a 1x1 image at `/campaign/{campaign_uuid}/{subscriber_uuid}/px.png`;
- `{{ TrackLink "https://..." }}` and `https://...@TrackLink`: the link
  `/link/{link_uuid}/{campaign_uuid}/{subscriber_uuid}`, which records the click and redirects
  to the URL stored for that link of that campaign (never to anything else);
- `{{ MessageURL }}`: `/campaign/{campaign_uuid}/{subscriber_uuid}`, the message in a browser.

The URLs a campaign tracks are found in its templates and registered (`links` rows) once, when
the campaign's run starts, not per message. A URL must be an http(s) URL of at most 2,000
characters written literally in the template; any other (a URL computed from subscriber data,
say) is left as it is, untracked, and the sender logs it. Settings, as listmonk's:
`privacy.disable_tracking` (no pixel, links left as they are) and `privacy.individual_tracking`
(off: the URLs carry the all-zero subscriber uuid, so hits are counted without subscriber).
Previews and test sends are never tracked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast
from urllib.parse import urlsplit

from jinja2 import TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape
from sqlalchemy import Table, or_, select
from sqlalchemy.orm import Session

from stmails.db.models import MAX_LINK_URL_CHARS, Campaign, Link, Setting, new_uuid
from stmails.db.prepared import Prepared
from stmails.db.types import utcnow
from stmails.db.upsert import insert_many_or_ignore
from stmails.services import settings
from stmails.services.sending.compose import Content
from stmails.services.sending.templates import TemplateRenderError, translate_go_template

log = logging.getLogger(__name__)

# The subscriber uuid of hits counted without subscriber (listmonk's dummy uuid).
ANONYMOUS = "00000000-0000-0000-0000-000000000000"
LINKS = cast(Table, Link.__table__)
_PARSER = SandboxedEnvironment()


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    """listmonk's privacy settings as the tracking reads them."""

    disabled: bool = False
    individual: bool = False


_PRIVACY_KEYS = ("privacy.disable_tracking", "privacy.individual_tracking")
_PRIVACY = Prepared(
    select(Setting.key, Setting.value).where(or_(*(Setting.key == key for key in _PRIVACY_KEYS)))
)


def tracking_config(session: Session) -> TrackingConfig:
    """The tracking settings in force (`privacy.*`), read once per transaction of `session`
    (the tracking writer reads them for every batch)."""

    def read() -> TrackingConfig:
        stored = dict(_PRIVACY.rows(session.connection()))
        values = {key: stored.get(key, settings.DEFAULTS[key]) for key in _PRIVACY_KEYS}
        return TrackingConfig(
            disabled=values["privacy.disable_tracking"] is True,
            individual=values["privacy.individual_tracking"] is True,
        )

    return settings.per_transaction(session, "tracking_config", read)


def trackable(url: str) -> bool:
    """Whether `url` can be a tracked link: http(s), with a host, not too long."""
    if len(url) > MAX_LINK_URL_CHARS or any(ord(c) < 33 for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


@dataclass(frozen=True, slots=True)
class LinkUse:
    """The TrackLink URLs of some templates: those that can be tracked, and what cannot."""

    urls: tuple[str, ...] = ()
    untracked: tuple[str, ...] = ()


def tracked_urls(sources: Iterable[str]) -> LinkUse:
    """The URLs the `TrackLink` calls of `sources` (templates in either dialect) name, in order
    of first appearance. A call whose URL is not a literal, or not `trackable`, is listed (as
    its source text, shortened) in `untracked`. Templates that do not compile are skipped
    (compiling them reports the error)."""
    urls: dict[str, None] = {}
    untracked: dict[str, None] = {}
    for source in sources:
        if "TrackLink" not in source:
            continue
        try:
            tree = _PARSER.parse(translate_go_template(source))
        except (TemplateError, TemplateRenderError):
            continue
        for call in tree.find_all(nodes.Call):
            if not isinstance(call.node, nodes.Name) or call.node.name != "TrackLink":
                continue
            argument = call.args[0] if call.args else None
            if isinstance(argument, nodes.Const) and isinstance(argument.value, str):
                target = urls if trackable(argument.value) else untracked
                target[argument.value[:200] if target is untracked else argument.value] = None
            else:
                untracked["(a URL computed when the message is rendered)"] = None
    return LinkUse(tuple(urls), tuple(untracked))


def register_links(session: Session, campaign_id: int, urls: Iterable[str]) -> dict[str, str]:
    """The link uuid of each of `urls` for the campaign, registering those not yet registered
    (concurrent registrations of one URL end with one row); URLs that are not `trackable` are
    left out, so that the click route can only ever redirect to an http(s) URL. The caller
    commits."""
    wanted = [url for url in dict.fromkeys(urls) if trackable(url)]
    if not wanted:
        return {}
    insert_many_or_ignore(
        session,
        LINKS,
        [
            {"uuid": new_uuid(), "campaign_id": campaign_id, "url": url, "created_at": utcnow()}
            for url in wanted
        ],
        [LINKS.c.id],
    )
    rows = session.execute(
        select(Link.url, Link.uuid).where(Link.campaign_id == campaign_id, Link.url.in_(wanted))
    )
    return {url: uuid for url, uuid in rows}


# The tracking image around its (escaped) address.
_PIXEL_START = '<img src="'
_PIXEL_END = (
    '" width="1" height="1" alt="" style="display:none;max-height:0;max-width:0;opacity:0">'
)


@dataclass(frozen=True)
class CampaignTracking:
    """How one campaign's messages are tracked; `for_recipient` gives the template values."""

    root_url: str
    campaign_uuid: str
    config: TrackingConfig = field(default_factory=TrackingConfig)
    # Tracked URL -> link uuid.
    links: Mapping[str, str] = field(default_factory=dict)

    def message_url(self, subscriber_uuid: str) -> str:
        """`{{ MessageURL }}`: the message as a web page."""
        return f"{self.root_url}/campaign/{self.campaign_uuid}/{subscriber_uuid}"

    def _who(self, subscriber_uuid: str) -> str:
        return subscriber_uuid if self.config.individual else ANONYMOUS

    def pixel(self, subscriber_uuid: str) -> Markup:
        """`{{ TrackView }}`: the tracking image (empty when tracking is off)."""
        if self.config.disabled:
            return Markup("")
        src = f"{self.message_url(self._who(subscriber_uuid))}/px.png"
        # Escaped and joined directly: `Markup.format` costs several times more per message.
        return Markup(f"{_PIXEL_START}{escape(src)}{_PIXEL_END}")

    def link(self, url: str, subscriber_uuid: str) -> str:
        """`{{ TrackLink url }}`: the tracked URL, or `url` itself when it is not tracked."""
        link_uuid = None if self.config.disabled else self.links.get(url)
        if link_uuid is None:
            return url
        who = self._who(subscriber_uuid)
        return f"{self.root_url}/link/{link_uuid}/{self.campaign_uuid}/{who}"

    def template_values(self, subscriber_uuid: str) -> dict[str, Any]:
        """`TrackView`, `TrackLink` and `MessageURL` for one recipient's template context."""

        def track_link(url: Any, *_: Any) -> str:
            return self.link(str(url), subscriber_uuid)

        return {
            "TrackView": self.pixel(subscriber_uuid),
            "TrackLink": track_link,
            "MessageURL": self.message_url(subscriber_uuid),
        }


def template_sources(campaign: Campaign, layout: str | None) -> list[str]:
    """Every template of a campaign's message: subject, body, text alternative, layout and
    custom headers."""
    headers = [v for h in campaign.headers or [] for v in h.values() if isinstance(v, str)]
    return [campaign.subject, campaign.body, campaign.altbody or "", layout or "", *headers]


def prepare(
    session: Session,
    campaign: Campaign,
    root_url: str,
    layout: str | None,
    *,
    register: bool = True,
) -> CampaignTracking:
    """The tracking of a campaign's messages: settings read, and its links registered (the
    caller commits) or, with `register=False`, only those registered before. URLs that cannot
    be tracked are logged when registering."""
    config = tracking_config(session)
    found = tracked_urls(template_sources(campaign, layout))
    if found.untracked and register:
        log.warning(
            "campaign %s: TrackLink left these untracked (not a literal http(s) URL of at most"
            " %s characters): %s",
            campaign.id,
            MAX_LINK_URL_CHARS,
            ", ".join(str(escape(u)) for u in found.untracked),
        )
    links: dict[str, str] = {}
    if not config.disabled and found.urls:
        if register:
            links = register_links(session, campaign.id, found.urls)
        else:
            rows = session.execute(
                select(Link.url, Link.uuid).where(Link.campaign_id == campaign.id)
            )
            links = {url: uuid for url, uuid in rows}
    return CampaignTracking(root_url.rstrip("/"), campaign.uuid, config, links)


def tracked(
    session: Session,
    campaign: Campaign,
    content: Content,
    root_url: str,
    layout: str | None,
    *,
    register: bool = True,
) -> Content:
    """`content` (the campaign's, compiled) with the campaign's tracking (see `prepare`)."""
    return replace(
        content, tracking=prepare(session, campaign, root_url, layout, register=register)
    )
