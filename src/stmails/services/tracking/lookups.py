"""What the tracking routes look up: the campaigns and links their uuids name, loaded in
increments into the routes' in-memory directories, and the links of imported listmonk mail.

Each function answers one read; the caller owns the session and its transaction (the routes
keep these reads off the per-hit path: a directory refresh runs once per unknown uuid, not
per request).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from stmails.db.models import Campaign, Link, ListmonkLink


def campaigns_after(session: Session, after: int) -> list[tuple[int, str]]:
    """(id, uuid) of every campaign with an id above `after`, so that a directory that has
    seen ids up to `after` loads only what is new."""
    rows = session.execute(select(Campaign.id, Campaign.uuid).where(Campaign.id > after)).all()
    return [(campaign_id, uuid) for campaign_id, uuid in rows]


def links_after(session: Session, after: int) -> list[tuple[int, str, int, str]]:
    """(id, uuid, campaign id, url) of every tracked link with an id above `after`."""
    rows = session.execute(
        select(Link.id, Link.uuid, Link.campaign_id, Link.url).where(Link.id > after)
    ).all()
    return [(link_id, uuid, campaign_id, url) for link_id, uuid, campaign_id, url in rows]


def imported_link_url(session: Session, link_uuid: str) -> str | None:
    """The URL of listmonk's link `link_uuid` as `stmails import listmonk` kept it; None when
    no such link was imported."""
    return session.scalar(select(ListmonkLink.url).where(ListmonkLink.uuid == link_uuid))


def link_id(session: Session, campaign_id: int, url: str) -> int:
    """The id of campaign `campaign_id`'s link to `url`, which must be registered
    (`links.register_links`); NoResultFound otherwise."""
    found = session.execute(
        select(Link.id).where(Link.campaign_id == campaign_id, Link.url == url)
    ).scalar_one()
    return int(found)
