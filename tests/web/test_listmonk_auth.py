"""listmonk's login check and its answers to bad credentials: `GET /api/health` with Basic or
`token` auth, 403 for credentials it cannot accept."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stmails.services import roles, users

from .listmonk_client import ListmonkClient, ListmonkError


@pytest.mark.parametrize("scheme", ["basic", "token"])
def test_a_listmonk_client_logs_in_with_api_health(
    client: TestClient, api_credentials: tuple[str, str], scheme: str
) -> None:
    assert ListmonkClient(client, *api_credentials, scheme=scheme).login() is True


def test_api_health_needs_no_permission_but_valid_credentials(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    with session_maker() as session:
        role = roles.create(session, "nothing", [])
        users.create_api_user(session, "bare", "bare-token-0123456789", role=role)
        session.commit()
    assert ListmonkClient(client, "bare", "bare-token-0123456789").login() is True
    with pytest.raises(ListmonkError) as refused:
        ListmonkClient(client, "bare", "not-the-token-123").login()
    assert (refused.value.status, refused.value.message) == (403, "invalid API credentials")


def test_wrong_credentials_are_listmonks_403_and_missing_ones_a_401_challenge(
    client: TestClient, api_credentials: tuple[str, str]
) -> None:
    user, token = api_credentials
    for wrong in [(user, token + "x"), ("nobody", token)]:
        for scheme in ("basic", "token"):
            response = ListmonkClient(client, *wrong, scheme=scheme).request("GET", "/api/lists")
            assert response.status_code == 403
            assert response.json() == {"message": "invalid API credentials"}
            assert "www-authenticate" not in response.headers
    # A header that cannot be read is refused the same way (listmonk: 403).
    unreadable = client.get("/api/health", headers={"Authorization": "Basic %%%"}, auth=None)
    assert unreadable.status_code == 403
    no_colon = base64.b64encode(user.encode()).decode()
    response = client.get("/api/health", headers={"Authorization": f"Basic {no_colon}"}, auth=None)
    assert response.status_code == 403
    # No credentials at all: asked for some.
    anonymous = client.get("/api/health", auth=None)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    # The unauthenticated probe stays as it was.
    assert client.get("/health", auth=None).json() == {"data": True}
