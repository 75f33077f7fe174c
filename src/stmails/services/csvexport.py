"""CSV export that is safe to open in a spreadsheet, written row by row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

# Spreadsheets treat a cell starting with one of these as a formula (or, for tab and carriage
# return, strip it and then look at the next character), so such cells are prefixed with a quote.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: Any) -> str:
    """The cell text for `value`, with a leading `'` when it would start a formula."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def csv_lines(header: list[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Yields the header line then one line per row, every cell neutralized."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([neutralize(cell) for cell in row])
        yield buffer.getvalue()


def csv_chunks(header: list[str], rows: Iterable[Iterable[Any]], size: int = 2000) -> Iterator[str]:
    """The text of `csv_lines`, `size` rows at a time: a large export streamed in few pieces."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    source = iter(rows)
    while True:
        # neutralize() but inline for what cannot start a formula, most cells of a large
        # export: non-negative numbers (the writer prints them as str() would) and ''.
        batch = [
            [
                cell
                if ((cell.__class__ is int or cell.__class__ is float) and cell >= 0) or cell == ""
                else neutralize(cell)
                for cell in row
            ]
            for row in islice(source, size)
        ]
        writer.writerows(batch)
        yield buffer.getvalue()
        if len(batch) < size:
            return
        buffer.seek(0)
        buffer.truncate()
