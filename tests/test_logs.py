"""Log records as text or JSON lines, with request ids and bounded, secret-free content."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from stmails import logs
from stmails.config import Settings


def record(
    message: str,
    *args: object,
    name: str = "stmails.test",
    level: int = logging.INFO,
    exc_info: object = None,
    **extra: object,
) -> logging.LogRecord:
    made = logging.LogRecord(name, level, __file__, 1, message, args or None, exc_info)  # type: ignore[arg-type]
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def json_line(made: logging.LogRecord) -> dict[str, object]:
    logs.RequestIdFilter().filter(made)
    line = logs.JsonFormatter().format(made)
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_json_line_has_time_level_logger_message_and_request_id() -> None:
    token = logs.REQUEST_ID.set("req-42")
    try:
        made = record("scanned %s: %d messages", "bounces@example.org", 3)
        out = json_line(made)
    finally:
        logs.REQUEST_ID.reset(token)
    assert out["level"] == "info"
    assert out["logger"] == "stmails.test"
    assert out["message"] == "scanned bounces@example.org: 3 messages"
    assert out["request_id"] == "req-42"
    assert isinstance(out["time"], str) and out["time"].endswith("Z") and "T" in out["time"]


def test_json_line_outside_a_request_has_no_request_id() -> None:
    assert "request_id" not in json_line(record("started"))


def test_json_line_keeps_scalar_extras_and_drops_others() -> None:
    out = json_line(record("scan done", mailbox="main", read=12, failed=None, blob=object()))
    assert (out["mailbox"], out["read"], out["failed"]) == ("main", 12, None)
    assert "blob" not in out


def test_messages_and_tracebacks_are_cut_to_their_budget() -> None:
    huge = "x" * (logs.MAX_MESSAGE_CHARS * 3)
    try:
        raise ValueError("y" * (logs.MAX_TRACEBACK_CHARS * 2))
    except ValueError:
        info = sys.exc_info()
    out = json_line(record("diagnostic: %s", huge, level=logging.ERROR, exc_info=info))
    assert isinstance(out["message"], str) and isinstance(out["exception"], str)
    assert len(out["message"]) < logs.MAX_MESSAGE_CHARS + 100
    assert out["message"].endswith("more characters]")
    assert len(out["exception"]) < logs.MAX_TRACEBACK_CHARS + 100
    assert "ValueError" in out["exception"]


def test_access_lines_are_structured_and_drop_the_query_string() -> None:
    made = record(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "GET",
        "/api/subscribers?token=very-secret&page=2",
        "1.1",
        200,
        name=logs.ACCESS_LOGGER,
    )
    out = json_line(made)
    assert (out["method"], out["path"], out["status"]) == ("GET", "/api/subscribers", 200)
    assert "very-secret" not in json.dumps(out)
    text = logs.TextFormatter().format(made)
    assert "very-secret" not in text and "GET /api/subscribers HTTP/1.1" in text


def test_text_lines_escape_line_breaks_from_the_message() -> None:
    made = record("diagnostic: %s", "550 no such user\nINFO forged line")
    logs.RequestIdFilter().filter(made)
    line = logs.TextFormatter().format(made)
    assert "\n" not in line
    assert "550 no such user\\nINFO forged line" in line
    assert "[-]" in line


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    uvicorn = {name: logging.getLogger(name) for name in ("uvicorn", "uvicorn.access")}
    saved = {name: (lg.handlers[:], lg.level, lg.propagate) for name, lg in uvicorn.items()}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, (old_handlers, old_level, propagate) in saved.items():
        uvicorn[name].handlers[:] = old_handlers
        uvicorn[name].setLevel(old_level)
        uvicorn[name].propagate = propagate


@pytest.mark.usefixtures("restore_logging")
def test_configure_sends_every_logger_through_one_json_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    logs.configure("json", "warning")
    token = logs.REQUEST_ID.set("abc")
    try:
        logging.getLogger("stmails.workers.mailbox").warning("mailbox %s: scan stopped", "main")
        logging.getLogger("uvicorn.error").error("uvicorn says %s", "hello")
        logging.getLogger("stmails.web").info("below the level")
    finally:
        logs.REQUEST_ID.reset(token)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(x["logger"], x["message"], x["request_id"]) for x in lines] == [
        ("stmails.workers.mailbox", "mailbox main: scan stopped", "abc"),
        ("uvicorn.error", "uvicorn says hello", "abc"),
    ]


def test_log_settings_accept_either_case_and_refuse_unknown_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("STMAILS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STMAILS_LOG_FORMAT", "JSON")
    monkeypatch.setenv("STMAILS_LOG_LEVEL", "Warning")
    settings = Settings()
    assert (settings.log_format, settings.log_level) == ("json", "warning")
    monkeypatch.setenv("STMAILS_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="log_format"):
        Settings()
    assert Settings(log_format="text").log_format == "text"
