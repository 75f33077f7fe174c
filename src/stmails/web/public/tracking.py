"""The tracking routes, listmonk's: the open pixel, tracked links and the message's web page.

- `GET /campaign/{campaign_uuid}/{subscriber_uuid}/px.png`: records an open, answers a 1x1 PNG;
- `GET /link/{link_uuid}/{campaign_uuid}/{subscriber_uuid}`: records a click, answers 302 to
  the URL stored for that link, which must belong to that campaign;
- `GET /campaign/{campaign_uuid}/{subscriber_uuid}`: the message rendered for the subscriber.

The first two are hot paths (web.hot_paths): plain ASGI endpoints whose hits go through a
group-commit writer of their own (services.tracking.hits), answered once committed. A uuid
that is malformed, or names no campaign, link or subscriber, is a 404 and writes nothing;
campaign and link uuids are kept in memory (`Directory`), so that unknown ones cost no write
and at most a share of one small read. The subscriber uuid `0000...0000` stands for
"counted without subscriber" (individual tracking off). No authentication: the random uuids in
the URL are the capability, as for the unsubscribe link.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from stmails.db.handles import Session, sessionmaker
from stmails.db.types import utcnow
from stmails.services import campaign_records, subscribers
from stmails.services.sending.campaigns import CampaignError, layout_for, preview
from stmails.services.tracking import lookups
from stmails.services.tracking.hits import Hit, HitResult, record_hit, record_hits
from stmails.services.tracking.links import ANONYMOUS, prepare, register_links, trackable
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
# Imported listmonk links resolved per campaign, kept in memory up to this many.
_IMPORTED_CACHE = 10_000
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


class Directory:
    """Every row of a table by uuid, in memory, loaded incrementally (rows with a higher id
    than any seen so far).

    A uuid not known is looked up by a refresh that starts after the request arrived, and
    concurrent misses share one refresh: a flood of unknown uuids costs one cheap query at a
    time, not one per request, and a link registered a moment ago is still found. `load(after)`
    returns (id, uuid, value) of the rows with an id above `after`.
    """

    def __init__(self, load: Callable[[int], list[tuple[int, str, Any]]]) -> None:
        self._load = load
        self._by_uuid: dict[str, Any] = {}
        self._last_id = 0
        self._started = 0
        self._finished = 0
        self._running: asyncio.Future[None] | None = None

    async def get(self, uuid: str) -> Any | None:
        found = self._by_uuid.get(uuid)
        if found is not None:
            return found
        # A refresh that started before this request might miss a row committed just now.
        wanted = self._started + 1
        while self._finished < wanted:
            if self._running is None:
                self._running = asyncio.ensure_future(self._refresh())
            await asyncio.shield(self._running)
        return self._by_uuid.get(uuid)

    async def _refresh(self) -> None:
        self._started += 1
        try:
            rows = await run_in_threadpool(self._load, self._last_id)
            for row_id, uuid, value in rows:
                self._by_uuid[uuid] = value
                self._last_id = max(self._last_id, row_id)
        finally:
            self._finished = self._started
            self._running = None


@dataclass
class Tracking:
    """The tracking routes' shared state: the writer of hits and the uuid directories."""

    readers: sessionmaker[Session]
    writer: BatchWriter[Hit, HitResult] | None = None
    campaigns: Directory = field(init=False)
    links: Directory = field(init=False)
    _imported: dict[tuple[str, int], LinkTarget] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.campaigns = Directory(self._campaigns)
        self.links = Directory(self._links)

    def _campaigns(self, after: int) -> list[tuple[int, str, Any]]:
        with self.readers() as session:
            rows = lookups.campaigns_after(session, after)
        return [(campaign_id, uuid, campaign_id) for campaign_id, uuid in rows]

    def _links(self, after: int) -> list[tuple[int, str, Any]]:
        with self.readers() as session:
            rows = lookups.links_after(session, after)
        return [(i, uuid, LinkTarget(i, campaign_id, url)) for i, uuid, campaign_id, url in rows]

    async def imported_link(self, link_uuid: str, campaign_id: int) -> LinkTarget | None:
        """The link of campaign `campaign_id` for listmonk's link `link_uuid` (registered as
        one of the campaign's links on first use); None when no such listmonk link was
        imported."""
        key = (link_uuid, campaign_id)
        found = self._imported.get(key)
        if found is None:
            found = await run_in_threadpool(self._register_imported, link_uuid, campaign_id)
            if found is not None:
                if len(self._imported) >= _IMPORTED_CACHE:
                    self._imported.clear()
                self._imported[key] = found
        return found

    def _register_imported(self, link_uuid: str, campaign_id: int) -> LinkTarget | None:
        with self.readers() as session:
            url = lookups.imported_link_url(session, link_uuid)
            if url is None or not trackable(url):
                return None
            register_links(session, campaign_id, [url])
            session.commit()
            link_id = lookups.link_id(session, campaign_id, url)
        return LinkTarget(link_id, campaign_id, url)

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
        if link is None and campaign_id is not None:
            # A link in mail that listmonk sent, kept by `stmails import listmonk`.
            link = await tracking.imported_link(link_uuid, campaign_id)
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
        campaign = campaign_records.get_by_uuid(session, campaign_uuid)
        subscriber = subscribers.get_by_uuid(session, subscriber_uuid)
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
