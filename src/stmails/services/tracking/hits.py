"""Recording opens and clicks: a batch of hits in a handful of statements (the tracking routes'
group-commit writer calls `record_hits`).

For each hit: the subscriber named by the URL must exist (else `UnknownSubscriber`, nothing is
written); the machine rules (services.tracking.machines) judge it; its row is stored in
`campaign_views` or `link_clicks` (with the subscriber only under individual tracking); a
person's first open and first click of a campaign are marked in `campaign_engagement` (which
makes them unique, exactly, even when two processes record at once); and the figures' deltas are
written to `analytics_changes`. A click that turns out to be part of a burst over several links
flags the earlier clicks of the burst too, and takes them out of the figures.

The statements are compiled once and run on the driver's cursor, with lists bound as one
parameter and rows inserted without SQLAlchemy's per-row work (db.prepared, db.in_list,
db.upsert), as the bounce writer does: a batch costs about the same whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select, update
from sqlalchemy.orm import Session

from stmails.db.in_list import in_list
from stmails.db.models import (
    HOURLY_COUNTERS,
    AnalyticsChange,
    Campaign,
    CampaignEngagement,
    CampaignSend,
    CampaignView,
    Link,
    LinkClick,
    Subscriber,
)
from stmails.db.prepared import Prepared
from stmails.db.types import UTCDateTime
from stmails.db.upsert import insert_rows_or_ignore
from stmails.services.analytics.window import hour_of
from stmails.services.errors import NotFound
from stmails.services.hygiene import risk
from stmails.services.tracking import machines
from stmails.services.tracking.links import ANONYMOUS, tracking_config
from stmails.services.tracking.machines import HitKind

VIEWS = cast(Table, CampaignView.__table__)
CLICKS = cast(Table, LinkClick.__table__)
ENGAGEMENT = cast(Table, CampaignEngagement.__table__)
CHANGES = cast(Table, AnalyticsChange.__table__)

_CAMPAIGNS = Prepared(select(Campaign.id).where(in_list(Campaign.id, "ids")))
_LINKS = Prepared(select(Link.id).where(in_list(Link.id, "ids")))
_SUBSCRIBERS = Prepared(
    select(Subscriber.uuid, Subscriber.id).where(in_list(Subscriber.uuid, "uuids"))
)
_SENT = Prepared(
    select(CampaignSend.subscriber_id, CampaignSend.sent_at).where(
        CampaignSend.campaign_id == bindparam("campaign"),
        in_list(CampaignSend.subscriber_id, "ids"),
    )
)
_RECENT_CLICKS = Prepared(
    select(
        LinkClick.id,
        LinkClick.campaign_id,
        LinkClick.subscriber_id,
        LinkClick.link_id,
        LinkClick.created_at,
        LinkClick.machine,
    ).where(
        in_list(LinkClick.subscriber_id, "ids"),
        LinkClick.created_at >= bindparam("since", type_=UTCDateTime()),
    )
)
_ENGAGED = Prepared(
    select(
        ENGAGEMENT.c.campaign_id,
        ENGAGEMENT.c.subscriber_id,
        ENGAGEMENT.c.viewed_at,
        ENGAGEMENT.c.clicked_at,
    ).where(in_list(ENGAGEMENT.c.subscriber_id, "ids"))
)
# A click flagged after the fact, and a first click taken back (each returns what it changed).
_FLAG_CLICK = Prepared(
    update(CLICKS)
    .where(CLICKS.c.id == bindparam("click"), CLICKS.c.machine == "")
    .values(machine="link_burst")
    .returning(CLICKS.c.id)
)
_UNMARK_CLICK = Prepared(
    update(ENGAGEMENT)
    .where(
        ENGAGEMENT.c.campaign_id == bindparam("campaign"),
        ENGAGEMENT.c.subscriber_id == bindparam("subscriber"),
        ENGAGEMENT.c.clicked_at == bindparam("at", type_=UTCDateTime()),
    )
    .values(clicked_at=None)
    .returning(ENGAGEMENT.c.campaign_id)
)
# A first open (click) written into a row that has none yet.
_FILL = {
    column: Prepared(
        update(ENGAGEMENT)
        .where(
            ENGAGEMENT.c.campaign_id == bindparam("campaign"),
            ENGAGEMENT.c.subscriber_id == bindparam("subscriber"),
            ENGAGEMENT.c[column].is_(None),
        )
        .values({column: bindparam("at", type_=UTCDateTime())})
        .returning(ENGAGEMENT.c.campaign_id)
    )
    for column in ("viewed_at", "clicked_at")
}
_HIT_COLUMNS = ("campaign_id", "subscriber_id", "machine", "created_at")
_CHANGE_COLUMNS = ("hour", "campaign_id", "domain", "reason", "source", *HOURLY_COUNTERS)


class UnknownSubscriber(NotFound):
    """The URL names a subscriber that does not exist (any more)."""


@dataclass(frozen=True, slots=True)
class Hit:
    """One request of the pixel (`view`) or of a tracked link (`click`)."""

    kind: HitKind
    campaign_id: int
    subscriber_uuid: str
    at: datetime
    link_id: int | None = None
    method: str = "GET"
    user_agent: str = ""
    ip: str = ""


@dataclass(frozen=True, slots=True)
class HitResult:
    """What was made of a hit: recorded (False when tracking is off), and the machine rule
    that matched ('' for a person)."""

    recorded: bool
    machine: str = ""


@dataclass(slots=True)
class _Pending:
    hit: Hit
    subscriber_id: int | None
    stored_subscriber: int | None
    machine: str = ""
    first: bool = False


@dataclass
class _Deltas:
    """Counter deltas per (hour, campaign, counter)."""

    counts: dict[tuple[int, int, str], int] = field(default_factory=dict)

    def add(self, hour: int, campaign_id: int, counter: str, amount: int = 1) -> None:
        key = (hour, campaign_id, counter)
        self.counts[key] = self.counts.get(key, 0) + amount

    def rows(self) -> list[tuple[Any, ...]]:
        """The analytics_changes rows, in the order of _CHANGE_COLUMNS."""
        by_key: dict[tuple[int, int], dict[str, int]] = {}
        for (hour, campaign_id, counter), amount in self.counts.items():
            by_key.setdefault((hour, campaign_id), {})[counter] = amount
        return [
            (hour, campaign_id, "", "", "", *(counters.get(name, 0) for name in HOURLY_COUNTERS))
            for (hour, campaign_id), counters in sorted(by_key.items())
            if any(counters.values())
        ]


def record_hit(session: Session, hit: Hit) -> HitResult:
    """`record_hits` for one hit; raises UnknownSubscriber."""
    outcome = record_hits(session, [hit])[0]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def record_hits(session: Session, hits: Sequence[Hit]) -> list[HitResult | Exception]:
    """Records `hits` in the caller's transaction (it commits); one outcome per hit, in order:
    a HitResult, or UnknownSubscriber for a hit that names no subscriber (nothing written)."""
    config = tracking_config(session)
    connection = session.connection()
    named = {h.subscriber_uuid.lower() for h in hits} - {ANONYMOUS}
    known = _subscribers(connection, named)
    campaigns, links = _targets(connection, hits)
    outcomes: list[HitResult | Exception] = []
    pending: list[_Pending] = []
    for hit in hits:
        uuid = hit.subscriber_uuid.lower()
        subscriber_id = known.get(uuid) if uuid != ANONYMOUS else None
        if hit.campaign_id not in campaigns or (
            hit.link_id is not None and hit.link_id not in links
        ):
            # Deleted since the web layer looked it up.
            outcomes.append(NotFound("no such campaign or link"))
            continue
        if uuid != ANONYMOUS and subscriber_id is None:
            outcomes.append(UnknownSubscriber("no such subscriber"))
            continue
        if config.disabled:
            outcomes.append(HitResult(False))
            continue
        stored = subscriber_id if config.individual else None
        pending.append(_Pending(hit, subscriber_id, stored))
        outcomes.append(HitResult(True))
    if pending:
        deltas = _Deltas()
        _retract(connection, _judge(connection, pending), deltas)
        people = [p for p in pending if not p.machine and p.stored_subscriber]
        _mark_firsts(connection, people)
        _store(connection, pending, deltas)
        _write_deltas(connection, deltas)
        # A person's first open or click of a campaign makes them engaged again: their
        # bounce-risk score follows (services.hygiene.risk; machine opens never count).
        risk.rescore(session, [p.stored_subscriber for p in people if p.first])
    results = iter(pending)
    return [
        HitResult(True, next(results).machine) if isinstance(o, HitResult) and o.recorded else o
        for o in outcomes
    ]


def _targets(connection: Connection, hits: Sequence[Hit]) -> tuple[set[int], set[int]]:
    """The ids of the hits' campaigns and links that exist."""
    campaigns = {
        row[0]
        for row in _CAMPAIGNS.rows(connection, {"ids": sorted({h.campaign_id for h in hits})})
    }
    link_ids = sorted({h.link_id for h in hits if h.link_id is not None})
    links = {row[0] for row in _LINKS.rows(connection, {"ids": link_ids})} if link_ids else set()
    return campaigns, links


