"""Request dependencies: the application's shared state, database sessions and authentication.

Authentication follows listmonk: HTTP Basic with `api_username:access_token` (or an admin's
`username:password`), or `Authorization: token api_username:access_token`. Verifying a secret
against its stored hash is deliberately slow, so a successful check is remembered for a short
time (keyed by a hash of the exact Authorization header, never the secret itself): the hot
webhook path then costs one hash and a dictionary lookup instead of a database round trip and a
key derivation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from stmails.config import Settings
from stmails.db.handles import Engine, Session, SQLAlchemyError, sessionmaker
from stmails.services import roles
from stmails.services import sessions as session_service
from stmails.services.login_guard import Busy, HashingGate, Throttled
from stmails.web.browser import SESSION_COOKIE, BrowserKeys, CsrfRefused, check_unsafe_request
from stmails.web.errors import ApiError

log = logging.getLogger("stmails.web")

AUTH_CACHE_SECONDS = 30.0
AUTH_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user id, name, type (`admin` or `api`), what its role permits, whether
    that role is Super Admin, and whether it has a list role with the lists that role opens
    for reading (`list:get`) and managing (`list:manage`) (web.list_scope)."""

    user_id: int
    username: str
    type: str
    permissions: frozenset[str] = frozenset()
    super_admin: bool = False
    list_role: bool = False
    list_get: frozenset[int] = frozenset()
    list_manage: frozenset[int] = frozenset()

    @classmethod
    def of(cls, user: Any) -> Principal:
        """The principal a `db.models.User` (with its roles loaded) is."""
        get, manage = roles.list_grants(user.list_role)
        return cls(
            user.id,
            user.username,
            user.type,
            roles.effective_permissions(user.role),
            roles.is_super_admin(user.role),
            user.list_role is not None,
            get,
            manage,
        )


# Checks a username and secret from a client address; returns the principal, or None when they
# do not match. It may raise login_guard.Throttled or login_guard.Busy.
Authenticator = Callable[[str, str, str], Principal | None]


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in browser of a request: its user, role permissions and session."""

    principal: Principal
    name: str
    email: str
    locale: str
    totp_enabled: bool
    session_id: str
    session_token: str
    mfa_pending: bool
    data: dict[str, Any]

    @property
    def display_name(self) -> str:
        """The name to greet the user with."""
        return self.name or self.principal.username


class AuthCache:
    """Successful credential checks, remembered for `ttl` seconds (bounded LRU)."""

    def __init__(self, ttl: float = AUTH_CACHE_SECONDS, size: int = AUTH_CACHE_SIZE) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()

    @staticmethod
    def key(authorization: bytes) -> bytes:
        """The entry of an Authorization header's exact bytes (a hash: the cache never holds
        a secret)."""
        return hashlib.sha256(authorization).digest()

    def get(self, key: bytes) -> Principal | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, principal = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        return principal

    def put(self, key: bytes, principal: Principal) -> None:
        self._entries[key] = (time.monotonic() + self.ttl, principal)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forgets every remembered check (after a user or token changes)."""
        self._entries.clear()


