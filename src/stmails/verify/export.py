"""Reading address lists and writing verification results as CSV or JSON.

Shared by the CLI and the API's bulk jobs. CSV cells that a spreadsheet would run as a formula
(starting with ``=``, ``+``, ``-``, ``@``, tab or CR) are neutralized with a leading quote.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any, TextIO

from stmails.verify.result import VerificationResult

__all__ = [
    "CSV_FIELDS",
    "csv_cell",
    "csv_line",
    "read_address_csv",
    "record_row",
    "result_row",
]

CSV_FIELDS = (
    "address",
    "result",
    "reasons",
    "syntax_valid",
    "normalized",
    "suggestion",
    "detail",
    "smtp_reply",
    "retry_after",
    "mx",
)
_HEADER_NAMES = ("email", "e-mail", "email_address", "address", "mail")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One CSV cell as text, neutralized when a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


class _LineBuffer:
    """A file-like sink that keeps the last text written (one CSV row at a time)."""

    text = ""

    def write(self, text: str) -> int:
        self.text = text
        return len(text)


_LINE = _LineBuffer()
# The line end must be the real one: the csv module quotes cells that contain its characters.
_LINE_WRITER = csv.writer(_LINE, lineterminator="\n")


def csv_line(row: list[str]) -> str:
    """One row as the ``csv`` module writes it, without the line end."""
    _LINE_WRITER.writerow(row)
    return _LINE.text[:-1]


def record_row(record: dict[str, Any]) -> list[str]:
    """The CSV row of a result record (``to_dict`` form), in :data:`CSV_FIELDS` order, with
    the lists joined by ``;``."""
    return [
        csv_cell(";".join(record[name]) if name in ("reasons", "mx") else record[name])
        for name in CSV_FIELDS
    ]


def result_row(result: VerificationResult) -> list[str]:
    """The CSV row of a result; the same as ``record_row(result.to_dict())``, built directly
    because bulk exports write one per address."""
    return [
        csv_cell(result.address),
        result.result.value,
        ";".join(result.reasons),
        "true" if result.syntax_valid else "false",
        csv_cell(result.normalized),
        csv_cell(result.suggestion),
        csv_cell(result.detail),
        csv_cell(result.smtp_reply),
        csv_cell(result.retry_after),
        csv_cell(";".join(result.mx)),
    ]


def read_address_csv(source: TextIO, column: str | None = None) -> Iterator[str]:
    """The addresses of a CSV file (or a plain list, one address per line).

    The column is ``column`` when given (a header name), else the first header named like an
    email column, else the first column of the first row that contains an ``@`` (a file
    without a header). Raises ``ValueError`` when a named column is absent.
    """
    reader = csv.reader(source)
    first = next(reader, None)
    if first is None:
        return
    index: int | None = None
    lowered = [cell.strip().lower() for cell in first]
    if column is not None:
        if column.strip().lower() not in lowered:
            raise ValueError(f"no column named {column!r} (columns: {', '.join(first)})")
        index = lowered.index(column.strip().lower())
    else:
        index = next((i for i, name in enumerate(lowered) if name in _HEADER_NAMES), None)
    if index is None:
        # No header: the data starts on the first row.
        index = next((i for i, cell in enumerate(first) if "@" in cell), 0)
        if index < len(first):
            yield first[index]
    for row in reader:
        if row:
            yield row[index] if index < len(row) else ""
