"""The per-MTA detectors of the registry, each on our own small sample messages."""

from __future__ import annotations

from pathlib import Path

from stmails.core import BounceRecord, classify

DATA = Path(__file__).resolve().parent.parent / "data" / "core"


def summary(name: str) -> list[tuple[str, str, bool, str]]:
    found: list[BounceRecord] = classify((DATA / name).read_bytes())
    return [(r.recipient, r.reason, r.hard, r.detector) for r in found]


def test_mcafee_gateway_unknown_user_wording_is_userunknown_with_or_without_dsn_part() -> None:
    expected = [
        ("dora@dest.example", "userunknown", True, "mcafee"),
        ("erik@dest.example", "mailboxfull", False, "mcafee"),
    ]
    assert summary("mcafee-dsn.eml") == expected
    assert summary("mcafee-list.eml") == expected


def test_mail2000_report_unknown_user_after_acceptance_is_filtered() -> None:
    assert summary("x1-mail2000.eml") == [
        ("fumi@dest.example", "filtered", False, "x1"),
        ("gus@dest.example", "mailboxfull", False, "x1"),
    ]


def test_unable_to_deliver_report_unknown_user_after_acceptance_is_filtered() -> None:
    assert summary("x2-unable-to-deliver.eml") == [
        ("hana@dest.example", "filtered", False, "x2"),
        ("ivan@dest.example", "mailboxfull", False, "x2"),
    ]


def test_ezweb_account_statement_decides_and_spasign_ng_is_its_filter() -> None:
    raw = (DATA / "ezweb-disabled.eml").read_bytes()
    (disabled,) = classify(raw)
    assert (disabled.recipient, disabled.reason, disabled.hard, disabled.detector) == (
        "jun@ezweb.ne.jp",
        "suspend",
        False,
        "ezweb",
    )
    (refused,) = classify(b"X-SPASIGN: NG\n" + raw)
    assert (refused.reason, refused.hard) == ("filtered", False)
    # One signature alone (the subject) is not enough to claim the message.
    other = raw.replace(b"Postmaster@ezweb.ne.jp", b"postmaster@other.example")
    other = other.replace(b"lsean.ezweb.ne.jp", b"other.example")
    assert [r.detector for r in classify(other)] == ["generic"]
