"""What subscribers do themselves: sign up, confirm (double opt-in), manage, export and wipe.

Every function takes a Session and never commits; the web layer (web/public) commits, then
answers. The rules that keep this safe on the open internet:

- Links are capabilities checked as a pair (`resolve_link`): the subscriber's uuid with either
  a campaign uuid that really went to that subscriber (a send row, or the subscriber is on one
  of the campaign's lists), or a token signed with the server's secret (`link_token`) for mail
  that is not a campaign (the confirmation mail, the data export). Anything else resolves to
  nothing, and the pages answer the same "not valid" for an unknown subscriber and a forged
  pair, so a link reveals nobody.
- A sign-up for an address that exists changes no personal data (name, attributes) and gives
  the same answer as a new one; it can only add the person to more lists, which double opt-in
  lists leave unconfirmed until the owner of the address clicks.
- Refused sign-ups (bad address, refused domain, verification) store nothing; rate limits
  (services.rate_limits) bound sign-ups per client address and per address, and confirmation
  mail per address, so the form cannot be used to mail-bomb anyone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from stmails.db.models import (
    Bounce,
    Campaign,
    CampaignList,
    CampaignSend,
    MailingList,
    Subscriber,
    SubscriberHygiene,
    SubscriberList,
    Suppression,
    Template,
)
from stmails.db.types import email_hash, normalize_email, utcnow
from stmails.services import intake, rate_limits, settings, subscribers, suppression
from stmails.services.bounces import erase_subscriber
from stmails.services.errors import InvalidInput
from stmails.services.public_settings import normalize_domain
from stmails.services.rate_limits import Window

NAME_MAX = 200
LINK_TOKEN_CHARS = 32
# The transactional template made on first use when `app.optin_template_id` is not set; the
# admin edits it like any other (`/api/templates`). Go-template syntax, as listmonk's.
OPTIN_TEMPLATE_NAME = "Opt-in confirmation"
OPTIN_TEMPLATE_SUBJECT = "Confirm your subscription"
OPTIN_TEMPLATE_BODY = """<p>Hello {{ .Subscriber.FirstName }},</p>
<p>Someone (hopefully you) asked to subscribe {{ .Subscriber.Email }} to:</p>
<ul>{{ range .Tx.Data.lists }}<li>{{ . }}</li>{{ end }}</ul>
<p><a href="{{ OptinURL }}">Confirm your subscription</a></p>
<p>If you did not ask for this, ignore this message: nothing will be sent to you.
You can also <a href="{{ UnsubscribeURL }}">refuse all mail from us</a>.</p>
"""


class SignupRefused(InvalidInput):
    """A sign-up the form must refuse with a message (`field` names the field)."""


# --- links ---------------------------------------------------------------------------------


def link_token(secret: bytes, subscriber_uuid: str) -> str:
    """The signed token that stands for a campaign in a non-campaign mail's links."""
    mac = hmac.new(secret, b"stmails-subscriber-link\x00" + subscriber_uuid.encode(), "sha256")
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")[:LINK_TOKEN_CHARS]


def optin_url(root_url: str, secret: bytes, subscriber_uuid: str, list_uuids: Sequence[str]) -> str:
    """The confirmation link of the opt-in mail (listmonk's path, plus our signed token)."""
    query = urlencode([("t", link_token(secret, subscriber_uuid)), *(("l", u) for u in list_uuids)])
    return f"{root_url.rstrip('/')}/subscription/optin/{subscriber_uuid}?{query}"


def manage_url(root_url: str, secret: bytes, subscriber_uuid: str) -> str:
    """The preferences page of a non-campaign mail (the token in the campaign's place)."""
    token = link_token(secret, subscriber_uuid)
    return f"{root_url.rstrip('/')}/subscription/{token}/{subscriber_uuid}"


@dataclass(frozen=True)
class LinkTarget:
    """Who a valid link names: the subscriber, and the campaign (None for a token link).
    `key` is the link's first part, which the page's own forms carry on."""

    subscriber: Subscriber
    campaign: Campaign | None
    key: str


def _uuid_text(value: str) -> str:
    return value.strip().lower()[:64]


