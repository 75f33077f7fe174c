"""Per-list access (listmonk's list roles), enforced on every list-scoped route.

A user's list role names lists with `list:get` and/or `list:manage` (services.list_roles). What
it opens, route by route:

- Lists: `lists:get_all` reads every list, else the `list:get` lists; `lists:manage_all`
  manages (changes, deletes) every list, else the `list:manage` lists. Making a list needs
  `lists:manage_all`.
- A caller is *list-scoped* when it has a list role and neither `lists:get_all` nor
  `lists:manage_all` (nor is Super Admin). Its lists are those its list role names (either
  grant). For it, a subscriber is reachable (read, changed, deleted, blocklisted, its bounces,
  activity and data) only when it is on one of its lists; the lists it puts subscribers on
  (`lists`, `target_list_ids`, an import's `lists`) must be `list:manage` ones; `list_id` and
  `list_ids` filters must name its lists, and a listing or bulk action without one covers only
  subscribers of its lists (unless its role has `subscribers:get_all` for listings, as in
  listmonk). A user without a list role is not list-scoped: its user role alone decides, as
  before list roles existed.
- Campaigns: `campaigns:get_all` / `campaigns:manage_all` reach every campaign. A caller that
  relies on `campaigns:get` / `campaigns:manage`, or is list-scoped, reaches only campaigns
  with one of its lists (every campaign with `lists:get_all` or `lists:manage_all`), and the
  lists it sends a campaign to must be its lists.

Refusals are 403 `{"message": "permission denied: ..."}`. `guard` is a router dependency that
checks the `list_id`, `subscriber_id` and `campaign_id` of a route's path.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Annotated, Any

from fastapi import Depends, Request

from stmails.db.handles import Session
from stmails.services import list_scope as scope_service
from stmails.web.body import check_json_body, run_db
from stmails.web.deps import Principal, require_user
from stmails.web.errors import ApiError
from stmails.web.permissions import permission_denied

# None stands for "every list" (no restriction) in the functions below.
Lists = frozenset[int] | None
_ALL_LISTS = ("lists:get_all", "lists:manage_all")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def readable(principal: Principal) -> Lists:
    """The lists the caller may read (None: every list)."""
    if principal.super_admin or "lists:get_all" in principal.permissions:
        return None
    return principal.list_get


def manageable(principal: Principal) -> Lists:
    """The lists the caller may change and delete (None: every list)."""
    if principal.super_admin or "lists:manage_all" in principal.permissions:
        return None
    return principal.list_manage


def _own_lists(principal: Principal) -> Lists:
    # Every list for lists:get_all or lists:manage_all (listmonk's GetPermittedLists).
    if principal.super_admin or any(p in principal.permissions for p in _ALL_LISTS):
        return None
    return principal.list_get | principal.list_manage


def scoped(principal: Principal) -> bool:
    """Whether the caller's subscribers and campaigns are limited to its lists."""
    return principal.list_role and _own_lists(principal) is not None


def subscriber_lists(principal: Principal) -> Lists:
    """The lists whose subscribers the caller reaches (None: every subscriber)."""
    return _own_lists(principal) if scoped(principal) else None


def campaign_lists(principal: Principal, manage: bool) -> Lists:
    """The lists whose campaigns the caller reaches for reading or (`manage`) changing (None:
    every campaign)."""
    everything = "campaigns:manage_all" if manage else "campaigns:get_all"
    narrow = "campaigns:manage" if manage else "campaigns:get"
    if principal.super_admin or everything in principal.permissions:
        return None
    if narrow in principal.permissions or scoped(principal):
        return _own_lists(principal)
    return None


def require_lists(manage: bool) -> Any:
    """A route dependency: the caller reads (`manage`: manages) every list, or some through
    its list role; 403 naming lists:get_all (lists:manage_all) otherwise."""
    needed = "lists:manage_all" if manage else "lists:get_all"

    async def permitted(
        request: Request, principal: Annotated[Principal, Depends(require_user)]
    ) -> Principal:
        allowed = manageable(principal) if manage else readable(principal)
        if allowed is not None and not allowed:
            raise permission_denied(needed)
        check_json_body(request)
        return principal

    return Depends(permitted)


def mask_lists(subscriber: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """A subscriber's JSON as a list-scoped caller sees it: the lists that are not its own are
    listed as listmonk lists them, `*Unknown` and `restricted`, without their description."""
    own = subscriber_lists(principal)
    if own is None:
        return subscriber
    for item in subscriber.get("lists", []):
        if item["id"] not in own:
            item["name"] = "*Unknown"
            item["restricted"] = True
            item.pop("description", None)
    return subscriber


def denied(what: str) -> ApiError:
    """403 for a list-scoped refusal."""
    return ApiError(403, f"permission denied: {what}")


def check_lists(principal: Principal, list_ids: Iterable[int], allowed: Lists, what: str) -> None:
    """403 naming the first of `list_ids` outside `allowed` (`what`: the grant it lacks)."""
    if allowed is None:
        return
    outside = sorted(set(list_ids) - allowed)
    if outside:
        raise denied(f"{what} on list {outside[0]} required")


def check_target_lists(principal: Principal, list_ids: Iterable[int]) -> None:
    """For a list-scoped caller, the lists it puts subscribers on must be `list:manage`
    ones."""
    if scoped(principal):
        check_lists(principal, list_ids, manageable(principal), "list:manage")


def check_subscribers(session: Session, principal: Principal, ids: Collection[int]) -> None:
    """403 when a list-scoped caller names a subscriber on none of its lists (unknown ids are
    left to the route, which answers 404)."""
    allowed = subscriber_lists(principal)
    if allowed is None or not ids:
        return
    outside = scope_service.subscriber_off_lists(session, ids, allowed)
    if outside is not None:
        raise denied(f"subscriber {outside} is on none of your lists")


def check_campaign(session: Session, principal: Principal, campaign_id: int, manage: bool) -> None:
    """403 when the caller may not reach campaign `campaign_id` (unknown ids are left to the
    route)."""
    allowed = campaign_lists(principal, manage)
    if allowed is None:
        return
    if not scope_service.campaign_off_lists(session, campaign_id, allowed):
        return
    if not allowed:
        # No list at all: the caller lacks the permission, not a list.
        raise permission_denied("campaigns:manage_all" if manage else "campaigns:get_all")
    raise denied(f"campaign {campaign_id} goes to none of your lists")


async def _guard(request: Request, principal: Annotated[Principal, Depends(require_user)]) -> None:
    """Checks the list, subscriber and campaign a route's path names against the caller's
    lists (reading for GET, managing otherwise)."""
    params = request.path_params
    manage = request.method not in _SAFE
    list_id = _int(params.get("list_id"))
    if list_id is not None:
        allowed = manageable(principal) if manage else readable(principal)
        if allowed is not None and list_id not in allowed:
            raise permission_denied("lists:manage_all" if manage else "lists:get_all")
    subscriber_id = _int(params.get("subscriber_id"))
    campaign_id = _int(params.get("campaign_id"))
    if subscriber_id is None and campaign_id is None:
        return
    if subscriber_lists(principal) is None and (
        campaign_id is None or campaign_lists(principal, manage) is None
    ):
        return

    def work(session: Session) -> None:
        if subscriber_id is not None:
            check_subscribers(session, principal, [subscriber_id])
        if campaign_id is not None:
            check_campaign(session, principal, campaign_id, manage)

    await run_db(request, work)


def _int(value: object) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 12:
        return int(value)
    return None


# The router dependency: `APIRouter(dependencies=[Depends(require_user), guard])`.
guard = Depends(_guard)