def _subscribers(connection: Connection, uuids: set[str]) -> dict[str, int]:
    if not uuids:
        return {}
    rows = _SUBSCRIBERS.rows(connection, {"uuids": sorted(uuids)})
    return {uuid.lower(): subscriber_id for uuid, subscriber_id in rows}


def _sent_times(
    connection: Connection, pending: Sequence[_Pending]
) -> dict[tuple[int, int], datetime]:
    """When each (campaign, subscriber) of the batch was sent to (the ledger's time)."""
    by_campaign: dict[int, set[int]] = defaultdict(set)
    for item in pending:
        if item.subscriber_id is not None:
            by_campaign[item.hit.campaign_id].add(item.subscriber_id)
    out: dict[tuple[int, int], datetime] = {}
    for campaign_id, ids in by_campaign.items():
        for subscriber_id, sent_at in _SENT.rows(
            connection, {"campaign": campaign_id, "ids": sorted(ids)}
        ):
            out[(campaign_id, subscriber_id)] = sent_at
    return out


@dataclass(slots=True)
class _Click:
    """A click the burst rule compares with: stored (`id`) or of this batch (`item`)."""

    link_id: int
    at: datetime
    machine: str
    id: int | None = None
    item: _Pending | None = None
    # Set when the click is found, after the fact, to be part of a burst.
    late: bool = False


