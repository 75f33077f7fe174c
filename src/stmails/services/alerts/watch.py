"""The deliverability watcher: judges running campaigns as their bounces and complaints arrive
(from every door: `services.bounces.record_many` calls it) and as the sender records each
batch, and acts in the same transaction, so that every process sees the result at once.

What it judges (thresholds in `deliverability.alerts`, services.alerts.config):

- A running campaign's latest sends: the window is its last `window_sends` messages whose
  sending ended with the server's answer, sent within the last `window_minutes` (and since the
  campaign last resumed from an automatic pause). A message still being sent whose bounce is
  already stored counts as sent, and so do those before it in the sender's order (the sender
  goes in subscriber-id order, so a bounce shows they were handed to the server too).
  bounce rate = recipients of the window with a hard or soft bounce / sends of the window;
  complaint rate = recipients with a complaint / delivered (sends − bounced).
- A recipient domain of the campaign (when one of its bounces arrives): its sends and bounces
  in the campaign so far, from the analytics rollups.

What it does: a bounce rate at or above `bounce_warning` raises a warning alert; at or above
`bounce_critical`, or a complaint rate at or above `complaint`, a critical alert that pauses
the campaign (`pause_campaign`) and holds every scheduled campaign (`hold_scheduled`), the
reason in `pause_reason` and the figures in `alert_figures`. A domain above `domain_bounce`
raises a warning and its remaining messages in the campaign are held (`hold_domains`,
table `campaign_holds`; the sender defers them). Each alert is logged and queued for delivery
(services.alerts.store).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, union_all, update
from sqlalchemy.orm import Session

from stmails.db.models import (
    Alert,
    AnalyticsChange,
    AnalyticsDomain,
    Bounce,
    Campaign,
    CampaignHold,
    CampaignSend,
    Setting,
)
from stmails.db.types import utcnow
from stmails.services.alerts import config as alert_config
from stmails.services.alerts.config import AlertConfig, Thresholds
from stmails.services.alerts.store import raise_alert
from stmails.services.settings import per_transaction

log = logging.getLogger("stmails.alerts")

IN_FLIGHT = "in_flight"
IN_DOUBT = "in_doubt"
DEFERRED = "deferred:"
HELD = "held:"
# Rows read beyond the window at most: messages still being sent sit above it in the sender's
# order (two batches of `app.batch_size`, at most 5,000 each); read PAGE_EXTRA more at a time.
EXTRA_ROWS = 10_000
PAGE_EXTRA = 1000


def alert_config_of(session: Session) -> AlertConfig:
    """The alert settings, read once per transaction of `session`."""

    def read() -> AlertConfig:
        keys = list(alert_config.DEFAULTS)
        rows = session.execute(select(Setting.key, Setting.value).where(Setting.key.in_(keys)))
        return alert_config.config_from({key: value for key, value in rows})

    return per_transaction(session, "alert_config", read)


def percent(part: int, whole: int) -> float | None:
    """`part` of `whole` in percent, to four decimals (None when `whole` is 0)."""
    return round(100.0 * part / whole, 4) if whole else None


@dataclass(slots=True)
class WindowFigures:
    """What the watcher counted in a campaign's window."""

    sends: int = 0
    bounced: int = 0
    hard: int = 0
    soft: int = 0
    complaints: int = 0
    since: datetime | None = None

    @property
    def delivered(self) -> int:
        return max(0, self.sends - self.bounced)

    @property
    def bounce_rate(self) -> float | None:
        return percent(self.bounced, self.sends)

    @property
    def complaint_rate(self) -> float | None:
        return percent(self.complaints, self.delivered)

    def as_dict(self, thresholds: Thresholds) -> dict[str, Any]:
        return {
            "window": {
                "sends": thresholds.window_sends,
                "minutes": thresholds.window_minutes,
                "since": self.since.isoformat() if self.since else None,
            },
            "sends": self.sends,
            "delivered": self.delivered,
            "bounced": self.bounced,
            "hard": self.hard,
            "soft": self.soft,
            "complaints": self.complaints,
            "bounce_rate": self.bounce_rate,
            "complaint_rate": self.complaint_rate,
            "thresholds": {
                "bounce_warning": thresholds.bounce_warning,
                "bounce_critical": thresholds.bounce_critical,
                "complaint": thresholds.complaint,
                "min_sample": thresholds.min_sample,
                "complaint_min_sample": thresholds.complaint_min_sample,
            },
        }


def _answered(status: str, reason: str) -> bool:
    if status == "sent":
        return reason not in (IN_FLIGHT, IN_DOUBT)
    return status == "failed" and not reason.startswith(DEFERRED)


