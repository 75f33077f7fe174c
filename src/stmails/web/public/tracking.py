"""The tracking routes, listmonk's: the open pixel, tracked links and the message's web page.

- `GET /campaign/{campaign_uuid}/{subscriber_uuid}/px.png`: records an open, answers a 1x1 PNG;
- `GET /link/{link_uuid}/{campaign_uuid}/{subscriber_uuid}`: records a click, answers 302 to
  the URL stored for that link, which must belong to that campaign;
- `GET /campaign/{campaign_uuid}/{subscriber_uuid}`: the message rendered for the subscriber.

The first two are hot paths (web.hot_paths): plain ASGI endpoints whose hits go through a
group-commit writer of their own (services.tracking.hits), answered once committed. A uuid
that is malformed, or names no campaign, link or subscriber, is a 404 and writes nothing;
campaign and link uuids are looked up once and remembered (unknown ones for a few seconds), so
such requests cost no write and rarely a read. The subscriber uuid `0000...0000` stands for
"counted without subscriber" (individual tracking off). No authentication: the random uuids in
the URL are the capability, as for the unsubscribe link.
"""

from __future__ import annotations

import base64
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from stmails.db.models import Campaign, Link, Subscriber
from stmails.db.types import utcnow
from stmails.services.sending.campaigns import CampaignError, layout_for, preview
from stmails.services.tracking.hits import Hit, HitResult, record_hit, record_hits
from stmails.services.tracking.links import ANONYMOUS, prepare
from stmails.web.api.sending_common import sending_config
from stmails.web.body import run_db
from stmails.web.deps import AppState
from stmails.web.errors import not_found, unavailable
from stmails.web.group_commit import BatchWriter
from stmails.web.hot_paths import header

# Where the app keeps the tracking routes' shared state (AppState.extras).
STATE_KEY = "tracking"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A 1x1 transparent PNG.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
_NO_CACHE = (b"cache-control", b"no-cache, no-store, must-revalidate")
_NO_INDEX = (b"x-robots-tag", b"noindex, nofollow")
_PIXEL_HEADERS = [
    (b"content-type", b"image/png"),
    (b"content-length", str(len(PIXEL)).encode()),
    _NO_CACHE,
    _NO_INDEX,
]


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """A tracked link: its id, its campaign and where it goes."""

    id: int
    campaign_id: int
    url: str


