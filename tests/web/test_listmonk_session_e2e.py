"""End to end, as a listmonk user switching to stmails would go: a server prepared by
`stmails serve` (migrations, the API user from the environment) answers a listmonk client over
real HTTP; the client logs in with `GET /api/health`, makes a list and subscribers, a campaign
without a template, previews it, sends it through a real SMTP server and reads the stats."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from sending.conftest import Sink
from stmails.cli.serve import prepare
from stmails.cli.worker import build_loop
from stmails.config import Settings
from stmails.web.app import create_app
from stmails.workers.sender import start_in_thread

from .listmonk_client import ListmonkClient, ListmonkError

USER, TOKEN = "listmonk-client", "listmonk-client-token-0123456789"


@pytest.fixture
def server(fresh_database_url: Callable[[], str], tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    """`stmails serve` on loopback (its preparation, the app under uvicorn, the sender)."""
    settings = Settings(
        database_url=fresh_database_url(),
        data_dir=tmp_path,
        api_user=USER,
        api_token=TOKEN,
        admin_password="admin-password-123",
    )
    prepare(settings)
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:
        time.sleep(0.01)
    port = running.servers[0].sockets[0].getsockname()[1]
    loop, engine = build_loop(settings, poll_seconds=0.2)
    sender = start_in_thread(loop)
    try:
        yield f"http://127.0.0.1:{port}", settings
    finally:
        loop.stop.set()
        sender.join(30)
        engine.dispose()
        running.should_exit = True
        thread.join(10)


def _until(check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_listmonk_client_session(server: tuple[str, Settings], smtp_sink: Sink) -> None:
    base, settings = server
    with httpx.Client(base_url=base, timeout=30) as http:
        wrong = ListmonkClient(http, USER, "not-the-token", scheme="token")
        with pytest.raises(ListmonkError) as refused:
            wrong.login()
        assert (refused.value.status, refused.value.message) == (403, "invalid API credentials")
        lm = ListmonkClient(http, USER, TOKEN, scheme="token")
        assert lm.login() is True
        assert lm.put("/api/settings/smtp", smtp_sink.smtp_settings()) is True

        news = lm.post("/api/lists", {"name": "Newsletter", "type": "public", "optin": "single",
                                      "tags": ["news"]})  # fmt: skip
        assert (news["status"], news["subscriber_count"]) == ("active", 0)
        for n in range(3):
            lm.post("/api/subscribers", {"email": f"reader{n}@example.org", "name": f"Reader {n}",
                                         "lists": [news["id"]], "status": "enabled",
                                         "preconfirm_subscriptions": True})  # fmt: skip
        [listed] = lm.get("/api/lists", status="active", tag="news")["results"]
        assert listed["subscriber_statuses"] == {"confirmed": 3}

        [default] = [t for t in lm.get("/api/templates") if t["is_default"]]
        campaign = lm.post(
            "/api/campaigns",
            {"name": "Issue 1", "subject": "Hello {{ .Subscriber.FirstName }}",
             "lists": [news["id"]], "from_email": "News <news@example.org>",
             "content_type": "richtext", "messenger": "email", "type": "regular",
             "body": "<p>Hi {{ .Subscriber.Name }}, welcome.</p>", "tags": ["first"]},
        )  # fmt: skip
        assert campaign["template_id"] == default["id"]

        saved = lm.request("GET", f"/api/campaigns/{campaign['id']}/preview")
        assert "Hi Demo Subscriber, welcome." in saved.text and "Unsubscribe" in saved.text
        unsaved = lm.request(
            "POST",
            f"/api/campaigns/{campaign['id']}/preview",
            json={"body": "## Draft {{ .Subscriber.Name }}", "content_type": "markdown"},
        )
        assert "<h2>Draft Demo Subscriber</h2>" in unsaved.text

        started = lm.put(f"/api/campaigns/{campaign['id']}/status", {"status": "running"})
        assert started["status"] == "running"
        _until(lambda: lm.get(f"/api/campaigns/{campaign['id']}")["status"] == "finished")
        done = lm.get(f"/api/campaigns/{campaign['id']}")
        assert (done["to_send"], done["sent"]) == (3, 3)
        assert lm.get("/api/campaigns/running/stats") == []
        stats = lm.get(f"/api/campaigns/{campaign['id']}/stats")
        assert stats["sent"] == 3

        sent = sorted(smtp_sink.handler.messages, key=lambda m: m.rcpt_tos[0])
        assert [m.rcpt_tos[0] for m in sent] == [f"reader{n}@example.org" for n in range(3)]
        first = sent[0].message
        assert first["Subject"] == "Hello Reader"
        html = first.get_body(("html",)).get_content()
        # The default template wrapped the body, with working unsubscribe and manage links.
        assert "Hi Reader 0, welcome." in html
        root = settings.root_url.rstrip("/")
        assert f'href="{root}/subscription/' in html and "Unsubscribe" in html
