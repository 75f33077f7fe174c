"""What the request-id middleware adds to one request, in process (no network, no server).

An ASGI endpoint that answers as the hot bounce route does (two messages, a shared header list)
is called directly, then through `RequestIdMiddleware` with a new id made per request, then with
a well-formed id from a proxy. The scope holds the headers a bounce webhook request carries.
Each case runs `--requests` times, three rounds, best round kept; the figures are microseconds
per request and the added cost against the bare endpoint measured in the same run.

    .venv/bin/python benchmarks/request_id.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from stmails.web.request_id import RequestIdMiddleware

HEADERS = [(b"content-length", b"31"), (b"content-type", b"application/json")]
BODY = b'{"data":true,"duplicate":false}'


async def endpoint(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: dict[str, Any]) -> None:
    return None


def scope(request_id: bytes | None) -> dict[str, Any]:
    headers = [
        (b"host", b"127.0.0.1:9000"),
        (b"authorization", b"Basic YmVuY2g6YmVuY2gtdG9rZW4="),
        (b"content-type", b"application/json"),
        (b"content-length", b"150"),
    ]
    if request_id is not None:
        headers.append((b"x-request-id", request_id))
    return {"type": "http", "method": "POST", "path": "/webhooks/bounce", "headers": headers}


async def per_request(app: Any, request: dict[str, Any], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await app(dict(request), receive, send)
    return (time.perf_counter() - started) / count * 1e6


async def main(count: int) -> None:
    wrapped = RequestIdMiddleware(endpoint)
    cases = [
        ("bare endpoint", endpoint, scope(None)),
        ("middleware, new id", wrapped, scope(None)),
        ("middleware, id from a proxy", wrapped, scope(b"3f2504e0-4f89-11d3-9a0c-0305e82c3301")),
    ]
    print(
        f"request_id: {count} requests per round, best of 3 rounds, one process on "
        f"{os.cpu_count()} cores (load average now {os.getloadavg()[0]:.1f})"
    )
    bare = 0.0
    for label, app, request in cases:
        best = min([await per_request(app, request, count) for _ in range(3)])
        bare = bare or best
        print(f"{label:<30} {best:6.2f} us per request  (+{best - bare:5.2f} us)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000, help="requests per round")
    asyncio.run(main(parser.parse_args().requests))