def window_figures(
    session: Session,
    campaign_id: int,
    thresholds: Thresholds,
    now: datetime,
    resumed_at: datetime | None = None,
) -> WindowFigures:
    """The campaign's sliding window (see the module docstring), counted from stored rows."""
    since = now - timedelta(minutes=thresholds.window_minutes)
    if resumed_at is not None and resumed_at > since:
        since = resumed_at
    # Core rows, the time compared by the database, read a page at a time from the latest
    # recipient down until the window is full (messages being sent sit above it).
    limit = thresholds.window_sends + EXTRA_ROWS
    page = thresholds.window_sends + PAGE_EXTRA
    rows: list[Any] = []
    answered = 0
    below: int | None = None
    while len(rows) < limit:
        query = (
            select(
                CampaignSend.subscriber_id,
                CampaignSend.status,
                CampaignSend.reason,
                (CampaignSend.sent_at >= since).label("recent"),
            )
            .where(CampaignSend.campaign_id == campaign_id, CampaignSend.status != "skipped")
            .order_by(CampaignSend.subscriber_id.desc())
            .limit(min(page, limit - len(rows)))
        )
        if below is not None:
            query = query.where(CampaignSend.subscriber_id < below)
        fetched = session.connection().execute(query).all()
        rows.extend(fetched)
        answered += sum(1 for r in fetched if r[3] and _answered(r[1], r[2]))
        if len(fetched) < page or answered >= thresholds.window_sends:
            break
        below = int(fetched[-1][0])
    figures = WindowFigures(since=since)
    if not rows:
        return figures
    ids = [int(r[0]) for r in rows]
    kinds: dict[int, set[str]] = {}
    # The bounces of the window's recipients, looked up by their id range (their campaign is
    # checked here): the cost follows the window, not the campaign's count of bounces, which
    # a filter on the campaign would make the database read.
    bounce_rows = select(
        Bounce.subscriber_id, Bounce.effective_type, Bounce.campaign_id, Bounce.attributed
    ).where(Bounce.subscriber_id.between(min(ids), max(ids)))
    for subscriber_id, kind, bounce_campaign, attributed in session.connection().execute(
        bounce_rows
    ):
        if subscriber_id is not None and bounce_campaign == campaign_id and attributed:
            kinds.setdefault(int(subscriber_id), set()).add(str(kind))
    # The highest recipient still in flight whose bounce is stored: the sender reached it.
    horizon = max(
        (r[0] for r in rows if r[1] == "sent" and r[2] == IN_FLIGHT and r[0] in kinds),
        default=None,
    )
    for subscriber_id, status, reason, recent in rows:
        if figures.sends >= thresholds.window_sends:
            break
        counted = _answered(status, reason) or (
            horizon is not None and reason == IN_FLIGHT and subscriber_id <= horizon
        )
        if not counted or not recent:
            continue
        figures.sends += 1
        found = kinds.get(subscriber_id, set())
        if "hard" in found or "soft" in found:
            figures.bounced += 1
            if "hard" in found:
                figures.hard += 1
            else:
                figures.soft += 1
        if "complaint" in found:
            figures.complaints += 1
    return figures


def domain_figures(
    session: Session, campaign_id: int, domains: Iterable[str]
) -> dict[str, tuple[int, int]]:
    """{domain: (sends, bounces)} of `domains` in the campaign so far: the domain rollup and
    the deltas not yet folded into it (services.analytics.rollups), in one statement."""
    wanted = sorted(set(domains))
    if not wanted:
        return {}
    folded = select(
        AnalyticsDomain.domain,
        (AnalyticsDomain.accepted + AnalyticsDomain.refused).label("sent"),
        (AnalyticsDomain.hard + AnalyticsDomain.soft).label("bounced"),
    ).where(AnalyticsDomain.domain.in_(wanted), AnalyticsDomain.campaign_id == campaign_id)
    pending = select(
        AnalyticsChange.domain,
        (AnalyticsChange.accepted + AnalyticsChange.refused).label("sent"),
        (AnalyticsChange.hard + AnalyticsChange.soft).label("bounced"),
    ).where(AnalyticsChange.domain.in_(wanted), AnalyticsChange.campaign_id == campaign_id)
    both = union_all(folded, pending).subquery()
    rows = session.execute(
        select(both.c.domain, func.sum(both.c.sent), func.sum(both.c.bounced)).group_by(
            both.c.domain
        )
    )
    out = dict.fromkeys(wanted, (0, 0))
    for domain, sent, bounced in rows:
        out[str(domain)] = (int(sent or 0), int(bounced or 0))
    return out


