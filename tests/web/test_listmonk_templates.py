"""listmonk's template API where stmails used to differ: `template_type` in unsaved
previews, `PUT .../default` answering the list, and the templates an installation starts
with."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from .listmonk_client import ListmonkClient, ListmonkError

LAYOUT = '<main>{{ template "content" . }}</main>'


@pytest.fixture
def lm(client: TestClient, api_credentials: tuple[str, str]) -> ListmonkClient:
    return ListmonkClient(client, *api_credentials)


def test_unsaved_preview_reads_template_type(lm: ListmonkClient) -> None:
    tx = lm.request(
        "POST",
        "/api/templates/preview",
        json={"template_type": "tx", "body": "<p>Code {{ .Tx.Data.sample }}</p>"},
    )
    assert tx.status_code == 200, tx.text
    # A tx template is the whole message: no sample campaign content is put in it.
    assert "Code True" in tx.text and "sample campaign content" not in tx.text
    campaign = lm.request("POST", "/api/templates/preview",
                          json={"template_type": "campaign", "body": LAYOUT})  # fmt: skip
    assert campaign.status_code == 200
    assert campaign.text.startswith("<main>") and "sample campaign content" in campaign.text
    bad = lm.request("POST", "/api/templates/preview", json={"template_type": "x", "body": ""})
    assert bad.status_code == 400 and "template_type" in bad.json()["message"]


def test_setting_the_default_answers_every_template(lm: ListmonkClient) -> None:
    first = lm.post("/api/templates", {"name": "One", "type": "campaign", "body": LAYOUT})
    second = lm.post("/api/templates", {"name": "Two", "type": "campaign", "body": LAYOUT})
    tx = lm.post("/api/templates", {"name": "Tx", "type": "tx", "subject": "S", "body": "B"})
    answer = lm.put(f"/api/templates/{second['id']}/default")
    assert [(t["id"], t["is_default"]) for t in answer] == [
        (first["id"], False), (second["id"], True), (tx["id"], False),
    ]  # fmt: skip
    assert lm.get("/api/templates") == answer
    assert all(t["body"] == "" for t in lm.get("/api/templates", no_body="true"))
    with pytest.raises(ListmonkError) as refused:
        lm.put(f"/api/templates/{tx['id']}/default")
    assert refused.value.status == 400


def test_the_installed_templates_render(installed: ListmonkClient) -> None:
    campaign, tx = installed.get("/api/templates")
    assert (campaign["type"], campaign["is_default"], tx["type"]) == ("campaign", True, "tx")
    shown = installed.request("GET", f"/api/templates/{campaign['id']}/preview")
    assert shown.status_code == 200, shown.text
    assert "sample campaign content" in shown.text and "Unsubscribe" in shown.text
    sample = installed.request("GET", f"/api/templates/{tx['id']}/preview")
    assert sample.status_code == 200, sample.text
    assert "Hello Demo Subscriber" in sample.text
    # The sample is an ordinary template: it may go; the default may not.
    assert installed.delete(f"/api/templates/{tx['id']}") is True
    with pytest.raises(ListmonkError):
        installed.delete(f"/api/templates/{campaign['id']}")
