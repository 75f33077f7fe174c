"""The Lists section: every list with its subscriber counts per subscription status; create,
edit (name, type, opt-in, tags, description, status) and delete, through services.lists as
`/api/lists` does."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from stmails.db.handles import Session
from stmails.db.models import LIST_OPTINS, LIST_STATUSES, LIST_TYPES, MailingList
from stmails.services import lists as list_service
from stmails.services.errors import InvalidInput, NotFound
from stmails.services.pages import Page
from stmails.web.admin.forms import form_fields, text
from stmails.web.admin.pages import page, redirect, render_page
from stmails.web.api.public_admin import snippet
from stmails.web.body import run_db
from stmails.web.deps import Viewer, app_state
from stmails.web.i18n import _

router = APIRouter()

BASE = "/admin/lists"
PER_PAGE = 50


def _labels() -> dict[str, str]:
    return {
        "public": _("public"),
        "private": _("private"),
        "temporary": _("temporary"),
        "single": _("single opt-in"),
        "double": _("double opt-in"),
        "active": _("active"),
        "archived": _("archived"),
    }


def _read(form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {
        "name": text(form, "name", 500).strip(),
        "type": text(form, "type", 20),
        "optin": text(form, "optin", 20),
        "status": text(form, "status", 20),
        "tags": text(form, "tags", 2000),
        "description": text(form, "description", 10_000),
    }
    errors: dict[str, str] = {}
    if not values["name"]:
        errors["name"] = _("Enter a name.")
    for key, allowed in (("type", LIST_TYPES), ("optin", LIST_OPTINS), ("status", LIST_STATUSES)):
        if values[key] not in allowed:
            errors[key] = _("Choose one of the options.")
    return values, errors


def _tags(values: dict[str, Any]) -> list[str]:
    return [t.strip()[:100] for t in str(values["tags"]).split(",") if t.strip()]


def _listing(
    request: Request,
    viewer: Viewer,
    found: Page[MailingList],
    counts: dict[int, list_service.ListCounts],
    search: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    return render_page(
        request,
        "admin/lists.html",
        viewer=viewer,
        section="lists",
        title=_("Lists"),
        found=found,
        counts=counts,
        search=search,
        labels=_labels(),
        options=_options(),
        values=values or {"type": "private", "optin": "single", "status": "active"},
        errors=errors or {},
        status_code=400 if errors else 200,
    )


def _options() -> dict[str, list[tuple[str, str]]]:
    labels = _labels()
    return {
        "type": [(v, labels[v]) for v in LIST_TYPES],
        "optin": [(v, labels[v]) for v in LIST_OPTINS],
        "status": [(v, labels[v]) for v in LIST_STATUSES],
    }


async def _load(
    request: Request, search: str, number: int
) -> tuple[Page[MailingList], dict[int, list_service.ListCounts]]:
    def work(session: Session) -> tuple[Page[MailingList], dict[int, list_service.ListCounts]]:
        found = list_service.list_lists(
            session, search=search, order_by="id", order="desc", page=number, per_page=PER_PAGE
        )
        return found, list_service.counts(session, [m.id for m in found.results])

    return await run_db(request, work)


@router.get(BASE, include_in_schema=False)
async def lists_page(
    request: Request,
    viewer: Annotated[Viewer, page("lists:get_all")],
    search: Annotated[str, Query(max_length=500)] = "",
    number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    found, counts = await _load(request, search.strip(), number)
    return _listing(request, viewer, found, counts, search.strip())


@router.post(BASE, include_in_schema=False)
async def create_list(
    request: Request, viewer: Annotated[Viewer, page("lists:manage_all")]
) -> Response:
    values, errors = _read(await form_fields(request))

    def work(session: Session) -> int:
        return list_service.create(
            session,
            name=values["name"],
            type=values["type"],
            optin=values["optin"],
            status=values["status"],
            tags=_tags(values),
            description=values["description"],
        ).id

    if not errors:
        try:
            new_id = await run_db(request, work, write=True)
        except InvalidInput as exc:
            errors = {exc.field if exc.field in values else "name": str(exc)}
        else:
            created = _("The list “%(name)s” was created.") % {"name": values["name"]}
            return redirect(request, f"{BASE}/{new_id}", flash=("success", created))
    found, counts = await _load(request, "", 1)
    return _listing(request, viewer, found, counts, "", values=values, errors=errors)


def _edit_page(
    request: Request,
    viewer: Viewer,
    mlist: MailingList,
    counts: list_service.ListCounts,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    return render_page(
        request,
        "admin/list_edit.html",
        viewer=viewer,
        section="lists",
        title=mlist.name,
        mlist=mlist,
        counts=counts,
        labels=_labels(),
        options=_options(),
        values=values
        or {
            "name": mlist.name,
            "type": mlist.type,
            "optin": mlist.optin,
            "status": mlist.status,
            "tags": ", ".join(mlist.tags),
            "description": mlist.description,
        },
        errors=errors or {},
        # A public list's sign-up form, to copy into a website (as `GET
        # /api/public/form-snippet` gives it), and the hosted form's address.
        form_snippet=snippet(_root(request), [mlist]) if mlist.type == "public" else "",
        hosted_form=f"{_root(request)}/subscription/form",
        status_code=400 if errors else 200,
    )


def _root(request: Request) -> str:
    return str(app_state(request).settings.root_url).rstrip("/")


def _not_found(request: Request, viewer: Viewer) -> Response:
    return render_page(
        request,
        "error.html",
        viewer=viewer,
        title="404",
        status_code=404,
        message=_("This list does not exist (any more)."),
    )


async def _one(
    request: Request, list_id: int
) -> tuple[MailingList, list_service.ListCounts] | None:
    def work(session: Session) -> tuple[MailingList, list_service.ListCounts]:
        mlist = list_service.get(session, list_id)
        return mlist, list_service.counts(session, [mlist.id])[mlist.id]

    try:
        return await run_db(request, work)
    except NotFound:
        return None


@router.get(BASE + "/{list_id}", include_in_schema=False)
async def list_page(
    request: Request, viewer: Annotated[Viewer, page("lists:get_all")], list_id: int
) -> Response:
    found = await _one(request, list_id)
    if found is None:
        return _not_found(request, viewer)
    return _edit_page(request, viewer, *found)


@router.post(BASE + "/{list_id}", include_in_schema=False)
async def save_list(
    request: Request, viewer: Annotated[Viewer, page("lists:manage_all")], list_id: int
) -> Response:
    values, errors = _read(await form_fields(request))

    def work(session: Session) -> None:
        list_service.update_list(
            session,
            list_service.get(session, list_id),
            name=values["name"],
            type=values["type"],
            optin=values["optin"],
            status=values["status"],
            tags=_tags(values),
            description=values["description"],
        )

    if not errors:
        try:
            await run_db(request, work, write=True)
        except NotFound:
            return _not_found(request, viewer)
        except InvalidInput as exc:
            errors = {exc.field if exc.field in values else "name": str(exc)}
        else:
            return redirect(
                request, f"{BASE}/{list_id}", flash=("success", _("The list was saved."))
            )
    found = await _one(request, list_id)
    if found is None:
        return _not_found(request, viewer)
    return _edit_page(request, viewer, *found, values=values, errors=errors)


@router.post(BASE + "/{list_id}/delete", include_in_schema=False)
async def delete_list(
    request: Request, viewer: Annotated[Viewer, page("lists:manage_all")], list_id: int
) -> Response:
    deleted = await run_db(request, lambda s: list_service.delete_lists(s, [list_id]), write=True)
    if not deleted:
        return _not_found(request, viewer)
    return redirect(request, BASE, flash=("success", _("The list was deleted.")))
