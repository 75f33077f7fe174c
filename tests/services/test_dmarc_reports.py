"""DMARC aggregate reports: reading XML, gzip and zip within budgets, refusing XML bombs and
archive bombs, storing once, and the per-domain, per-source summary."""

from __future__ import annotations

import gzip
import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from stmails.services import dmarc_reports
from stmails.services.dmarc_reports import MAX_XML_BYTES, ReportError, read_report

DATA = Path(__file__).resolve().parent.parent / "data" / "dmarc"
RECEIVER = (DATA / "rfc7489-receiver.xml").read_bytes()
NAMESPACED = (DATA / "dmarcbis-namespaced.xml").read_bytes()


def zipped(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "wrap",
    [lambda x: x, gzip.compress, lambda x: zipped(("report.xml", x))],
    ids=["xml", "gzip", "zip"],
)
def test_a_report_reads_the_same_from_xml_gzip_and_zip(wrap: object) -> None:
    assert callable(wrap)
    report = read_report(wrap(RECEIVER))
    assert (report.org_name, report.report_id, report.domain) == (
        "receiver.example", "rpt-2026-11-01-example.org", "example.org",
    )  # fmt: skip
    assert report.email == "noreply-dmarc@receiver.example"
    assert report.begin_at == datetime(2026, 11, 1, tzinfo=UTC)
    assert report.policy == {"p": "quarantine", "sp": "quarantine", "pct": "100", "adkim": "r",
                             "aspf": "r"}  # fmt: skip
    assert report.messages == 139
    first, second, third = report.records
    assert (first.source_ip, first.count, first.dkim_aligned, first.spf_aligned) == (
        "198.51.100.7", 120, True, True,
    )  # fmt: skip
    assert first.dkim_results == [{"domain": "example.org", "selector": "s2026", "result": "pass"}]
    assert (second.dkim_aligned, second.spf_aligned, second.envelope_from) == (False, True, "")
    assert (third.disposition, third.header_from) == ("quarantine", "example.org")
    assert third.reasons == [{"type": "local_policy", "comment": "arrived at a spam trap"}]


def test_a_namespaced_dmarcbis_report_reads_too() -> None:
    report = read_report(NAMESPACED)
    assert report.report_id == "bis-7"
    assert report.policy["np"] == "reject" and report.policy["adkim"] == "s"
    assert [r.source_ip for r in report.records] == ["198.51.100.7", "2001:db8::25"]
    assert report.records[1].header_from == "news.example.org"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<feedback><report_metadata><org_name>&lol3;</org_name></report_metadata></feedback>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE feedback [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<feedback><report_metadata><org_name>&x;</org_name></report_metadata></feedback>"""


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (BILLION_LAUGHS, "safe XML"),
        (EXTERNAL, "safe XML"),
        (b"<feedback><record>", "well-formed"),
        (b"<html><body>hi</body></html>", "<html>"),
        (b"%PDF-1.4", "expected XML, gzip or zip"),
        (RECEIVER.replace(b"<report_id>rpt-2026-11-01-example.org</report_id>", b""), "report_id"),
        (RECEIVER.replace(b"198.51.100.7", b"not-an-ip"), "source_ip"),
        (RECEIVER.replace(b"<count>120</count>", b"<count>-1</count>"), "count"),
        (RECEIVER.replace(b"1793491200", b"yesterday"), "Unix time"),
        (gzip.compress(RECEIVER)[:-20], "truncated"),
        (zipped(("a.xml", RECEIVER), ("b.xml", RECEIVER)), "holds 2"),
        (zipped(("inner.zip", zipped(("r.xml", RECEIVER)))), "another archive"),
        (b"\x1f\x8bnot gzip at all", "corrupt"),
    ],
)
def test_unusable_or_hostile_input_is_a_clear_error(data: bytes, words: str) -> None:
    with pytest.raises(ReportError, match=words):
        read_report(data)


def test_archive_bombs_stop_at_the_budget() -> None:
    # 40 MB of zeros compress to some 40 KB: decompression stops one byte past the budget.
    bomb = b"<feedback>" + b"\0" * (MAX_XML_BYTES + 1024)
    for packed in (gzip.compress(bomb, 9), zipped(("report.xml", bomb))):
        assert len(packed) < 200_000
        with pytest.raises(ReportError, match="larger than"):
            read_report(packed)


def test_the_record_budget_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dmarc_reports, "MAX_RECORDS", 2)
    with pytest.raises(ReportError, match="more than 2 records"):
        read_report(RECEIVER)


def test_a_report_is_stored_once_and_summarized_per_domain_and_source(session: Session) -> None:
    row, created = dmarc_reports.store(session, read_report(RECEIVER))
    assert created and row.messages == 139
    again, created_again = dmarc_reports.store(session, read_report(gzip.compress(RECEIVER)))
    assert (again.id, created_again) == (row.id, False)
    dmarc_reports.store(session, read_report(NAMESPACED), "mailbox")
    session.flush()
    summary = dmarc_reports.summary(session)
    assert [d["domain"] for d in summary] == ["example.org", "news.example.org"]
    main = summary[0]
    counted = ("messages", "dmarc_pass", "dmarc_fail", "dkim_failures", "spf_failures")
    assert [main[k] for k in counted] == [169, 165, 4, 19, 4]
    ours = main["sources"][0]
    assert (ours["source_ip"], ours["messages"], ours["reports"]) == ("198.51.100.7", 150, 2)
    assert main["failing_sources"] == ["203.0.113.50", "192.0.2.66"]
    forger = main["sources"][2]
    assert (forger["dmarc_fail"], forger["quarantined"]) == (4, 4)
    # A period filter keeps the reports whose period lies inside it.
    first_day = dmarc_reports.summary(
        session,
        since=datetime(2026, 11, 1, tzinfo=UTC),
        until=datetime(2026, 11, 2, tzinfo=UTC),
    )
    assert [(d["domain"], d["messages"]) for d in first_day] == [("example.org", 139)]
    only_news = dmarc_reports.summary(session, domain="NEWS.example.org")
    assert only_news[0]["sources"][0]["rejected"] == 2
    listed = dmarc_reports.list_reports(session, domain="example.org")
    assert [r.report_id for r in listed.results] == ["bis-7", "rpt-2026-11-01-example.org"]
    dmarc_reports.delete(session, row.id)
    session.flush()
    assert dmarc_reports.summary(session)[0]["messages"] == 30
