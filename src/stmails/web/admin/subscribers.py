"""The Subscribers section: search and listmonk's query, keyset paging, bulk actions with a
confirmation step, the subscriber page (attributes, lists, bounces, activity, verification,
suppression), create and edit, and CSV export.

The filters are the API's (`GET /api/subscribers`): `search` (part of the name or address),
`query` (listmonk's SQL-like expression, parsed by services.subscriber_query, needing
subscribers:sql_query), `list_id` and `subscription_status`. Paging walks the primary key
(services.subscriber_pages), so a screen costs the same on the first and the thousandth page.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from stmails.db.handles import Session
from stmails.db.models import (
    SUBSCRIBER_STATUSES,
    SUBSCRIPTION_STATUSES,
    MailingList,
    Subscriber,
    SubscriberHygiene,
)
from stmails.services import bounces as bounce_service
from stmails.services import intake, subscriber_pages
from stmails.services import lists as list_service
from stmails.services import subscribers as subscriber_service
from stmails.services import suppression as suppression_service
from stmails.services.analytics import listmonk as listmonk_analytics
from stmails.services.bounces import BounceFilter
from stmails.services.errors import Conflict, InvalidInput, NotFound
from stmails.services.hygiene import risk
from stmails.services.subscriber_query import QueryError, query_deadline
from stmails.verify.jobs import TooManyAddresses, TooManyJobs
from stmails.web import subscriber_export
from stmails.web.admin.forms import form_fields, text
from stmails.web.admin.pages import PageForbidden, can, page, redirect, render_page
from stmails.web.body import run_db
from stmails.web.deps import Viewer, app_state
from stmails.web.i18n import _
from stmails.web.list_scope import manageable, scoped

router = APIRouter()

BASE = "/admin/subscribers"
SCREEN = 50
BULK_ACTIONS = ("add", "remove", "unsubscribe", "blocklist", "delete", "verify")
ATTRIBS_MAX = 100_000


@dataclass(frozen=True, slots=True)
class Filters:
    """The filters of the listing (also carried by bulk actions and the export)."""

    search: str = ""
    query: str = ""
    list_id: int | None = None
    subscription_status: str = ""

    def params(self) -> dict[str, str]:
        """The non-empty filters as query parameters."""
        out = {"search": self.search, "query": self.query}
        if self.list_id is not None:
            out["list_id"] = str(self.list_id)
        out["subscription_status"] = self.subscription_status
        return {k: v for k, v in out.items() if v}

    def url(self, path: str = BASE, **extra: str) -> str:
        """`path` with these filters (and `extra`) as its query string."""
        params = {**self.params(), **{k: v for k, v in extra.items() if v}}
        return f"{path}?{urlencode(params)}" if params else path

    def selection(self) -> subscriber_pages.Selection:
        """These filters as the services' selection (which parses the query)."""
        return subscriber_pages.Selection(
            query=self.query,
            search=self.search,
            list_ids=(self.list_id,) if self.list_id is not None else (),
            subscription_status=self.subscription_status or None,
        )


def _filters(
    viewer: Viewer, search: str, query: str, list_id: str, subscription_status: str
) -> Filters:
    query = query.strip()[:5000]
    if query and not can(viewer, "subscribers:sql_query"):
        raise PageForbidden("subscribers:sql_query")
    wanted_list = int(list_id) if list_id.strip().isdigit() else None
    status = subscription_status if subscription_status in SUBSCRIPTION_STATUSES else ""
    return Filters(search.strip()[:1000], query, wanted_list, status)


def _form_filters(viewer: Viewer, form: FormData) -> Filters:
    return _filters(
        viewer,
        text(form, "search", 1000),
        text(form, "query", 5000),
        text(form, "list_id", 20),
        text(form, "subscription_status", 20),
    )


def _all_lists(session: Session) -> list[MailingList]:
    return list_service.by_name(session)