def _earlier_clicks(
    connection: Connection, pending: Sequence[_Pending]
) -> dict[tuple[int, int], list[_Click]]:
    """The stored clicks, recent enough to form a burst, of the batch's clicking subscribers."""
    clickers = sorted(
        {p.stored_subscriber for p in pending if p.hit.kind == "click" and p.stored_subscriber}
    )
    out: dict[tuple[int, int], list[_Click]] = defaultdict(list)
    if not clickers:
        return out
    since = min(p.hit.at for p in pending) - timedelta(seconds=machines.BURST_SECONDS)
    rows = _RECENT_CLICKS.rows(connection, {"ids": clickers, "since": since})
    for click_id, campaign_id, subscriber_id, link_id, created_at, machine in rows:
        if subscriber_id is not None:
            out[(campaign_id, subscriber_id)].append(_Click(link_id, created_at, machine, click_id))
    return out


def _judge(
    connection: Connection, pending: Sequence[_Pending]
) -> list[tuple[tuple[int, int], _Click]]:
    """Applies the machine rules to every hit, in order; returns the stored clicks (with their
    campaign and subscriber) that a later click showed to be part of a burst."""
    sent = _sent_times(connection, pending)
    clicks = _earlier_clicks(connection, pending)
    for item in pending:
        hit = item.hit
        item.machine = machines.by_request(hit.kind, hit.method, hit.user_agent, hit.ip)
        if item.subscriber_id is None:
            continue
        if not item.machine:
            item.machine = machines.too_soon(
                sent.get((hit.campaign_id, item.subscriber_id)), hit.at
            )
        if hit.kind != "click" or hit.link_id is None or item.stored_subscriber is None:
            continue
        earlier = clicks[(hit.campaign_id, item.stored_subscriber)]
        burst = [c for c in earlier if machines.in_burst(hit.at, hit.link_id, [(c.link_id, c.at)])]
        if burst and not item.machine:
            item.machine = "link_burst"
        for click in burst:
            if not click.machine:
                click.machine = "link_burst"
                click.late = True
                if click.item is not None:
                    click.item.machine = "link_burst"
        earlier.append(_Click(hit.link_id, hit.at, item.machine, item=item))
    return [
        (pair, click)
        for pair, group in sorted(clicks.items())
        for click in group
        if click.late and click.id is not None
    ]