def resolve_link(
    session: Session, secret: bytes, key: str, subscriber_uuid: str
) -> LinkTarget | None:
    """The target of a link (`key` is a campaign uuid or a signed token), or None when the
    pair does not hold: an unknown subscriber, a forged token, or a campaign that never went
    to this subscriber."""
    subscriber = subscribers.get_by_uuid(session, _uuid_text(subscriber_uuid))
    if subscriber is None:
        return None
    key = key.strip()[:64]
    if secret and hmac.compare_digest(key.encode(), link_token(secret, subscriber.uuid).encode()):
        return LinkTarget(subscriber, None, key)
    campaign = session.scalar(select(Campaign).where(Campaign.uuid == _uuid_text(key)))
    if campaign is None or not campaign_reached(session, campaign.id, subscriber.id):
        return None
    return LinkTarget(subscriber, campaign, campaign.uuid)


def campaign_reached(session: Session, campaign_id: int, subscriber_id: int) -> bool:
    """Whether the campaign went (or goes) to the subscriber: a send row, or one of its lists."""
    sent = exists().where(
        CampaignSend.campaign_id == campaign_id, CampaignSend.subscriber_id == subscriber_id
    )
    listed = exists().where(
        CampaignList.campaign_id == campaign_id,
        SubscriberList.list_id == CampaignList.list_id,
        SubscriberList.subscriber_id == subscriber_id,
    )
    return bool(session.scalar(select(sent | listed)))


# --- sign-up -------------------------------------------------------------------------------


def public_lists(session: Session) -> list[MailingList]:
    """The lists anyone may subscribe to (type `public`, not archived), by name."""
    return list(
        session.scalars(
            select(MailingList)
            .where(MailingList.type == "public", MailingList.status == "active")
            .order_by(MailingList.name, MailingList.id)
        )
    )


@dataclass(frozen=True)
class DomainFilter:
    """`privacy.domain_blocklist` and `privacy.domain_allowlist`, read once (imports check
    thousands of addresses with one)."""

    blocked: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()

    @classmethod
    def current(cls, session: Session) -> DomainFilter:
        """The lists in force."""
        return cls(
            tuple(settings.get_valid(session, "privacy.domain_blocklist")),
            tuple(settings.get_valid(session, "privacy.domain_allowlist")),
        )

    def refuses(self, email: str) -> bool:
        """Whether the address's domain is blocked, or not allowed while an allowlist exists
        (`*.example.com` also covers every subdomain)."""
        if not self.blocked and not self.allowed:
            return False
        domain = normalize_domain(email.rpartition("@")[2])
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return True
        if _matches(domain, self.blocked):
            return True
        return bool(self.allowed) and not _matches(domain, self.allowed)


def domain_refused(session: Session, email: str) -> bool:
    """Whether the domain lists in force refuse `email`."""
    return DomainFilter.current(session).refuses(email)


