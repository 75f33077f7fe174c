"""A subscriber asks for their data from the preferences page their campaign mail links to,
against a real `stmails serve` and a real SMTP server requiring AUTH over STARTTLS: the data
arrives by mail as a JSON attachment (`data.json`) holding what stmails keeps about them."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import httpx
import pytest

from sending.conftest import MakeServer

from .helpers import api, campaign_done, ok, wait_for

pytestmark = pytest.mark.integration

READER = "robin@reader.example"


def test_export_my_data_arrives_as_a_json_attachment(smtp_server: MakeServer, serve: Any) -> None:
    sink = smtp_server(tls="starttls", auth=True)
    server = serve()
    with api(server) as client:
        ok(
            client.put(
                "/api/settings",
                json={
                    "app.from_email": "News <news@sender.example>",
                    "app.root_url": server.url,
                    "smtp": sink.smtp_settings(),
                },
            )
        )
        news = ok(client.post("/api/lists", json={"name": "News", "optin": "single"}))
        ok(
            client.post(
                "/api/subscribers",
                json={
                    "email": READER,
                    "name": "Robin Reader",
                    "lists": [news["id"]],
                    "attribs": {"city": "Lyon"},
                },
            )
        )
        campaign = ok(
            client.post(
                "/api/campaigns",
                json={
                    "name": "Issue 1",
                    "subject": "Issue 1",
                    "lists": [news["id"]],
                    "content_type": "html",
                    "body": '<p>Hi</p><p><a href="{{ ManageURL }}">Manage</a></p>',
                },
            )
        )
        ok(client.put(f"/api/campaigns/{campaign['id']}/status", json={"status": "running"}))
        assert wait_for("the campaign", campaign_done(client, campaign["id"]))["status"] == (
            "finished"
        )

    (issue,) = sink.handler.by_recipient(READER)
    body = issue.message.get_body(("html",))
    assert body is not None
    found = re.search(r'href="([^"]+manage=true)"', body.get_content())
    assert found is not None
    manage = html.unescape(found.group(1))
    assert manage.startswith(server.url + "/subscription/")

    # The subscriber's browser: the page, then its "Mail me my data" form.
    with httpx.Client(timeout=30, headers={"Origin": server.url}) as browser:
        page = browser.get(manage)
        assert page.status_code == 200
        form = re.search(
            r'<form method="post" action="(/subscription/export/[^"]+)">\s*'
            r'<input type="hidden" name="k" value="([^"]+)">',
            page.text,
        )
        assert form is not None, page.text
        sent = browser.post(server.url + form.group(1), data={"k": form.group(2)})
        assert sent.status_code == 200, sent.text
        assert "We have mailed your data" in sent.text

    mails = wait_for("the export mail", lambda: sink.handler.by_recipient(READER)[1:], timeout=30)
    (export,) = mails
    message = export.message
    assert message["Subject"] == "Your data"
    text = message.get_body(("plain",))
    assert text is not None and "attached" in text.get_content()
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "data.json"
    assert attachment.get_content_type() == "application/json"
    data = json.loads(attachment.get_payload(decode=True))
    (profile,) = data["profile"]
    assert profile["email"] == READER and profile["name"] == "Robin Reader"
    assert profile["attribs"] == {"city": "Lyon"}
    assert [s["name"] for s in data["subscriptions"]] == ["News"]
    assert set(data) >= {"profile", "subscriptions", "campaign_views", "link_clicks", "bounces"}
    assert server.stop() == 0