def _retract(
    connection: Connection, clicks: Sequence[tuple[tuple[int, int], _Click]], deltas: _Deltas
) -> None:
    """Stored clicks found to be part of a burst become machine clicks: flagged, taken out of
    the click figures, and no longer their subscriber's first click."""
    for (campaign_id, subscriber_id), click in clicks:
        if not _FLAG_CLICK.rows(connection, {"click": click.id}):
            continue
        hour = hour_of(click.at)
        deltas.add(hour, campaign_id, "clicks", -1)
        deltas.add(hour, campaign_id, "machine_clicks")
        pair = {"campaign": campaign_id, "subscriber": subscriber_id, "at": click.at}
        if _UNMARK_CLICK.rows(connection, pair):
            deltas.add(hour, campaign_id, "unique_clicks", -1)


def _mark_firsts(connection: Connection, people: Sequence[_Pending]) -> None:
    """Marks the batch's first opens and clicks (per campaign and subscriber) in
    campaign_engagement; `first` is set on the hits that were.

    Rows are read first, so a repeat open costs no write. A pair without a row gets one (its
    insert names the first open and click); a row whose column is still empty is filled in
    only if it is still empty then. A pair another process inserted meanwhile is filled in the
    same way, so each first is counted exactly once.
    """
    wanted: dict[tuple[int, int], dict[str, _Pending]] = {}
    for item in people:
        assert item.stored_subscriber is not None
        column = "viewed_at" if item.hit.kind == "view" else "clicked_at"
        wanted.setdefault((item.hit.campaign_id, item.stored_subscriber), {}).setdefault(
            column, item
        )
    if not wanted:
        return
    ids = sorted({subscriber_id for _, subscriber_id in wanted})
    known = {
        (campaign_id, subscriber_id): {"viewed_at": viewed, "clicked_at": clicked}
        for campaign_id, subscriber_id, viewed, clicked in _ENGAGED.rows(connection, {"ids": ids})
    }
    fresh = sorted(pair for pair in wanted if pair not in known)
    inserted = set()
    if fresh:
        rows = [
            (
                campaign_id,
                subscriber_id,
                wanted[(campaign_id, subscriber_id)]["viewed_at"].hit.at
                if "viewed_at" in wanted[(campaign_id, subscriber_id)]
                else None,
                wanted[(campaign_id, subscriber_id)]["clicked_at"].hit.at
                if "clicked_at" in wanted[(campaign_id, subscriber_id)]
                else None,
            )
            for campaign_id, subscriber_id in fresh
        ]
        inserted = {
            (row[0], row[1])
            for row in insert_rows_or_ignore(
                connection,
                ENGAGEMENT,
                ("campaign_id", "subscriber_id", "viewed_at", "clicked_at"),
                rows,
                ("campaign_id", "subscriber_id"),
            )
        }
    for pair, firsts in sorted(wanted.items()):
        for column, item in firsts.items():
            if pair in inserted:
                item.first = True
            elif pair in known and known[pair][column] is not None:
                item.first = False
            else:
                # A row without this first yet (or one another process just inserted).
                filled = _FILL[column].rows(
                    connection, {"campaign": pair[0], "subscriber": pair[1], "at": item.hit.at}
                )
                item.first = bool(filled)


def _store(connection: Connection, pending: Sequence[_Pending], deltas: _Deltas) -> None:
    """Inserts the hits' rows and counts them."""
    views: list[tuple[Any, ...]] = []
    clicks: list[tuple[Any, ...]] = []
    for item in pending:
        hit = item.hit
        name = "views" if hit.kind == "view" else "clicks"
        hour = hour_of(hit.at)
        if item.machine:
            deltas.add(hour, hit.campaign_id, f"machine_{name}")
        else:
            deltas.add(hour, hit.campaign_id, name)
            if item.first:
                deltas.add(hour, hit.campaign_id, f"unique_{name}")
        row = (hit.campaign_id, item.stored_subscriber, item.machine, hit.at)
        if hit.kind == "view":
            views.append(row)
        else:
            clicks.append((*row, hit.link_id))
    insert_rows_or_ignore(connection, VIEWS, _HIT_COLUMNS, views, ("id",))
    insert_rows_or_ignore(connection, CLICKS, (*_HIT_COLUMNS, "link_id"), clicks, ("id",))


def _write_deltas(connection: Connection, deltas: _Deltas) -> None:
    rows = deltas.rows()
    insert_rows_or_ignore(connection, CHANGES, _CHANGE_COLUMNS, rows, ("id",))
