"""`GET /metrics`: the Prometheus text exposition of `stmails.metrics`, and the request timer.

Who may read it: a scraper with `Authorization: Bearer <metrics_token>` when that setting is
set (compared in constant time), or any authenticated user with `settings:get` (Basic, `token`
or a browser session); 401/403 otherwise. Besides the process's counters (summed over every
process of the host in multiprocess mode, see `stmails.metrics`) the answer has gauges read at
scrape time: the sending queue from the database (services.sending.campaigns; reused for
`DEPTHS_SECONDS`) and the queues of this process's group-commit writers.

`RequestMetricsMiddleware` times every HTTP request under its route template (`/api/lists/{id}`,
never the raw path, so that the number of series stays bounded); a request no route matched is
counted as `unmatched`.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stmails import metrics
from stmails.services.sending.campaigns import send_queue_depths
from stmails.web.body import run_db
from stmails.web.deps import AppState, app_state, require_user
from stmails.web.errors import ApiError
from stmails.web.permissions import check_permission

router = APIRouter(tags=["metrics"])

PERMISSION = "settings:get"
# How long the database's queue depths are reused between scrapes (seconds).
DEPTHS_SECONDS = 5.0
_DEPTHS_KEY = "metrics.depths"
# The longest router prefix looked for in a request path (see `route_template`).
MAX_PREFIX = 64
# Methods counted under their own name (a client may send any word).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class QueueCollector(Collector):
    """The queue depths of one scrape, collected before the exposition is written."""

    def __init__(self, depths: dict[str, int]) -> None:
        self._depths = depths

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "stmails_queue_depth",
            "Work waiting now: campaign_unsent, campaign_in_flight, campaign_deferred and "
            "campaign_in_doubt from the database; bounce_writer and tracking_writer in the "
            "scraped process.",
            labels=["queue"],
        )
        for name, value in sorted(self._depths.items()):
            family.add_metric([name], value)
        yield family


def _in_process_depths(state: AppState) -> dict[str, int]:
    depths = {"bounce_writer": state.writer.depth() if state.writer is not None else 0}
    tracking = state.extras.get("tracking")
    writer = getattr(tracking, "writer", None)
    depths["tracking_writer"] = writer.depth() if writer is not None else 0
    return depths


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The metrics in Prometheus' text format: every process's (multiprocess mode) or this
    one's, plus `extra` collectors."""
    if metrics.MULTIPROC_ENV in os.environ:
        registry = CollectorRegistry()
        # prometheus-client leaves this constructor untyped.
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


class _Forward(Collector):
    """The process's default registry inside a scrape's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self._registry.collect()


async def _database_depths(request: Request, state: AppState) -> dict[str, int]:
    """The sending queue from the database, read at most every `DEPTHS_SECONDS` per process
    (counting a large campaign's sends takes a while; several scrapers share one reading)."""
    cached = state.extras.get(_DEPTHS_KEY)
    now = time.monotonic()
    if cached is not None and now - cached[0] < DEPTHS_SECONDS:
        return dict(cached[1])
    depths = await run_db(request, send_queue_depths)
    state.extras[_DEPTHS_KEY] = (now, depths)
    return dict(depths)


async def _authorize(request: Request, state: AppState) -> None:
    token = state.settings.metrics_token
    header = request.headers.get("authorization", "")
    if token is not None and header[:7].lower() == "bearer ":
        expected = token.get_secret_value().encode()
        if hmac.compare_digest(header[7:].strip().encode(), expected):
            return
        raise ApiError(403, "invalid metrics token")
    principal = await require_user(request)
    check_permission(principal, PERMISSION)


@router.get("/metrics", include_in_schema=False)
async def read_metrics(request: Request) -> Response:
    """The Prometheus exposition (see the module docstring for who may read it)."""
    state = app_state(request)
    await _authorize(request, state)
    depths = _in_process_depths(state)
    depths.update(await _database_depths(request, state))
    body = exposition([QueueCollector(depths)])
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def route_template(scope: Scope) -> str:
    """The template of the route that handled the request (`/api/lists/{list_id}`), or
    `unmatched`.

    A route of an included router knows its path without the router's prefix; the prefix is
    the part of the request path before the route's own pattern matches (prefixes are fixed
    text), found by trying the request path's slashes from the left."""
    route = scope.get("route") or scope.get("stmails.hot_route")
    path_format = getattr(route, "path", None)
    pattern = getattr(route, "path_regex", None)
    if not isinstance(path_format, str):
        return "unmatched"
    path: str = scope.get("path", "")
    if pattern is None or pattern.match(path):
        return path_format
    start = path.find("/", 1)
    while 0 < start <= MAX_PREFIX:
        if pattern.match(path[start:]):
            return path[:start] + path_format
        start = path.find("/", start + 1)
    return path_format


class RequestMetricsMiddleware:
    """Times each HTTP request into `stmails_http_request_seconds` by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            template = route_template(scope)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            metrics.observe_request(method, template, status, time.perf_counter() - started)
