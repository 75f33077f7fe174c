"""`stmails db backup` / `restore` end to end: a real server ingesting bounces over HTTP while
the backup runs, a restore refused under it, a restore into a new database that a server then
serves. On PostgreSQL both commands refuse with the pg_dump guidance."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from running_server import API_TOKEN, API_USER, Server, environment, stmails_serve
from stmails.db.migrate import head_revision

STMAILS = [sys.executable, "-m", "stmails"]


def stmails(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STMAILS, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def server_environment(work: Path, database: Path) -> dict[str, str]:
    return environment(
        STMAILS_DATABASE_URL=f"sqlite:///{database}",
        STMAILS_DATA_DIR=str(work),
        STMAILS_API_USER=API_USER,
        STMAILS_API_TOKEN=API_TOKEN,
        STMAILS_ADMIN_PASSWORD="e2e-admin-password",
    )


@dataclass
class Poster:
    """Posts bounce events to a server one after the other, noting the acknowledged ones."""

    server: Server
    acked: list[int] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.server.url, auth=(API_USER, API_TOKEN)) as client:
            while not self.stop.is_set():
                number = self.sent
                self.sent += 1
                answer = client.post(
                    "/webhooks/bounce",
                    json={
                        "email": f"user{number}@backup.example",
                        "source": "e2e",
                        "type": "hard",
                        "event_id": str(number),
                    },
                )
                if answer.status_code == 200:
                    self.acked.append(number)


def stored_events(database: Path) -> set[int]:
    connection = sqlite3.connect(database)
    try:
        keys = connection.execute("SELECT dedup_key FROM bounces WHERE source = 'e2e'")
        return {int(key.removeprefix("e2e:")) for (key,) in keys}
    finally:
        connection.close()


def test_backup_under_load_then_restore_into_a_new_database_that_serves(
    db_url: str, tmp_path: Path
) -> None:
    if make_url(db_url).get_backend_name() != "sqlite":
        pytest.skip("SQLite's online backup; the PostgreSQL run checks the refusal instead")
    live = tmp_path / "live" / "stmails.db"
    live.parent.mkdir()
    env = server_environment(tmp_path, live)
    backup_file = tmp_path / "backups" / "stmails-backup.db"
    with stmails_serve(STMAILS, env, tmp_path) as server:
        poster = Poster(server)
        thread = threading.Thread(target=poster.run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while len(poster.acked) < 50 and time.monotonic() < deadline:
                time.sleep(0.05)
            acked_before = set(poster.acked)
            made = stmails(env, tmp_path, "db", "backup", str(backup_file))
            assert made.returncode == 0, made.stderr
            sent_after = poster.sent
            acked_after = len(poster.acked)
            refused = stmails(env, tmp_path, "db", "restore", str(backup_file))
        finally:
            poster.stop.set()
            thread.join(30)
        assert acked_before and acked_after > len(acked_before)
        assert f"schema revision {head_revision()}" in made.stdout
        assert refused.returncode == 1
        assert "stop it first" in refused.stderr and "--force" in refused.stderr
    assert backup_file.stat().st_mode & 0o777 == 0o600
    in_backup = stored_events(backup_file)
    # Everything acknowledged before the backup began is in it; nothing sent after it ended.
    assert acked_before <= in_backup
    assert max(in_backup) < sent_after

    restored = tmp_path / "restored" / "stmails.db"
    restored_env = server_environment(tmp_path, restored)
    done = stmails(restored_env, tmp_path, "db", "restore", str(backup_file))
    assert done.returncode == 0, done.stderr
    assert restored.stat().st_mode & 0o777 == 0o600
    assert stored_events(restored) == in_backup
    with stmails_serve(STMAILS, restored_env, tmp_path) as server:
        ready = httpx.get(server.url + "/health/ready")
        assert ready.status_code == 200, ready.text
        listed = httpx.get(
            server.url + "/api/bounces", params={"per_page": 1}, auth=(API_USER, API_TOKEN)
        )
        assert listed.status_code == 200
        assert listed.json()["data"]["total"] == len(in_backup)


def test_postgresql_is_refused_with_the_pg_dump_guidance(db_url: str, tmp_path: Path) -> None:
    url = db_url
    if make_url(db_url).get_backend_name() == "sqlite":
        # The refusal needs no server: the URL alone decides.
        url = "postgresql+psycopg://stmails:do-not-print-me@127.0.0.1:1/stmails"
    env = environment(STMAILS_DATABASE_URL=url, STMAILS_DATA_DIR=str(tmp_path))
    for command in ("backup", "restore"):
        done = stmails(env, tmp_path, "db", command, str(tmp_path / "file.db"))
        assert done.returncode == 1
        assert "pg_dump" in done.stderr and "docs/deployment.md" in done.stderr
        password = make_url(url).password
        assert not password or str(password) not in done.stdout + done.stderr
    assert not (tmp_path / "file.db").exists()
