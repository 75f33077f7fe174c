"""The suppression list as CSV: the columns written on export and how imported rows are read.

Both `GET /api/suppressions?format=csv` and `stmails suppressions export|import` use this
module, so the file a user exports is one they can import again.

Export columns: `CSV_COLUMNS` (cells that a spreadsheet would run as formulas are neutralized,
see `services.csvexport`). Import: a header row is required; column names are compared
case-insensitively; unknown columns are ignored; `email` is a synonym of `recipient`; each row
becomes the dict `suppression.parse_entry` reads (`import_row`). An exported file imports again
as it is.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from hashlib import sha256
from typing import Any

from sqlalchemy.orm import Session

from stmails.services import suppression
from stmails.services.csvexport import csv_lines
from stmails.services.errors import InputError

CSV_COLUMNS = [
    "recipient",
    "email_hash",
    "domain",
    "scope",
    "list_id",
    "reason",
    "source",
    "description",
    "created_at",
    "expires_at",
]
# An imported file needs at least one of these columns to name what it suppresses.
TARGET_COLUMNS = frozenset({"recipient", "email", "domain", "email_hash"})


class CsvHeaderError(InputError):
    """The file's first row is not a header naming what the rows suppress."""

    def __init__(self) -> None:
        super().__init__(
            "the CSV needs a header row with a recipient, email, domain or email_hash column"
        )


def export_lines(
    session: Session,
    filters: suppression.SearchFilters,
    on_row: Callable[[], None] | None = None,
) -> Iterator[str]:
    """The header line then one CSV line per entry matching `filters` (`on_row` is called
    after each entry, e.g. to move a progress bar)."""

    def rows() -> Iterator[list[Any]]:
        for entry in suppression.iterate(session, filters):
            item = suppression.entry_to_dict(entry)
            yield [item[c] for c in CSV_COLUMNS]
            if on_row is not None:
                on_row()

    return csv_lines(CSV_COLUMNS, rows())


def read_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row of a CSV with a header row; keys lower-cased and
    stripped, cells stripped; rows whose cells are all empty are skipped. Nothing at all when
    the file is empty; CsvHeaderError when its header names none of `TARGET_COLUMNS` (raised
    before any row). csv.Error propagates (a malformed file)."""
    reader = csv.DictReader(lines)
    if not reader.fieldnames:
        return
    if not {name.strip().lower() for name in reader.fieldnames} & TARGET_COLUMNS:
        raise CsvHeaderError()
    for row in reader:
        cells = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        if any(cells.values()):
            yield reader.line_num, cells


def import_row(row: dict[str, str], reason: str, source: str) -> dict[str, str]:
    """The entry `suppression.parse_entry` reads from an imported row: `reason` and `source`
    filled in where the row leaves them empty, and the `email_hash` of an exported row dropped
    when it is the hash of the row's own address (an export carries both; a hash that does not
    match the address is kept, so that parse_entry refuses the row)."""
    out = {**row, "reason": row.get("reason") or reason, "source": row.get("source") or source}
    address = (out.get("recipient") or out.get("email") or "").strip().lower()
    given = (out.get("email_hash") or "").strip().lower()
    if address and given and sha256(address.encode("utf-8")).hexdigest() == given:
        out["email_hash"] = ""
    return out
