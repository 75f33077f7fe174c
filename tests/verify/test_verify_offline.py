"""The offline verifier, its bulk fast path, the stdin stream and the `stmails verify` command."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from stmails.cli import commands  # noqa: F401  (registers the commands on the app)
from stmails.cli.main import app
from stmails.verify import (
    IntakePolicy,
    OfflineVerifier,
    Policy,
    Reason,
    Verdict,
    VerificationResult,
    record_json,
    verify_on_the_way_in,
)
from stmails.verify.export import result_row
from stmails.verify.offline import Outcomes

REPO = Path(__file__).resolve().parents[2]


def test_verdicts_and_reasons_of_the_offline_stages() -> None:
    verifier = OfflineVerifier()
    assert verifier.verify("john@example.com").result is Verdict.VALID
    role = verifier.verify("info@example.com")
    assert (role.result, role.reasons) == (Verdict.RISKY, (Reason.ROLE,))
    disposable = verifier.verify("sales@mailinator.com")
    assert disposable.result is Verdict.RISKY
    assert disposable.reasons == (Reason.DISPOSABLE, Reason.ROLE)
    typo = verifier.verify("Jane.Doe@hotmial.com")
    assert Reason.TYPO in typo.reasons
    assert typo.suggestion == "Jane.Doe@hotmail.com"
    bad = verifier.verify("jane@@example.com")
    assert (bad.result, bad.reasons, bad.syntax_valid) == (Verdict.INVALID, (Reason.SYNTAX,), False)
    assert bad.detail


def test_stages_can_be_switched_off() -> None:
    bare = OfflineVerifier(check_disposable=False, check_role=False, suggest_typos=False)
    assert bare.verify("info@mailinator.com").result is Verdict.VALID
    assert bare.verify("x@gmial.com").suggestion is None


def _csv_module_text(results: list[VerificationResult]) -> str:
    """What csv.writer makes of the result rows."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(result_row(r) for r in results)
    return buffer.getvalue()


_LOCAL = st.one_of(
    st.text(alphabet="abcXYZ09.+-_'é", min_size=0, max_size=70),
    st.sampled_from(["info", "Admin+news", "sales", "x" * 64, "x" * 65, "=cmd", "-x", "+1"]),
)
_DOMAIN = st.sampled_from(
    ["gmail.com", "gmial.com", "Mailinator.COM", "x.test", "bücher.example", "a", "-a.com",
     "xn--bcher-kva.example", "yy--0.com", "a.b", "", "[1.2.3.4]", "example.con"]
)  # fmt: skip


# No per-example deadline: the machine running the suite may be busy; correctness is the point.
@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.builds(lambda local, domain: f"{local}@{domain}", _LOCAL, _DOMAIN), st.text()),
        max_size=20,
    )
)
def test_the_fast_paths_give_exactly_what_the_full_path_gives(addresses: list[str]) -> None:
    for policy in Policy:
        verifier = OfflineVerifier(policy)
        reference = [verifier.verify_full(a) for a in addresses]
        assert [verifier.verify(a) for a in addresses] == reference
        outcomes: Outcomes = []
        assert verifier.jsonl(addresses, outcomes) == [record_json(r) for r in reference]
        assert outcomes == [(r.result, r.reasons) for r in reference]
        # Compare whole texts: a cell holding a line end is quoted across lines.
        lines = verifier.csv_lines(addresses)
        assert "".join(line + "\n" for line in lines) == _csv_module_text(reference)


def test_intake_gate_rejects_only_invalid_and_flags_risky() -> None:
    assert verify_on_the_way_in("john@example.com") == (True, ())
    assert verify_on_the_way_in("info@mailinator.com") == (True, ("disposable", "role"))
    assert verify_on_the_way_in("john@@example.com") == (False, ("syntax",))
    strict = IntakePolicy(reject=frozenset({Verdict.INVALID, Verdict.RISKY}))
    assert verify_on_the_way_in("info@example.com", strict) == (False, ("role",))
    assert verify_on_the_way_in('"x"@example.com', IntakePolicy(syntax=Policy.RFC5321))[0]


def test_the_jsonl_command_streams_every_line_in_order() -> None:
    lines = [b"john@example.com", b"broken@", b"\xff\xfe@example.com", b"", b"info@yopmail.com",
             b"j\xc3\xb6hn@b\xc3\xbccher.example", b"crlf@example.com\r"]  # fmt: skip
    payload = b"\n".join(lines) + b"\n"
    done = subprocess.run(
        [sys.executable, "-m", "stmails", "verify", "--offline", "--format", "jsonl", "-"],
        input=payload,
        capture_output=True,
        check=True,
        cwd=REPO,
    )
    records = [json.loads(line) for line in done.stdout.decode("ascii").splitlines()]
    assert [r["syntax_valid"] for r in records] == [True, False, False, False, True, True, True]
    assert [r["result"] for r in records] == [
        "valid", "invalid", "invalid", "invalid", "risky", "valid", "valid",
    ]  # fmt: skip
    assert records[0]["address"] == "john@example.com"
    assert records[5]["normalized"] == "jöhn@bücher.example"
    assert records[6]["address"] == "crlf@example.com"
    assert records[2]["address"] == "\udcff\udcfe@example.com"
    assert records[4]["reasons"] == ["disposable", "role"]
    assert all({"address", "result", "reasons", "syntax_valid"} <= set(r) for r in records)


