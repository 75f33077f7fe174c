"""DMARC aggregate reports (RUA, RFC 7489 appendix C and DMARCbis): read, store, summarize.

`read_report(data)` takes what a receiver mails (XML, gzip or zip) and returns an
`AggregateReport`, within budgets: the compressed input is capped by the caller, decompression
stops at `MAX_XML_BYTES`, a zip may hold one report, the XML is parsed by defusedxml (no DTD,
no entities, no external references: no XML bombs) as a stream whose finished records are
released, and a report holds at most `MAX_RECORDS` records. Anything else is a `ReportError`
naming what is wrong.

`store(session, report)` keeps a report once per (org_name, report_id), so a report mailed
twice or uploaded again is not counted twice. `summary(session, ...)` adds the records up per
From domain and per source IP: how many messages passed DMARC, and which sources fail DKIM or
SPF alignment (the sources to fix, or the ones forging the domain).
"""

from __future__ import annotations

import io
import ipaddress
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, iterparse
from sqlalchemy import Integer, case, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stmails.db.models import DmarcRecord, DmarcReport
from stmails.services.errors import InvalidInput, NotFound
from stmails.services.pages import Page, check_paging

__all__ = [
    "MAX_RECORDS",
    "MAX_XML_BYTES",
    "AggregateReport",
    "ReportError",
    "ReportRecord",
    "delete",
    "get",
    "list_reports",
    "read_report",
    "records_of",
    "store",
    "summary",
]

# The decompressed XML of one report; the largest real reports (big receivers, a busy day)
# are a few megabytes.
MAX_XML_BYTES = 32 * 1024 * 1024
MAX_RECORDS = 100_000
# Source IPs listed per domain in a summary (the busiest first).
MAX_SOURCES = 1000
_GZIP = b"\x1f\x8b"
_ZIP = b"PK\x03\x04"


class ReportError(ValueError):
    """Input that is not a usable DMARC aggregate report; the message says why."""


@dataclass
class ReportRecord:
    """One `<record>`: `count` messages from `source_ip` and what the receiver found."""

    source_ip: str
    count: int
    disposition: str
    dkim_aligned: bool
    spf_aligned: bool
    header_from: str
    envelope_from: str = ""
    dkim_results: list[dict[str, str]] = field(default_factory=list)
    spf_results: list[dict[str, str]] = field(default_factory=list)
    reasons: list[dict[str, str]] = field(default_factory=list)


@dataclass
class AggregateReport:
    """A parsed aggregate report: who sent it, for which domain and period, under which policy."""

    org_name: str
    report_id: str
    email: str
    domain: str
    begin_at: datetime
    end_at: datetime
    policy: dict[str, str]
    records: list[ReportRecord]

    @property
    def messages(self) -> int:
        """Messages the report covers."""
        return sum(r.count for r in self.records)


def extract_xml(data: bytes) -> bytes:
    """The report's XML from XML, gzip or zip bytes, at most MAX_XML_BYTES once decompressed."""
    head = data.lstrip()[:8]
    if data.startswith(_GZIP):
        return _gunzip(data)
    if data.startswith(_ZIP):
        return _unzip(data)
    if head.startswith((b"<", b"\xef\xbb\xbf<")):
        if len(data) > MAX_XML_BYTES:
            raise ReportError(f"the report is larger than {MAX_XML_BYTES} bytes")
        return data
    raise ReportError("not a DMARC aggregate report: expected XML, gzip or zip")


def _gunzip(data: bytes) -> bytes:
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        xml = decompressor.decompress(data, MAX_XML_BYTES + 1)
    except zlib.error as exc:
        raise ReportError(f"the gzip data is corrupt ({exc})") from None
    if len(xml) > MAX_XML_BYTES:
        raise ReportError(f"the report is larger than {MAX_XML_BYTES} bytes once decompressed")
    if not decompressor.eof:
        raise ReportError("the gzip data is truncated")
    return xml


