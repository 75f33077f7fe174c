"""Hostile mail reaching the real server (`stmails serve` in a process of its own) through a
real Dovecot mailbox: the API keeps answering while the message is scanned, the message is
quarantined after its tries, the others are recorded, and a server killed while classifying
it is not caught in a loop of restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from sending.conftest import free_port
from stmails.config import Settings
from stmails.db.engine import session_factory
from stmails.db.migrate import open_database
from stmails.db.models import Bounce
from stmails.services import settings as settings_service

from .conftest import Mailbox
from .hostile import MARKER_ENV, alive, hostile_bounce
from .messages import dsn
from .test_worker import served_entry

pytestmark = pytest.mark.integration

TESTS = Path(__file__).resolve().parents[2]
# The longest a /health answer may take while a message hangs the classifier. The hanging
# classifier holds an interpreter for seconds per call: a server classifying in its own
# process would miss this bound by far.
HEALTH_BOUND = 2.0


class Served:
    """The database, settings and environment of one server, which can be started again."""

    def __init__(self, url: str, data_dir: Path, marker: Path) -> None:
        self.url, self.data_dir, self.marker = url, data_dir, marker
        self.settings = Settings(database_url=url, data_dir=data_dir)
        self.engine = open_database(self.settings)
        self.sessions = session_factory(self.engine)

    def configure(self, mailbox: Mailbox, **entry: Any) -> None:
        with self.sessions() as session:
            settings_service.set_value(
                session,
                "bounce.mailboxes",
                [{**served_entry(mailbox), "scan_interval": "1s", **entry}],
            )
            session.commit()

    def recorded(self) -> list[str]:
        with self.sessions() as session:
            return sorted(session.scalars(select(Bounce.email)))

    def hostile_starts(self) -> int:
        return len(self.marker.read_text().split()) if self.marker.exists() else 0

    @contextmanager
    def running(self) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client]]:
        port = free_port()
        env = {
            **os.environ,
            "STMAILS_DATABASE_URL": self.url,
            "STMAILS_DATA_DIR": str(self.data_dir),
            "STMAILS_ADMIN_PASSWORD": "served-admin-password",
            "PYTHONPATH": str(TESTS),
            MARKER_ENV: str(self.marker),
        }
        log = (self.data_dir / f"server-{port}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "ingest.mailbox.serve_hostile", str(port)],
            env=env,
            cwd=TESTS,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        try:
            deadline = time.monotonic() + 90
            while True:
                assert process.poll() is None, f"the server exited; see {log.name}"
                assert time.monotonic() < deadline, f"the server did not start; see {log.name}"
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield process, client
        finally:
            client.close()
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
            log.close()

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def served(fresh_database_url: Callable[[], str], tmp_path: Path, dovecot: Any) -> Iterator[Served]:
    server = Served(fresh_database_url(), tmp_path, tmp_path / "hostile-starts")
    yield server
    server.close()


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_health_answers_while_a_hostile_message_is_scanned(
    mailbox: Mailbox, served: Served
) -> None:
    served.configure(mailbox, classify_timeout=1.5, max_tries=3)
    mailbox.append(
        dsn("first@dest.example", subject="first", message_id="1@x"),
        hostile_bounce(subject="hostile"),
        dsn("last@dest.example", subject="last", message_id="2@x"),
    )
    latencies: list[float] = []
    with served.running() as (_, client):
        deadline = time.monotonic() + 120
        while mailbox.subjects("Quarantine") != ["hostile"]:
            assert time.monotonic() < deadline, "the hostile message was never quarantined"
            started = time.monotonic()
            assert client.get("/health").status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.05)
        wait_for(lambda: len(served.recorded()) == 2, 30, "the other bounces were not recorded")
    # Three tries: in a group and then alone in the first scan, alone in the two after it
    # (its mailbox_state row is gone with the message once quarantined).
    assert served.hostile_starts() == 4
    assert served.recorded() == ["first@dest.example", "last@dest.example"]
    assert mailbox.subjects() == []
    # The server answered all along, at least once per second of hanging classification.
    assert len(latencies) >= 4
    assert max(latencies) < HEALTH_BOUND, sorted(latencies)[-5:]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and prctl")
def test_a_server_killed_while_classifying_does_not_loop(mailbox: Mailbox, served: Served) -> None:
    # A budget far longer than the test: only the kills end the hostile classification.
    served.configure(mailbox, classify_timeout=300, max_tries=2)
    mailbox.append(
        hostile_bounce(subject="hostile"),
        dsn("other@dest.example", subject="other", message_id="o@x"),
    )
    kills = 0
    for _start in range(5):
        with served.running() as (process, _):
            done = False
            deadline = time.monotonic() + 90
            while served.hostile_starts() <= kills:
                if mailbox.subjects("Quarantine") == ["hostile"] and served.recorded():
                    done = True
                    break
                assert time.monotonic() < deadline, "the server neither scanned nor finished"
                time.sleep(0.1)
            if done:
                break
            worker = int(served.marker.read_text().split()[-1])
            # The server dies (kill -9) while the message is being classified.
            process.kill()
            process.wait(10)
            kills += 1
            wait_for(lambda pid=worker: not alive(pid), 10, "the classifier outlived the server")
    else:
        pytest.fail("the server was killed on every start")
    assert kills == 2, "one try in a batch, one alone: then it is quarantined unread"
    assert served.hostile_starts() == 2
    assert served.recorded() == ["other@dest.example"]
    assert mailbox.subjects() == []
