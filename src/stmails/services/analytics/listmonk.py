"""listmonk's analytics API: campaign views, clicks, bounces and links over time, the dashboard's
counts and charts, a subscriber's activity, and the `views`/`clicks` of `/api/campaigns`.

The shapes and rules are listmonk's (its queries.sql): counts per campaign per hour when the
period is shorter than a week, per day otherwise; with individual tracking, views and clicks
count each subscriber once per campaign, at the first bucket of the period they appear in, and
links count distinct subscribers. Unlike listmonk, opens and clicks judged to be a machine's
(services.tracking.machines) are left out of every figure here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from stmails.db.models import (
    Bounce,
    Campaign,
    CampaignView,
    Link,
    LinkClick,
    MailingList,
    Subscriber,
    SubscriberList,
)
from stmails.db.rollups import HourOf
from stmails.services.analytics import rollups
from stmails.services.analytics.rollups import Scope
from stmails.services.analytics.window import Window, hour_time

AnalyticsType = Literal["views", "clicks", "bounces", "links"]
ANALYTICS_TYPES: tuple[AnalyticsType, ...] = ("views", "clicks", "bounces", "links")
# listmonk shows the 50 most clicked links.
TOP_LINKS = 50
# The dashboard charts cover the 30 days up to the latest view (click).
CHART_DAYS = 30

VIEWS = cast(Table, CampaignView.__table__)
CLICKS = cast(Table, LinkClick.__table__)


def _stamp(hour: int) -> str:
    return hour_time(hour).strftime("%Y-%m-%dT%H:%M:%SZ")


def interval_of(start: datetime, end: datetime) -> Literal["hour", "day"]:
    """listmonk's rule: hourly counts for a period under a week, daily otherwise."""
    return "day" if end - start >= timedelta(days=7) else "hour"


def campaign_counts(
    session: Session,
    kind: Literal["views", "clicks", "bounces"],
    campaign_ids: Sequence[int],
    start: datetime,
    end: datetime,
    *,
    individual: bool,
) -> list[dict[str, Any]]:
    """`GET /api/campaigns/analytics/{views|clicks|bounces}`: `[{campaign_id, count, timestamp}]`
    for events with start <= time <= end, oldest bucket first."""
    per_day = interval_of(start, end) == "day"
    if kind == "bounces":
        table: Any = cast(Table, Bounce.__table__)
        conditions = []
    else:
        table = VIEWS if kind == "views" else CLICKS
        conditions = [table.c.machine == ""]
    hour = HourOf(table.c.created_at)
    where = [
        table.c.campaign_id.in_(list(campaign_ids)),
        table.c.created_at >= start,
        table.c.created_at <= end,
        *conditions,
    ]
    counts: dict[tuple[int, int], int] = defaultdict(int)
    if kind != "bounces" and individual:
        # Each (subscriber, campaign) once, at its first hour of the period.
        first = (
            select(table.c.campaign_id, func.min(hour).label("hour"))
            .where(*where)
            .group_by(table.c.campaign_id, table.c.subscriber_id)
            .subquery()
        )
        query = select(first.c.campaign_id, first.c.hour, func.count()).group_by(
            first.c.campaign_id, first.c.hour
        )
    else:
        query = (
            select(table.c.campaign_id, hour, func.count())
            .where(*where)
            .group_by(table.c.campaign_id, hour)
        )
    for campaign_id, at, count in session.execute(query):
        bucket = int(at) - int(at) % 24 if per_day else int(at)
        counts[(campaign_id, bucket)] += int(count)
    return [
        {"campaign_id": campaign_id, "count": count, "timestamp": _stamp(bucket)}
        for (campaign_id, bucket), count in sorted(counts.items(), key=lambda i: (i[0][1], i[0][0]))
    ]


def link_counts(
    session: Session,
    campaign_ids: Sequence[int],
    start: datetime,
    end: datetime,
    *,
    individual: bool,
) -> list[dict[str, Any]]:
    """`GET /api/campaigns/analytics/links`: the 50 most clicked URLs, `[{url, count}]`."""
    counted = func.count(func.distinct(LinkClick.subscriber_id)) if individual else func.count()
    query = (
        select(Link.url, counted.label("count"))
        .select_from(LinkClick)
        .join(Link, Link.id == LinkClick.link_id)
        .where(
            LinkClick.campaign_id.in_(list(campaign_ids)),
            LinkClick.created_at >= start,
            LinkClick.created_at <= end,
            LinkClick.machine == "",
        )
        .group_by(Link.url)
        .order_by(counted.desc(), Link.url)
        .limit(TOP_LINKS)
    )
    return [{"url": url, "count": int(count)} for url, count in session.execute(query)]


def engagement_of_campaigns(
    session: Session, campaign_ids: Sequence[int]
) -> dict[int, tuple[int, int]]:
    """(views, clicks) by people of each campaign, from the rollups (for `/api/campaigns`)."""
    if not campaign_ids:
        return {}
    source = rollups.hourly(Window(), Scope(campaigns=tuple(campaign_ids)), ("views", "clicks"))
    rows = session.execute(
        select(source.c.campaign_id, *rollups.sums(source, ("views", "clicks"))).group_by(
            source.c.campaign_id
        )
    )
    found = {campaign_id: (int(views), int(clicks)) for campaign_id, views, clicks in rows}
    return {campaign_id: found.get(campaign_id, (0, 0)) for campaign_id in campaign_ids}


