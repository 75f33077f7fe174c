"""Recording opens and clicks: a batch of hits in a handful of statements (the tracking routes'
group-commit writer calls `record_hits`).

For each hit: the subscriber named by the URL must exist (else `UnknownSubscriber`, nothing is
written); the machine rules (services.tracking.machines) judge it; its row is stored in
`campaign_views` or `link_clicks` (with the subscriber only under individual tracking); a
person's first open and first click of a campaign are marked in `campaign_engagement` (which
makes them unique, exactly, even when two processes record at once); and the figures' deltas are
written to `analytics_changes`. A click that turns out to be part of a burst over several links
flags the earlier clicks of the burst too, and takes them out of the figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from stmails.db.in_list import in_list
from stmails.db.models import (
    ENGAGEMENT_COUNTERS,
    AnalyticsChange,
    Campaign,
    CampaignEngagement,
    CampaignSend,
    CampaignView,
    Link,
    LinkClick,
    Subscriber,
)
from stmails.db.upsert import insert_many_or_ignore
from stmails.services.analytics.window import hour_of
from stmails.services.errors import NotFound
from stmails.services.tracking import machines
from stmails.services.tracking.links import ANONYMOUS, tracking_config
from stmails.services.tracking.machines import HitKind

VIEWS = cast(Table, CampaignView.__table__)
CLICKS = cast(Table, LinkClick.__table__)
ENGAGEMENT = cast(Table, CampaignEngagement.__table__)
CHANGES = cast(Table, AnalyticsChange.__table__)


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
    """Counter deltas per (hour, campaign)."""

    by_key: dict[tuple[int, int], dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )

    def add(self, at: datetime, campaign_id: int, counter: str, amount: int = 1) -> None:
        self.by_key[(hour_of(at), campaign_id)][counter] += amount

    def rows(self) -> list[dict[str, Any]]:
        """The analytics_changes rows (every engagement counter given, for one executemany)."""
        out = []
        for (hour, campaign_id), counters in sorted(self.by_key.items()):
            if any(counters.values()):
                values = {name: counters.get(name, 0) for name in ENGAGEMENT_COUNTERS}
                out.append({"hour": hour, "campaign_id": campaign_id, **values})
        return out


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
    named = {h.subscriber_uuid.lower() for h in hits} - {ANONYMOUS}
    known = _subscribers(session, named)
    campaigns, links = _targets(session, hits)
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
        _retract(session, _judge(session, pending), deltas)
        _mark_firsts(session, [p for p in pending if not p.machine and p.stored_subscriber])
        _store(session, pending, deltas)
        _write_deltas(session, deltas)
    results = iter(pending)
    return [
        HitResult(True, next(results).machine) if isinstance(o, HitResult) and o.recorded else o
        for o in outcomes
    ]


def _targets(session: Session, hits: Sequence[Hit]) -> tuple[set[int], set[int]]:
    """The ids of the hits' campaigns and links that exist."""
    campaign_ids = sorted({h.campaign_id for h in hits})
    campaigns = set(
        session.scalars(
            select(Campaign.id).where(in_list(Campaign.id, "ids")), {"ids": campaign_ids}
        )
    )
    link_ids = sorted({h.link_id for h in hits if h.link_id is not None})
    links = (
        set(session.scalars(select(Link.id).where(in_list(Link.id, "ids")), {"ids": link_ids}))
        if link_ids
        else set()
    )
    return campaigns, links


def _subscribers(session: Session, uuids: set[str]) -> dict[str, int]:
    if not uuids:
        return {}
    rows = session.execute(
        select(Subscriber.uuid, Subscriber.id).where(in_list(Subscriber.uuid, "uuids")),
        {"uuids": sorted(uuids)},
    )
    return {uuid.lower(): subscriber_id for uuid, subscriber_id in rows}


def _sent_times(session: Session, pending: Sequence[_Pending]) -> dict[tuple[int, int], datetime]:
    """When each (campaign, subscriber) of the batch was sent to (the ledger's time)."""
    by_campaign: dict[int, set[int]] = defaultdict(set)
    for item in pending:
        if item.subscriber_id is not None:
            by_campaign[item.hit.campaign_id].add(item.subscriber_id)
    out: dict[tuple[int, int], datetime] = {}
    for campaign_id, ids in by_campaign.items():
        rows = session.execute(
            select(CampaignSend.subscriber_id, CampaignSend.sent_at).where(
                CampaignSend.campaign_id == campaign_id,
                in_list(CampaignSend.subscriber_id, "ids"),
            ),
            {"ids": sorted(ids)},
        )
        for subscriber_id, sent_at in rows:
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
    session: Session, pending: Sequence[_Pending]
) -> dict[tuple[int, int], list[_Click]]:
    """The stored clicks, recent enough to form a burst, of the batch's clicking subscribers."""
    clickers = sorted(
        {p.stored_subscriber for p in pending if p.hit.kind == "click" and p.stored_subscriber}
    )
    if not clickers:
        return defaultdict(list)
    since = min(p.hit.at for p in pending) - timedelta(seconds=machines.BURST_SECONDS)
    rows = session.execute(
        select(
            LinkClick.id,
            LinkClick.campaign_id,
            LinkClick.subscriber_id,
            LinkClick.link_id,
            LinkClick.created_at,
            LinkClick.machine,
        ).where(in_list(LinkClick.subscriber_id, "ids"), LinkClick.created_at >= since),
        {"ids": clickers},
    )
    out: dict[tuple[int, int], list[_Click]] = defaultdict(list)
    for click_id, campaign_id, subscriber_id, link_id, created_at, machine in rows:
        if subscriber_id is not None:
            out[(campaign_id, subscriber_id)].append(_Click(link_id, created_at, machine, click_id))
    return out


