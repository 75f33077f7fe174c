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


# A server whose stored password must not follow a change of target (finding M2).
SMTP_SERVER = {
    "host": "smtp.example.com",
    "port": 587,
    "tls_type": "STARTTLS",
    "auth_protocol": "login",
    "username": "mailer",
    "password": "real-secret",
}


def test_a_masked_smtp_password_is_not_kept_for_another_server(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    assert client.put("/api/settings", json={"smtp": [SMTP_SERVER]}).status_code == 200
    read = client.get("/api/settings").json()["data"]["smtp"]
    assert read[0]["password"] == settings_service.MASK
    # Written back as it was read: the stored password is kept.
    assert client.put("/api/settings", json={"smtp": read}).status_code == 200
    # Pointed elsewhere with the mask: the password would go to whoever runs that server.
    for change in (
        {"host": "smtp.attacker.example"},
        {"port": 2525},
        {"tls_type": "none"},
        {"tls_skip_verify": True},
    ):
        response = client.put("/api/settings", json={"smtp": [{**read[0], **change}]})
        assert response.status_code == 400, change
        assert response.json()["message"].startswith("smtp[0].password: required")
    with session_maker() as session:
        stored = settings_service.get(session, "smtp")[0]
    assert (stored["host"], stored["password"]) == ("smtp.example.com", "real-secret")
    # With its own password the new target is fine.
    moved = {**read[0], "host": "smtp2.example.com", "password": "new-secret"}
    assert client.put("/api/settings", json={"smtp": [moved]}).status_code == 200
    with session_maker() as session:
        stored = settings_service.get(session, "smtp")[0]
    assert (stored["host"], stored["password"]) == ("smtp2.example.com", "new-secret")


def test_a_masked_mailbox_password_is_not_kept_for_another_server(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    box = {
        "uuid": "box-1",
        "enabled": True,
        "type": "imap",
        "host": "imap.example.com",
        "port": 993,
        "tls_mode": "tls",
        "username": "bounces",
        "password": "mailbox-secret",
    }
    assert client.put("/api/settings", json={"bounce.mailboxes": [box]}).status_code == 200
    read = client.get("/api/settings").json()["data"]["bounce.mailboxes"]
    assert client.put("/api/settings", json={"bounce.mailboxes": read}).status_code == 200
    with session_maker() as session:
        assert settings_service.get(session, "bounce.mailboxes")[0]["password"] == "mailbox-secret"
    moved = [{**read[0], "host": "imap.attacker.example"}]
    assert client.put("/api/settings", json={"bounce.mailboxes": moved}).status_code == 200
    with session_maker() as session:
        stored = settings_service.get(session, "bounce.mailboxes")[0]
    assert (stored["host"], stored["password"]) == ("imap.attacker.example", "")
