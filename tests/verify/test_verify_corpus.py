"""The shared address-syntax corpus (581 cases written by others): accuracy under both policies."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from stmails.verify import OfflineVerifier, Policy, check_syntax, record_json
from stmails.verify.export import result_row


def _cases(shared_dir: Path) -> list[dict[str, Any]]:
    path = shared_dir / "corpus" / "address-syntax" / "expected.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    # Read as JSON: some addresses hold LF, CR or lone surrogates.
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _accuracy(cases: list[dict[str, Any]], policy: Policy, key: str) -> tuple[float, list[str]]:
    wrong = [c["address"] for c in cases if check_syntax(c["address"], policy).valid != c[key]]
    return 1 - len(wrong) / len(cases), wrong


def test_mailing_policy_accuracy_and_no_valid_address_rejected(shared_dir: Path) -> None:
    cases = _cases(shared_dir)
    assert len(cases) >= 500
    accuracy, wrong = _accuracy(cases, Policy.MAILING, "valid")
    rejected_valid = [
        c["address"] for c in cases if c["valid"] and not check_syntax(c["address"]).valid
    ]
    print(f"mailing policy accuracy {accuracy:.4f} over {len(cases)} cases; wrong: {wrong!r}")
    assert rejected_valid == []
    assert accuracy >= 0.998


def test_rfc5321_policy_accuracy(shared_dir: Path) -> None:
    cases = _cases(shared_dir)
    accuracy, wrong = _accuracy(cases, Policy.RFC5321, "valid_rfc5321")
    print(f"rfc5321 policy accuracy {accuracy:.4f} over {len(cases)} cases; wrong: {wrong!r}")
    assert accuracy >= 0.99


def test_bulk_fast_path_gives_the_same_records_as_the_full_path(shared_dir: Path) -> None:
    addresses = [c["address"] for c in _cases(shared_dir)]
    for policy in Policy:
        verifier = OfflineVerifier(policy)
        reference = [verifier.verify_full(a) for a in addresses]
        assert [verifier.verify(a) for a in addresses] == reference
        assert verifier.jsonl(addresses) == [record_json(r) for r in reference]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(result_row(r) for r in reference)
        # Some corpus addresses hold CR or LF, which the csv module quotes: compare whole text.
        assert "".join(line + "\n" for line in verifier.csv_lines(addresses)) == buffer.getvalue()