def _judge(session: Session, pending: Sequence[_Pending]) -> list[tuple[tuple[int, int], _Click]]:
    """Applies the machine rules to every hit, in order; returns the stored clicks (with their
    campaign and subscriber) that a later click showed to be part of a burst."""
    sent = _sent_times(session, pending)
    clicks = _earlier_clicks(session, pending)
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
    session: Session, clicks: Sequence[tuple[tuple[int, int], _Click]], deltas: _Deltas
) -> None:
    """Stored clicks found to be part of a burst become machine clicks: flagged, taken out of
    the click figures, and no longer their subscriber's first click."""
    for (campaign_id, subscriber_id), click in clicks:
        flagged = session.execute(
            update(CLICKS)
            .where(CLICKS.c.id == click.id, CLICKS.c.machine == "")
            .values(machine="link_burst")
        )
        if not getattr(flagged, "rowcount", 0):
            continue
        deltas.add(click.at, campaign_id, "clicks", -1)
        deltas.add(click.at, campaign_id, "machine_clicks")
        unmarked = session.execute(
            update(ENGAGEMENT)
            .where(
                ENGAGEMENT.c.campaign_id == campaign_id,
                ENGAGEMENT.c.subscriber_id == subscriber_id,
                ENGAGEMENT.c.clicked_at == click.at,
            )
            .values(clicked_at=None)
        )
        if getattr(unmarked, "rowcount", 0):
            deltas.add(click.at, campaign_id, "unique_clicks", -1)


def _mark_firsts(session: Session, people: Sequence[_Pending]) -> None:
    """Marks the batch's first opens and clicks (per campaign and subscriber) in
    campaign_engagement; `first` is set on the hits that were."""
    wanted: dict[tuple[int, int], dict[str, _Pending]] = {}
    for item in people:
        assert item.stored_subscriber is not None
        column = "viewed_at" if item.hit.kind == "view" else "clicked_at"
        wanted.setdefault((item.hit.campaign_id, item.stored_subscriber), {}).setdefault(
            column, item
        )
    if not wanted:
        return
    inserted = insert_many_or_ignore(
        session,
        ENGAGEMENT,
        [
            {
                "campaign_id": campaign_id,
                "subscriber_id": subscriber_id,
                "viewed_at": firsts["viewed_at"].hit.at if "viewed_at" in firsts else None,
                "clicked_at": firsts["clicked_at"].hit.at if "clicked_at" in firsts else None,
            }
            for (campaign_id, subscriber_id), firsts in sorted(wanted.items())
        ],
        [ENGAGEMENT.c.campaign_id, ENGAGEMENT.c.subscriber_id],
    )
    new = {(row[0], row[1]) for row in inserted}
    for pair, firsts in sorted(wanted.items()):
        for column, item in firsts.items():
            if pair in new:
                item.first = True
                continue
            # The row existed: this is a first only if that column was still empty.
            result = session.execute(
                update(ENGAGEMENT)
                .where(
                    ENGAGEMENT.c.campaign_id == pair[0],
                    ENGAGEMENT.c.subscriber_id == pair[1],
                    ENGAGEMENT.c[column].is_(None),
                )
                .values({column: item.hit.at})
            )
            item.first = bool(getattr(result, "rowcount", 0))


def _store(session: Session, pending: Sequence[_Pending], deltas: _Deltas) -> None:
    """Inserts the hits' rows and counts them."""
    views = []
    clicks = []
    for item in pending:
        hit = item.hit
        row = {
            "campaign_id": hit.campaign_id,
            "subscriber_id": item.stored_subscriber,
            "machine": item.machine,
            "created_at": hit.at,
        }
        name = "views" if hit.kind == "view" else "clicks"
        if item.machine:
            deltas.add(hit.at, hit.campaign_id, f"machine_{name}")
        else:
            deltas.add(hit.at, hit.campaign_id, name)
            if item.first:
                deltas.add(hit.at, hit.campaign_id, f"unique_{name}")
        if hit.kind == "view":
            views.append(row)
        else:
            clicks.append({**row, "link_id": hit.link_id})
    if views:
        session.execute(insert(VIEWS), views)
    if clicks:
        session.execute(insert(CLICKS), clicks)


def _write_deltas(session: Session, deltas: _Deltas) -> None:
    rows = deltas.rows()
    if rows:
        session.execute(insert(CHANGES), rows)