def _unzip(data: bytes) -> bytes:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) != 1:
            raise ReportError(f"a zipped report holds one file; this one holds {len(members)}")
        with archive.open(members[0]) as stream:
            # The size in the header can lie: read one byte past the budget, whatever it says.
            xml = stream.read(MAX_XML_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, OSError) as exc:
        raise ReportError(f"the zip data is unusable ({exc})") from None
    if len(xml) > MAX_XML_BYTES:
        raise ReportError(f"the report is larger than {MAX_XML_BYTES} bytes once decompressed")
    if xml.startswith((_GZIP, _ZIP)):
        raise ReportError("a zipped report must hold the XML itself, not another archive")
    return xml


def _local(tag: str) -> str:
    # DMARCbis reports carry a namespace; RFC 7489 ones do not.
    return tag.rpartition("}")[2]


def _child(element: Element | None, *path: str) -> Element | None:
    for name in path:
        if element is None:
            return None
        element = next((c for c in element if _local(c.tag) == name), None)
    return element


def _text(element: Element | None, *path: str, limit: int = 255) -> str:
    found = _child(element, *path)
    return (found.text or "").strip()[:limit] if found is not None else ""


def _children(element: Element | None, name: str) -> list[Element]:
    return [c for c in element or () if _local(c.tag) == name]


def _timestamp(element: Element | None, name: str) -> datetime:
    text = _text(element, "date_range", name)
    try:
        return datetime.fromtimestamp(int(text), UTC)
    except (ValueError, OverflowError, OSError):
        raise ReportError(
            f"report_metadata/date_range/{name} is not a Unix time: {text!r}"
        ) from None


def _record(element: Element) -> ReportRecord:
    row = _child(element, "row")
    source = _text(row, "source_ip", limit=64)
    try:
        source_ip = str(ipaddress.ip_address(source))
    except ValueError:
        raise ReportError(f"record/row/source_ip is not an IP address: {source!r}") from None
    count_text = _text(row, "count", limit=20)
    if not count_text.isdigit():
        raise ReportError(f"record/row/count is not a count: {count_text!r}")
    evaluated = _child(row, "policy_evaluated")
    header_from = _text(element, "identifiers", "header_from", limit=253).lower().rstrip(".")
    if not header_from:
        raise ReportError("record/identifiers/header_from is missing")
    auth = _child(element, "auth_results")
    return ReportRecord(
        source_ip=source_ip,
        count=int(count_text),
        disposition=_text(evaluated, "disposition", limit=16) or "none",
        dkim_aligned=_text(evaluated, "dkim").lower() == "pass",
        spf_aligned=_text(evaluated, "spf").lower() == "pass",
        header_from=header_from,
        envelope_from=_text(element, "identifiers", "envelope_from", limit=253).lower(),
        dkim_results=[
            {
                "domain": _text(d, "domain"),
                "selector": _text(d, "selector"),
                "result": _text(d, "result", limit=32),
            }
            for d in _children(auth, "dkim")[:20]
        ],
        spf_results=[
            {
                "domain": _text(s, "domain"),
                "scope": _text(s, "scope", limit=16),
                "result": _text(s, "result", limit=32),
            }
            for s in _children(auth, "spf")[:20]
        ],
        reasons=[
            {"type": _text(r, "type", limit=64), "comment": _text(r, "comment", limit=500)}
            for r in _children(evaluated, "reason")[:20]
        ],
    )


def _elements(xml: bytes) -> Iterator[tuple[str, Element]]:
    """(event, element) pairs of a streaming parse that forbids DTDs, entities and external
    references; ReportError for malformed or forbidden XML."""
    try:
        yield from iterparse(
            io.BytesIO(xml),
            events=("start", "end"),
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        )
    except (ParseError, DefusedXmlException) as exc:
        raise ReportError(f"the report is not well-formed or safe XML ({exc})") from None


