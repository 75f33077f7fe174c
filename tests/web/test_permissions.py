"""Roles and permissions over HTTP: 401 vs 403, each permission class on representative routes,
Super Admin unchanged, and a walk over every route of the app."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Campaign, MailingList, Subscriber
from stmails.services import roles, users
from stmails.services.roles import ALL_PERMISSIONS

# Routes anybody may call: health, the API docs, the subscribers' pages, the provider webhooks
# (authenticated by the provider's signature or secret, not by a user), and uploaded media (mail
# clients fetch the images).
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/subscription/{campaign_uuid}/{subscriber_uuid}"),
    ("POST", "/subscription/{campaign_uuid}/{subscriber_uuid}"),
    ("POST", "/webhooks/service/{provider}"),
    ("GET", "/uploads/{name:path}"),
    # The subscriber-facing pages (docs/public-pages.md): sign-up, opt-in, data, archive.
    ("GET", "/api/public/lists"),
    ("POST", "/api/public/subscription"),
    ("GET", "/api/public/captcha"),
    ("GET", "/subscription/form"),
    ("POST", "/subscription/form"),
    ("GET", "/subscription/optin/{subscriber_uuid}"),
    ("POST", "/subscription/optin/{subscriber_uuid}"),
    ("POST", "/subscription/export/{subscriber_uuid}"),
    ("POST", "/subscription/wipe/{subscriber_uuid}"),
    ("GET", "/archive"),
    ("GET", "/archive.xml"),
    ("GET", "/archive/{id_or_slug}"),
    ("GET", "/archive/{id_or_slug}/content"),
    ("GET", "/public/custom.css"),
    ("GET", "/public/logo"),
    # The tracking routes: the random uuids in the URL are the capability.
    ("GET", "/campaign/{campaign_uuid}/{subscriber_uuid}/px.png"),
    ("GET", "/link/{link_uuid}/{campaign_uuid}/{subscriber_uuid}"),
    ("GET", "/campaign/{campaign_uuid}/{subscriber_uuid}"),
}
# Routes any authenticated caller may call, whatever its role (as in listmonk): the login check
# and the server's public configuration.
AUTHENTICATED = {("GET", "/api/health"), ("GET", "/api/config")}
# The admin UI's pages and assets answer browsers (a login redirect, a CSRF refusal), not API
# clients: tests/web/ui/test_pages.py walks them.
BROWSER_PREFIXES = ("/admin", "/static/")
DENIED = re.compile(r"^permission denied: ([a-z_]+:[a-z_]+) required$")
# A read may need only a reading permission (or verify:run / subscribers:import, which have one,
# or settings:maintain for listmonk's export of the engagement history before it is deleted).
READING = ("get", "get_all", "get_analytics", "run", "import", "maintain")

MakeUser = Callable[..., tuple[str, str]]


@pytest.fixture
def make_user(session_maker: sessionmaker[Session]) -> MakeUser:
    """Makes an API user with a new role granting `permissions`; returns (name, token)."""
    made = 0

    def make(*permissions: str) -> tuple[str, str]:
        nonlocal made
        made += 1
        with session_maker() as session:
            role = roles.create(session, f"role-{made}", permissions)
            _, token = users.create_api_user(session, f"user-{made}", role=role)
            session.commit()
        return f"user-{made}", token

    return make


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route, routers included, on any FastAPI version."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined]
    except ImportError:  # FastAPI before lazily included routers: app.routes is flat.
        contexts: Iterable[Any] = app.routes
    else:
        contexts = iter_route_contexts(app.routes)
    found = []
    for route in contexts:
        for method in sorted(set(route.methods or ()) - {"HEAD", "OPTIONS"}):
            found.append((method, route.path))
    return found


def test_every_route_is_public_or_declares_a_permission(app: FastAPI, make_user: MakeUser) -> None:
    nobody = make_user()
    routes = app_routes(app)
    # Sanity: the walk sees the routers' routes, not only the app's own.
    assert ("GET", "/api/bounces") in routes and ("DELETE", "/api/roles/{role_id}") in routes
    assert set(routes) >= PUBLIC, "a public route moved: update PUBLIC"
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, template in routes:
            if (method, template) in PUBLIC or template == "/":
                continue
            if template.startswith(BROWSER_PREFIXES):
                continue
            path = re.sub(r"\{[^}]+\}", "1", template)
            anonymous = client.request(method, path)
            assert anonymous.status_code == 401, (method, template, anonymous.text)
            if (method, template) in AUTHENTICATED:
                assert client.request(method, path, auth=nobody).status_code == 200
                continue
            refused = client.request(method, path, auth=nobody)
            assert refused.status_code == 403, (method, template, refused.text)
            match = DENIED.match(refused.json()["message"])
            assert match and match.group(1) in ALL_PERMISSIONS, (method, template, refused.text)
            if method == "GET":
                assert match.group(1).rsplit(":", 1)[1] in READING, (method, template)


def test_missing_credentials_are_401_and_missing_permission_is_403(
    client: TestClient, make_user: MakeUser
) -> None:
    client.auth = None
    assert client.get("/api/lists").status_code == 401
    wrong = client.get("/api/lists", auth=("user-x", "wrong-token-123"))
    assert (wrong.status_code, wrong.json()) == (403, {"message": "invalid API credentials"})
    reader = make_user("bounces:get")
    refused = client.get("/api/lists", auth=reader)
    assert refused.status_code == 403
    assert refused.json() == {"message": "permission denied: lists:get_all required"}
    assert "www-authenticate" not in refused.headers
    assert client.get("/api/bounces", auth=reader).status_code == 200


def _seed(session_maker: sessionmaker[Session]) -> dict[str, int]:
    with session_maker() as session:
        subscriber = Subscriber(email="a@example.org", name="A")
        mailing_list = MailingList(name="News")
        campaign = Campaign(
            name="C",
            subject="S",
            from_email="news@example.org",
            body="<p>hi</p>",
            status="paused",
        )
        session.add_all([subscriber, mailing_list, campaign])
        session.commit()
        return {"subscriber": subscriber.id, "list": mailing_list.id, "campaign": campaign.id}


# listmonk's narrow campaign permissions open the broad ones' routes for the campaigns of the
# caller's lists, which lists:get_all makes every campaign (web.list_scope).
ALTERNATIVES = {
    "campaigns:get_all": {"campaigns:get"},
    "campaigns:manage_all": {"campaigns:manage"},
}


# (permission, method, path, JSON body, the status the granted call answers)
REPRESENTATIVE: list[tuple[str, str, str, Any, int]] = [
    ("lists:get_all", "GET", "/api/lists", None, 200),
    ("lists:manage_all", "POST", "/api/lists", {"name": "L2"}, 200),
    ("subscribers:get", "GET", "/api/subscribers/{subscriber}", None, 200),
    ("subscribers:get_all", "GET", "/api/subscribers", None, 200),
    ("subscribers:manage", "PUT", "/api/subscribers/{subscriber}/blocklist", None, 200),
    ("campaigns:get_all", "GET", "/api/campaigns/{campaign}", None, 200),
    ("campaigns:manage_all", "PUT", "/api/campaigns/{campaign}", {"name": "C2"}, 200),
    ("campaigns:get_analytics", "GET", "/api/campaigns/{campaign}/stats", None, 200),
    ("bounces:get", "GET", "/api/bounces", None, 200),
    ("bounces:manage", "DELETE", "/api/bounces?all=true", None, 200),
    (
        "webhooks:post_bounce",
        "POST",
        "/webhooks/bounce",
        {"email": "a@example.org", "source": "api", "type": "soft"},
        200,
    ),
    ("templates:get", "GET", "/api/templates", None, 200),
    ("settings:get", "GET", "/api/settings", None, 200),
    ("suppressions:get", "GET", "/api/suppressions", None, 200),
    ("suppressions:manage", "DELETE", "/api/suppressions/a@example.org", None, 404),
    ("users:get", "GET", "/api/users", None, 200),
    ("roles:get", "GET", "/api/roles/users", None, 200),
    ("subscribers:import", "GET", "/api/import/subscribers", None, 200),
    ("media:get", "GET", "/api/media", None, 200),
    # Granted, the JSON body is the caller's next mistake (an upload is multipart).
    ("media:manage", "POST", "/api/media", {}, 400),
]


@pytest.mark.parametrize(
    ("permission", "method", "template", "body", "granted_status"),
    REPRESENTATIVE,
    ids=[r[0] for r in REPRESENTATIVE],
)
def test_each_permission_opens_its_routes_and_only_with_it(
    client: TestClient,
    session_maker: sessionmaker[Session],
    make_user: MakeUser,
    permission: str,
    method: str,
    template: str,
    body: Any,
    granted_status: int,
) -> None:
    path = template.format(**_seed(session_maker))
    # Every other permission, except those that include this one or stand in for it.
    including = {p for p, narrower in roles.IMPLIED.items() if permission in narrower}
    instead = ALTERNATIVES.get(permission, set())
    everything_else = make_user(*(ALL_PERMISSIONS - {permission, *including, *instead}))
    refused = client.request(method, path, json=body, auth=everything_else)
    assert refused.status_code == 403, refused.text
    assert refused.json()["message"] == f"permission denied: {permission} required"
    granted = client.request(method, path, json=body, auth=make_user(permission))
    assert granted.status_code == granted_status, granted.text


def test_subscribers_get_all_includes_get_one(
    client: TestClient, session_maker: sessionmaker[Session], make_user: MakeUser
) -> None:
    ids = _seed(session_maker)
    reader = make_user("subscribers:get_all")
    assert client.get(f"/api/subscribers/{ids['subscriber']}", auth=reader).status_code == 200


def test_sql_query_needs_its_own_permission(
    client: TestClient, session_maker: sessionmaker[Session], make_user: MakeUser
) -> None:
    _seed(session_maker)
    reader = make_user("subscribers:get_all", "subscribers:manage")
    query = {"query": "subscribers.email = 'a@example.org'"}
    refused = client.get("/api/subscribers", params=query, auth=reader)
    assert refused.status_code == 403
    assert refused.json()["message"] == "permission denied: subscribers:sql_query required"
    # A blank query is no query.
    assert client.get("/api/subscribers", params={"query": " "}, auth=reader).status_code == 200
    bulk = client.put("/api/subscribers/query/blocklist", json=query, auth=reader)
    assert bulk.status_code == 403
    querier = make_user("subscribers:get_all", "subscribers:sql_query")
    found = client.get("/api/subscribers", params=query, auth=querier)
    assert found.status_code == 200 and found.json()["data"]["total"] == 1


def test_campaign_status_needs_send_not_manage(
    client: TestClient, session_maker: sessionmaker[Session], make_user: MakeUser
) -> None:
    ids = _seed(session_maker)
    manager = make_user("campaigns:get_all", "campaigns:manage_all")
    path = f"/api/campaigns/{ids['campaign']}/status"
    refused = client.put(path, json={"status": "cancelled"}, auth=manager)
    assert refused.status_code == 403
    assert refused.json()["message"] == "permission denied: campaigns:send required"
    sender = make_user("campaigns:send")
    assert client.put(path, json={"status": "cancelled"}, auth=sender).status_code == 200


def test_super_admin_users_keep_every_permission(
    client: TestClient,
    session_maker: sessionmaker[Session],
    admin_credentials: tuple[str, str],
) -> None:
    ids = _seed(session_maker)
    # The fixtures' admin and API user were made the way every existing user was: no role given.
    for credentials in (admin_credentials, client.auth):
        listed = client.get("/api/users", auth=credentials)
        assert listed.status_code == 200
        for user in listed.json()["data"]:
            assert user["user_role"]["name"] == "Super Admin"
            assert set(user["user_role"]["permissions"]) == ALL_PERMISSIONS
        stats = client.get(f"/api/campaigns/{ids['campaign']}/stats", auth=credentials)
        assert stats.status_code == 200
        bounce = {"email": "a@example.org", "source": "api", "type": "soft"}
        assert client.post("/webhooks/bounce", json=bounce, auth=credentials).status_code == 200
        assert client.get("/api/roles/users", auth=credentials).status_code == 200
        assert client.get("/api/settings", auth=credentials).status_code == 200
        assert client.get("/api/suppressions", auth=credentials).status_code == 200
