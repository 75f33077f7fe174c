"""The application factory: `create_app(settings)` wires settings, database, routers and errors.

The app does not migrate the database: `stmails serve` (and the tests' fixtures) do that before
any request arrives, once, even when several worker processes start.

The web layer imports no worker: the background loops a server process runs beside the app
(the bounce-mailbox scanner, the analytics folder) are passed in as `loops` by the composition
in `stmails.server`, which is what `stmails serve` runs. `create_app` alone runs only the web's
own loops (the bounce and tracking writers).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.middleware import Middleware

import stmails
from stmails import logs as stmails_logs
from stmails.config import Settings, load_settings
from stmails.core.event import Event
from stmails.db.engine import make_engine, read_only, session_factory
from stmails.db.handles import Engine, Session, SQLAlchemyError, sessionmaker
from stmails.ingest.native import NativeBounceError
from stmails.services import bounces, login_guard, users
from stmails.services.bounces import RecordError, RecordResult
from stmails.services.login_guard import HashingGate
from stmails.web import admin, public
from stmails.web import metrics as metrics_routes
from stmails.web.admin import suppression as admin_suppression
from stmails.web.admin.pages import install_page_errors
from stmails.web.api import (
    alerts as alerts_api,
)
from stmails.web.api import (
    analytics,
    campaign_extras,
    campaigns,
    content_check,
    deliverability,
    dmarc,
    domains,
    health,
    imports,
    lists,
    logs,
    maintenance,
    media,
    public_admin,
    sending_routes,
    server_info,
    subscribers,
    webhooks_native,
    webhooks_service,
)
from stmails.web.api import (
    bounces as bounces_api,
)
from stmails.web.api import (
    hygiene as hygiene_api,
)
from stmails.web.api import (
    roles as roles_api,
)
from stmails.web.api import (
    settings as settings_api,
)
from stmails.web.api import subscriber_export as subscriber_export_api
from stmails.web.api import (
    users as users_api,
)
from stmails.web.api.verify import create_verify_router, create_verify_service
from stmails.web.deps import AppState, Authenticator, Principal, lifetimes_of
from stmails.web.docs import install_docs
from stmails.web.errors import BodySizeLimitMiddleware, CatchAllMiddleware, install_error_handlers
from stmails.web.group_commit import GroupCommitWriter
from stmails.web.hot_paths import StmailsApp
from stmails.web.metrics import RequestMetricsMiddleware
from stmails.web.permissions import require_permission
from stmails.web.public import tracking as tracking_routes
from stmails.web.request_id import RequestIdMiddleware
from stmails.web.responses import JSONResponse
from stmails.web.security_headers import SecurityHeadersMiddleware
from stmails.web.templating import STATIC_ROUTE

log = logging.getLogger("stmails.web")


class BackgroundLoop(Protocol):
    """A thread the server runs beside the app: started once the app starts, stopped (joined)
    when it shuts down, and reported by `GET /health/ready` while alive."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def is_alive(self) -> bool: ...


# The background loops of a server process by name (the name is its readiness check): each is
# made from the app's sessions and settings when the app starts.
LoopFactory = Callable[[sessionmaker[Session], Settings], BackgroundLoop]

# The CSV import and verification-job uploads accept larger bodies than the 1 MB every other
# route is held to.
IMPORT_MAX_BYTES = 64 * 1024 * 1024


def record_bounce(session: Session, event: Event) -> RecordResult:
    """The group-commit writer's recording step: services.bounces.record(), no commit."""
    return bounces.record(session, event)


def record_bounces(session: Session, events: list[Event]) -> list[RecordResult | RecordError]:
    """The writer's batch step: services.bounces.record_many(), as record() one by one."""
    return list(bounces.record_many(session, events))


