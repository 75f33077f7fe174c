"""listmonk's server routes stmails lacked: `PUT /api/settings/{key}`, `GET /api/config` and
`GET /api/about`."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

import stmails
from stmails.services import roles, users

from .listmonk_client import ListmonkClient, ListmonkError


@pytest.fixture
def lm(client: TestClient, api_credentials: tuple[str, str]) -> ListmonkClient:
    return ListmonkClient(client, *api_credentials)


def test_one_setting_is_changed_by_its_key(lm: ListmonkClient) -> None:
    assert lm.put("/api/settings/privacy.individual_tracking", True) is True
    assert lm.get("/api/settings")["privacy.individual_tracking"] is True
    assert lm.put("/api/settings/bounce.reason_overrides", {"mailboxfull": "hard"}) is True
    assert lm.get("/api/settings")["bounce.reason_overrides"] == {"mailboxfull": "hard"}
    # A value that cannot work is refused, naming the setting, and nothing changes.
    with pytest.raises(ListmonkError) as bad:
        lm.put("/api/settings/privacy.individual_tracking", "yes")
    assert bad.value.status == 400
    assert bad.value.message.startswith("privacy.individual_tracking")
    assert lm.get("/api/settings")["privacy.individual_tracking"] is True
    empty = lm.request("PUT", "/api/settings/privacy.individual_tracking")
    assert empty.status_code == 400
    # A masked secret sent back keeps the stored one, as with PUT /api/settings.
    lm.put("/api/settings/bounce.sendgrid_key", "secret-key")
    masked = lm.get("/api/settings")["bounce.sendgrid_key"]
    assert masked != "secret-key"
    lm.put("/api/settings/bounce.sendgrid_key", masked)
    assert lm.get("/api/settings")["bounce.sendgrid_key"] == masked


def test_config_for_any_user_and_about_for_settings_readers(
    client: TestClient, session_maker: sessionmaker[Session], lm: ListmonkClient
) -> None:
    with session_maker() as session:
        role = roles.create(session, "none", [])
        users.create_api_user(session, "plain", "plain-token-0123", role=role)
        session.commit()
    plain = ListmonkClient(client, "plain", "plain-token-0123")
    config = plain.get("/api/config")
    assert config["version"] == stmails.__version__
    assert config["root_url"].startswith("http")
    assert {"enabled", "captcha_enabled"} <= set(config["public_subscription"])
    assert config["privacy"] == {"disable_tracking": False, "individual_tracking": False}
    assert {lang["code"] for lang in config["langs"]} == {"en", "zh_CN"}
    groups = {g["group"]: g["permissions"] for g in config["permissions"]}
    assert "lists:get_all" in groups["lists"] and "campaigns:send" in groups["campaigns"]
    with pytest.raises(ListmonkError) as refused:
        plain.get("/api/about")
    assert refused.value.status == 403
    about = lm.request("GET", "/api/about")
    assert about.status_code == 200
    body = about.json()
    # listmonk's about is the object itself, not enveloped.
    assert "data" not in body and body["version"] == stmails.__version__
    assert body["database"]["type"] in ("sqlite", "postgresql")
    assert body["database"]["version"] and body["database"]["size_mb"] >= 0
    assert body["system"]["num_cpu"] >= 1 and body["host"]["hostname"]
