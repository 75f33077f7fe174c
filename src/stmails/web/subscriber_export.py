"""Subscribers as CSV, streamed (listmonk's `GET /api/subscribers/export` columns, then the
list-hygiene risk columns), for the API and the admin page's "Export CSV".

Rows are read in chunks along the primary key, each chunk in its own short read transaction,
so an export of 100k+ subscribers holds neither a long transaction nor the whole set in memory.
Cells that a spreadsheet would run as formulas are defused (web.csvexport).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from starlette.responses import StreamingResponse

from stmails.db.handles import Session
from stmails.db.models import SubscriberHygiene
from stmails.services import subscriber_pages
from stmails.services.hygiene import risk
from stmails.web.csvexport import csv_lines

HEADER = [
    "uuid",
    "email",
    "name",
    "attributes",
    "status",
    "created_at",
    "updated_at",
    # List hygiene (services.hygiene): empty until scored.
    "risk_score",
    "risk_level",
    "risk_factors",
]
CHUNK = 2000


def rows(
    sessions: Callable[[], Session], selection: subscriber_pages.Selection
) -> Iterator[list[Any]]:
    """The CSV rows of the subscribers `selection` matches, in id order."""
    after = 0
    while True:
        with sessions() as session:
            chunk = subscriber_pages.rows_after(session, selection, after, CHUNK)
            hygiene = risk.hygiene_of(session, [s.id for s in chunk])
            out = [
                [
                    s.uuid,
                    s.email,
                    s.name,
                    json.dumps(s.attribs, ensure_ascii=False),
                    s.status,
                    s.created_at.isoformat(),
                    s.updated_at.isoformat(),
                    *_risk_cells(hygiene.get(s.id)),
                ]
                for s in chunk
            ]
        yield from out
        if len(chunk) < CHUNK:
            return
        after = chunk[-1].id


def _risk_cells(row: SubscriberHygiene | None) -> list[Any]:
    if row is None or row.scored_at is None:
        return ["", "", ""]
    return [row.risk_score, row.risk_level, risk.factors_json(row.risk_factors)]


def response(
    sessions: Callable[[], Session], selection: subscriber_pages.Selection
) -> StreamingResponse:
    """The streamed download (check the selection before calling: errors after the first
    byte cannot become a 400)."""
    return StreamingResponse(
        csv_lines(HEADER, rows(sessions, selection)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'},
    )