class Remembered:
    """Lookups by uuid, remembered: found values for `ttl` seconds, misses for `miss_ttl`, at
    most `size` of each (the oldest are forgotten first)."""

    def __init__(
        self,
        lookup: Callable[[str], Any],
        ttl: float = 300.0,
        miss_ttl: float = 5.0,
        size: int = 50_000,
    ) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._miss_ttl = miss_ttl
        self._size = size
        self._found: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._missing: OrderedDict[str, float] = OrderedDict()

    async def get(self, key: str) -> Any | None:
        now = time.monotonic()
        entry = self._found.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        missed = self._missing.get(key)
        if missed is not None and missed > now:
            return None
        value = await run_in_threadpool(self._lookup, key)
        if value is None:
            self._remember(self._missing, key, now + self._miss_ttl)
        else:
            self._missing.pop(key, None)
            self._remember(self._found, key, (now + self._ttl, value))
        return value

    def _remember(self, table: OrderedDict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self._size:
            table.popitem(last=False)


@dataclass
class Tracking:
    """The tracking routes' shared state: the writer of hits and the uuid lookups."""

    readers: sessionmaker[Session]
    writer: BatchWriter[Hit, HitResult] | None = None
    campaigns: Remembered = field(init=False)
    links: Remembered = field(init=False)

    def __post_init__(self) -> None:
        self.campaigns = Remembered(self._campaign)
        self.links = Remembered(self._link)

    def _campaign(self, uuid: str) -> int | None:
        with self.readers() as session:
            found = session.scalar(select(Campaign.id).where(Campaign.uuid == uuid))
        return int(found) if found is not None else None

    def _link(self, uuid: str) -> LinkTarget | None:
        with self.readers() as session:
            row = session.execute(
                select(Link.id, Link.campaign_id, Link.url).where(Link.uuid == uuid)
            ).first()
        return LinkTarget(row[0], row[1], row[2]) if row is not None else None

    async def start(self, sessions: sessionmaker[Session]) -> None:
        self.writer = BatchWriter(sessions, record_hit, record_hits, what="tracking hit")
        await self.writer.start()

    async def stop(self) -> None:
        if self.writer is not None:
            await self.writer.stop()
            self.writer = None

    async def record(self, hit: Hit) -> HitResult:
        """Records `hit` once committed; NotFound (404) for an unknown subscriber."""
        writer = self.writer
        if writer is None:
            raise unavailable("the tracking writer is not running; retry later")
        return await writer.submit(hit)


def _uuid(scope: Scope, name: str) -> str:
    value = str(scope["path_params"][name]).lower()
    if len(value) != 36 or _UUID.fullmatch(value) is None:
        raise not_found(name.replace("_", " "))
    return value


def _tracking(scope: Scope) -> Tracking:
    state: AppState = scope["app"].state.stmails
    tracking: Tracking = state.extras[STATE_KEY]
    return tracking


def _hit(scope: Scope, kind: str, campaign_id: int, subscriber: str, link_id: int | None) -> Hit:
    client = scope.get("client")
    return Hit(
        kind="view" if kind == "view" else "click",
        campaign_id=campaign_id,
        subscriber_uuid=subscriber,
        at=utcnow(),
        link_id=link_id,
        method=scope["method"],
        user_agent=(header(scope, b"user-agent") or b"").decode("latin-1"),
        ip=client[0] if client else "",
    )


async def _answer(send: Send, scope: Scope, status: int, headers: list[Any], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


class PixelEndpoint:
    """`/campaign/{campaign_uuid}/{subscriber_uuid}/px.png` (GET, HEAD)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        campaign_uuid = _uuid(scope, "campaign_uuid")
        subscriber_uuid = _uuid(scope, "subscriber_uuid")
        tracking = _tracking(scope)
        campaign_id = await tracking.campaigns.get(campaign_uuid)
        if campaign_id is None:
            raise not_found("campaign")
        await tracking.record(_hit(scope, "view", campaign_id, subscriber_uuid, None))
        await _answer(send, scope, 200, _PIXEL_HEADERS, PIXEL)


def location(url: str) -> bytes:
    """`url` as a Location header: characters outside ASCII percent-encoded (UTF-8)."""
    return "".join(c if ord(c) < 128 else quote(c) for c in url).encode("ascii")


class LinkEndpoint:
    """`/link/{link_uuid}/{campaign_uuid}/{subscriber_uuid}` (GET, HEAD)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        link_uuid = _uuid(scope, "link_uuid")
        campaign_uuid = _uuid(scope, "campaign_uuid")
        subscriber_uuid = _uuid(scope, "subscriber_uuid")
        tracking = _tracking(scope)
        link: LinkTarget | None = await tracking.links.get(link_uuid)
        campaign_id = await tracking.campaigns.get(campaign_uuid)
        # The link must be one of this campaign's: nobody can make it lead anywhere else.
        if link is None or campaign_id is None or link.campaign_id != campaign_id:
            raise not_found("link")
        await tracking.record(_hit(scope, "click", campaign_id, subscriber_uuid, link.id))
        headers = [(b"location", location(link.url)), (b"content-length", b"0"), _NO_CACHE]
        headers.append(_NO_INDEX)
        await _answer(send, scope, 302, headers, b"")


routes = (
    Route(
        "/campaign/{campaign_uuid}/{subscriber_uuid}/px.png",
        PixelEndpoint(),
        methods=["GET"],
        name="tracking_pixel",
    ),
    Route(
        "/link/{link_uuid}/{campaign_uuid}/{subscriber_uuid}",
        LinkEndpoint(),
        methods=["GET"],
        name="tracking_link",
    ),
)

router = APIRouter(tags=["tracking"])

# The message is the campaign's own HTML: no scripts, no forms; links and images work.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "sandbox allow-popups allow-popups-to-escape-sandbox"
        " allow-top-navigation-by-user-activation"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}


@router.get("/campaign/{campaign_uuid}/{subscriber_uuid}", include_in_schema=False)
async def message_page(request: Request, campaign_uuid: str, subscriber_uuid: str) -> Response:
    """`{{ MessageURL }}`: the campaign as the subscriber received it (tracked as in the mail;
    the page's own load is not an open, its pixel is)."""
    campaign_uuid, subscriber_uuid = campaign_uuid.lower(), subscriber_uuid.lower()
    if _UUID.fullmatch(campaign_uuid) is None or _UUID.fullmatch(subscriber_uuid) is None:
        raise not_found("message")
    if subscriber_uuid == ANONYMOUS:
        raise not_found("subscriber")

    def work(session: Session) -> tuple[str, str]:
        campaign = session.scalar(select(Campaign).where(Campaign.uuid == campaign_uuid))
        subscriber = session.scalar(select(Subscriber).where(Subscriber.uuid == subscriber_uuid))
        if campaign is None or subscriber is None:
            raise not_found("message")
        config = sending_config(request, session)
        tracking = prepare(
            session, campaign, config.root_url, layout_for(session, campaign), register=False
        )
        try:
            return preview(session, campaign, subscriber, config, tracking)
        except CampaignError:
            raise not_found("message") from None

    media_type, body = await run_db(request, work)
    return Response(body, media_type=f"{media_type}; charset=utf-8", headers=PAGE_HEADERS)
