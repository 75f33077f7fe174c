"""The chunked CSV writer gives exactly the text of the line-by-line one, spreadsheet-safe."""

from __future__ import annotations

import pytest

from stmails.services.csvexport import csv_chunks, csv_lines

ROWS = [
    ["by_domain", "gmail.com", 12, 11, 0.5, None, True, False],
    ["by_reason", "=HYPERLINK(1)", -3, -0.25, float("nan"), "", "@x", "+1"],
    ["trend", "2026-09-01T00:00:00Z", 0, 0.0, 1e-07, 'a "quoted", cell', "\tTab", "-"],
    ["by_source", "mailbox", 10**18, 3.14159, None, "line\nbreak", "plain", "ok"],
    ["complaints_by_provider", "qq.com", 1, 2, 3, 4, 5, 6],
]
HEADER = ["section", "key", "a", "b", "c", "d", "e", "f"]


@pytest.mark.parametrize("size", [1, 2, 5, 1000])
def test_chunks_are_the_lines_joined(size: int) -> None:
    chunks = list(csv_chunks(HEADER, ROWS, size=size))
    assert "".join(chunks) == "".join(csv_lines(HEADER, ROWS))
    # One piece per `size` rows (the header rides with the first), never an empty one but
    # the last when the rows end on a boundary.
    assert len(chunks) == len(ROWS) // size + 1


def test_formula_cells_and_negative_numbers_are_neutralized() -> None:
    text = "".join(csv_chunks(HEADER, ROWS))
    assert "'=HYPERLINK(1)" in text
    assert ",'-3,'-0.25," in text
    assert ",'@x,'+1" in text
    assert ",'-\r\n" in text


def test_no_rows_gives_the_header() -> None:
    assert list(csv_chunks(HEADER, [])) == ["section,key,a,b,c,d,e,f\r\n"]
