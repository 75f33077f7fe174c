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
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from stmails.config import Settings
from stmails.web.errors import ApiError

AUTH_CACHE_SECONDS = 30.0
AUTH_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user id, name, type (`admin` or `api`), what its role permits and
    whether that role is Super Admin."""

    user_id: int
    username: str
    type: str
    permissions: frozenset[str] = frozenset()
    super_admin: bool = False


# Checks a username and secret; returns the principal, or None when they do not match.
Authenticator = Callable[[str, str], Principal | None]


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
    extras: dict[str, Any] = field(default_factory=dict)


def app_state(request: Request) -> AppState:
    """The AppState stored on the application."""
    state: AppState = request.app.state.stmails
    return state


def parse_credentials(header: str) -> tuple[str, str]:
    """(username, secret) from `Basic base64(u:s)` or `token u:s`; 401 when malformed."""
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized("malformed Basic credentials") from None
    elif scheme == "token":
        decoded = value
    else:
        raise _unauthorized("unsupported authorization scheme (use Basic or token)")
    username, colon, secret = decoded.partition(":")
    if not colon or not username or not secret:
        raise _unauthorized("credentials must be username:secret")
    return username, secret


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, {"WWW-Authenticate": 'Basic realm="stmails"'})


async def require_user(request: Request) -> Principal:
    """The authenticated caller; 401 without valid credentials."""
    header = request.headers.get("authorization")
    return await authenticate(app_state(request), header.encode("latin-1") if header else None)


async def authenticate(state: AppState, authorization: bytes | None) -> Principal:
    """The caller an Authorization header (its raw bytes) names; 401 when it names nobody.

    A header seen with success in the last AUTH_CACHE_SECONDS is not checked again."""
    if not authorization:
        raise _unauthorized("authentication required")
    key = AuthCache.key(authorization)
    principal = state.auth_cache.get(key)
    if principal is None:
        username, secret = parse_credentials(authorization.decode("latin-1"))
        principal = await run_in_threadpool(state.authenticate, username, secret)
        if principal is None:
            raise _unauthorized("invalid credentials")
        state.auth_cache.put(key, principal)
    return principal
