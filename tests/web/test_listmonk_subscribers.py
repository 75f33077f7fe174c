"""listmonk's subscriber finding where stmails used to differ: `search` on the listing and on
the `/query/*` bulk actions, `subscription_status` there, and `all`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stmails.services import roles, users

from .listmonk_client import ListmonkClient, ListmonkError


@pytest.fixture
def lm(client: TestClient, api_credentials: tuple[str, str]) -> ListmonkClient:
    return ListmonkClient(client, *api_credentials)


@pytest.fixture
def people(lm: ListmonkClient) -> dict[str, int]:
    """Two lists and five subscribers: ids by name, lists as `news` and `offers`."""
    news = lm.post("/api/lists", {"name": "News", "optin": "double"})["id"]
    offers = lm.post("/api/lists", {"name": "Offers", "optin": "single"})["id"]
    ids = {"news": news, "offers": offers}
    for name, email, lists in [
        ("Ann Smith", "ann@example.org", [news]),
        ("Bob Smithers", "bob@example.net", [news, offers]),
        ("Cy", "cy.SMITH@example.org", [offers]),
        ("Dee", "dee@example.org", [news]),
        ("Eve", "eve@example.com", []),
    ]:
        ids[name] = lm.post("/api/subscribers", {"email": email, "name": name, "lists": lists})[
            "id"
        ]
    # Dee confirms News; Ann and Bob stay unconfirmed there (double opt-in).
    lm.put(
        "/api/subscribers/lists",
        {"ids": [ids["Dee"]], "action": "add", "target_list_ids": [news], "status": "confirmed"},
    )
    return ids


def _emails(page: dict[str, object]) -> list[str]:
    results = page["results"]
    assert isinstance(results, list)
    return sorted(r["email"] for r in results)


def test_search_finds_names_and_addresses_in_any_case(
    lm: ListmonkClient, people: dict[str, int]
) -> None:
    found = lm.get("/api/subscribers", search="SMITH")
    assert _emails(found) == ["ann@example.org", "bob@example.net", "cy.SMITH@example.org"]
    assert (found["search"], found["query"], found["total"]) == ("SMITH", "", 3)
    on_news = lm.get("/api/subscribers", search="smith", list_id=people["news"])
    assert _emails(on_news) == ["ann@example.org", "bob@example.net"]
    confirmed = lm.get("/api/subscribers", list_id=people["news"], subscription_status="confirmed")
    assert _emails(confirmed) == ["dee@example.org"]
    # LIKE's wildcards are text to a search.
    assert lm.get("/api/subscribers", search="%")["total"] == 0
    with pytest.raises(ListmonkError) as bad:
        lm.get("/api/subscribers", subscription_status="maybe")
    assert bad.value.status == 400


def test_bulk_actions_take_search_status_and_all(
    lm: ListmonkClient, people: dict[str, int]
) -> None:
    news, offers = people["news"], people["offers"]
    # Add everyone matching "example.org" to Offers, confirmed.
    assert lm.put(
        "/api/subscribers/query/lists",
        {"search": "example.org", "action": "add", "target_list_ids": [offers],
         "status": "confirmed"},
    ) is True  # fmt: skip
    assert _emails(lm.get("/api/subscribers", list_id=offers)) == [
        "ann@example.org", "bob@example.net", "cy.SMITH@example.org", "dee@example.org",
    ]  # fmt: skip
    # Unsubscribe from News those whose News subscription is still unconfirmed.
    lm.put(
        "/api/subscribers/query/lists",
        {"list_ids": [news], "subscription_status": "unconfirmed", "action": "unsubscribe",
         "target_list_ids": [news], "all": True},
    )  # fmt: skip
    gone = lm.get("/api/subscribers", list_id=news, subscription_status="unsubscribed")
    assert _emails(gone) == ["ann@example.org", "bob@example.net"]
    # Blocklist by search.
    assert lm.put("/api/subscribers/query/blocklist", {"search": "eve@"}) is True
    assert lm.get(f"/api/subscribers/{people['Eve']}")["status"] == "blocklisted"
    # Delete everybody on News, whatever the search says: `all` wins.
    assert lm.post(
        "/api/subscribers/query/delete", {"all": True, "list_ids": [news], "search": "nobody"}
    ) is True  # fmt: skip
    assert _emails(lm.get("/api/subscribers")) == ["cy.SMITH@example.org", "eve@example.com"]
    # Saying nobody is refused rather than taken as everybody.
    for path, method in (("/api/subscribers/query/delete", "POST"),
                         ("/api/subscribers/query/blocklist", "PUT")):  # fmt: skip
        with pytest.raises(ListmonkError) as refused:
            lm.call(method, path, json={"list_ids": [offers]})
        assert refused.value.status == 400
    assert lm.get("/api/subscribers")["total"] == 2


def test_search_needs_no_sql_permission_but_query_does(
    client: TestClient,
    session_maker: sessionmaker[Session],
    people: dict[str, int],
) -> None:
    def user(*permissions: str) -> Callable[[], ListmonkClient]:
        with session_maker() as session:
            role = roles.create(session, "manager", permissions)
            users.create_api_user(session, "manager", "manager-token-0123", role=role)
            session.commit()
        return lambda: ListmonkClient(client, "manager", "manager-token-0123")

    manager = user("subscribers:get_all", "subscribers:manage")()
    assert _emails(manager.get("/api/subscribers", search="bob")) == ["bob@example.net"]
    manager.put("/api/subscribers/query/blocklist", {"search": "bob"})
    with pytest.raises(ListmonkError) as refused:
        manager.put("/api/subscribers/query/blocklist", {"query": "subscribers.name = 'Cy'"})
    assert refused.value.status == 403
    assert refused.value.message == "permission denied: subscribers:sql_query required"
    assert manager.get(f"/api/subscribers/{people['Cy']}")["status"] == "enabled"
    assert manager.get(f"/api/subscribers/{people['Bob Smithers']}")["status"] == "blocklisted"