def dashboard_counts(session: Session) -> dict[str, Any]:
    """`GET /api/dashboard/counts`, as listmonk's `mat_dashboard_counts`."""
    by_status = dict(
        session.execute(select(Subscriber.status, func.count()).group_by(Subscriber.status)).all()
    )
    orphans = session.scalar(
        select(func.count())
        .select_from(Subscriber)
        .where(
            ~select(SubscriberList.subscriber_id)
            .where(SubscriberList.subscriber_id == Subscriber.id)
            .exists()
        )
    )
    lists = session.execute(
        select(MailingList.type, MailingList.optin, func.count()).group_by(
            MailingList.type, MailingList.optin
        )
    ).all()
    campaigns = dict(
        session.execute(select(Campaign.status, func.count()).group_by(Campaign.status)).all()
    )
    messages = session.scalar(select(func.coalesce(func.sum(Campaign.sent), 0)))

    def lists_where(field: int, value: str) -> int:
        return sum(int(row[2]) for row in lists if row[field] == value)

    return {
        "subscribers": {
            "total": sum(int(n) for n in by_status.values()),
            "blocklisted": int(by_status.get("blocklisted", 0)),
            "orphans": int(orphans or 0),
        },
        "lists": {
            "total": sum(int(row[2]) for row in lists),
            "private": lists_where(0, "private"),
            "public": lists_where(0, "public"),
            "optin_single": lists_where(1, "single"),
            "optin_double": lists_where(1, "double"),
        },
        "campaigns": {
            "total": sum(int(n) for n in campaigns.values()),
            "by_status": {status: int(n) for status, n in campaigns.items()},
        },
        "messages": int(messages or 0),
    }


def _daily(session: Session, table: Any) -> list[dict[str, Any]]:
    latest = session.scalar(
        select(table.c.created_at).where(table.c.machine == "").order_by(table.c.id.desc()).limit(1)
    )
    if latest is None:
        return []
    last_day = latest.date()
    first = datetime.combine(
        last_day - timedelta(days=CHART_DAYS), datetime.min.time(), latest.tzinfo
    )
    end = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), latest.tzinfo)
    day = HourOf(table.c.created_at) // 24
    rows = session.execute(
        select(day, func.count())
        .where(table.c.created_at >= first, table.c.created_at < end, table.c.machine == "")
        .group_by(day)
        .order_by(day)
    )
    return [
        {"count": int(count), "date": hour_time(int(d) * 24).date().isoformat()}
        for d, count in rows
    ]


def dashboard_charts(session: Session) -> dict[str, Any]:
    """`GET /api/dashboard/charts`: views and clicks per day over the 30 days up to the latest."""
    return {"link_clicks": _daily(session, CLICKS), "campaign_views": _daily(session, VIEWS)}


def subscriber_activity(session: Session, subscriber_id: int) -> dict[str, Any]:
    """`GET /api/subscribers/{id}/activity`: the subscriber's views per campaign and clicks per
    link, latest first (recorded only under individual tracking)."""
    last_view = func.max(CampaignView.created_at)
    views = session.execute(
        select(
            Campaign.id,
            Campaign.uuid,
            Campaign.name,
            Campaign.subject,
            func.count().label("view_count"),
            last_view,
        )
        .join(Campaign, Campaign.id == CampaignView.campaign_id)
        .where(CampaignView.subscriber_id == subscriber_id, CampaignView.machine == "")
        .group_by(Campaign.id, Campaign.uuid, Campaign.name, Campaign.subject)
        .order_by(last_view.desc())
    )
    last_click = func.max(LinkClick.created_at)
    clicks = session.execute(
        select(
            Link.id,
            Link.url,
            Campaign.id,
            Campaign.uuid,
            Campaign.name,
            Campaign.subject,
            func.count(),
            last_click,
        )
        .join(Link, Link.id == LinkClick.link_id)
        .join(Campaign, Campaign.id == LinkClick.campaign_id)
        .where(LinkClick.subscriber_id == subscriber_id, LinkClick.machine == "")
        .group_by(Link.id, Link.url, Campaign.id, Campaign.uuid, Campaign.name, Campaign.subject)
        .order_by(last_click.desc())
    )
    return {
        "campaign_views": [
            {
                "id": cid,
                "uuid": uuid,
                "name": name,
                "subject": subject,
                "view_count": int(count),
                "last_viewed_at": last,
            }
            for cid, uuid, name, subject, count, last in views
        ],
        "link_clicks": [
            {
                "link_id": link_id,
                "url": url,
                "campaign_id": cid,
                "campaign_uuid": uuid,
                "campaign_name": name,
                "campaign_subject": subject,
                "click_count": int(count),
                "last_clicked_at": last,
            }
            for link_id, url, cid, uuid, name, subject, count, last in clicks
        ],
    }
