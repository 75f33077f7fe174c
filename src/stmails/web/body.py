"""Reading request bodies the way listmonk's clients send them: JSON, or form fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from stmails.web.deps import app_state
from stmails.web.errors import bad_request
from stmails.web.responses import JSONResponse, data

T = TypeVar("T")

# Form fields that listmonk clients send as repeated values or JSON text.
_LIST_FIELDS = frozenset({"lists", "tags", "ids", "target_list_ids", "list_ids"})


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object (form-encoded bodies are read field by field); 400 otherwise."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        body: dict[str, Any] = {}
        async with request.form() as form:
            for key in form:
                values = [v for v in form.getlist(key) if isinstance(v, str)]
                if key in _LIST_FIELDS:
                    body[key] = [_form_scalar(v) for v in values]
                elif values:
                    body[key] = _form_scalar(values[-1])
        return body
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("body: not valid JSON") from None
    if not isinstance(value, dict):
        raise bad_request("body: must be a JSON object")
    return value


def _form_scalar(text: str) -> Any:
    """Form values are text; numbers and booleans are read as such (listmonk does the same)."""
    if text.isdigit():
        return int(text)
    if text in ("true", "false"):
        return text == "true"
    return text


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