def test_the_stream_handles_input_larger_than_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    from stmails.verify import stream

    addresses = [f"user{i}@example{i % 7}.com" for i in range(3000)]
    source = io.BytesIO("\n".join(addresses).encode())  # no final newline
    sink = io.BytesIO()
    monkeypatch.setattr(stream, "BLOCK_SIZE", 1000)
    count = stream.offline_jsonl_stream(source, sink, OfflineVerifier())
    records = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert count == 3000
    assert [r["address"] for r in records] == addresses


def test_file_to_csv_with_summary(tmp_path: Path) -> None:
    source = tmp_path / "list.csv"
    source.write_text("name,Email\nJohn,john@example.com\nEve,=evil@example.com\nX,x@gmial.con\n")
    out = tmp_path / "results.csv"
    result = CliRunner().invoke(
        app, ["verify", "--offline", "--file", str(source), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = out.read_text().splitlines()
    assert rows[0].startswith("address,result,reasons,syntax_valid")
    assert rows[1].startswith("john@example.com,valid,")
    # A cell a spreadsheet would evaluate is neutralized.
    assert rows[2].startswith("'=evil@example.com,valid")
    assert rows[3].startswith("x@gmial.con,risky,typo,true,x@gmial.con,x@gmail.com")
    assert "3 addresses" in result.output


def test_arguments_json_output_and_bad_options() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["verify", "--offline", "--format", "json", "admin@example.org"])
    assert result.exit_code == 0
    assert json.loads(result.output)["data"][0]["reasons"] == ["role"]
    assert runner.invoke(app, ["verify", "--offline", "--policy", "loose", "a@b.c"]).exit_code == 2
    assert runner.invoke(app, ["verify", "--offline"]).exit_code == 2
    missing = runner.invoke(app, ["verify", "--offline", "--file", "/nonexistent/list.csv"])
    assert missing.exit_code == 2


def test_csv_rows_from_results_and_from_stored_records_agree() -> None:
    from stmails.verify.export import record_row, result_row

    results = [
        OfflineVerifier().verify(a)
        for a in ("john@example.com", "+x@gmial.con", "broken", "info@mailinator.com")
    ]
    results.append(
        VerificationResult(
            address="jane@example.net",
            result=Verdict.UNKNOWN,
            reasons=(Reason.GREYLISTED,),
            syntax_valid=True,
            smtp_reply="451 4.7.1 try later",
            retry_after=120,
            mx=("mx1.example.net", "mx2.example.net"),
        )
    )
    for result in results:
        assert result_row(result) == record_row(result.to_dict())
    assert result_row(results[1])[0] == "'+x@gmial.con"
    assert result_row(results[-1])[-2:] == ["120", "mx1.example.net;mx2.example.net"]


def test_reading_address_columns_from_csv() -> None:
    from stmails.verify.export import read_address_csv

    def read(text: str, column: str | None = None) -> list[str]:
        return list(read_address_csv(io.StringIO(text), column))

    assert read("name,E-Mail\nA,a@x.com\nB,b@x.com\n") == ["a@x.com", "b@x.com"]
    # No header: the column is the first cell holding an @.
    assert read("A,a@x.com\nB,b@x.com\n") == ["a@x.com", "b@x.com"]
    assert read("a@x.com\nb@x.com\n") == ["a@x.com", "b@x.com"]
    assert read("who,work\nA,a@x.com\n", column="work") == ["a@x.com"]
    # A short row yields an empty address (reported invalid) instead of shifting the list.
    assert read("name,email\nA\nB,b@x.com\n") == ["", "b@x.com"]
    assert read("") == []
    with pytest.raises(ValueError, match="no column named"):
        read("name,email\n", column="mail_address")


def test_an_encoded_lone_surrogate_is_echoed_as_that_surrogate() -> None:
    from stmails.verify.stream import offline_jsonl_stream

    source = io.BytesIO("\ud800@test\n".encode("utf-8", "surrogatepass") + b"\xed\xa0@x.com\n")
    sink = io.BytesIO()
    offline_jsonl_stream(source, sink, OfflineVerifier())
    first, second = (json.loads(line) for line in sink.getvalue().splitlines())
    assert (first["address"], first["syntax_valid"]) == ("\ud800@test", False)
    assert (second["address"], second["syntax_valid"]) == ("\udced\udca0@x.com", False)
