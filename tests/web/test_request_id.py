"""Request ids: kept from a proxy when well-formed, else made; echoed; carried by log lines."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from stmails.logs import RequestIdFilter
from stmails.web.request_id import MAX_LENGTH, accepted

GENERATED = re.compile(r"[0-9a-f]{32}")


class Collected(logging.Handler):
    """The records of the `stmails` loggers, as the server's handler sees them (with the
    request-id filter)."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected() -> Iterator[Collected]:
    handler = Collected()
    logger = logging.getLogger("stmails")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


@pytest.mark.parametrize(
    "value",
    [
        "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        "a" * MAX_LENGTH,
        "nginx:0123456789abcdef",
        "YWJj+ZGVm/Z2hp=",
        "id_1.2@edge",
    ],
)
def test_well_formed_ids_from_a_proxy_are_kept_and_echoed(client: TestClient, value: str) -> None:
    answer = client.get("/health/live", headers={"X-Request-ID": value})
    assert answer.headers["x-request-id"] == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "a" * (MAX_LENGTH + 1),
        "two words",
        'quote"d',
        "tab\there",
        "semi;colon",
        "<script>",
        "ünïcode",
    ],
)
def test_malformed_ids_are_replaced_by_a_new_one(client: TestClient, value: str) -> None:
    raw = value.encode("utf-8")
    answer = client.get("/health/live", headers=[(b"x-request-id", raw)])
    assert GENERATED.fullmatch(answer.headers["x-request-id"])
    assert accepted(raw) is None


def test_each_request_without_an_id_gets_its_own(client: TestClient) -> None:
    ids = {client.get("/health/live").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5 and all(GENERATED.fullmatch(i) for i in ids)


def test_hot_routes_and_errors_echo_the_id_too(client: TestClient) -> None:
    health = client.get("/health", headers={"X-Request-ID": "hot-1"})
    assert (health.status_code, health.headers["x-request-id"]) == (200, "hot-1")
    refused = client.post(
        "/webhooks/bounce", content=b"{", headers={"X-Request-ID": "hot-2"}, auth=None
    )
    assert (refused.status_code, refused.headers["x-request-id"]) == (401, "hot-2")
    missing = client.get("/api/no-such-route", headers={"X-Request-ID": "cold-1"})
    assert (missing.status_code, missing.headers["x-request-id"]) == (404, "cold-1")


def test_log_lines_of_a_request_carry_its_id_in_threads_too(
    app: FastAPI, collected: Collected
) -> None:
    log = logging.getLogger("stmails.test.request")

    # A plain function: FastAPI runs it in a worker thread.
    def in_a_thread() -> dict[str, bool]:
        log.info("work in a thread")
        return {"data": True}

    async def on_the_loop() -> dict[str, bool]:
        log.info("work on the event loop")
        return {"data": True}

    app.add_api_route("/test/thread-log", in_a_thread)
    app.add_api_route("/test/loop-log", on_the_loop)
    with TestClient(app) as client:
        client.get("/test/thread-log", headers={"X-Request-ID": "req-thread"})
        client.get("/test/loop-log", headers={"X-Request-ID": "req-loop"})
    log.info("outside any request")
    seen = {r.getMessage(): getattr(r, "request_id", None) for r in collected.records}
    assert seen["work in a thread"] == "req-thread"
    assert seen["work on the event loop"] == "req-loop"
    assert seen["outside any request"] == "-"


def test_an_unhandled_error_is_logged_with_the_request_id(
    app: FastAPI, collected: Collected
) -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/test/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/test/broken", headers={"X-Request-ID": "req-broken"})
    assert answer.status_code == 500 and answer.headers["x-request-id"] == "req-broken"
    errors = [r for r in collected.records if r.levelno == logging.ERROR]
    assert errors and all(getattr(r, "request_id", None) == "req-broken" for r in errors)
