"""db.backup: online SQLite backups are consistent snapshots; restores check before they copy."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from stmails.db.backup import (
    BackupError,
    backup,
    check_backup,
    held_by_server,
    lock_file,
    restore,
    sqlite_file,
)
from stmails.db.engine import make_engine
from stmails.db.migrate import head_revision, upgrade

# Rows each writer transaction inserts: a snapshot holds all of a transaction's rows or none.
ROWS_PER_TRANSACTION = 5


def migrated(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def database(tmp_path: Path) -> str:
    """The URL of a migrated SQLite database (WAL mode, as the server keeps it)."""
    return migrated(tmp_path / "live" / "stmails.db")


def rows(path: Path) -> list[tuple[str, str]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT key, value FROM settings ORDER BY key").fetchall()
    finally:
        connection.close()


def write_transaction(engine: Engine, number: int) -> None:
    insert = text("INSERT INTO settings (key, value, updated_at) VALUES (:k, :v, :at)")
    with engine.begin() as connection:
        for part in range(ROWS_PER_TRANSACTION):
            connection.execute(
                insert, {"k": f"test.{number:06d}.{part}", "v": f'"{number}"', "at": "2026-01-01"}
            )


@pytest.fixture
def writer(database: str) -> Iterator[threading.Event]:
    """A thread that commits transactions into the database until the test ends; the event
    is set once it has committed some."""
    engine = make_engine(database)
    stop, started = threading.Event(), threading.Event()

    def run() -> None:
        number = 0
        while not stop.is_set():
            write_transaction(engine, number)
            number += 1
            if number == 20:
                started.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield started
    stop.set()
    thread.join(10)
    engine.dispose()


def test_backups_taken_while_a_writer_commits_are_consistent_snapshots(
    database: str, writer: threading.Event, tmp_path: Path
) -> None:
    assert writer.wait(10)
    seen: list[int] = []
    for attempt in range(3):
        destination = tmp_path / "backups" / f"copy-{attempt}.db"
        info = backup(database, destination)
        assert info.revision == head_revision() and info.at_head
        assert info.size == destination.stat().st_size > 0
        assert destination.stat().st_mode & 0o777 == 0o600
        # A self-contained file: no write-ahead log beside it.
        assert not Path(f"{destination}-wal").exists()
        batches = Counter(key.split(".")[1] for key, _ in rows(destination))
        assert batches and set(batches.values()) == {ROWS_PER_TRANSACTION}
        # The transactions in a snapshot are the first N, with no gap.
        numbers = sorted(int(n) for n in batches)
        assert numbers == list(range(len(numbers)))
        seen.append(len(numbers))
    assert seen == sorted(seen)
    # Restored into a new database, the backup is what the restored database holds.
    restored_url = f"sqlite:///{tmp_path / 'restored' / 'stmails.db'}"
    info = restore(tmp_path / "backups" / "copy-2.db", restored_url)
    restored = sqlite_file(restored_url)
    assert rows(restored) == rows(tmp_path / "backups" / "copy-2.db")
    assert info.revision == head_revision()
    assert restored.stat().st_mode & 0o777 == 0o600


def test_restore_replaces_the_content_of_a_live_database_in_place(
    database: str, tmp_path: Path
) -> None:
    engine = make_engine(database)
    write_transaction(engine, 1)
    saved = backup(database, tmp_path / "saved.db")
    write_transaction(engine, 2)
    live = sqlite_file(database)
    os.chmod(live, 0o640)
    inode = live.stat().st_ino
    restore(saved.path, database)
    # The engine's own connections see the restored content.
    with engine.connect() as connection:
        keys = connection.execute(text("SELECT key FROM settings WHERE key LIKE 'test.%'"))
        assert {k for (k,) in keys} == {f"test.000001.{i}" for i in range(ROWS_PER_TRANSACTION)}
    engine.dispose()
    assert (live.stat().st_ino, live.stat().st_mode & 0o777) == (inode, 0o640)
    connection = sqlite3.connect(live)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    connection.close()


def test_restore_refuses_while_a_server_holds_the_database_unless_forced(
    database: str, tmp_path: Path
) -> None:
    saved = backup(database, tmp_path / "saved.db")
    with held_by_server(database):
        with pytest.raises(BackupError, match=r"is using .*stop it first"):
            restore(saved.path, database)
        assert restore(saved.path, database, force=True).revision == head_revision()
    assert restore(saved.path, database).revision == head_revision()
    assert lock_file(sqlite_file(database)).stat().st_mode & 0o777 == 0o600


def test_a_server_does_not_start_while_a_restore_runs(database: str) -> None:
    lock = lock_file(sqlite_file(database))
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with (
            pytest.raises(BackupError, match=r"a restore of .* is running"),
            held_by_server(database),
        ):
            pass
    finally:
        os.close(fd)
    with held_by_server(database), held_by_server(database):
        # Servers share the lock with each other.
        pass


def test_backup_refuses_what_it_cannot_do(database: str, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="pg_dump"):
        backup("postgresql+psycopg://stmails:pw@db.example/stmails", tmp_path / "x.db")
    with pytest.raises(BackupError, match="in-memory"):
        backup("sqlite://", tmp_path / "x.db")
    with pytest.raises(BackupError, match="no database at"):
        backup(f"sqlite:///{tmp_path / 'absent.db'}", tmp_path / "x.db")
    taken = backup(database, tmp_path / "taken.db").path
    with pytest.raises(BackupError, match="exists"):
        backup(database, taken)
    assert backup(database, taken, overwrite=True).path == taken
    with pytest.raises(BackupError, match="folder"):
        backup(database, tmp_path, overwrite=True)
    # Nothing half-written is left behind.
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_restore_checks_the_backup_before_touching_the_database(
    database: str, tmp_path: Path
) -> None:
    engine = make_engine(database)
    write_transaction(engine, 7)
    engine.dispose()
    before = rows(sqlite_file(database))
    good = backup(database, tmp_path / "good.db").path

    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("not a database at all, just text " * 200)
    foreign = tmp_path / "foreign.db"
    connection = sqlite3.connect(foreign)
    connection.execute("CREATE TABLE t (x)")
    connection.close()
    newer, prefix = tmp_path / "newer.db", tmp_path / "prefix.db"
    for path, revision in ((newer, "0099_from_the_future"), (prefix, "0001")):
        path.write_bytes(good.read_bytes())
        connection = sqlite3.connect(path)
        connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        connection.commit()
        connection.close()
    garbled = tmp_path / "garbled.db"
    data = bytearray(good.read_bytes())
    # Pages 2 to 6 (b-tree pages) overwritten with garbage; the header stays readable.
    data[4096 : 4096 * 6] = b"\xa5" * (4096 * 5)
    garbled.write_bytes(bytes(data))
    # An index forgotten by the schema: SQLite reads the file, its integrity check does not
    # pass (the index's pages belong to nothing).
    orphaned = tmp_path / "orphaned.db"
    orphaned.write_bytes(good.read_bytes())
    connection = sqlite3.connect(orphaned)
    connection.execute("PRAGMA writable_schema=ON")
    connection.execute("DELETE FROM sqlite_master WHERE name = 'uq_subscribers_email_lower'")
    connection.commit()
    connection.close()

    cases = [
        (tmp_path / "missing.db", "no backup file"),
        (not_sqlite, "not a readable SQLite database"),
        (foreign, "not a stmails database"),
        (newer, "0099_from_the_future.*does not know"),
        (prefix, "'0001'.*does not know"),
        (garbled, "not a readable SQLite database: database disk image is malformed"),
        (orphaned, "failed its integrity check: .*Page \\d+ is never used"),
    ]
    for path, message in cases:
        with pytest.raises(BackupError, match=message):
            restore(path, database)
        assert rows(sqlite_file(database)) == before
    assert check_backup(good) == head_revision()
    with pytest.raises(BackupError, match="the database itself"):
        restore(sqlite_file(database), database)