@dataclass(slots=True)
class AppState:
    """What every request shares: settings, the engine, session makers, auth and the writer."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    readonly_sessions: sessionmaker[Session]
    authenticate: Authenticator
    auth_cache: AuthCache = field(default_factory=AuthCache)
    # The group-commit writer for bounces (set at startup; see web.group_commit).
    writer: Any = None
    # The application's background loops by name, each with its liveness check (GET /health/ready).
    background: dict[str, Callable[[], bool]] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    # Browser sign-in (web.browser, services.sessions): signing keys (made from the settings'
    # secret key on first use), session lifetimes, the cap on concurrent password hashing.
    browser_keys: BrowserKeys | None = None
    lifetimes: session_service.Lifetimes = field(default_factory=session_service.Lifetimes)
    hashing: HashingGate = field(default_factory=lambda: HashingGate(4))

    def __post_init__(self) -> None:
        if self.browser_keys is None:
            self.browser_keys = BrowserKeys(self.settings.resolved_secret_key)

    @property
    def keys(self) -> BrowserKeys:
        """The browser signing keys (see web.browser.BrowserKeys)."""
        assert self.browser_keys is not None
        return self.browser_keys


def app_state(request: Request) -> AppState:
    """The AppState stored on the application."""
    state: AppState = request.app.state.stmails
    return state


def parse_credentials(header: str) -> tuple[str, str]:
    """(username, secret) from `Basic base64(u:s)` or `token u:s`; 403 when malformed (as
    listmonk answers a header it cannot read)."""
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _invalid("malformed Basic credentials") from None
    elif scheme == "token":
        decoded = value
    else:
        raise _invalid("unsupported authorization scheme (use Basic or token)")
    username, colon, secret = decoded.partition(":")
    if not colon or not username or not secret:
        raise _invalid("credentials must be username:secret")
    return username, secret


def _unauthorized(message: str) -> ApiError:
    """401 for a request that carries no credentials: the challenge tells clients (curl,
    browsers) to send some."""
    return ApiError(401, message, {"WWW-Authenticate": 'Basic realm="stmails"'})


def _invalid(message: str) -> ApiError:
    """403 for credentials that were sent but are wrong or unreadable, as listmonk answers
    (its clients take a 403 to mean "bad login")."""
    return ApiError(403, message)


async def require_user(request: Request) -> Principal:
    """The authenticated caller; 401 without valid credentials.

    API clients authenticate with the Authorization header. A browser signed in to the admin UI
    may call the API with its session cookie instead, but an unsafe method then needs the
    X-CSRF-Token header and an Origin of ours (403 otherwise).
    """
    header = request.headers.get("authorization")
    state = app_state(request)
    if header is None and SESSION_COOKIE in request.cookies:
        viewer = await browser_viewer(request)
        if viewer is None or viewer.mfa_pending:
            raise _unauthorized("authentication required (the browser session has ended)")
        try:
            await check_unsafe_request(
                request, state.keys, state.settings.root_url, header_only=True
            )
        except CsrfRefused as exc:
            raise ApiError(403, f"{exc.reason} (send the page's X-CSRF-Token)") from None
        return viewer.principal
    client = request.client.host if request.client else ""
    return await authenticate(state, header.encode("latin-1") if header else None, client)


async def authenticate(
    state: AppState, authorization: bytes | None, client: Any = None
) -> Principal:
    """The caller an Authorization header (its raw bytes) names; 401 without a header, 403
    (listmonk's "invalid API credentials") when it names nobody, 429 while its user name or
    `client` address is locked by failed attempts, 503 when too many password checks run at
    once.

    `client` is the client's address, or the ASGI scope's (host, port) pair. A header seen with
    success in the last AUTH_CACHE_SECONDS is not checked again."""
    if not authorization:
        raise _unauthorized("authentication required")
    key = AuthCache.key(authorization)
    principal = state.auth_cache.get(key)
    if principal is None:
        username, secret = parse_credentials(authorization.decode("latin-1"))
        address = client[0] if isinstance(client, tuple | list) else str(client or "")
        try:
            principal = await run_in_threadpool(state.authenticate, username, secret, address)
        except Throttled as exc:
            raise ApiError(429, str(exc), {"Retry-After": str(exc.retry_after)}) from None
        except Busy as exc:
            raise ApiError(503, str(exc), {"Retry-After": str(exc.retry_after)}) from None
        if principal is None:
            raise _invalid("invalid API credentials")
        state.auth_cache.put(key, principal)
    return principal


VIEWER_ATTRIBUTE = "stmails_viewer"


async def browser_viewer(request: Request) -> Viewer | None:
    """The signed-in browser of `request` (its session cookie), or None; loaded once per
    request. A session in use has its idle deadline pushed forward (at most once a minute)."""
    if hasattr(request.state, VIEWER_ATTRIBUTE):
        cached: Viewer | None = getattr(request.state, VIEWER_ATTRIBUTE)
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    state = app_state(request)
    viewer: Viewer | None = None
    if token:
        viewer, due = await run_in_threadpool(_load_viewer, state, token)
        if viewer is not None and due:
            await run_in_threadpool(_touch, state, viewer.session_id)
    setattr(request.state, VIEWER_ATTRIBUTE, viewer)
    return viewer


def forget_viewer(request: Request) -> None:
    """Drops the viewer loaded for `request` (after its session or profile changed)."""
    if hasattr(request.state, VIEWER_ATTRIBUTE):
        delattr(request.state, VIEWER_ATTRIBUTE)


def _load_viewer(state: AppState, token: str) -> tuple[Viewer | None, bool]:
    with state.readonly_sessions() as session:
        found = session_service.load(session, token)
        if found is None:
            return None, False
        browser, user = found
        principal = Principal.of(user)
        viewer = Viewer(
            principal=principal,
            name=user.name,
            email=user.email,
            locale=user.locale,
            totp_enabled=bool(user.totp_secret),
            session_id=browser.id,
            session_token=token,
            mfa_pending=browser.mfa_pending,
            data=dict(browser.data or {}),
        )
        return viewer, session_service.needs_touch(browser)


def _touch(state: AppState, session_id: str) -> None:
    try:
        with state.sessions() as session:
            session_service.touch(session, session_id, state.lifetimes)
            session.commit()
    except SQLAlchemyError as exc:
        # The page still works; the idle deadline moves on the next request.
        log.warning("could not refresh browser session: %s", exc)


def lifetimes_of(settings: Settings) -> session_service.Lifetimes:
    """The session lifetimes the settings ask for."""
    return session_service.Lifetimes(
        idle=timedelta(minutes=settings.session_idle_minutes),
        absolute=timedelta(hours=settings.session_max_hours),
    )
