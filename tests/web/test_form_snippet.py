"""`GET /api/public/form-snippet`: the sign-up form for chosen public lists, and the refusal
that tells lists that are not public from ids of no list."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from .listmonk_client import ListmonkClient, ListmonkError


@pytest.fixture
def lm(client: TestClient, api_credentials: tuple[str, str]) -> ListmonkClient:
    return ListmonkClient(client, *api_credentials)


def test_snippet_of_chosen_public_lists(lm: ListmonkClient) -> None:
    news = lm.post("/api/lists", {"name": "News", "type": "public"})
    lm.post("/api/lists", {"name": "Offers", "type": "public"})
    html = lm.get("/api/public/form-snippet", list_id=news["id"])["html"]
    assert news["uuid"] in html and "News" in html and "Offers" not in html


def test_lists_not_public_are_refused_unknown_ids_said_so(lm: ListmonkClient) -> None:
    news = lm.post("/api/lists", {"name": "News", "type": "public"})
    private = lm.post("/api/lists", {"name": "Staff", "type": "private"})
    unknown = private["id"] + 100
    with pytest.raises(ListmonkError) as refused:
        lm.get("/api/public/form-snippet", list_id=private["id"])
    assert refused.value.status == 400
    assert refused.value.message == f"list_id: not public lists: [{private['id']}]"
    with pytest.raises(ListmonkError) as unknown_refused:
        lm.call(
            "GET",
            "/api/public/form-snippet",
            params=[("list_id", news["id"]), ("list_id", unknown)],
        )
    assert unknown_refused.value.status == 400
    assert unknown_refused.value.message == f"list_id: not public lists: [{unknown}] (unknown)"
