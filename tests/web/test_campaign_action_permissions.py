"""Issue 11: previewing a campaign for a named subscriber shows that subscriber's data (needs
`subscribers:get`), and a test send with content that is not saved writes the campaign in
effect (needs `campaigns:manage_all`)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from .test_permissions import MakeUser, _seed, make_user  # noqa: F401


def test_a_preview_for_a_named_subscriber_needs_subscribers_get(
    client: TestClient,
    session_maker: sessionmaker[Session],
    make_user: MakeUser,  # noqa: F811
) -> None:
    ids = _seed(session_maker)
    path = f"/api/campaigns/{ids['campaign']}/preview"
    reader = make_user("campaigns:get_all")
    assert client.get(path, auth=reader).status_code == 200
    for params in ({"subscriber_id": ids["subscriber"]}, {"subscriber_email": "a@example.org"}):
        refused = client.get(path, params=params, auth=reader)
        assert refused.status_code == 403, refused.text
        assert refused.json()["message"] == "permission denied: subscribers:get required"
    both = make_user("campaigns:get_all", "subscribers:get")
    shown = client.get(path, params={"subscriber_id": ids["subscriber"]}, auth=both)
    assert shown.status_code == 200, shown.text


def test_a_test_send_with_unsaved_content_needs_campaigns_manage_all(
    client: TestClient,
    session_maker: sessionmaker[Session],
    make_user: MakeUser,  # noqa: F811
) -> None:
    ids = _seed(session_maker)
    path = f"/api/campaigns/{ids['campaign']}/test"
    sender = make_user("campaigns:send")
    saved = client.post(path, json={"subscribers": ["a@example.org"]}, auth=sender)
    assert saved.status_code != 403, saved.text
    for field, value in (("body", "<p>{{ .Subscriber.Email }}</p>"), ("subject", "x")):
        changed = {"subscribers": ["a@example.org"], field: value}
        refused = client.post(path, json=changed, auth=sender)
        assert refused.status_code == 403, refused.text
        assert refused.json()["message"] == "permission denied: campaigns:manage_all required"
    editor = make_user("campaigns:send", "campaigns:manage_all")
    body = {"subscribers": ["a@example.org"], "body": "<p>x</p>"}
    assert client.post(path, json=body, auth=editor).status_code != 403
