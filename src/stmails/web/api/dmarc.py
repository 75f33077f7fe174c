"""DMARC aggregate reports: upload, list, read, delete, and the summary per domain and source.

- `POST /api/dmarc/reports`: the report as the body (XML, gzip or zip, as receivers mail it)
  or as a multipart `file`. `{"data": {"id", "duplicate", "report"}}`; a report already stored
  (same org_name and report_id) answers `duplicate: true` and is not stored again.
- `GET /api/dmarc/reports?domain=&page=&per_page=`: stored reports, newest period first.
- `GET /api/dmarc/reports/{id}`: one report with its records.
- `DELETE /api/dmarc/reports/{id}`: removes a report (undo a wrong upload).
- `GET /api/dmarc/summary?domain=&from=&to=`: per From domain and source IP, messages that
  passed DMARC and those failing DKIM or SPF alignment (`from`/`to`: ISO 8601 timestamps).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from stmails.db.handles import Session
from stmails.db.models import DmarcRecord, DmarcReport
from stmails.ingest.native import parse_timestamp
from stmails.services import dmarc_reports
from stmails.services.dmarc_reports import ReportError
from stmails.web.body import run_db
from stmails.web.deps import require_user
from stmails.web.errors import bad_request
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, ListingParams, data, timestamp

router = APIRouter(tags=["dmarc"], dependencies=[Depends(require_user)])

# A compressed report is far smaller; 10 MB of upload allows large uncompressed XML reports.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
UPLOAD_PATH = "/api/dmarc/reports"


def report_view(report: DmarcReport) -> dict[str, Any]:
    """A stored report's header as the API shows it."""
    return {
        "id": report.id,
        "org_name": report.org_name,
        "report_id": report.report_id,
        "email": report.email,
        "domain": report.domain,
        "begin_at": timestamp(report.begin_at),
        "end_at": timestamp(report.end_at),
        "policy": report.policy,
        "messages": report.messages,
        "source": report.source,
        "received_at": timestamp(report.received_at),
    }


def record_view(record: DmarcRecord) -> dict[str, Any]:
    """One record of a report as the API shows it."""
    return {
        "source_ip": record.source_ip,
        "count": record.count,
        "disposition": record.disposition,
        "dkim_aligned": record.dkim_aligned,
        "spf_aligned": record.spf_aligned,
        "header_from": record.header_from,
        "envelope_from": record.envelope_from,
        "dkim": record.dkim_results,
        "spf": record.spf_results,
        "reasons": record.reasons,
    }


async def _upload(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=5) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise bad_request("file: required (the report file)")
            return await upload.read(MAX_UPLOAD_BYTES + 1)
    return await request.body()


@router.post(
    "/dmarc/reports",
    dependencies=[require_permission("domains:manage")],
    summary="Upload a DMARC aggregate report (XML, gzip or zip)",
)
async def upload_report(request: Request) -> JSONResponse:
    raw = await _upload(request)
    if not raw:
        raise bad_request("body: the report is empty")
    try:
        report = await run_in_threadpool(dmarc_reports.read_report, raw)
    except ReportError as exc:
        raise bad_request(f"report: {exc}") from None

    def work(session: Session) -> dict[str, Any]:
        row, created = dmarc_reports.store(session, report, "upload")
        session.flush()
        return {"id": row.id, "duplicate": not created, "report": report_view(row)}

    return data(await run_db(request, work, write=True))


@router.get(
    "/dmarc/reports",
    dependencies=[require_permission("domains:get")],
    summary="Stored DMARC aggregate reports",
)
async def list_reports(request: Request, listing: ListingParams) -> JSONResponse:
    domain = request.query_params.get("domain", "").strip() or None
    paging = listing.paging

    def work(session: Session) -> dict[str, Any]:
        found = dmarc_reports.list_reports(
            session, domain=domain, page=paging.page, per_page=paging.per_page or 1000
        )
        return paging.envelope([report_view(r) for r in found.results], found.total)

    return data(await run_db(request, work))


@router.get(
    "/dmarc/reports/{report_id}",
    dependencies=[require_permission("domains:get")],
    summary="One DMARC aggregate report with its records",
)
async def get_report(request: Request, report_id: int) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        report = dmarc_reports.get(session, report_id)
        records = dmarc_reports.records_of(session, report_id)
        return {**report_view(report), "records": [record_view(r) for r in records]}

    return data(await run_db(request, work))


@router.delete(
    "/dmarc/reports/{report_id}",
    dependencies=[require_permission("domains:manage")],
    summary="Delete a DMARC aggregate report",
)
async def delete_report(request: Request, report_id: int) -> JSONResponse:
    def work(session: Session) -> bool:
        dmarc_reports.delete(session, report_id)
        return True

    return data(await run_db(request, work, write=True))


def _time(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        raise bad_request(f"{name}: not an ISO 8601 timestamp") from None


@router.get(
    "/dmarc/summary",
    dependencies=[require_permission("domains:get")],
    summary="DMARC results per domain and source IP",
)
async def get_summary(request: Request) -> JSONResponse:
    domain = request.query_params.get("domain", "").strip() or None
    since, until = _time(request, "from"), _time(request, "to")

    def work(session: Session) -> list[dict[str, Any]]:
        return dmarc_reports.summary(session, domain=domain, since=since, until=until)

    return data(await run_db(request, work))