@dataclass(slots=True)
class Verdict:
    """What one judgment raised (for the caller's logs and tests)."""

    alerts: list[Alert] = field(default_factory=list)
    paused: list[int] = field(default_factory=list)
    held_domains: list[tuple[int, str]] = field(default_factory=list)


def judge(
    session: Session,
    campaign_ids: Iterable[int],
    domains: Mapping[int, set[str]] | None = None,
    *,
    now: datetime | None = None,
    config: AlertConfig | None = None,
) -> Verdict:
    """Judges the running campaigns among `campaign_ids` (and the `domains` of each that just
    bounced) in the caller's transaction, and acts on what crossed a threshold."""
    verdict = Verdict()
    wanted = sorted({int(c) for c in campaign_ids if c})
    if not wanted:
        return verdict
    config = config or alert_config_of(session)
    thresholds = config.thresholds
    if not thresholds.enabled:
        return verdict
    now = now or utcnow()
    running = session.execute(
        select(Campaign.id, Campaign.name, Campaign.alert_figures).where(
            Campaign.id.in_(wanted), Campaign.status == "running"
        )
    ).all()
    for campaign_id, name, stored in running:
        resumed = _resumed_at(stored)
        figures = window_figures(session, campaign_id, thresholds, now, resumed)
        _judge_window(session, verdict, config, campaign_id, name, figures, now, resumed)
        if campaign_id in verdict.paused:
            continue
        bounced = (domains or {}).get(campaign_id, set())
        held = held_domains(session, campaign_id) if bounced else set()
        counts = domain_figures(session, campaign_id, bounced - held)
        for domain, (sent, bounces) in sorted(counts.items()):
            _judge_domain(session, verdict, config, campaign_id, name, domain, sent, bounces)
    return verdict


def _resumed_at(stored: Any) -> datetime | None:
    if isinstance(stored, Mapping) and stored.get("resumed_at"):
        try:
            return datetime.fromisoformat(str(stored["resumed_at"]))
        except ValueError:
            return None
    return None


def _already(
    session: Session,
    campaign_id: int,
    kind: str,
    level: str,
    domain: str,
    since: datetime | None,
) -> bool:
    """Whether this alert was raised for the campaign since it last resumed."""
    query = select(Alert.id).where(
        Alert.campaign_id == campaign_id,
        Alert.kind == kind,
        Alert.level == level,
        Alert.domain == domain,
    )
    if since is not None:
        query = query.where(Alert.created_at >= since)
    return session.scalar(query.limit(1)) is not None


def _judge_window(
    session: Session,
    verdict: Verdict,
    config: AlertConfig,
    campaign_id: int,
    name: str,
    figures: WindowFigures,
    now: datetime,
    resumed: datetime | None,
) -> None:
    thresholds = config.thresholds
    data = figures.as_dict(thresholds)
    bounce_rate = figures.bounce_rate or 0.0
    complaint_rate = figures.complaint_rate or 0.0
    critical: tuple[str, str] | None = None
    if figures.sends >= thresholds.min_sample and bounce_rate >= thresholds.bounce_critical:
        critical = (
            "bounce_rate",
            f"campaign {name!r} (#{campaign_id}): bounce rate {bounce_rate:.2f} % over its "
            f"last {figures.sends} sends ({figures.bounced} bounced) is at or above the "
            f"critical {thresholds.bounce_critical:g} %",
        )
    elif (
        figures.delivered >= thresholds.complaint_min_sample
        and complaint_rate >= thresholds.complaint
    ):
        critical = (
            "complaint_rate",
            f"campaign {name!r} (#{campaign_id}): complaint rate {complaint_rate:.3f} % over "
            f"its last {figures.delivered} delivered ({figures.complaints} complaints) is at "
            f"or above {thresholds.complaint:g} %",
        )
    if critical is not None:
        kind, message = critical
        if _already(session, campaign_id, kind, "critical", "", resumed):
            return
        _critical(session, verdict, config, campaign_id, kind, message, data, now)
        return
    if (
        figures.sends >= thresholds.min_sample
        and bounce_rate >= thresholds.bounce_warning
        and not _already(session, campaign_id, "bounce_rate", "warning", "", resumed)
    ):
        message = (
            f"campaign {name!r} (#{campaign_id}): bounce rate {bounce_rate:.2f} % over its "
            f"last {figures.sends} sends ({figures.bounced} bounced) is at or above the "
            f"warning {thresholds.bounce_warning:g} %: review recent list additions and "
            "verify the list"
        )
        alert = raise_alert(
            session, config, "warning", "bounce_rate", message, data, campaign_id=campaign_id
        )
        verdict.alerts.append(alert)