def read_report(data: bytes) -> AggregateReport:
    """The aggregate report in `data` (XML, gzip or zip); ReportError when it is not one."""
    xml = extract_xml(data)
    root: Element | None = None
    metadata: Element | None = None
    published: Element | None = None
    records: list[ReportRecord] = []
    for event, element in _elements(xml):
        name = _local(element.tag)
        if event == "start":
            if root is None:
                root = element
                if name != "feedback":
                    raise ReportError(f"the root element is <{name}>, not <feedback>")
            continue
        if name == "report_metadata":
            metadata = element
        elif name == "policy_published":
            published = element
        elif name == "record":
            if len(records) >= MAX_RECORDS:
                raise ReportError(f"the report has more than {MAX_RECORDS} records")
            records.append(_record(element))
            # Records are kept as dataclasses; the parsed elements go (the root holds a few
            # children at any time, so the membership test is cheap).
            element.clear()
            if root is not None and any(child is element for child in root):
                root.remove(element)
    if root is None:
        raise ReportError("the report is empty")
    org_name = _text(metadata, "org_name")
    report_id = _text(metadata, "report_id")
    domain = _text(published, "domain", limit=253).lower().rstrip(".")
    for value, where in [
        (org_name, "report_metadata/org_name"),
        (report_id, "report_metadata/report_id"),
        (domain, "policy_published/domain"),
    ]:
        if not value:
            raise ReportError(f"{where} is missing")
    policy = {
        tag: _text(published, tag, limit=16)
        for tag in ("p", "sp", "pct", "adkim", "aspf", "np", "fo")
        if _text(published, tag)
    }
    return AggregateReport(
        org_name=org_name,
        report_id=report_id,
        email=_text(metadata, "email", limit=320),
        domain=domain,
        begin_at=_timestamp(metadata, "begin"),
        end_at=_timestamp(metadata, "end"),
        policy=policy,
        records=records,
    )


def _existing(session: Session, org_name: str, report_id: str) -> DmarcReport | None:
    return session.scalar(
        select(DmarcReport).where(
            DmarcReport.org_name == org_name, DmarcReport.report_id == report_id
        )
    )


def store(
    session: Session, report: AggregateReport, source: str = "upload"
) -> tuple[DmarcReport, bool]:
    """Stores `report` with its records; (row, True) when new, (the stored row, False) when a
    report with the same org_name and report_id is already there. The caller commits."""
    found = _existing(session, report.org_name, report.report_id)
    if found is not None:
        return found, False
    row = DmarcReport(
        org_name=report.org_name,
        report_id=report.report_id,
        email=report.email,
        domain=report.domain,
        begin_at=report.begin_at,
        end_at=report.end_at,
        policy=report.policy,
        messages=report.messages,
        source=source,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        # The same report arrived through another request at the same moment.
        found = _existing(session, report.org_name, report.report_id)
        if found is None:
            raise
        return found, False
    if not report.records:
        return row, True
    session.execute(
        insert(DmarcRecord),
        [
            {
                "report_id": row.id,
                "source_ip": r.source_ip,
                "count": r.count,
                "disposition": r.disposition,
                "dkim_aligned": r.dkim_aligned,
                "spf_aligned": r.spf_aligned,
                "header_from": r.header_from,
                "envelope_from": r.envelope_from,
                "dkim_results": r.dkim_results,
                "spf_results": r.spf_results,
                "reasons": r.reasons,
            }
            for r in report.records
        ],
    )
    return row, True


def get(session: Session, report_id: int) -> DmarcReport:
    """The stored report `report_id`; NotFound without."""
    found = session.get(DmarcReport, report_id)
    if found is None:
        raise NotFound("DMARC report not found")
    return found


def records_of(session: Session, report_id: int) -> list[DmarcRecord]:
    """The records of a stored report, the most messages first."""
    return list(
        session.scalars(
            select(DmarcRecord)
            .where(DmarcRecord.report_id == report_id)
            .order_by(DmarcRecord.count.desc(), DmarcRecord.id)
        )
    )


def delete(session: Session, report_id: int) -> None:
    """Deletes a stored report and its records (a wrong upload can be undone)."""
    session.delete(get(session, report_id))


def list_reports(
    session: Session, *, domain: str | None = None, page: int = 1, per_page: int = 50
) -> Page[DmarcReport]:
    """Stored reports, the newest period first, optionally of one policy domain."""
    check_paging(page, per_page)
    query = select(DmarcReport)
    if domain:
        query = query.where(DmarcReport.domain == domain.lower())
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(DmarcReport.begin_at.desc(), DmarcReport.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return Page(list(rows), int(total), page, per_page)


def _sum_when(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, DmarcRecord.count), else_=0)), 0)


