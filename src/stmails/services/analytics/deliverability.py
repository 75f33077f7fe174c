"""The deliverability figures: summary, breakdowns and the monthly report (docs/deliverability.md).

Every figure is a sum over the rollups of `services.analytics.rollups`, which the database keeps
equal to the stored events; nothing is sampled or estimated. Definitions (a period counts each
event at its own time: a send when the SMTP server answered, a bounce when it happened, an open
or click when it was made):

- `accepted`: messages the SMTP server accepted; `refused`: messages it refused (recorded as
  bounces with source `smtp` too); `sent` = accepted + refused;
- `bounced` = hard + soft bounces (by the type the rules counted them as); `complaints` apart;
- `delivered` = sent - bounced (0 when more bounced than were sent in the period);
- opens and clicks by people (machine ones apart); `unique`: subscribers whose first open (click)
  of the campaign falls in the period (individual tracking only);
- rates in percent: bounce, hard and soft bounce rate over sent; delivery rate over sent;
  open, click, complaint and unsubscribe rate over delivered; click-to-open over unique opens.

Figures concern campaign mail. Bounces and complaints of mail without a campaign (transactional
mail, the relay) have no sends to be compared with: they are reported apart (`unattributed`), or
included with `scope=all`.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from stmails.db.models import (
    BOUNCE_COUNTERS,
    HOURLY_COUNTERS,
    Campaign,
    CampaignList,
    MailingList,
    Subscriber,
    SubscriberList,
    Suppression,
)
from stmails.services.analytics import rollups
from stmails.services.analytics.rollups import NO_CAMPAIGN, Scope
from stmails.services.analytics.window import Window, hour_time, month_window
from stmails.services.errors import InvalidInput, NotFound

# The thresholds of the user's documents: a bounce rate from 2 % is a warning, from 5 % critical;
# a domain bouncing more than 10 % is to be looked at; complaints must stay under 0.1 %.
BOUNCE_WARNING = 2.0
BOUNCE_CRITICAL = 5.0
DOMAIN_BOUNCE_LIMIT = 10.0
COMPLAINT_LIMIT = 0.1

# Sources written by the ESP webhook adapters (stmails.ingest.webhooks, one per provider) and by
# the other channels; anything else came through the bounce API (`POST /webhooks/bounce`).
WEBHOOK_SOURCES = frozenset(
    {
        "ses",
        "sendgrid",
        "postmark",
        "forwardemail",
        "mailgun",
        "sparkpost",
        "brevo",
        "mailjet",
        "resend",
        "azure",
    }
)
CHANNELS = {"smtp": "smtp", "mailbox": "mailbox"}

# Mailbox providers by the domains of their users' addresses (complaints per provider).
PROVIDERS: Mapping[str, tuple[str, ...]] = {
    "google": ("gmail.com", "googlemail.com"),
    "microsoft": (
        "outlook.com",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "live.com",
        "live.co.uk",
        "msn.com",
    ),
    "yahoo": ("yahoo.com", "yahoo.co.uk", "yahoo.fr", "ymail.com", "rocketmail.com", "aol.com"),
    "apple": ("icloud.com", "me.com", "mac.com"),
    "tencent": ("qq.com", "foxmail.com"),
    "netease": ("163.com", "126.com", "yeah.net"),
    "proton": ("protonmail.com", "proton.me", "pm.me"),
    "gmx": ("gmx.de", "gmx.net", "gmx.com", "web.de"),
    "yandex": ("yandex.ru", "yandex.com"),
    "mail.ru": ("mail.ru",),
    "comcast": ("comcast.net",),
}
_PROVIDER_OF = {domain: name for name, domains in PROVIDERS.items() for domain in domains}

Interval = Literal["day", "hour"]
MAX_HOURLY_POINTS = 24 * 62


def provider_of(domain: str) -> str:
    """The mailbox provider of a recipient domain (the domain itself when not listed)."""
    return _PROVIDER_OF.get(domain, domain)


def channel_of(source: str) -> str:
    """How a bounce arrived: `smtp` (refused while sending), `mailbox`, `webhook` (an ESP) or
    `api` (the bounce webhook of stmails' API)."""
    return CHANNELS.get(source, "webhook" if source in WEBHOOK_SOURCES else "api")


def percent(part: int, whole: int) -> float | None:
    """`part` of `whole` in percent, to 4 decimals; None when `whole` is 0."""
    return round(100.0 * part / whole, 4) if whole else None


def bounce_level(rate: float | None) -> str:
    """`ok`, `warning` (from 2 %) or `critical` (from 5 %)."""
    if rate is None or rate < BOUNCE_WARNING:
        return "ok"
    return "warning" if rate < BOUNCE_CRITICAL else "critical"


@dataclass(frozen=True, slots=True)
class Filters:
    """What the figures cover: a period, and optionally one campaign and/or one list."""

    window: Window = field(default_factory=Window)
    campaign_id: int | None = None
    list_id: int | None = None
    # Include bounces of mail without a campaign (breakdowns only).
    everything: bool = False


def scope_of(session: Session, filters: Filters) -> Scope:
    """The campaign keys `filters` select (NotFound for an unknown campaign or list)."""
    campaigns: set[int] | None = None
    if filters.campaign_id is not None:
        if session.get(Campaign, filters.campaign_id) is None:
            raise NotFound("campaign_id: no such campaign")
        campaigns = {filters.campaign_id}
    if filters.list_id is not None:
        if session.get(MailingList, filters.list_id) is None:
            raise NotFound("list_id: no such list")
        of_list = set(
            session.scalars(
                select(CampaignList.campaign_id).where(CampaignList.list_id == filters.list_id)
            )
        )
        campaigns = of_list if campaigns is None else campaigns & of_list
    if campaigns is not None:
        return Scope(campaigns=tuple(sorted(campaigns)))
    return Scope(campaign_mail=not filters.everything)


def figures(counts: Mapping[str, int]) -> dict[str, Any]:
    """The summary's numbers and rates from summed counters."""
    sent = counts["accepted"] + counts["refused"]
    bounced = counts["hard"] + counts["soft"]
    delivered = max(sent - bounced, 0)
    unique_opens = counts["unique_views"]
    return {
        "sent": sent,
        "accepted": counts["accepted"],
        "refused": counts["refused"],
        "in_doubt": counts["in_doubt"],
        "delivered": delivered,
        "bounced": bounced,
        "hard": counts["hard"],
        "soft": counts["soft"],
        "complaints": counts["complaints"],
        "unsubscribes": counts["unsubscribed"],
        "opens": {
            "unique": unique_opens,
            "total": counts["views"],
            "machine": counts["machine_views"],
        },
        "clicks": {
            "unique": counts["unique_clicks"],
            "total": counts["clicks"],
            "machine": counts["machine_clicks"],
        },
        "rates": {
            "bounce": percent(bounced, sent),
            "hard_bounce": percent(counts["hard"], sent),
            "soft_bounce": percent(counts["soft"], sent),
            "delivery": percent(delivered, sent),
            "open": percent(unique_opens, delivered),
            "click": percent(counts["unique_clicks"], delivered),
            "click_to_open": percent(counts["unique_clicks"], unique_opens),
            "complaint": percent(counts["complaints"], delivered),
            "unsubscribe": percent(counts["unsubscribed"], delivered),
        },
    }


def _levels(result: Mapping[str, Any]) -> dict[str, str]:
    complaint = result["rates"]["complaint"]
    return {
        "bounce_rate": bounce_level(result["rates"]["bounce"]),
        "complaint_rate": "critical"
        if complaint is not None and complaint >= COMPLAINT_LIMIT
        else "ok",
    }


def _split_counters(
    session: Session, window: Window, scope: Scope
) -> tuple[dict[str, int], dict[str, int]]:
    """Summed hourly counters of `scope`; with all campaign mail (no campaigns named), also
    the bounce counters of mail without a campaign, apart."""
    if scope.campaigns is not None:
        return rollups.totals(session, window, scope), {}
    source = rollups.hourly(window, Scope(campaign_mail=False))
    attributed = source.c.campaign_id != NO_CAMPAIGN
    inside = [
        func.coalesce(func.sum(case((attributed, source.c[c]), else_=0)), 0)
        for c in HOURLY_COUNTERS
    ]
    outside = [
        func.coalesce(func.sum(case((~attributed, source.c[c]), else_=0)), 0)
        for c in BOUNCE_COUNTERS
    ]
    row = session.execute(select(*inside, *outside)).one()
    counts = {name: int(v) for name, v in zip(HOURLY_COUNTERS, row, strict=False)}
    apart = {name: int(v) for name, v in zip(BOUNCE_COUNTERS, row[len(inside) :], strict=True)}
    return counts, apart


def summary(session: Session, filters: Filters) -> dict[str, Any]:
    """`GET /api/deliverability/summary`: the period's figures (see the module)."""
    rollups.snapshot(session)
    scope = scope_of(session, filters)
    counts, apart = _split_counters(session, filters.window, scope)
    result = figures(counts)
    result["levels"] = _levels(result)
    result["unattributed"] = {name: apart.get(name, 0) for name in BOUNCE_COUNTERS}
    return result


def _type_rows(counts: Mapping[str, int], sent: int) -> list[dict[str, Any]]:
    return [
        {"type": kind, "count": counts[name], "rate": percent(counts[name], sent)}
        for kind, name in (("hard", "hard"), ("soft", "soft"), ("complaint", "complaints"))
    ]


def _reason_rows(
    session: Session, window: Window, scope: Scope
) -> list[tuple[str, str, int, int, int]]:
    source = rollups.reasons(window, scope)
    query = select(
        source.c.reason, source.c.source, *rollups.sums(source, ("hard", "soft", "complaints"))
    ).group_by(source.c.reason, source.c.source)
    return [(r, s, int(h), int(so), int(c)) for r, s, h, so, c in session.execute(query)]


def _bounce_counts(hard: int, soft: int, complaints: int) -> dict[str, int]:
    return {"hard": hard, "soft": soft, "complaints": complaints, "total": hard + soft + complaints}


def by_reason_and_source(
    rows: Iterable[tuple[str, str, int, int, int]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The reason and source breakdowns, largest first."""
    reasons: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    sources: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for reason, source, hard, soft, complaints in rows:
        for table, key in ((reasons, reason), (sources, source)):
            totals = table[key]
            totals[0] += hard
            totals[1] += soft
            totals[2] += complaints
    by_reason: list[dict[str, Any]] = [
        {"reason": reason, **_bounce_counts(*totals)}
        for reason, totals in reasons.items()
        if any(totals)
    ]
    by_source: list[dict[str, Any]] = [
        {"source": source, "channel": channel_of(source), **_bounce_counts(*totals)}
        for source, totals in sources.items()
        if any(totals)
    ]
    by_reason.sort(key=lambda r: (-r["total"], r["reason"]))
    by_source.sort(key=lambda r: (-r["total"], r["source"]))
    return by_reason, by_source


DomainOrder = Literal["sent", "bounced", "bounce_rate", "complaints", "domain"]


class DomainRow(NamedTuple):
    """One recipient domain's counters in a period (a tuple: ten thousand of them are made
    per breakdown, and a frozen dataclass costs several times more to make)."""

    domain: str
    accepted: int
    refused: int
    hard: int
    soft: int
    complaints: int

    @property
    def sent(self) -> int:
        return self.accepted + self.refused

    @property
    def bounced(self) -> int:
        return self.hard + self.soft

    @property
    def bounce_rate(self) -> float | None:
        return percent(self.bounced, self.sent)

    @property
    def above_threshold(self) -> bool:
        # bounced / sent > 10 %, in integers (the rounded rate could tip it).
        sent = self.accepted + self.refused
        return sent > 0 and 100 * (self.hard + self.soft) > DOMAIN_BOUNCE_LIMIT * sent

    def as_dict(self) -> dict[str, Any]:
        # Inlined (no properties, no calls): thousands of rows are shaped per request.
        domain, accepted, refused, hard, soft, complaints = self
        sent, bounced = accepted + refused, hard + soft
        delivered = sent - bounced if sent > bounced else 0
        return {
            "domain": domain,
            "sent": sent,
            "delivered": delivered,
            "bounced": bounced,
            "hard": hard,
            "soft": soft,
            "complaints": complaints,
            "bounce_rate": round(100.0 * bounced / sent, 4) if sent else None,
            "complaint_rate": round(100.0 * complaints / delivered, 4) if delivered else None,
            "above_threshold": sent > 0 and 100 * bounced > DOMAIN_BOUNCE_LIMIT * sent,
        }


_NOTHING = [0, 0, 0, 0, 0]


def domain_rows(session: Session, window: Window, scope: Scope) -> list[DomainRow]:
    """Every recipient domain's sends, bounces and complaints in the period."""
    # DOMAIN_COUNTERS: accepted, refused, hard, soft, complaints.
    return [
        DomainRow(domain, *values)
        for domain, values in rollups.domain_sums(session, window, scope).items()
        if values != _NOTHING
    ]


def _rate_key(row: DomainRow) -> tuple[float, int, str]:
    # Exact order of bounced / sent (domains without sends last), then by volume.
    rate = row.bounced / row.sent if row.sent else -1.0
    return (-rate, -row.sent, row.domain)


_DOMAIN_KEYS: dict[str, Any] = {
    "sent": lambda r: (-r.sent, r.domain),
    "bounced": lambda r: (-r.bounced, r.domain),
    "bounce_rate": _rate_key,
    "complaints": lambda r: (-r.complaints, r.domain),
    "domain": lambda r: r.domain,
}


def by_domain(
    rows: Sequence[DomainRow],
    *,
    order: DomainOrder = "sent",
    limit: int | None = 100,
    min_sent: int = 0,
) -> dict[str, Any]:
    """The per-domain breakdown: `total` domains, how many are above the 10 % threshold, and
    the first `limit` (None: all) by `order`, among domains with at least `min_sent` sends."""
    shown = [r for r in rows if r.accepted + r.refused >= min_sent] if min_sent else list(rows)
    key = _DOMAIN_KEYS[order]
    if limit is None:
        shown.sort(key=key)
        first = shown
    else:
        # The first `limit` of the sorted rows, without sorting them all.
        first = heapq.nsmallest(limit, shown, key=key)
    above = sum(
        1
        for r in shown
        if r.accepted + r.refused > 0
        and 100 * (r.hard + r.soft) > DOMAIN_BOUNCE_LIMIT * (r.accepted + r.refused)
    )
    return {
        "total": len(shown),
        "above_threshold": above,
        "results": [r.as_dict() for r in first],
    }


def complaints_by(rows: Sequence[DomainRow], sources: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Complaints per source (ESP or mailbox), recipient domain and mailbox provider; a domain
    and a provider also show what was delivered there and their complaint rate (complaints /
    delivered, `null` without deliveries) and level (`critical` at 0.1 % or more)."""
    # Only the providers with complaints are shown: their domains' deliveries are summed in a
    # second pass over the rows, so the first one does next to nothing per row.
    complained: dict[str, int] = defaultdict(int)
    domains: list[dict[str, Any]] = []
    for domain, accepted, refused, hard, soft, complaints in rows:
        if complaints:
            delivered = max(accepted + refused - hard - soft, 0)
            complained[_PROVIDER_OF.get(domain, domain)] += complaints
            domains.append(_complaint_entry("domain", domain, complaints, delivered))
    providers: dict[str, list[int]] = {name: [count, 0] for name, count in complained.items()}
    if providers:
        for domain, accepted, refused, hard, soft, _ in rows:
            totals = providers.get(_PROVIDER_OF.get(domain, domain))
            if totals is not None:
                totals[1] += max(accepted + refused - hard - soft, 0)
    domains.sort(key=lambda r: (-r["complaints"], r["domain"]))
    return {
        "total": sum(complained.values()),
        "by_source": sorted(
            (
                {"source": s["source"], "channel": s["channel"], "complaints": s["complaints"]}
                for s in sources
                if s["complaints"]
            ),
            key=lambda r: (-r["complaints"], r["source"]),
        ),
        "by_domain": domains,
        "by_provider": sorted(
            (
                _complaint_entry("provider", name, count, delivered)
                for name, (count, delivered) in providers.items()
            ),
            key=lambda r: (-r["complaints"], r["provider"]),
        ),
    }


def _complaint_entry(key: str, name: str, complaints: int, delivered: int) -> dict[str, Any]:
    rate = percent(complaints, delivered)
    return {
        key: name,
        "complaints": complaints,
        "delivered": delivered,
        "complaint_rate": rate,
        "level": "critical" if rate is not None and rate >= COMPLAINT_LIMIT else "ok",
    }


def trend(session: Session, window: Window, scope: Scope, interval: Interval) -> dict[str, Any]:
    """Figures per day or hour of the period (periods without any event are left out)."""
    if interval == "hour" and window.end - window.first > MAX_HOURLY_POINTS:
        raise InvalidInput(
            "interval", f"hourly figures cover at most {MAX_HOURLY_POINTS // 24} days"
        )
    source = rollups.hourly(window, scope)
    bucket = source.c.hour if interval == "hour" else source.c.hour // 24
    query = (
        select(bucket.label("bucket"), *rollups.sums(source, HOURLY_COUNTERS))
        .group_by(bucket)
        .order_by(bucket)
    )
    points = []
    for row in session.execute(query):
        counts = {name: int(v) for name, v in zip(HOURLY_COUNTERS, row[1:], strict=True)}
        if not any(counts.values()):
            continue
        numbers = figures(counts)
        hour = int(row[0]) if interval == "hour" else int(row[0]) * 24
        points.append(
            {
                "time": hour_time(hour).isoformat().replace("+00:00", "Z"),
                "sent": numbers["sent"],
                "delivered": numbers["delivered"],
                "bounced": numbers["bounced"],
                "hard": numbers["hard"],
                "soft": numbers["soft"],
                "complaints": numbers["complaints"],
                "opens": numbers["opens"]["total"],
                "clicks": numbers["clicks"]["total"],
                "bounce_rate": numbers["rates"]["bounce"],
            }
        )
    return {"interval": interval, "points": points}


def breakdown(
    session: Session,
    filters: Filters,
    *,
    interval: Interval = "day",
    order: DomainOrder = "sent",
    limit: int | None = 100,
    min_sent: int = 0,
) -> dict[str, Any]:
    """`GET /api/deliverability/breakdown`: bounces by type, reason and source, every recipient
    domain's sends and bounces, complaints per source, domain and provider, and the trend."""
    window = filters.window
    window.require_whole_days("reasons, sources and domains")
    rollups.snapshot(session)
    scope = scope_of(session, filters)
    counts = rollups.totals(session, window, scope)
    sent = counts["accepted"] + counts["refused"]
    by_reason, by_source = by_reason_and_source(_reason_rows(session, window, scope))
    domains = domain_rows(session, window, scope)
    return {
        "by_type": _type_rows(counts, sent),
        "by_reason": by_reason,
        "by_source": by_source,
        "by_domain": by_domain(domains, order=order, limit=limit, min_sent=min_sent),
        "complaints": complaints_by(domains, by_source),
        "trend": trend(session, window, scope, interval),
    }


# --- The monthly report -------------------------------------------------------------------

MONTHS_OF_TREND = 6


@dataclass(frozen=True, slots=True)
class VerificationJob:
    """What the report needs of a verification job (verify.jobs.Job)."""

    created_at: datetime
    total: int
    counts: Mapping[str, int]


def _month_label(window: Window) -> str:
    return window.start_time.strftime("%Y-%m")


def _previous_month(window: Window) -> Window:
    return month_window((window.start_time - timedelta(days=1)).strftime("%Y-%m"))


def _empty_list_entry() -> dict[str, Any]:
    return {
        "subscriptions": {"unconfirmed": 0, "confirmed": 0, "unsubscribed": 0},
        "added": 0,
        "unsubscribed": 0,
    }


def _lists(session: Session, window: Window) -> list[dict[str, Any]]:
    """Per list: subscriptions by status now, added in the month (created in it), and
    unsubscribed in the month (unsubscribed, and last changed in it)."""
    start, end = window.start_time, window.end_time
    created = (SubscriberList.created_at >= start) & (SubscriberList.created_at < end)
    left = (
        (SubscriberList.status == "unsubscribed")
        & (SubscriberList.updated_at >= start)
        & (SubscriberList.updated_at < end)
    )
    rows = session.execute(
        select(
            SubscriberList.list_id,
            SubscriberList.status,
            func.count(),
            func.sum(case((created, 1), else_=0)),
            func.sum(case((left, 1), else_=0)),
        ).group_by(SubscriberList.list_id, SubscriberList.status)
    )
    per_list: dict[int, dict[str, Any]] = defaultdict(_empty_list_entry)
    for list_id, status, count, new, gone in rows:
        entry = per_list[list_id]
        entry["subscriptions"][status] = int(count)
        entry["added"] += int(new or 0)
        entry["unsubscribed"] += int(gone or 0)
    names = dict(session.execute(select(MailingList.id, MailingList.name)).all())
    return [
        {"id": list_id, "name": names[list_id], **per_list[list_id]} for list_id in sorted(names)
    ]


def _suppressions_added(session: Session, window: Window) -> dict[str, int]:
    rows = session.execute(
        select(Suppression.reason, func.count())
        .where(
            Suppression.created_at >= window.start_time, Suppression.created_at < window.end_time
        )
        .group_by(Suppression.reason)
    )
    return {reason: int(count) for reason, count in rows}


def _subscribers(session: Session, window: Window) -> dict[str, Any]:
    """Subscribers created in the month, and the verdicts the intake gate flagged them with."""
    verdict = Subscriber.attribs["_verify"]["result"].as_string()
    rows = session.execute(
        select(verdict, func.count())
        .where(Subscriber.created_at >= window.start_time, Subscriber.created_at < window.end_time)
        .group_by(verdict)
    )
    flagged: dict[str, int] = {}
    created = 0
    for result, count in rows:
        created += int(count)
        if result:
            flagged[str(result)] = int(count)
    blocklisted = session.scalar(
        select(func.count()).where(
            Subscriber.status == "blocklisted",
            Subscriber.updated_at >= window.start_time,
            Subscriber.updated_at < window.end_time,
        )
    )
    return {
        "created": created,
        "flagged_on_subscribe": flagged,
        "blocklisted": int(blocklisted or 0),
    }


def _verification(jobs: Iterable[VerificationJob], window: Window) -> dict[str, Any]:
    by_result: dict[str, int] = defaultdict(int)
    count = addresses = 0
    for job in jobs:
        if not window.start_time <= job.created_at < window.end_time:
            continue
        count += 1
        addresses += job.total
        for verdict, n in job.counts.items():
            by_result[verdict] += int(n)
    return {"jobs": count, "addresses": addresses, "by_result": dict(sorted(by_result.items()))}


def _monthly(session: Session, last: Window) -> list[dict[str, Any]]:
    """Sent, bounced and the bounce and complaint rates of each of the MONTHS_OF_TREND months
    up to `last`, oldest first (one query, per day, added up per month here)."""
    windows = [last]
    while len(windows) < MONTHS_OF_TREND:
        windows.insert(0, _previous_month(windows[0]))
    source = rollups.hourly(Window(windows[0].first, last.end), Scope())
    day = source.c.hour // 24
    rows = session.execute(select(day, *rollups.sums(source, HOURLY_COUNTERS)).group_by(day)).all()
    months = []
    for month in windows:
        counts = dict.fromkeys(HOURLY_COUNTERS, 0)
        for row in rows:
            if month.first_day <= row[0] < month.end_day:
                for name, value in zip(HOURLY_COUNTERS, row[1:], strict=True):
                    counts[name] += int(value)
        numbers = figures(counts)
        months.append(
            {
                "month": _month_label(month),
                "sent": numbers["sent"],
                "bounced": numbers["bounced"],
                "bounce_rate": numbers["rates"]["bounce"],
                "complaint_rate": numbers["rates"]["complaint"],
            }
        )
    return months


def report(session: Session, month: str, jobs: Iterable[VerificationJob] = ()) -> dict[str, Any]:
    """`GET /api/deliverability/report?month=YYYY-MM`: the month's figures beside the previous
    month's, the daily bounce-rate trend and the last six months', verification, list
    composition changes, engagement and complaints."""
    window = month_window(month)
    rollups.snapshot(session)
    filters = Filters(window)
    this = summary(session, filters)
    previous = summary(session, Filters(_previous_month(window)))
    months = _monthly(session, window)
    scope = Scope()
    by_reason, by_source = by_reason_and_source(_reason_rows(session, window, scope))
    domains = domain_rows(session, window, scope)
    return {
        "month": _month_label(window),
        "summary": this,
        "previous_month": previous,
        "bounce_rate_trend": {
            "daily": trend(session, window, scope, "day")["points"],
            "monthly": months,
        },
        "top_reasons": by_reason[:10],
        "top_bounce_domains": by_domain(domains, order="bounced", limit=10)["results"],
        "domains_above_threshold": [
            r.as_dict() for r in sorted((r for r in domains if r.above_threshold), key=_rate_key)
        ],
        "verification": _verification(jobs, window),
        "list_composition": {
            "lists": _lists(session, window),
            "subscribers": _subscribers(session, window),
            "suppressions_added": _suppressions_added(session, window),
        },
        "engagement": {
            "opens": this["opens"],
            "clicks": this["clicks"],
            "open_rate": this["rates"]["open"],
            "click_rate": this["rates"]["click"],
            "click_to_open_rate": this["rates"]["click_to_open"],
            "unsubscribes": this["unsubscribes"],
            "unsubscribe_rate": this["rates"]["unsubscribe"],
        },
        "complaints": {
            **complaints_by(domains, by_source),
            "rate": this["rates"]["complaint"],
            "level": this["levels"]["complaint_rate"],
        },
    }
