"""The SNS network seam: no redirects followed, bounded answers (a loopback HTTP server)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stmails.ingest.webhooks.ses import HttpxSnsHttp


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/cert.pem")
            self.end_headers()
            return
        body = b"x" * (200_000 if self.path == "/huge" else 10)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_redirects_are_not_followed_and_big_answers_refused(base_url: str) -> None:
    http = HttpxSnsHttp(timeout=5)
    assert http.get(f"{base_url}/cert.pem") == b"x" * 10
    with pytest.raises(OSError):
        http.get(f"{base_url}/redirect")
    with pytest.raises(OSError):
        http.get(f"{base_url}/huge")


def test_an_unreachable_host_is_an_os_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OSError):
        HttpxSnsHttp(timeout=2).get(f"http://127.0.0.1:{port}/cert.pem")