def summary(
    session: Session,
    *,
    domain: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Per From domain and source IP, over the reports whose period lies in [since, until]:
    messages, DMARC passes (DKIM or SPF aligned), DKIM- and SPF-aligned messages, and the
    failures of each. Domains and sources come the most messages first."""
    if since is not None and until is not None and since > until:
        raise InvalidInput("from", "must not be after to")
    messages = func.coalesce(func.sum(DmarcRecord.count), 0)
    passed = _sum_when(DmarcRecord.dkim_aligned.is_(True) | DmarcRecord.spf_aligned.is_(True))
    dkim = _sum_when(DmarcRecord.dkim_aligned.is_(True))
    spf = _sum_when(DmarcRecord.spf_aligned.is_(True))
    rejected = _sum_when(DmarcRecord.disposition == "reject")
    quarantined = _sum_when(DmarcRecord.disposition == "quarantine")
    query = (
        select(
            DmarcRecord.header_from,
            DmarcRecord.source_ip,
            messages.label("messages"),
            passed.label("passed"),
            dkim.label("dkim"),
            spf.label("spf"),
            rejected.label("rejected"),
            quarantined.label("quarantined"),
            func.count(func.distinct(DmarcRecord.report_id)).cast(Integer).label("reports"),
        )
        .join(DmarcReport, DmarcReport.id == DmarcRecord.report_id)
        .group_by(DmarcRecord.header_from, DmarcRecord.source_ip)
    )
    if domain:
        query = query.where(DmarcRecord.header_from == domain.lower())
    if since is not None:
        query = query.where(DmarcReport.begin_at >= since)
    if until is not None:
        query = query.where(DmarcReport.end_at <= until)
    domains: dict[str, dict[str, Any]] = {}
    for row in session.execute(query):
        total, ok, dkim_ok, spf_ok = (int(v) for v in (row.messages, row.passed, row.dkim, row.spf))
        source = {
            "source_ip": row.source_ip,
            "messages": total,
            "dmarc_pass": ok,
            "dmarc_fail": total - ok,
            "dkim_aligned": dkim_ok,
            "dkim_failures": total - dkim_ok,
            "spf_aligned": spf_ok,
            "spf_failures": total - spf_ok,
            "rejected": int(row.rejected),
            "quarantined": int(row.quarantined),
            "reports": int(row.reports),
        }
        entry = domains.setdefault(
            row.header_from,
            {"domain": row.header_from, "messages": 0, "dmarc_pass": 0, "dmarc_fail": 0,
             "dkim_aligned": 0, "dkim_failures": 0, "spf_aligned": 0, "spf_failures": 0,
             "sources": []},
        )  # fmt: skip
        for name in ("messages", "dmarc_pass", "dmarc_fail", "dkim_aligned", "dkim_failures",
                     "spf_aligned", "spf_failures"):  # fmt: skip
            entry[name] += source[name]
        entry["sources"].append(source)
    result = sorted(domains.values(), key=lambda d: (-d["messages"], d["domain"]))
    for entry in result:
        entry["sources"].sort(key=lambda s: (-s["messages"], s["source_ip"]))
        entry["failing_sources"] = [
            s["source_ip"] for s in entry["sources"] if s["dkim_failures"] or s["spf_failures"]
        ][:MAX_SOURCES]
        entry["sources"] = entry["sources"][:MAX_SOURCES]
    return result