def _matches(domain: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        if pattern.startswith("*."):
            base = pattern[2:]
            if domain == base or domain.endswith("." + base):
                return True
        elif domain == pattern:
            return True
    return False


def check_domain_allowed(session: Session, email: str) -> None:
    """SignupRefused when the domain lists refuse `email` (sign-ups and imports)."""
    if domain_refused(session, email):
        raise SignupRefused("email", "addresses at this domain are not accepted")


@dataclass(frozen=True)
class Limits:
    """The rate limits of sign-ups and confirmation mail (from the settings)."""

    signup_ip_hourly: int
    signup_address_hourly: int
    mail_interval_minutes: int
    mail_daily: int

    @classmethod
    def current(cls, session: Session) -> Limits:
        """The limits in force."""
        return cls(
            signup_ip_hourly=settings.get_valid(session, "public.signup_ip_hourly_max"),
            signup_address_hourly=settings.get_valid(session, "public.signup_address_hourly_max"),
            mail_interval_minutes=settings.get_valid(session, "public.optin_mail_interval_minutes"),
            mail_daily=settings.get_valid(session, "public.optin_mail_daily_max"),
        )

    def mail_windows(self) -> list[Window]:
        """At most one mail per interval and `mail_daily` a day."""
        windows = [Window(timedelta(days=1), self.mail_daily)]
        if self.mail_interval_minutes:
            windows.insert(0, Window(timedelta(minutes=self.mail_interval_minutes), 1))
        return windows


@dataclass
class SignupResult:
    """What a sign-up did. `subscriber` is None when nothing may be done for the address (it
    is blocklisted or globally suppressed); `to_confirm` are its unconfirmed double opt-in
    lists among those asked for. The answer to the visitor never depends on either."""

    subscriber: Subscriber | None
    to_confirm: list[MailingList] = field(default_factory=list)
    has_optin: bool = False


def resolve_public_lists(session: Session, list_uuids: Sequence[str]) -> list[MailingList]:
    """The public lists among `list_uuids`; SignupRefused when there is none."""
    wanted = {_uuid_text(u) for u in list_uuids if isinstance(u, str)}
    found = [m for m in public_lists(session) if m.uuid in wanted]
    if not found:
        raise SignupRefused("lists", "choose at least one list")
    return found


def sign_up(
    session: Session,
    *,
    email: str,
    name: str,
    list_uuids: Sequence[str],
    client_ip: str,
    now: datetime | None = None,
) -> SignupResult:
    """A visitor's sign-up to public lists (the caller has verified the address).

    Refused (SignupRefused, RateLimited) before anything is stored. A new address becomes a
    subscriber: confirmed on single opt-in lists, unconfirmed on double opt-in ones. An existing
    one keeps its name and attributes and its existing subscriptions (an unsubscribed one stays
    unsubscribed: only the preferences page, reached through the person's own mail, subscribes
    again); it is added to the lists it is not on.
    """
    now = now or utcnow()
    address = subscribers.clean_email(email)
    name = " ".join(name.split())[:NAME_MAX]
    lists = resolve_public_lists(session, list_uuids)
    check_domain_allowed(session, address)
    limits = Limits.current(session)
    rate_limits.allow(
        session, "signup-ip", client_ip, [Window(timedelta(hours=1), limits.signup_ip_hourly)]
    )
    rate_limits.allow(
        session,
        "signup-address",
        normalize_email(address),
        [Window(timedelta(hours=1), limits.signup_address_hourly)],
    )
    result = SignupResult(None, has_optin=any(m.optin == "double" for m in lists))
    found = suppression.lookup(session, address, now=now)
    existing = subscribers.get_by_email(session, address)
    if found is not None or (existing is not None and existing.status == "blocklisted"):
        return result
    list_ids = [m.id for m in lists]
    if existing is None:
        attribs = intake.screen(intake.current(session), address, None) or {}
        existing = subscribers.create(
            session, email=address, name=name, attribs=attribs, list_ids=list_ids, now=now
        )
    else:
        subscribers.subscribe(session, [existing.id], list_ids, update_existing=False, now=now)
    result.subscriber = existing
    result.to_confirm = unconfirmed_lists(session, existing.id, list_ids)
    return result


def unconfirmed_lists(
    session: Session, subscriber_id: int, list_ids: Sequence[int] | None = None
) -> list[MailingList]:
    """The subscriber's double opt-in lists still waiting for confirmation."""
    query = (
        select(MailingList)
        .join(SubscriberList, SubscriberList.list_id == MailingList.id)
        .where(
            SubscriberList.subscriber_id == subscriber_id,
            SubscriberList.status == "unconfirmed",
            MailingList.optin == "double",
        )
        .order_by(MailingList.name, MailingList.id)
    )
    if list_ids is not None:
        query = query.where(MailingList.id.in_(list(list_ids)))
    return list(session.scalars(query))


def allow_mail(session: Session, email: str, *, now: datetime | None = None) -> None:
    """Counts one mail a visitor caused to `email` (confirmation, export); RateLimited when the
    address had its share, whoever asked."""
    rate_limits.allow(
        session,
        "mail-address",
        normalize_email(email),
        Limits.current(session).mail_windows(),
        now=now,
    )


def optin_template(session: Session) -> Template:
    """The transactional template of the confirmation mail: `app.optin_template_id`, else the
    "Opt-in confirmation" template, made (and the setting pointed at it) when it is missing."""
    chosen = settings.get_valid(session, "app.optin_template_id")
    if chosen:
        template = session.get(Template, chosen)
        if template is not None and template.type == "tx":
            return template
    template = Template(
        name=OPTIN_TEMPLATE_NAME,
        type="tx",
        subject=OPTIN_TEMPLATE_SUBJECT,
        body=OPTIN_TEMPLATE_BODY,
    )
    session.add(template)
    session.flush()
    settings.set_value(session, "app.optin_template_id", template.id)
    return template


# --- confirming ----------------------------------------------------------------------------


def confirm(
    session: Session,
    subscriber: Subscriber,
    list_uuids: Sequence[str],
    *,
    client_ip: str,
    now: datetime | None = None,
) -> list[MailingList]:
    """Confirms the subscriber's waiting double opt-in lists (those in `list_uuids`, or all
    when it is empty); returns them. With `privacy.record_optin_ip` the subscription's meta
    keeps `optin_ip` and `optin_at`. A second confirmation finds nothing to do."""
    now = now or utcnow()
    waiting = unconfirmed_lists(session, subscriber.id)
    wanted = {_uuid_text(u) for u in list_uuids}
    if wanted:
        waiting = [m for m in waiting if m.uuid in wanted]
    record_ip = settings.get_valid(session, "privacy.record_optin_ip")
    for mlist in waiting:
        row = session.get(SubscriberList, (subscriber.id, mlist.id))
        if row is None:
            continue
        row.status = "confirmed"
        row.updated_at = now
        if record_ip:
            row.meta = {**(row.meta or {}), "optin_ip": client_ip[:64], "optin_at": now.isoformat()}
    session.flush()
    return waiting


# --- preferences ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """One list on the preferences page: whether the subscriber gets it."""

    list: MailingList
    subscribed: bool
    status: str


def choices(session: Session, subscriber: Subscriber) -> list[Choice]:
    """The lists the preferences page offers: the subscriber's own and every public list."""
    mine = {
        s.list.id: s.status
        for s in subscribers.subscriptions(session, [subscriber.id])[subscriber.id]
    }
    lists = {m.id: m for m in public_lists(session)}
    if mine:
        lists.update(
            {m.id: m for m in session.scalars(select(MailingList).where(MailingList.id.in_(mine)))}
        )
    ordered = sorted(lists.values(), key=lambda m: (m.name.lower(), m.id))
    return [
        Choice(m, mine.get(m.id) in ("confirmed", "unconfirmed"), mine.get(m.id, ""))
        for m in ordered
    ]


def save_preferences(
    session: Session,
    target: LinkTarget,
    *,
    name: str | None,
    keep_list_ids: Iterable[int],
    now: datetime | None = None,
) -> None:
    """The preferences form: the name (when given) and the lists to receive.

    Lists left out are unsubscribed (with a list-scoped suppression entry, as the unsubscribe
    link does). Lists chosen are subscribed, confirmed: the link came in the person's own mail,
    which proves the address. Their earlier unsubscribe entries go. Only the subscriber's own
    lists and public lists can be chosen.
    """
    now = now or utcnow()
    subscriber = target.subscriber
    if name is not None and " ".join(name.split()):
        subscriber.name = " ".join(name.split())[:NAME_MAX]
        subscriber.updated_at = now
    offered = {c.list.id: c for c in choices(session, subscriber)}
    keep = {i for i in keep_list_ids if i in offered}
    leave = [i for i, c in offered.items() if c.subscribed and i not in keep]
    # A kept list still waiting for confirmation is confirmed too.
    join = [i for i in keep if offered[i].status != "confirmed"]
    if leave:
        unsubscribe_lists(session, subscriber, leave, source="preferences", now=now)
    if join:
        subscribers.subscribe(session, [subscriber.id], join, status="confirmed", now=now)
        session.execute(
            delete(Suppression).where(
                Suppression.email_hash == email_hash(subscriber.email),
                Suppression.list_id.in_(join),
                Suppression.reason == "unsubscribe",
            )
        )
    session.flush()


def unsubscribe_lists(
    session: Session,
    subscriber: Subscriber,
    list_ids: Sequence[int] | None,
    *,
    source: str,
    description: str = "",
    now: datetime | None = None,
) -> None:
    """Unsubscribes from `list_ids` (None: every list, with a global suppression entry)."""
    now = now or utcnow()
    where = [SubscriberList.subscriber_id == subscriber.id]
    if list_ids is not None:
        where.append(SubscriberList.list_id.in_(list(list_ids)))
    session.execute(
        update(SubscriberList).where(*where).values(status="unsubscribed", updated_at=now)
    )
    scopes: Sequence[int | None] = list(list_ids) if list_ids is not None else [None]
    for list_id in scopes:
        suppression.add(
            session,
            reason="unsubscribe",
            email=subscriber.email,
            list_id=list_id,
            source=source,
            description=description or "the subscriber's preferences",
            now=now,
        )
    session.flush()


def blocklist_self(
    session: Session, subscriber: Subscriber, *, now: datetime | None = None
) -> None:
    """ "Never mail me again": blocklisted, unsubscribed from everything, suppressed globally."""
    now = now or utcnow()
    subscribers.blocklist(session, [subscriber.id], now=now)
    unsubscribe_lists(
        session,
        subscriber,
        None,
        source="preferences",
        description="the subscriber asked never to be mailed again",
        now=now,
    )


# --- export and wipe -----------------------------------------------------------------------


def export_data(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    """Everything stored about the subscriber, in listmonk's export shape (`profile`,
    `subscriptions`, `campaign_views`, `link_clicks`) plus stmails' `bounces` and `hygiene`
    (the risk score with its factors, the last verification, the sunset state)."""
    subscriptions = subscribers.subscriptions(session, [subscriber.id])[subscriber.id]
    bounces = session.scalars(
        select(Bounce).where(Bounce.subscriber_id == subscriber.id).order_by(Bounce.id)
    )
    hygiene = session.get(SubscriberHygiene, subscriber.id)
    return {
        "profile": [
            {
                "uuid": subscriber.uuid,
                "email": subscriber.email,
                "name": subscriber.name,
                "attribs": dict(subscriber.attribs or {}),
                "status": subscriber.status,
                "created_at": subscriber.created_at.isoformat(),
                "updated_at": subscriber.updated_at.isoformat(),
            }
        ],
        "subscriptions": [
            {
                "name": s.list.name,
                "type": s.list.type,
                "subscription_status": s.status,
                "created_at": s.created_at.isoformat(),
                "meta": dict(s.meta or {}),
            }
            for s in subscriptions
        ],
        "campaign_views": [],
        "link_clicks": [],
        "bounces": [
            {
                "type": b.type,
                "reason": b.reason,
                "source": b.source,
                "created_at": b.created_at.isoformat(),
            }
            for b in bounces
        ],
        "hygiene": _hygiene_export(hygiene),
    }


def _hygiene_export(row: SubscriberHygiene | None) -> dict[str, Any]:
    if row is None:
        return {"risk_score": None, "risk_level": None, "risk_factors": [], "state": "active"}
    scored = row.scored_at is not None
    return {
        "risk_score": row.risk_score if scored else None,
        "risk_level": row.risk_level if scored else None,
        "risk_factors": list(row.risk_factors or []),
        "verify_result": row.verify_result,
        "verified_at": row.verified_at.isoformat() if row.verified_at else None,
        "state": row.state,
    }


def export_json(data: Mapping[str, Any]) -> str:
    """The export as indented JSON text."""
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False)


def wipe(session: Session, subscriber: Subscriber, *, now: datetime | None = None) -> str:
    """Deletes the subscriber and the personal data their bounces hold, keeping only the hash
    of the address in a global suppression entry so that it is never mailed again; returns
    that hash."""
    hashed = email_hash(subscriber.email)
    suppression.add(
        session,
        reason="unsubscribe",
        hashed=hashed,
        source="wipe",
        description="the subscriber wiped their data",
        keep_address=False,
        now=now,
    )
    erase_subscriber(session, subscriber, hashed)
    return hashed


def digest(text: str) -> str:
    """A short non-reversible label of `text` for logs."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]