def _critical(
    session: Session,
    verdict: Verdict,
    config: AlertConfig,
    campaign_id: int,
    kind: str,
    message: str,
    data: dict[str, Any],
    now: datetime,
) -> None:
    thresholds = config.thresholds
    actions: dict[str, Any] = {"paused": [], "held_scheduled": []}
    alert = raise_alert(
        session, config, "critical", kind, message, data, campaign_id=campaign_id, flush=True
    )
    figures = {"alert_id": alert.id, "kind": kind, "at": now.isoformat(), **data}
    if thresholds.pause_campaign:
        paused = session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == "running")
            .values(
                status="paused",
                pause_reason=f"paused by alert {alert.id}: {message}"[:1000],
                alert_figures=figures,
                updated_at=now,
            )
            .returning(Campaign.id)
        ).all()
        if paused:
            actions["paused"] = [campaign_id]
            verdict.paused.append(campaign_id)
            log.error("campaign %s paused by alert %s: %s", campaign_id, alert.id, message)
    if thresholds.hold_scheduled:
        held = [
            int(i)
            for i in session.scalars(
                select(Campaign.id).where(Campaign.status == "scheduled").order_by(Campaign.id)
            )
        ]
        if held:
            session.execute(
                update(Campaign)
                .where(Campaign.id.in_(held), Campaign.status == "scheduled")
                .values(
                    status="paused",
                    pause_reason=(f"held by alert {alert.id} (campaign #{campaign_id}): {message}")[
                        :1000
                    ],
                    alert_figures={**figures, "held_scheduled": True},
                    updated_at=now,
                )
            )
            actions["held_scheduled"] = held
            log.error("scheduled campaigns %s held by alert %s", held, alert.id)
    alert.actions = actions
    verdict.alerts.append(alert)


def _judge_domain(
    session: Session,
    verdict: Verdict,
    config: AlertConfig,
    campaign_id: int,
    name: str,
    domain: str,
    sent: int,
    bounced: int,
) -> None:
    thresholds = config.thresholds
    rate = percent(bounced, sent) or 0.0
    if sent < thresholds.domain_min_sample or rate <= thresholds.domain_bounce:
        return
    if _already(session, campaign_id, "domain_bounce_rate", "warning", domain, None):
        return
    data = {
        "domain": domain,
        "sends": sent,
        "bounced": bounced,
        "bounce_rate": rate,
        "thresholds": {
            "domain_bounce": thresholds.domain_bounce,
            "domain_min_sample": thresholds.domain_min_sample,
        },
    }
    message = (
        f"campaign {name!r} (#{campaign_id}): bounce rate of {domain} is {rate:.2f} % "
        f"({bounced} of {sent} sends), above {thresholds.domain_bounce:g} %: investigate "
        f"{domain} addresses in your list"
    )
    alert = raise_alert(
        session,
        config,
        "warning",
        "domain_bounce_rate",
        message,
        data,
        campaign_id=campaign_id,
        domain=domain,
        flush=True,
    )
    if thresholds.hold_domains:
        session.add(CampaignHold(campaign_id=campaign_id, domain=domain, alert_id=alert.id))
        alert.actions = {"held_domain": domain}
        verdict.held_domains.append((campaign_id, domain))
        log.warning("campaign %s: messages to %s held by alert %s", campaign_id, domain, alert.id)
    verdict.alerts.append(alert)


def held_domains(session: Session, campaign_id: int) -> set[str]:
    """The recipient domains whose messages in the campaign are held."""
    return {
        str(d)
        for d in session.scalars(
            select(CampaignHold.domain).where(CampaignHold.campaign_id == campaign_id)
        )
    }


def domain_of(address: str) -> str:
    """The domain of an address, lower-cased ('' when there is none)."""
    _, at, domain = address.rpartition("@")
    return domain.strip().lower() if at else ""


def bounced_domains(items: Sequence[tuple[int | None, str]]) -> dict[int, set[str]]:
    """{campaign id: domains} of (campaign id, address) pairs of fresh bounces."""
    out: dict[int, set[str]] = {}
    for campaign_id, address in items:
        if campaign_id:
            domain = domain_of(address)
            entry = out.setdefault(campaign_id, set())
            if domain:
                entry.add(domain)
    return out


__all__ = [
    "HELD",
    "Verdict",
    "WindowFigures",
    "alert_config_of",
    "bounced_domains",
    "domain_figures",
    "held_domains",
    "judge",
    "window_figures",
]
