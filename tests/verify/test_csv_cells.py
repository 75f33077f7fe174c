"""Issue 11: every cell of the verification CSV that comes from outside is neutralized, the
`mx` hosts included (a domain's owner chooses its MX names)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from stmails.cli import commands  # noqa: F401  (registers the commands on the app)
from stmails.cli.main import app
from stmails.verify.export import CSV_FIELDS, record_row, result_row
from stmails.verify.result import Verdict, VerificationResult

FORMULA_MX = ('=HYPERLINK("http://evil.example")', "mx.example.net")


def test_mx_cells_are_neutralized_in_both_row_builders() -> None:
    result = VerificationResult("a@example.net", Verdict.VALID, syntax_valid=True, mx=FORMULA_MX)
    rows = [result_row(result), record_row(json.loads(json.dumps(result.to_dict())))]
    for row in rows:
        mx = row[CSV_FIELDS.index("mx")]
        assert mx.startswith("'="), row
    assert rows[0] == rows[1]


def test_the_command_writes_neutralized_cells(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("email\n=cmd@example.net\n-2+3@example.net\n")
    out = tmp_path / "out.csv"
    done = CliRunner().invoke(
        app, ["verify", "--offline", "--file", str(source), "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    rows = list(csv.reader(io.StringIO(out.read_text())))
    cells = [cell for row in rows[1:] for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells), rows
