"""The Suppression list page (`/admin/suppression`): search, add one entry, paste many, upload a
CSV, remove. Every entry goes through the API's rules (`services.suppression.parse_entry` and
`upsert_many`, as `PUT /api/suppressions`): one bad line refuses the whole batch, naming it,
and nothing is written."""

from __future__ import annotations

import csv
import io
import logging
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from stmails.db.handles import Session
from stmails.db.models import SUPPRESSION_REASONS
from stmails.services import suppression, suppression_csv
from stmails.services.pages import Page
from stmails.web.admin.forms import form_fields, text
from stmails.web.admin.listing import page_links, with_query
from stmails.web.admin.pages import page, redirect, render_page, safe_next
from stmails.web.body import run_db
from stmails.web.deps import Viewer
from stmails.web.i18n import _

router = APIRouter()
log = logging.getLogger(__name__)

SUPPRESSION_PATH = "/admin/suppression"
UPLOAD_PATH = SUPPRESSION_PATH + "/upload"
PER_PAGE = 50
SOURCE = "admin"
# A pasted list (characters; within the server's 1 MiB body cap) or an uploaded CSV (bytes; its
# route has a larger cap, web.app): at most the API's batch of entries either way.
MAX_PASTE_CHARS = 500_000
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
SEARCH_FILTERS = ("query", "reason", "kind", "scope")
KINDS = ("address", "domain", "hash")


class EntryError(ValueError):
    """A form or line that cannot become an entry; the text says which and why."""


def _expiry(value: str) -> str:
    """The expiry date of a form (a day, UTC) as the API's ISO time; refuses a past day."""
    if not value:
        return ""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise EntryError(_("Expiry: not a date (YYYY-MM-DD).")) from None
    if day <= datetime.now(UTC).date():
        raise EntryError(_("Expiry: choose a day after today, or leave it empty for no expiry."))
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


def _raw(target: str, common: dict[str, str]) -> dict[str, str]:
    """An API entry for an address, a sha256 of one, or a domain (`@example.com` or
    `example.com`)."""
    target = target.strip()
    if len(target) == 64 and all(c in "0123456789abcdefABCDEF" for c in target):
        return {"email_hash": target, **common}
    key = "recipient" if "@" in target.lstrip("@") else "domain"
    return {key: target.lstrip("@") if key == "domain" else target, **common}


def _parse_all(raws: list[tuple[str, dict[str, str]]]) -> list[suppression.SuppressionInput]:
    """Every entry validated, or EntryError naming the first bad one (by its label)."""
    if not raws:
        raise EntryError(_("Give at least one address or domain."))
    if len(raws) > suppression.MAX_UPSERT:
        raise EntryError(_("At most %(max)d entries at once.") % {"max": suppression.MAX_UPSERT})
    parsed = []
    for label, raw in raws:
        try:
            parsed.append(suppression.parse_entry(raw))
        except suppression.SuppressionInputError as exc:
            raise EntryError(f"{label}: {exc}") from None
    return parsed


def _common(form: Any) -> dict[str, str]:
    reason = text(form, "reason", 40) or "manual"
    if reason not in SUPPRESSION_REASONS:
        raise EntryError(_("Reason: choose one of the list."))
    common = {
        "reason": reason,
        "source": SOURCE,
        "description": text(form, "description", 2000).strip(),
        "expires_at": _expiry(text(form, "expires", 20).strip()),
    }
    list_id = text(form, "list_id", 20).strip()
    if list_id:
        common["list_id"] = list_id
    return common


async def _listing(
    request: Request,
    viewer: Viewer,
    number: int,
    *,
    error: str = "",
    status_code: int = 200,
    values: dict[str, str] | None = None,
) -> Response:
    params = request.query_params
    search_values = {name: params.get(name, "")[:200] for name in SEARCH_FILTERS}
    if search_values["reason"] not in ("", *SUPPRESSION_REASONS):
        search_values["reason"] = ""
    if search_values["kind"] not in ("", *KINDS):
        search_values["kind"] = ""
    if search_values["scope"] not in ("", "global", "list"):
        search_values["scope"] = ""
    filters = suppression.SearchFilters(
        reason=search_values["reason"],
        kind=search_values["kind"],
        scope=search_values["scope"],
        query=search_values["query"].strip(),
    )

    def work(session: Session) -> Page[dict[str, Any]]:
        rows, total = suppression.search(
            session, filters, offset=(number - 1) * PER_PAGE, limit=PER_PAGE
        )
        return Page([suppression.entry_to_dict(r) for r in rows], total, number, PER_PAGE)

    found = await run_db(request, work)
    return render_page(
        request,
        "admin/suppression.html",
        viewer=viewer,
        section="suppression",
        title=_("Suppression list"),
        status_code=status_code,
        error=error,
        search=search_values,
        values=values or {},
        found=found,
        links=page_links(request, found),
        reasons=SUPPRESSION_REASONS,
        kinds=KINDS,
        export_url="/api/suppressions?"
        + with_query(request, page=None, format="csv").partition("?")[2],
    )


