"""listmonk's response envelope (`{"data": ...}`), pagination parameters and JSON encoding."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, Query
from starlette.responses import Response

from stmails.web.errors import bad_request

# A query parameter that may be repeated (`?id=1&id=2`), as listmonk's clients send lists.
Repeated = Annotated[list[str] | None, Query()]

DEFAULT_PER_PAGE = 20
MAX_PAGE = 1_000_000_000


def _default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def json_bytes(payload: Any) -> bytes:
    """Encodes with orjson; datetimes come out as RFC 3339 with their offset."""
    return orjson.dumps(payload, default=_default, option=orjson.OPT_NON_STR_KEYS)


class JSONResponse(Response):
    """A JSON response encoded with orjson (the default class of every stmails route)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def data(payload: Any, status_code: int = 200) -> JSONResponse:
    """listmonk's success envelope: `{"data": payload}`."""
    return JSONResponse({"data": payload}, status_code=status_code)


def timestamp(value: datetime | None) -> str | None:
    """listmonk's timestamp format: ISO 8601 with microseconds and the UTC offset."""
    if value is None:
        return None
    if value.tzinfo is None:
        # Stored naive values are UTC (SQLite keeps no offset).
        return value.isoformat(timespec="microseconds") + "Z"
    return value.isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class Page:
    """One page request: `limit` is None for `per_page=all`."""

    page: int
    per_page: int | None

    @property
    def offset(self) -> int:
        return 0 if self.per_page is None else (self.page - 1) * self.per_page

    @property
    def limit(self) -> int | None:
        return self.per_page

    def envelope(
        self, results: list[Any], total: int, query: str = "", search: str = ""
    ) -> dict[str, Any]:
        """listmonk's paginated body: results, search, query, total, per_page, page."""
        return {
            "results": results,
            "search": search,
            "query": query,
            "total": total,
            "per_page": total if self.per_page is None else self.per_page,
            "page": self.page,
        }


def parse_page(page: str | None, per_page: str | None, max_per_page: int = 1000) -> Page:
    """Reads listmonk's `page` / `per_page` (a number or `all`); 400 naming the bad one."""
    number = 1
    if page not in (None, ""):
        try:
            number = int(page)
        except ValueError:
            raise bad_request("page: must be a positive integer") from None
        if number < 1 or number > MAX_PAGE:
            raise bad_request("page: must be a positive integer")
    if per_page in (None, ""):
        return Page(number, DEFAULT_PER_PAGE)
    if per_page.lower() == "all":
        return Page(1, None)
    try:
        size = int(per_page)
    except ValueError:
        raise bad_request("per_page: must be a positive integer or 'all'") from None
    if size < 1:
        raise bad_request("per_page: must be a positive integer or 'all'")
    return Page(number, min(size, max_per_page))


_TRUE = frozenset({"1", "t", "true"})
_FALSE = frozenset({"", "0", "f", "false"})


def parse_bool(value: str | None, name: str) -> bool:
    """A boolean query parameter as listmonk (Go's ParseBool) reads it: 1/t/true or 0/f/false
    in any case, absent is false; 400 naming `name` otherwise."""
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise bad_request(f"{name}: must be true or false")


def parse_order(order: str | None, default: str = "asc") -> str:
    """listmonk's `order`: asc or desc, any case; 400 otherwise."""
    if order is None or order == "":
        return default
    value = order.lower()
    if value not in ("asc", "desc"):
        raise bad_request("order: must be 'asc' or 'desc'")
    return value


@dataclass(frozen=True, slots=True)
class Listing:
    """listmonk's listing parameters, checked; `order_by` and `order` are "" when not given."""

    paging: Page
    order_by: str
    order: str


def listing_parameters(
    order_by: str = "",
    order: str | None = None,
    page: str | None = None,
    per_page: str | None = None,
) -> Listing:
    """Reads `order_by`, `order`, `page` and `per_page` (400 naming a bad one)."""
    return Listing(parse_page(page, per_page), order_by, parse_order(order, default=""))


# The dependency every listing route takes.
ListingParams = Annotated[Listing, Depends(listing_parameters)]
