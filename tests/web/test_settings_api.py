"""GET/PUT /api/settings: listmonk's bounce keys, secrets masked, masked values keep secrets."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stmails.services import settings as settings_service


def test_defaults_and_masking_round_trip(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    values = client.get("/api/settings").json()["data"]
    assert values["bounce.enabled"] is True
    assert values["bounce.webhooks_enabled"] is True
    assert values["bounce.actions"]["hard"]["action"] == "blocklist"
    assert values["bounce.sendgrid_key"] == ""
    values["bounce.sendgrid_key"] = "SG.secret-key"
    values["bounce.postmark"] = {"enabled": True, "username": "pm", "password": "pm-pass"}
    assert client.put("/api/settings", json=values).json() == {"data": True}
    read = client.get("/api/settings").json()["data"]
    assert read["bounce.sendgrid_key"] == settings_service.MASK
    assert read["bounce.postmark"]["password"] == settings_service.MASK
    assert "SG.secret-key" not in client.get("/api/settings").text
    # A client that GETs, changes one key and PUTs everything back keeps the secrets.
    read["bounce.actions"]["soft"]["count"] = 5
    assert client.put("/api/settings", json=read).status_code == 200
    with session_maker() as session:
        stored = settings_service.get_all(session)
    assert stored["bounce.sendgrid_key"] == "SG.secret-key"
    assert stored["bounce.postmark"]["password"] == "pm-pass"
    assert stored["bounce.actions"]["soft"]["count"] == 5


def test_bad_settings_are_400_naming_the_key(client: TestClient) -> None:
    response = client.put("/api/settings", json={"bounce.enabled": "yes"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("bounce.enabled")
    response = client.put(
        "/api/settings", json={"bounce.actions": {"hard": {"count": 0, "action": "none"}}}
    )
    assert response.status_code == 400
    assert "bounce.actions" in response.json()["message"]
    json_type = {"content-type": "application/json"}
    assert client.put("/api/settings", content=b"[1]", headers=json_type).status_code == 400
