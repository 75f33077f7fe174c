"""A real `stmails serve` process for end-to-end tests: started on a free loopback port with an
environment of the test's choosing, ready once `/health/live` answers, stopped afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

API_USER = "e2e-robot"
API_TOKEN = "e2e-robot-token-0123456789"


def free_port() -> int:
    """A TCP port that nothing listens on now (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(**values: str) -> dict[str, str]:
    """This process's environment without any STMAILS_* variable or PYTHONPATH (so that the
    server sees only what the test sets), plus `values`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("STMAILS_") and key != "PYTHONPATH"
    }
    env.update(values)
    return env


@dataclass
class Server:
    """A running server: its base URL, process and the files its output goes to."""

    url: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> str:
        """What the server wrote so far to standard output and standard error."""
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def stop(self) -> int:
        """Stops the server as systemd would (SIGTERM, then SIGKILL); its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def stmails_serve(
    command: Sequence[str],
    env: Mapping[str, str],
    workdir: Path,
    extra_args: Sequence[str] = (),
    timeout: float = 90.0,
) -> Iterator[Server]:
    """Runs `command serve --port P` (command: the `stmails` program, or a Python and `-m
    stmails`) in `workdir` with `env` until the block ends."""
    port = free_port()
    stdout = workdir / f"serve-{port}.out"
    stderr = workdir / f"serve-{port}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [*command, "serve", "--port", str(port), *extra_args],
            env=dict(env),
            cwd=workdir,
            stdout=out,
            stderr=err,
        )
    server = Server(f"http://127.0.0.1:{port}", process, stdout, stderr)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                status = process.returncode
                raise AssertionError(f"stmails serve exited with {status}:\n{server.output()}")
            try:
                if httpx.get(server.url + "/health/live", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("stmails serve did not start:\n" + server.output())
            time.sleep(0.2)
        yield server
    finally:
        server.stop()
