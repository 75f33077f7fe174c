"""The suppression list's CSV format (services.suppression_csv), on the test database."""

from __future__ import annotations

import csv
import hashlib
import io

import pytest
from sqlalchemy.orm import Session

from stmails.services import suppression, suppression_csv
from stmails.services.errors import InputError


def test_rows_are_read_with_their_line_numbers_keys_lowered_and_cells_stripped() -> None:
    text = " Email ,Reason,EXTRA\n a@example.com , hard_bounce ,x\n,,\n\nb@example.com,,\n"
    assert list(suppression_csv.read_rows(io.StringIO(text))) == [
        (2, {"email": "a@example.com", "reason": "hard_bounce", "extra": "x"}),
        # The row of empty cells (line 3) and the blank line are skipped.
        (5, {"email": "b@example.com", "reason": "", "extra": ""}),
    ]
    assert list(suppression_csv.read_rows(io.StringIO(""))) == []


def test_defaults_fill_only_empty_reason_and_source() -> None:
    filled = suppression_csv.import_row({"email": "a@x.org", "reason": ""}, "import", "csv")
    assert filled == {"email": "a@x.org", "reason": "import", "source": "csv"}
    kept = suppression_csv.import_row({"reason": "complaint", "source": "api"}, "r", "s")
    assert kept == {"reason": "complaint", "source": "api"}


def test_an_address_hash_is_dropped_only_when_it_is_the_address_own() -> None:
    own = hashlib.sha256(b"a@x.org").hexdigest()
    row = suppression_csv.import_row({"recipient": " A@x.org", "email_hash": own}, "manual", "s")
    assert row["email_hash"] == "" and suppression.parse_entry(row).email == "a@x.org"
    other = suppression_csv.import_row(
        {"recipient": "a@x.org", "email_hash": "0" * 64}, "manual", "s"
    )
    with pytest.raises(suppression.SuppressionInputError, match="exactly one"):
        suppression.parse_entry(other)


def test_an_exported_file_imports_again_to_the_same_entries(session: Session) -> None:
    rows = [
        {"recipient": "a@example.com", "reason": "hard_bounce", "description": "=cmd|calc"},
        {"domain": "spam.example", "reason": "complaint"},
        {"recipient": "b@example.com", "list_id": "3", "reason": "unsubscribe"},
    ]
    suppression.upsert_many(session, [suppression.parse_entry(r) for r in rows])
    session.commit()
    counted: list[int] = []
    filters = suppression.SearchFilters()
    text = "".join(suppression_csv.export_lines(session, filters, lambda: counted.append(1)))
    assert len(counted) == 3
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == suppression_csv.CSV_COLUMNS
    # A cell a spreadsheet would run as a formula is neutralized.
    assert "'=cmd|calc" in text and ",=cmd" not in text

    def key(e: suppression.SuppressionInput) -> tuple[object, ...]:
        return (e.email, e.email_digest, e.domain, e.scope, e.list_id, e.reason)

    read = [
        suppression.parse_entry(suppression_csv.import_row(row, "import", "csv"))
        for _, row in suppression_csv.read_rows(io.StringIO(text))
    ]
    assert sorted(map(key, read), key=repr) == sorted(
        (key(suppression.parse_entry(r)) for r in rows), key=repr
    )
    assert {e.description for e in read} == {"'=cmd|calc", ""}


def test_a_header_naming_no_target_is_refused_before_any_row() -> None:
    rows = suppression_csv.read_rows(io.StringIO("a@example.com,hard_bounce\nb@x.org,\n"))
    with pytest.raises(suppression_csv.CsvHeaderError) as caught:
        next(rows)
    assert isinstance(caught.value, InputError)