def make_authenticator(
    sessions: sessionmaker[Session], hashing: HashingGate | None = None
) -> Authenticator:
    """Checks credentials against the users table: API users by token, admins by password.

    Failed attempts are counted per client address and user name (services.login_guard): while
    either is locked the check raises Throttled before any secret is hashed, and a password
    check waits for a turn of `hashing` (Busy when none comes).

    The check only reads (in a read-only session), so it never waits for the write lock that
    bounce ingestion or an import may hold on SQLite. An admin's login time, and a failure's
    count, are then noted in a write transaction of their own; if that cannot be done now (the
    database is busy), the answer stands and the note is skipped.
    """
    readers = read_only(sessions)
    gate = hashing or HashingGate(4)

    def note(what: str, username: str, work: Callable[[Session], object]) -> None:
        try:
            with sessions() as session:
                work(session)
                session.commit()
        except SQLAlchemyError as exc:
            log.warning("could not note the %s of %s: %s", what, username[:200], exc)

    def authenticate(username: str, secret: str, address: str = "") -> Principal | None:
        with readers() as session:
            login_guard.check(session, address, username)
            user = users.authenticate_token(session, username, secret)
            if user is None:
                with gate.hold():
                    user = users.authenticate_password(session, username, secret)
            principal = None if user is None else Principal.of(user)
        if principal is None:
            note(
                "failed login",
                username,
                lambda s: login_guard.record_failure(s, address, username),
            )
            return None
        if principal.type == "admin":

            def success(session: Session) -> None:
                users.note_login(session, principal.user_id)
                login_guard.record_success(session, username)

            note("login", principal.username, success)
        return principal

    return authenticate


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    loops: Mapping[str, LoopFactory] | None = None,
) -> FastAPI:
    """The FastAPI application for `settings` (default: from the environment).

    `engine` lets a caller (tests, the benchmark) share an engine it already made. `loops` are
    the background loops to run while the app runs (`stmails.server.background_loops()` in a
    server process); they are started in order after the app's own writers and stopped in
    the reverse order.
    """
    settings = settings or load_settings()
    # The admin Logs page and GET /api/logs read this process's recent records.
    stmails_logs.install_recent()
    own_engine = engine is None
    if engine is None:
        engine = make_engine(
            settings.database_url,
            busy_timeout_ms=settings.db_busy_timeout_ms,
            pool_size=settings.db_pool_size,
        )
    sessions = session_factory(engine)
    hashing = HashingGate(settings.password_check_concurrency)
    state = AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        readonly_sessions=read_only(sessions),
        authenticate=make_authenticator(sessions, hashing),
        lifetimes=lifetimes_of(settings),
        hashing=hashing,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        writer: GroupCommitWriter[RecordResult] = GroupCommitWriter(
            sessions, record_bounce, record_bounces
        )
        await writer.start()
        state.writer = writer
        # Opens and clicks have a group-commit writer of their own (web.public.tracking).
        tracking = tracking_routes.Tracking(state.readonly_sessions)
        await tracking.start(sessions)
        state.extras[tracking_routes.STATE_KEY] = tracking
        state.background.update(
            bounce_writer=writer.is_alive,
            tracking_writer=lambda: tracking.writer is not None and tracking.writer.is_alive(),
        )
        running: list[BackgroundLoop] = []
        for name, make in (loops or {}).items():
            loop = make(sessions, settings)
            loop.start()
            running.append(loop)
            state.background[name] = loop.is_alive
        try:
            yield
        finally:
            for loop in reversed(running):
                loop.stop()
            await tracking.stop()
            state.writer = None
            await writer.stop()
            sending_routes.shutdown(state)
            if own_engine:
                engine.dispose()

    app = StmailsApp(
        title="stmails",
        version=stmails.__version__,
        description=(
            "Self-hosted email deliverability. The REST API follows listmonk's "
            '(`{"data": ...}` envelope, Basic or `token` auth); see docs/api.md.'
        ),
        default_response_class=JSONResponse,
        lifespan=lifespan,
        # /docs is served from the package (web.docs), not from a CDN.
        docs_url=None,
        redoc_url=None,
        middleware=[
            # Outermost: the request id is set before anything else logs.
            Middleware(RequestIdMiddleware),
            # Times the whole request, hot routes included.
            Middleware(RequestMetricsMiddleware),
            # So that every answer gets its headers (the hot routes skip it).
            Middleware(SecurityHeadersMiddleware),
            Middleware(CatchAllMiddleware),
            Middleware(
                BodySizeLimitMiddleware,
                default_limit=settings.max_body_bytes,
                limits_by_path={
                    "/api/import/subscribers": IMPORT_MAX_BYTES,
                    "/api/verify/jobs": IMPORT_MAX_BYTES,
                    # The admin pages' uploads of the same files.
                    "/admin/subscribers/import": IMPORT_MAX_BYTES,
                    "/admin/verification/jobs": IMPORT_MAX_BYTES,
                    dmarc.UPLOAD_PATH: dmarc.MAX_UPLOAD_BYTES,
                    media.UPLOAD_PATH: media.MAX_BODY_BYTES,
                    # The form's other fields and the multipart framing fit in 64 KiB.
                    admin_suppression.UPLOAD_PATH: admin_suppression.MAX_UPLOAD_BYTES + 65_536,
                    **sending_routes.BODY_LIMITS,
                },
            ),
        ],
    )
    app.state.stmails = state
    # The services' errors (InputError and its kind: 400, ...) are mapped in web.errors.
    install_error_handlers(app, {NativeBounceError: 400})
    install_docs(app)
    app.include_router(health.router)
    app.include_router(metrics_routes.router)
    # Public: mail clients fetch images from /uploads/... without credentials.
    app.include_router(media.files_router)
    # First in the routing table, and through the short stack (see web.hot_paths).
    app.add_hot_route(health.route)
    app.add_hot_route(webhooks_native.route)
    app.add_hot_route(webhooks_service.route)
    for route in tracking_routes.routes:
        app.add_hot_route(route)
    app.include_router(tracking_routes.router)
    # Before every /campaigns/{campaign_id}... route, which would take "running" for an id.
    app.include_router(campaign_extras.router, prefix="/api")
    # Before the campaign CRUD routes: the sending routes own the campaign actions
    # (status, test, preview).
    sending_routes.install(app)
    for router in (
        analytics.router,
        deliverability.router,
        # Before the subscriber routes: "export" is not a subscriber id.
        subscriber_export_api.router,
        alerts_api.router,
        subscribers.router,
        imports.router,
        lists.router,
        campaigns.router,
        content_check.router,
        domains.router,
        dmarc.router,
        hygiene_api.router,
        media.router,
        bounces_api.router,
        settings_api.router,
        users_api.router,
        roles_api.router,
        public_admin.router,
        server_info.router,
        maintenance.router,
        logs.router,
    ):
        app.include_router(router, prefix="/api")
    # The router carries its /api/verify prefix; its lifespan (the job workers, jobs kept under
    # data_dir/verify) runs inside the app's.
    # The admin pages share the router's job store and workers (app.state.verify).
    app.state.verify = create_verify_service(settings.data_dir / "verify")
    app.include_router(
        create_verify_router(
            settings.data_dir / "verify",
            max_upload_bytes=IMPORT_MAX_BYTES,
            service=app.state.verify,
        ),
        dependencies=[require_permission("verify:run")],
    )
    # The admin UI (docs/ui.md) and the assets its pages load.
    app.router.routes.append(STATIC_ROUTE)
    app.include_router(admin.router)
    # The subscriber-facing pages (docs/public-pages.md).
    app.include_router(public.router)
    install_page_errors(app)
    _document_security(app)
    return app


def _document_security(app: FastAPI) -> None:
    """Declares listmonk's two auth schemes in the OpenAPI document."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            components = schema.setdefault("components", {})
            components["securitySchemes"] = {
                "basic": {"type": "http", "scheme": "basic"},
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`token api_username:access_token`",
                },
            }
            schema["security"] = [{"basic": []}, {"token": []}]
            schema["paths"]["/webhooks/bounce"] = {"post": webhooks_native.OPENAPI_OPERATION}
            schema["paths"]["/webhooks/service/{provider}"] = {
                "post": webhooks_service.OPENAPI_OPERATION
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