@router.get(SUPPRESSION_PATH, include_in_schema=False)
async def suppression_page(
    request: Request,
    viewer: Annotated[Viewer, page("suppressions:get")],
    number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
) -> Response:
    return await _listing(request, viewer, number)


async def _store(
    request: Request, viewer: Viewer, raws: list[tuple[str, dict[str, str]]], form: Any
) -> Response:
    try:
        parsed = _parse_all(raws)
    except EntryError as exc:
        values = {k: text(form, k, MAX_PASTE_CHARS) for k in ("target", "targets", "description")}
        return await _listing(request, viewer, 1, error=str(exc), status_code=400, values=values)
    count = await run_db(request, lambda s: suppression.upsert_many(s, parsed), write=True)
    log.info("admin %s added or updated %d suppressions", viewer.principal.username, count)
    # A form on another page (a bounce's "suppress this address") goes back there.
    back = text(form, "next", 2000)
    return redirect(
        request,
        safe_next(back) if back else SUPPRESSION_PATH,
        flash=("success", _("Entries added or updated: %(count)d.") % {"count": count}),
    )


@router.post(SUPPRESSION_PATH + "/add", include_in_schema=False)
async def add_one(
    request: Request, viewer: Annotated[Viewer, page("suppressions:manage")]
) -> Response:
    form = await form_fields(request)
    try:
        target = text(form, "target", 400).strip()
        raws = [(target or _("Address or domain"), _raw(target, _common(form)))] if target else []
    except EntryError as exc:
        return await _listing(request, viewer, 1, error=str(exc), status_code=400)
    return await _store(request, viewer, raws, form)


@router.post(SUPPRESSION_PATH + "/bulk", include_in_schema=False)
async def add_many(
    request: Request, viewer: Annotated[Viewer, page("suppressions:manage")]
) -> Response:
    """One address or domain a line (commas and semicolons separate too)."""
    form = await form_fields(request)
    pasted = text(form, "targets", MAX_PASTE_CHARS + 1)
    try:
        if len(pasted) > MAX_PASTE_CHARS:
            raise EntryError(_("The pasted text is too long."))
        common = _common(form)
        raws = []
        for number, line in enumerate(pasted.splitlines(), start=1):
            for item in line.replace(";", ",").split(","):
                if item.strip():
                    label = _("Line %(line)d") % {"line": number}
                    raws.append((label, _raw(item, common)))
    except EntryError as exc:
        return await _listing(request, viewer, 1, error=str(exc), status_code=400)
    return await _store(request, viewer, raws, form)


@router.post(UPLOAD_PATH, include_in_schema=False)
async def upload_csv(
    request: Request, viewer: Annotated[Viewer, page("suppressions:manage")]
) -> Response:
    """A CSV with a header row and the API's entry fields as columns (recipient or email,
    domain, email_hash, reason, scope, list_id, description, expires_at); the form's reason is
    the default of rows without one."""
    form = await form_fields(request)
    try:
        return await _upload(request, viewer, form)
    finally:
        # The upload's spooled file is ours to close (the form was read outside FastAPI's).
        await form.close()


async def _upload(request: Request, viewer: Viewer, form: Any) -> Response:
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile):
            raise EntryError(_("Choose a CSV file."))
        content = await upload.read(MAX_UPLOAD_BYTES + 1)
        if len(content) > MAX_UPLOAD_BYTES:
            raise EntryError(_("The file is larger than 2 MB."))
        try:
            decoded = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise EntryError(_("The file is not UTF-8 text.")) from None
        reason = text(form, "reason", 40) or "manual"
        if reason not in SUPPRESSION_REASONS:
            raise EntryError(_("Reason: choose one of the list."))
        no_header = _(
            "The CSV needs a header row with a recipient, email, domain or email_hash column."
        )
        if not decoded.strip():
            raise EntryError(no_header)
        # The CSV format of the API and the CLI (services.suppression_csv): a file exported
        # there is read here as it is.
        raws = []
        try:
            for line, row in suppression_csv.read_rows(io.StringIO(decoded)):
                raw = {**suppression_csv.import_row(row, reason, SOURCE), "source": SOURCE}
                raws.append((_("Row %(row)d") % {"row": line}, raw))
                if len(raws) > suppression.MAX_UPSERT:
                    break
        except suppression_csv.CsvHeaderError:
            raise EntryError(no_header) from None
    except (EntryError, csv.Error) as exc:
        return await _listing(request, viewer, 1, error=str(exc), status_code=400)
    return await _store(request, viewer, raws, form)


@router.post(SUPPRESSION_PATH + "/{entry_id}/remove", include_in_schema=False)
async def remove_entry(
    request: Request, viewer: Annotated[Viewer, page("suppressions:manage")], entry_id: int
) -> Response:
    removed = await run_db(request, lambda s: suppression.remove(s, entry_id), write=True)
    if not removed:
        return redirect(
            request, SUPPRESSION_PATH, flash=("error", _("That entry no longer exists."))
        )
    log.info("admin %s removed suppression %s", viewer.principal.username, entry_id)
    return redirect(request, SUPPRESSION_PATH, flash=("success", _("The entry was removed.")))
