"""Reading request bodies: JSON, which every API route with a body takes except the few that
take forms or uploads on purpose (FORM_ROUTES).

A browser sends a form-encoded, multipart or text/plain body to another site without asking
first (no CORS preflight), with the HTTP Basic credentials it has cached for that site: if the
API read such bodies, any page a logged-in admin visits could act with the admin's rights.
So a body that is not JSON is refused with 415 before a route reads it (`check_json_body`, run
after authentication by every permission check), and `json_object` reads JSON only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from stmails.core.json_depth import MAX_JSON_DEPTH, too_deep
from stmails.db.handles import Session
from stmails.web.deps import app_state
from stmails.web.errors import ApiError, bad_request
from stmails.web.responses import JSONResponse, data

T = TypeVar("T")

# The routes (method, path) that take forms or uploads on purpose: the CSV import (multipart)
# and bulk verification (multipart, CSV or text). The public subscriber pages and the provider
# webhooks take forms too, but they authenticate by other means than a user's credentials and
# are not checked here.
FORM_ROUTES = frozenset(
    {
        ("POST", "/api/import/subscribers"),
        ("POST", "/api/verify/jobs"),
        ("POST", "/api/media"),
        ("POST", "/api/dmarc/reports"),
        # JSON, or multipart with attachments as listmonk takes them (the route refuses other
        # bodies with 415 itself).
        ("POST", "/api/tx"),
    }
)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_json_media_type(content_type: str) -> bool:
    """Whether a Content-Type header names JSON (`application/json` or `application/*+json`)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def non_json_body(
    method: str, path: str, content_type: str | None, has_body: bool
) -> ApiError | None:
    """415 for a request to a JSON route whose body is not declared as JSON, else None.

    A POST must declare JSON even when empty (a browser sends an empty cross-site POST without
    asking); other methods cannot be sent cross-site without a preflight, so they may omit the
    body and its type.
    """
    if method not in _BODY_METHODS or (method, path) in FORM_ROUTES:
        return None
    if content_type is None or not content_type.strip():
        if method != "POST" and not has_body:
            return None
    elif is_json_media_type(content_type):
        return None
    return ApiError(415, "body: must be JSON, sent with Content-Type: application/json")


def cross_site_form(request: Request) -> ApiError | None:
    """403 for a browser's cross-site request to a route that takes forms, else None.

    The form routes cannot refuse non-JSON bodies, so they refuse what a browser says is
    another site's request instead: `Sec-Fetch-Site` other than same-origin or none, or an
    `Origin` (else `Referer`) that is not this server's. API clients send neither header."""
    headers = request.headers
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return ApiError(403, "cross-site request refused")
    claimed = headers.get("origin") or headers.get("referer")
    if claimed is None:
        return None
    parts = urlsplit(claimed) if claimed != "null" else None
    own = f"{request.url.scheme}://{request.url.netloc}".lower()
    if parts is None or f"{parts.scheme}://{parts.netloc}".lower() != own:
        return ApiError(403, "cross-site request refused")
    return None


def check_json_body(request: Request) -> None:
    """Raises 415 (`non_json_body`) for a non-JSON body on a JSON route, and 403
    (`cross_site_form`) for a browser's cross-site request to a form route."""
    if (request.method, request.url.path) in FORM_ROUTES:
        refused = cross_site_form(request)
        if refused is not None:
            raise refused
        return
    headers = request.headers
    length = headers.get("content-length", "")
    has_body = "transfer-encoding" in headers or (length.isdigit() and int(length) > 0)
    refusal = non_json_body(request.method, request.url.path, headers.get("content-type"), has_body)
    if refusal is not None:
        raise refusal


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; 415 when it is not declared as JSON, 400 when it is not a
    JSON object."""
    value = await json_value(request, empty={})
    if not isinstance(value, dict):
        raise bad_request("body: must be a JSON object")
    return value


async def json_value(request: Request, *, empty: Any = None) -> Any:
    """The body as any JSON value (`empty` for an empty body); 415 when it is not declared as
    JSON, 400 when it is not valid JSON or nests too deep."""
    check_json_body(request)
    raw = await request.body()
    if not raw.strip():
        return empty
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("body: not valid JSON") from None
    if too_deep(value):
        raise bad_request(f"body: nests deeper than {MAX_JSON_DEPTH} levels")
    return value


async def run_db(request: Request, work: Callable[[Session], T], *, write: bool = False) -> T:
    """Runs `work(session)` on a worker thread; commits when `write` and `work` succeeded.

    `work` must finish everything that needs the session (serialization included).
    """
    state = app_state(request)
    maker = state.sessions if write else state.readonly_sessions

    def job() -> T:
        with maker() as session:
            result = work(session)
            if write:
                session.commit()
            return result

    return await run_in_threadpool(job)


# Typed reads of JSON body fields: a value of the wrong type is a 400 naming the field (the
# services then check the meaning).


def text_field(body: dict[str, Any], name: str, limit: int = 100_000) -> str | None:
    """The string `name`, or None when absent or null."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{name}: must be a string")
    if len(value) > limit:
        raise bad_request(f"{name}: longer than {limit} characters")
    return value


def ids_field(body: dict[str, Any], name: str) -> list[int] | None:
    """The array of positive integer ids `name`, or None when absent or null."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in value
    ):
        raise bad_request(f"{name}: must be an array of positive integer ids")
    return list(dict.fromkeys(value))


def strings_field(body: dict[str, Any], name: str) -> list[str] | None:
    """The array of strings `name`, or None when absent or null."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"{name}: must be an array of strings")
    return value


def object_field(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The JSON object `name`, or None when absent or null."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request(f"{name}: must be a JSON object")
    return value


def bool_field(body: dict[str, Any], name: str) -> bool:
    """The boolean `name` (absent or null is false)."""
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"{name}: must be true or false")
    return value


def query_ids(values: list[str], field: str) -> list[int]:
    """Positive integer ids from repeated (`?id=1&id=2`) or comma-separated query values."""
    ids: list[int] = []
    for value in values:
        for part in value.split(","):
            if not part.strip():
                continue
            try:
                number = int(part)
            except ValueError:
                raise bad_request(f"{field}: must be integer ids") from None
            if number < 1:
                raise bad_request(f"{field}: must be positive integer ids")
            ids.append(number)
    return ids


async def act_on_one(
    request: Request,
    object_id: int,
    get: Callable[[Session, int], object],
    act: Callable[[Session, list[int]], object],
) -> JSONResponse:
    """`{"data": true}` after `act(session, [object_id])`; 404 when `get` finds no such id."""

    def work(session: Session) -> bool:
        get(session, object_id)
        act(session, [object_id])
        return True

    return data(await run_db(request, work, write=True))
