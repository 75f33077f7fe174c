"""Paging links that keep a listing page's filters (the query string) from page to page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from stmails.services.pages import Page


@dataclass(frozen=True, slots=True)
class PageLinks:
    """Where the previous and next pages are (None at either end), and which page of how many
    this is."""

    number: int
    pages: int
    previous: str | None
    next: str | None


def with_query(request: Request, **changes: str | int | None) -> str:
    """This page's URL with the query parameters in `changes` replaced (None drops one)."""
    params = {k: v for k, v in request.query_params.items() if k not in changes}
    params.update({k: str(v) for k, v in changes.items() if v is not None})
    query = urlencode([(k, v) for k, v in params.items() if v != ""])
    return request.url.path + (f"?{query}" if query else "")


def page_links(request: Request, found: Page[Any]) -> PageLinks:
    """The paging links of `found`, keeping every other query parameter."""
    per_page = found.per_page or max(found.total, 1)
    pages = max((found.total + per_page - 1) // per_page, 1)
    return PageLinks(
        number=found.page,
        pages=pages,
        previous=with_query(request, page=found.page - 1) if found.page > 1 else None,
        next=with_query(request, page=found.page + 1) if found.page < pages else None,
    )
