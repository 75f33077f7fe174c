"""`stmails serve` as a service manager runs it: JSON logs on standard error with the request
ids the answers carry, and a clean stop on SIGTERM (the campaign sender stopped too)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

from running_server import API_TOKEN, API_USER, environment, stmails_serve


def test_json_logs_carry_request_ids_and_sigterm_stops_everything_cleanly(
    tmp_path: Path,
) -> None:
    env = environment(
        STMAILS_DATABASE_URL=f"sqlite:///{tmp_path / 'stmails.db'}",
        STMAILS_DATA_DIR=str(tmp_path),
        STMAILS_API_USER=API_USER,
        STMAILS_API_TOKEN=API_TOKEN,
        STMAILS_ADMIN_PASSWORD="e2e-admin-password",
        STMAILS_LOG_FORMAT="json",
    )
    command = [sys.executable, "-m", "stmails"]
    with stmails_serve(command, env, tmp_path, extra_args=["--access-log"]) as server:
        given = httpx.get(server.url + "/health/ready", headers={"X-Request-ID": "lb-check-1"})
        made = httpx.get(
            server.url + "/api/lists",
            params={"token": "query-secret-123"},
            headers={"X-Request-ID": "bad id with spaces"},
        )
        bounce = httpx.post(
            server.url + "/webhooks/bounce",
            json={"email": "gone@example.org", "source": "e2e", "type": "hard"},
            auth=(API_USER, API_TOKEN),
        )
        status = server.stop()
    assert given.headers["x-request-id"] == "lb-check-1"
    assert made.status_code == 401 and len(made.headers["x-request-id"]) == 32
    assert bounce.status_code == 200 and bounce.headers["x-request-id"]
    assert status == 0

    lines = [json.loads(line) for line in server.stderr.read_text().splitlines() if line]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    access = {line["path"]: line for line in lines if line["logger"] == "uvicorn.access"}
    assert access["/health/ready"]["request_id"] == "lb-check-1"
    assert access["/api/lists"]["request_id"] == made.headers["x-request-id"]
    assert access["/api/lists"]["status"] == 401
    assert access["/webhooks/bounce"]["request_id"] == bounce.headers["x-request-id"]
    everything = server.output()
    assert "query-secret-123" not in everything and "bad id with spaces" not in everything
    assert API_TOKEN not in everything
    messages = [line["message"] for line in lines]
    assert "ready: every check passes" in messages
    # SIGTERM ended the process through its clean stop, the sender's included.
    assert "campaign sender stopped" in messages
    assert messages.index("campaign sender stopped") > messages.index("Shutting down")
