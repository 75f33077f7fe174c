"""Issue 11: a new SQLite database, its write-ahead log and shared-memory file are readable and
writable by their owner only (0600), whatever the process umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from stmails.config import Settings
from stmails.db.engine import make_engine
from stmails.db.migrate import open_database


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_and_its_wal_files_are_private(tmp_path: Path, open_umask: None) -> None:
    database = tmp_path / "stmails.db"
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM t")) == 1
            files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
            assert all(f.exists() for f in files), files
            assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        engine.dispose()


def test_the_server_database_is_private_and_an_existing_file_is_left_alone(
    tmp_path: Path, open_umask: None
) -> None:
    database = tmp_path / "server.db"
    engine = open_database(Settings(database_url=f"sqlite:///{database}", data_dir=tmp_path))
    engine.dispose()
    assert _mode(database) == 0o600
    shared = tmp_path / "shared.db"
    shared.touch(mode=0o640)
    os.chmod(shared, 0o640)
    make_engine(f"sqlite:///{shared}").dispose()
    assert _mode(shared) == 0o640
