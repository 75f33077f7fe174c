"""The reads behind the tracking routes: campaigns and links loaded in increments by id, the
URL of an imported listmonk link, and the id of a registered link."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Session

from stmails.db.models import ListmonkLink, new_uuid
from stmails.services.tracking import lookups
from stmails.services.tracking.links import register_links

from .history import campaign


def test_campaigns_after_gives_only_the_newer_campaigns(session: Session) -> None:
    first, second = campaign(session, "first"), campaign(session, "second")
    assert sorted(lookups.campaigns_after(session, 0)) == [
        (first.id, first.uuid),
        (second.id, second.uuid),
    ]
    assert lookups.campaigns_after(session, first.id) == [(second.id, second.uuid)]
    assert lookups.campaigns_after(session, second.id) == []


def test_links_after_gives_each_newer_link_with_its_campaign_and_url(session: Session) -> None:
    camp = campaign(session, "links")
    uuids = register_links(session, camp.id, ["https://a.example/", "https://b.example/"])
    rows = sorted(lookups.links_after(session, 0))
    assert [(uuid, campaign_id, url) for _, uuid, campaign_id, url in rows] == [
        (uuids["https://a.example/"], camp.id, "https://a.example/"),
        (uuids["https://b.example/"], camp.id, "https://b.example/"),
    ]
    assert lookups.links_after(session, rows[0][0]) == [rows[1]]
    assert lookups.links_after(session, rows[1][0]) == []


def test_imported_link_url_is_none_for_a_link_not_imported(session: Session) -> None:
    kept = new_uuid()
    session.add(ListmonkLink(uuid=kept, url="https://kept.example/"))
    session.flush()
    assert lookups.imported_link_url(session, kept) == "https://kept.example/"
    assert lookups.imported_link_url(session, new_uuid()) is None


def test_link_id_names_the_campaigns_own_link_to_that_url(session: Session) -> None:
    one, other = campaign(session, "one"), campaign(session, "other")
    register_links(session, one.id, ["https://same.example/"])
    register_links(session, other.id, ["https://same.example/"])
    ids = {link_id for link_id, *_ in lookups.links_after(session, 0)}
    found = lookups.link_id(session, one.id, "https://same.example/")
    assert found in ids
    assert found != lookups.link_id(session, other.id, "https://same.example/")
    with pytest.raises(NoResultFound):
        lookups.link_id(session, one.id, "https://not-registered.example/")
