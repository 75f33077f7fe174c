"""Subscriber creation and the CSV import verify addresses on the way in, by setting."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

# A valid address, a role account and a disposable one (both risky).
CSV = (
    "email,name,attributes\n"
    'ann@example.org,Ann,"{""city"": ""Oslo""}"\n'
    "info@example.org,Info,\n"
    "jane@mailinator.com,Jane,\n"
)


def _set(client: TestClient, **values: Any) -> None:
    response = client.put("/api/settings", json=values)
    assert response.status_code == 200, response.text


def _create(client: TestClient, email: str, **fields: Any) -> Any:
    return client.post("/api/subscribers", json={"email": email, "name": "X", **fields})


def _attribs_by_email(client: TestClient) -> dict[str, dict[str, Any]]:
    found = client.get("/api/subscribers", params={"per_page": "all"}).json()["data"]["results"]
    return {s["email"]: s["attribs"] for s in found}


def _import(client: TestClient, text: str) -> tuple[dict[str, Any], str]:
    params = {"mode": "subscribe", "delim": ",", "overwrite": False}
    started = client.post(
        "/api/import/subscribers",
        data={"params": json.dumps(params)},
        files={"file": ("subs.csv", text.encode(), "text/csv")},
    )
    assert started.status_code == 200, started.text
    for _ in range(200):
        status = client.get("/api/import/subscribers").json()["data"]
        if status["status"] != "importing":
            return status, client.get("/api/import/subscribers/logs").json()["data"]
        time.sleep(0.05)
    raise AssertionError("import did not finish")


def test_the_settings_default_to_off_and_are_validated(client: TestClient) -> None:
    values = client.get("/api/settings").json()["data"]
    assert values["verify.on_subscribe"] == "off"
    assert values["verify.reject"] == ["syntax", "disposable"]
    bad_mode = client.put("/api/settings", json={"verify.on_subscribe": "maybe"})
    assert bad_mode.status_code == 400
    assert "verify.on_subscribe" in bad_mode.json()["message"]
    bad_reason = client.put("/api/settings", json={"verify.reject": ["syntax", "unheard_of"]})
    assert bad_reason.status_code == 400
    assert "verify.reject" in bad_reason.json()["message"]
    _set(client, **{"verify.on_subscribe": "reject", "verify.reject": ["role", "role"]})
    values = client.get("/api/settings").json()["data"]
    assert (values["verify.on_subscribe"], values["verify.reject"]) == ("reject", ["role"])


def test_off_stores_every_address_as_given(client: TestClient) -> None:
    sent = {"_verify": "the caller's own"}
    assert _create(client, "jane@mailinator.com", attribs=sent).status_code == 200
    assert _create(client, "info@example.org").status_code == 200
    assert _attribs_by_email(client) == {"jane@mailinator.com": sent, "info@example.org": {}}


def test_flag_creates_and_records_the_verdict(client: TestClient) -> None:
    _set(client, **{"verify.on_subscribe": "flag"})
    for email in ("ann@example.org", "info@mailinator.com", "info@example.org"):
        created = _create(client, email, attribs={"city": "Oslo", "_verify": "forged"})
        assert created.status_code == 200, created.text
    assert _attribs_by_email(client) == {
        "ann@example.org": {"city": "Oslo"},
        "info@mailinator.com": {
            "city": "Oslo",
            "_verify": {"result": "risky", "reasons": ["disposable", "role"]},
        },
        "info@example.org": {"city": "Oslo", "_verify": {"result": "risky", "reasons": ["role"]}},
    }
    # The risky ones are found with the query API.
    risky = client.get(
        "/api/subscribers",
        params={"query": "subscribers.attribs->'_verify'->>'result' = 'risky'", "order_by": "id"},
    ).json()["data"]["results"]
    assert [s["email"] for s in risky] == ["info@mailinator.com", "info@example.org"]


@pytest.mark.parametrize(
    ("email", "reasons"),
    [("jane@mailinator.com", "disposable"), ("jane@@example.com", "syntax")],
)
def test_reject_refuses_with_400_naming_the_address_and_reason(
    client: TestClient, email: str, reasons: str
) -> None:
    _set(client, **{"verify.on_subscribe": "reject"})
    refused = _create(client, email)
    assert refused.status_code == 400
    message = refused.json()["message"]
    assert email in message and reasons in message
    # A risky address whose reasons are not in verify.reject is created and flagged.
    assert _create(client, "info@example.org").status_code == 200
    assert _attribs_by_email(client) == {
        "info@example.org": {"_verify": {"result": "risky", "reasons": ["role"]}}
    }


def test_reject_follows_the_configured_reasons(client: TestClient) -> None:
    _set(client, **{"verify.on_subscribe": "reject", "verify.reject": ["role"]})
    refused = _create(client, "info@example.org")
    assert refused.status_code == 400
    assert "info@example.org" in refused.json()["message"]
    assert "role" in refused.json()["message"]
    assert _create(client, "jane@mailinator.com").status_code == 200
    assert _attribs_by_email(client) == {
        "jane@mailinator.com": {"_verify": {"result": "risky", "reasons": ["disposable"]}}
    }


def test_import_with_the_gate_off_takes_every_row(client: TestClient) -> None:
    status, _ = _import(client, CSV)
    assert (status["status"], status["total"], status["imported"]) == ("finished", 3, 3)
    assert all("_verify" not in a for a in _attribs_by_email(client).values())


def test_import_flag_stores_every_row_with_its_verdict(client: TestClient) -> None:
    _set(client, **{"verify.on_subscribe": "flag"})
    status, _ = _import(client, CSV)
    assert (status["status"], status["imported"]) == ("finished", 3)
    assert _attribs_by_email(client) == {
        "ann@example.org": {"city": "Oslo"},
        "info@example.org": {"_verify": {"result": "risky", "reasons": ["role"]}},
        "jane@mailinator.com": {"_verify": {"result": "risky", "reasons": ["disposable"]}},
    }


def test_import_reject_skips_refused_rows_and_goes_on(client: TestClient) -> None:
    _set(client, **{"verify.on_subscribe": "reject"})
    status, log = _import(client, CSV)
    assert (status["status"], status["total"], status["imported"]) == ("finished", 3, 2)
    assert "line 4" in log and "jane@mailinator.com" in log and "disposable" in log
    assert _attribs_by_email(client) == {
        "ann@example.org": {"city": "Oslo"},
        "info@example.org": {"_verify": {"result": "risky", "reasons": ["role"]}},
    }
