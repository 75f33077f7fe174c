"""`/` and the admin home: the deliverability dashboard.

What it shows, each part only to a user holding the API permission behind it:

- the period's deliverability summary (services.analytics.deliverability, the figures of
  `GET /api/deliverability/summary`) with a period selector (7, 30 or 90 days, or all time);
- charts drawn by Chart.js from `GET /api/deliverability/breakdown` (one request shared by all of
  them): bounce rate by day against the 2 % and 5 % lines, bounces by type and by reason, the
  top domains by bounce rate, complaints and opens/clicks per day;
- running campaigns with their progress, refreshed by htmx from `/admin/dashboard/campaigns`;
- open deliverability alerts, once the alerts service (`services.alerts`, `GET /api/alerts`)
  is installed;
- subscribers per list and the recent bounces (values from mail, escaped like everything).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from stmails.db.handles import Session
from stmails.services import bounces as bounce_service
from stmails.services import campaign_records as campaign_service
from stmails.services.analytics import deliverability
from stmails.services.analytics.deliverability import BOUNCE_CRITICAL, BOUNCE_WARNING, Filters
from stmails.services.analytics.window import parse_window
from stmails.services.pages import Page
from stmails.web.admin.pages import ADMIN_HOME, can, page, render_page
from stmails.web.body import run_db
from stmails.web.deps import Viewer
from stmails.web.i18n import N_, _

router = APIRouter()

RECENT_BOUNCES = 10
RUNNING_CAMPAIGNS = 20
CAMPAIGNS_FRAGMENT = "/admin/dashboard/campaigns"
# The period selector: days back from today (0: all time).
PERIODS: tuple[tuple[int, str], ...] = (
    (7, N_("Last 7 days")),
    (30, N_("Last 30 days")),
    (90, N_("Last 90 days")),
    (0, N_("All time")),
)
DEFAULT_PERIOD = 30
# Domains with fewer sends than this in the period are left out of "top domains by bounce
# rate" (one bounce out of two sends says nothing about a domain).
TOP_DOMAINS = 10
TOP_DOMAINS_MIN_SENT = 10
# Whether the alerts service is installed (it is being built apart; the block waits for it).
ALERTS_AVAILABLE = importlib.util.find_spec("stmails.services.alerts") is not None


@dataclass(frozen=True, slots=True)
class Period:
    days: int
    start: str | None
    end: str | None

    def url_params(self) -> dict[str, str]:
        """The period as the `from` and `to` parameters of an API URL (none for all time)."""
        return {k: v for k, v in (("from", self.start), ("to", self.end)) if v}


def period_of(days: int, today: datetime | None = None) -> Period:
    """The whole UTC days of the last `days` days, today included (0: all time)."""
    if days <= 0:
        return Period(0, None, None)
    last = (today or datetime.now(UTC)).date()
    first = last - timedelta(days=days - 1)
    return Period(days, first.isoformat(), last.isoformat())


def breakdown_url(period: Period) -> str:
    """The breakdown every chart reads (one request: app.js shares answers by URL)."""
    query = {
        **period.url_params(),
        "order_by": "bounce_rate",
        "limit": str(TOP_DOMAINS),
        "min_sent": str(TOP_DOMAINS_MIN_SENT),
    }
    return "/api/deliverability/breakdown?" + urlencode(query)


@router.get("/", include_in_schema=False)
async def root() -> Response:
    """The site's root opens the admin UI."""
    return RedirectResponse(ADMIN_HOME, status_code=303)


def running_campaigns(session: Session) -> list[dict[str, Any]]:
    """Campaigns being sent now, newest first, with their progress in percent."""
    found = []
    for campaign_id, name, status, to_send, sent in campaign_service.running_progress(
        session, RUNNING_CAMPAIGNS
    ):
        total = max(to_send, 0)
        done = min(sent, total) if total else sent
        found.append(
            {
                "id": campaign_id,
                "name": name,
                "status": status,
                "to_send": total,
                "sent": sent,
                "percent": round(100 * done / total, 1) if total else 0.0,
                "done": done,
            }
        )
    return found


@router.get(ADMIN_HOME, include_in_schema=False)
async def dashboard(
    request: Request,
    viewer: Annotated[Viewer, page()],
    bounces_page: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
    days: Annotated[int, Query(ge=0, le=3660)] = DEFAULT_PERIOD,
) -> Response:
    period = period_of(days)
    show_summary = can(viewer, "deliverability:get")
    show_bounces = can(viewer, "bounces:get")
    show_campaigns = can(viewer, "campaigns:get_all")

    def work(session: Session) -> dict[str, Any]:
        found: dict[str, Any] = {"summary": None, "bounces": None, "campaigns": None}
        if show_summary:
            window = parse_window(period.start, period.end)
            found["summary"] = deliverability.summary(session, Filters(window))
        if show_bounces:
            found["bounces"] = bounce_service.list_bounces(
                session, page=bounces_page, per_page=RECENT_BOUNCES
            )
        if show_campaigns:
            found["campaigns"] = running_campaigns(session)
        return found

    found = await run_db(request, work)
    bounces: Page[bounce_service.BounceRow] | None = found["bounces"]
    return render_page(
        request,
        "admin/home.html",
        viewer=viewer,
        section="dashboard",
        title=_("Dashboard"),
        bounces=bounces,
        summary=found["summary"],
        campaigns=found["campaigns"],
        campaigns_url=CAMPAIGNS_FRAGMENT,
        period=period,
        periods=PERIODS,
        breakdown=breakdown_url(period),
        thresholds=(BOUNCE_WARNING, BOUNCE_CRITICAL),
        alerts=ALERTS_AVAILABLE and can(viewer, "alerts:get"),
    )


@router.get(CAMPAIGNS_FRAGMENT, include_in_schema=False)
async def campaigns_fragment(
    request: Request, viewer: Annotated[Viewer, page("campaigns:get_all")]
) -> Response:
    """The running campaigns' table alone: what the dashboard's htmx polling swaps in."""
    campaigns = await run_db(request, running_campaigns)
    return render_page(
        request,
        "admin/running_campaigns.html",
        viewer=viewer,
        campaigns=campaigns,
        campaigns_url=CAMPAIGNS_FRAGMENT,
    )