def statuses() -> dict[str, str]:
    return {
        "enabled": _("enabled"),
        "disabled": _("disabled"),
        "blocklisted": _("blocklisted"),
        "unconfirmed": _("unconfirmed"),
        "confirmed": _("confirmed"),
        "unsubscribed": _("unsubscribed"),
    }


@dataclass(slots=True)
class _Listing:
    screen: subscriber_pages.Screen | None
    lists: list[MailingList]
    memberships: dict[int, list[subscriber_service.Subscription]] = field(default_factory=dict)
    error: str = ""


@router.get(BASE, include_in_schema=False)
async def subscribers_page(
    request: Request,
    viewer: Annotated[Viewer, page("subscribers:get_all")],
    search: Annotated[str, Query(max_length=1000)] = "",
    query: Annotated[str, Query(max_length=5000)] = "",
    list_id: Annotated[str, Query(max_length=20)] = "",
    subscription_status: Annotated[str, Query(max_length=20)] = "",
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    filters = _filters(viewer, search, query, list_id, subscription_status)

    def work(session: Session) -> _Listing:
        lists = _all_lists(session)
        try:
            with query_deadline(session):
                found = subscriber_pages.screen_of(session, filters.selection(), before=before)
        except QueryError as exc:
            return _Listing(None, lists, error=str(exc))
        memberships = subscriber_service.subscriptions(session, [row.id for row in found.rows])
        return _Listing(found, lists, memberships)

    listing = await run_db(request, work)
    return render_page(
        request,
        "admin/subscribers.html",
        viewer=viewer,
        section="subscribers",
        title=_("Subscribers"),
        filters=filters,
        listing=listing,
        before=before,
        statuses=statuses(),
        subscription_statuses=SUBSCRIPTION_STATUSES,
        status_code=400 if listing.error else 200,
    )


@router.get(f"{BASE}/export", include_in_schema=False)
async def export_subscribers(
    request: Request,
    viewer: Annotated[Viewer, page("subscribers:get_all")],
    search: Annotated[str, Query(max_length=1000)] = "",
    query: Annotated[str, Query(max_length=5000)] = "",
    list_id: Annotated[str, Query(max_length=20)] = "",
    subscription_status: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The subscribers matching the filters as CSV, streamed in chunks of ids."""
    filters = _filters(viewer, search, query, list_id, subscription_status)
    selection = filters.selection()
    # A query that does not parse is refused before the download starts.
    try:
        await run_db(request, lambda s: subscriber_pages.check_selection(s, selection))
    except QueryError as exc:
        return Response(str(exc), status_code=400, media_type="text/plain; charset=utf-8")
    return subscriber_export.response(app_state(request).readonly_sessions, selection)


def check_targets(viewer: Viewer, list_ids: Iterable[int]) -> None:
    """A list-scoped user puts subscribers only on the lists its list role lets it manage."""
    if scoped(viewer.principal):
        allowed = manageable(viewer.principal)
        if allowed is not None and any(i not in allowed for i in list_ids):
            raise PageForbidden("lists:manage_all")


def _ids(form: FormData) -> list[int]:
    return sorted({int(v) for v in form.getlist("ids") if isinstance(v, str) and v.isdigit()})


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


@router.post(f"{BASE}/bulk", include_in_schema=False)
async def bulk_action(
    request: Request, viewer: Annotated[Viewer, page("subscribers:manage")]
) -> Response:
    """A bulk action: the first post shows what it will do; the confirmed one does it."""
    form = await form_fields(request)
    filters = _form_filters(viewer, form)
    action = text(form, "action", 20)
    everything = text(form, "scope", 10) == "all"
    ids = [] if everything else _ids(form)
    target = _int(text(form, "target_list", 20))
    status = text(form, "status", 20) or "confirmed"
    back = filters.url()
    if action not in BULK_ACTIONS:
        return redirect(request, back, flash=("error", _("Choose an action.")))
    if not everything and not ids:
        return redirect(request, back, flash=("error", _("Select at least one subscriber.")))
    if action in ("add", "remove", "unsubscribe") and target is None:
        return redirect(request, back, flash=("error", _("Choose a list for this action.")))
    if action == "add" and status not in SUBSCRIPTION_STATUSES:
        status = "confirmed"
    if action == "verify" and not can(viewer, "verify:run"):
        raise PageForbidden("verify:run")
    if target is not None and action in ("add", "remove", "unsubscribe"):
        check_targets(viewer, [target])

    def selected(session: Session) -> list[int]:
        if everything:
            with query_deadline(session):
                return subscriber_pages.ids_of(session, filters.selection())
        return subscriber_service.existing_ids(session, ids)

    if text(form, "confirmed", 5) != "1":
        try:
            chosen = await run_db(request, selected)
            target_name = ""
            if target is not None:
                found = await run_db(request, lambda s: s.get(MailingList, target))
                if found is None:
                    return redirect(request, back, flash=("error", _("That list does not exist.")))
                target_name = found.name
        except QueryError as exc:
            return redirect(request, back, flash=("error", str(exc)))
        return render_page(
            request,
            "admin/subscribers_confirm.html",
            viewer=viewer,
            section="subscribers",
            title=_("Confirm"),
            action=action,
            count=len(chosen),
            everything=everything,
            ids=ids,
            target=target,
            target_name=target_name,
            status=status,
            filters=filters,
            back=back,
        )

    if action == "verify":
        return await _verify_selection(request, selected, back)

    def act(session: Session) -> int:
        chosen = selected(session)
        if not chosen:
            return 0
        if action == "blocklist":
            subscriber_service.blocklist(session, chosen)
        elif action == "delete":
            subscriber_service.delete_subscribers(session, chosen)
        elif target is not None and action in ("add", "remove", "unsubscribe"):
            subscriber_service.manage_lists(
                session,
                chosen,
                [target],
                "add" if action == "add" else "remove" if action == "remove" else "unsubscribe",
                status=status if action == "add" else None,
            )
        return len(chosen)

    try:
        done = await run_db(request, act, write=True)
    except (QueryError, NotFound, InvalidInput) as exc:
        return redirect(request, back, flash=("error", str(exc)))
    message = _("%(count)d subscribers changed.") % {"count": done}
    if action == "delete":
        message = _("%(count)d subscribers deleted.") % {"count": done}
    return redirect(request, back, flash=("success", message))


async def _verify_selection(request: Request, selected: Any, back: str) -> Response:
    """Starts a verification job over the selected subscribers' addresses."""

    def addresses(session: Session) -> list[str]:
        chosen = selected(session)
        return subscriber_service.emails_of(session, chosen)

    emails = await run_db(request, addresses)
    try:
        job = await request.app.state.verify.submit(emails)
    except (TooManyJobs, TooManyAddresses, ValueError) as exc:
        return redirect(request, back, flash=("error", str(exc)))
    return redirect(
        request,
        f"/admin/verification/jobs/{job.id}",
        flash=(
            "success",
            _("Verification of %(count)d addresses started.") % {"count": len(emails)},
        ),
    )


# --- one subscriber -------------------------------------------------------------------------


@dataclass(slots=True)
class _Detail:
    subscriber: Subscriber
    subscriptions: list[subscriber_service.Subscription]
    attribs_json: str
    verification: Any
    bounces: list[bounce_service.BounceRow] | None
    bounce_total: int
    activity: dict[str, Any]
    suppressed: Any
    suppression_entries: list[Any]
    lists: list[MailingList]
    hygiene: SubscriberHygiene | None = None


def _detail(session: Session, viewer: Viewer, subscriber_id: int) -> _Detail:
    found = subscriber_service.get(session, subscriber_id)
    bounces = None
    total = 0
    if can(viewer, "bounces:get"):
        page_of = bounce_service.list_bounces(
            session, BounceFilter(subscriber_id=found.id), per_page=20
        )
        bounces, total = page_of.results, page_of.total
    activity = listmonk_analytics.subscriber_activity(session, found.id)
    suppressed = None
    entries: list[Any] = []
    if can(viewer, "suppressions:get"):
        suppressed = suppression_service.find(session, found.email)
        entries = suppression_service.entries_for(session, found.email)
    shown = {k: v for k, v in found.attribs.items() if k != intake.VERIFY_ATTRIB}
    return _Detail(
        found,
        subscriber_service.subscriptions(session, [found.id])[found.id],
        json.dumps(shown, indent=2, ensure_ascii=False, sort_keys=True),
        found.attribs.get(intake.VERIFY_ATTRIB),
        bounces,
        total,
        activity,
        suppressed,
        entries,
        _all_lists(session),
        risk.hygiene_of(session, [found.id]).get(found.id),
    )


def _detail_page(
    request: Request,
    viewer: Viewer,
    detail: _Detail,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    sub = detail.subscriber
    return render_page(
        request,
        "admin/subscriber.html",
        viewer=viewer,
        section="subscribers",
        title=sub.email,
        detail=detail,
        values=values or _values_of(detail),
        errors=errors or {},
        statuses=statuses(),
        subscriber_statuses=SUBSCRIBER_STATUSES,
        status_code=status_code,
    )


def _values_of(detail: _Detail) -> dict[str, Any]:
    sub = detail.subscriber
    return {
        "email": sub.email,
        "name": sub.name,
        "status": sub.status,
        "attribs": detail.attribs_json,
        "lists": [s.list.id for s in detail.subscriptions],
    }


async def _load(request: Request, viewer: Viewer, subscriber_id: int) -> _Detail | None:
    try:
        return await run_db(request, lambda s: _detail(s, viewer, subscriber_id))
    except NotFound:
        return None


def _not_found(request: Request, viewer: Viewer) -> Response:
    return render_page(
        request,
        "error.html",
        viewer=viewer,
        title="404",
        status_code=404,
        message=_("This subscriber does not exist (any more)."),
    )


@router.get(f"{BASE}/new", include_in_schema=False)
async def new_subscriber_page(
    request: Request, viewer: Annotated[Viewer, page("subscribers:manage")]
) -> Response:
    lists = await run_db(request, _all_lists)
    blank = {"email": "", "name": "", "status": "enabled", "attribs": "{}", "lists": []}
    return _new_page(request, viewer, lists, blank)


def _new_page(
    request: Request,
    viewer: Viewer,
    lists: list[MailingList],
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
) -> Response:
    return render_page(
        request,
        "admin/subscriber_new.html",
        viewer=viewer,
        section="subscribers",
        title=_("New subscriber"),
        lists=lists,
        values=values,
        errors=errors or {},
        statuses=statuses(),
        subscriber_statuses=SUBSCRIBER_STATUSES,
        status_code=400 if errors else 200,
    )


def _read_subscriber_form(form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted fields, and the errors of those that cannot be accepted."""
    values: dict[str, Any] = {
        "email": text(form, "email", 320).strip(),
        "name": text(form, "name", 500),
        "status": text(form, "status", 20),
        "attribs": text(form, "attribs", ATTRIBS_MAX),
        "lists": sorted(
            {int(v) for v in form.getlist("lists") if isinstance(v, str) and v.isdigit()}
        ),
        "preconfirm": text(form, "preconfirm", 5) == "1",
    }
    errors: dict[str, str] = {}
    if not values["email"]:
        errors["email"] = _("Enter an email address.")
    if values["status"] not in SUBSCRIBER_STATUSES:
        errors["status"] = _("Choose a status.")
    try:
        parsed = json.loads(values["attribs"] or "{}")
        if not isinstance(parsed, dict):
            raise ValueError
        values["attribs_parsed"] = parsed
    except ValueError:
        errors["attribs"] = _('Attributes must be a JSON object, such as {"city": "Berlin"}.')
    return values, errors


def _service_error(exc: Exception) -> dict[str, str]:
    if isinstance(exc, (InvalidInput, Conflict)):
        name = exc.field if exc.field in ("email", "name", "status", "attribs") else "email"
        return {name: str(exc)}
    return {"lists": str(exc)}


@router.post(f"{BASE}/new", include_in_schema=False)
async def create_subscriber(
    request: Request, viewer: Annotated[Viewer, page("subscribers:manage")]
) -> Response:
    values, errors = _read_subscriber_form(await form_fields(request))
    check_targets(viewer, values["lists"])

    def work(session: Session) -> int:
        created = subscriber_service.create(
            session,
            email=values["email"],
            name=values["name"],
            attribs=intake.screen(
                intake.current(session), values["email"], values["attribs_parsed"]
            ),
            status=values["status"],
            list_ids=values["lists"],
            preconfirm=values["preconfirm"],
        )
        return created.id

    if not errors:
        try:
            new_id = await run_db(request, work, write=True)
        except (InvalidInput, Conflict, NotFound) as exc:
            errors = _service_error(exc)
        else:
            return redirect(
                request, f"{BASE}/{new_id}", flash=("success", _("The subscriber was created."))
            )
    lists = await run_db(request, _all_lists)
    return _new_page(request, viewer, lists, values, errors)


@router.get(BASE + "/{subscriber_id}", include_in_schema=False)
async def subscriber_page(
    request: Request,
    viewer: Annotated[Viewer, page("subscribers:get_all")],
    subscriber_id: int,
) -> Response:
    detail = await _load(request, viewer, subscriber_id)
    if detail is None:
        return _not_found(request, viewer)
    return _detail_page(request, viewer, detail)


@router.post(BASE + "/{subscriber_id}", include_in_schema=False)
async def save_subscriber(
    request: Request,
    viewer: Annotated[Viewer, page("subscribers:manage")],
    subscriber_id: int,
) -> Response:
    values, errors = _read_subscriber_form(await form_fields(request))
    check_targets(viewer, values["lists"])
    within = manageable(viewer.principal) if scoped(viewer.principal) else None

    def work(session: Session) -> None:
        found = subscriber_service.get(session, subscriber_id)
        subscriber_service.update_subscriber(
            session,
            found,
            email=values["email"],
            name=values["name"],
            attribs={
                **values["attribs_parsed"],
                # The verification verdict is kept (it is not shown in the editor).
                **(
                    {intake.VERIFY_ATTRIB: found.attribs[intake.VERIFY_ATTRIB]}
                    if intake.VERIFY_ATTRIB in found.attribs
                    else {}
                ),
            },
            status=values["status"],
            list_ids=values["lists"],
            preconfirm=values["preconfirm"],
            within=within,
        )

    if not errors:
        try:
            await run_db(request, work, write=True)
        except NotFound:
            return _not_found(request, viewer)
        except (InvalidInput, Conflict) as exc:
            errors = _service_error(exc)
        else:
            return redirect(
                request,
                f"{BASE}/{subscriber_id}",
                flash=("success", _("The subscriber was saved.")),
            )
    detail = await _load(request, viewer, subscriber_id)
    if detail is None:
        return _not_found(request, viewer)
    return _detail_page(request, viewer, detail, values=values, errors=errors, status_code=400)


@router.post(BASE + "/{subscriber_id}/blocklist", include_in_schema=False)
async def blocklist_subscriber(
    request: Request,
    viewer: Annotated[Viewer, page("subscribers:manage")],
    subscriber_id: int,
) -> Response:
    changed = await run_db(
        request, lambda s: subscriber_service.blocklist(s, [subscriber_id]), write=True
    )
    if not changed:
        return _not_found(request, viewer)
    return redirect(
        request, f"{BASE}/{subscriber_id}", flash=("success", _("The subscriber was blocklisted."))
    )


@router.post(BASE + "/{subscriber_id}/delete", include_in_schema=False)
async def delete_subscriber(
    request: Request,
    viewer: Annotated[Viewer, page("subscribers:manage")],
    subscriber_id: int,
) -> Response:
    deleted = await run_db(
        request, lambda s: subscriber_service.delete_subscribers(s, [subscriber_id]), write=True
    )
    if not deleted:
        return _not_found(request, viewer)
    return redirect(request, BASE, flash=("success", _("The subscriber was deleted.")))
