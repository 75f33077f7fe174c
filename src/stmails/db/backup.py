"""Online backup and restore of a SQLite database (`stmails db backup` / `stmails db restore`).

A backup is made with SQLite's online backup API in a single step, that is under one read
transaction: in WAL mode that is a consistent snapshot of the last committed state, taken while
the server goes on writing (writers never wait for it). The copy is checked
(`PRAGMA integrity_check`), switched to a self-contained rollback-journal file, written under a
temporary name with mode 0600 and renamed into place only when complete.

A restore first checks the backup: SQLite opens it, its integrity check passes, and its schema
revision is one this code's migrations know (a backup from a newer stmails is refused). It then
copies it into the live database through the same backup API, in one write transaction: the
file keeps its place, owner and mode, and a crash half-way leaves the old content.

Processes that keep the database open for long (`stmails serve`, `stmails worker`,
`stmails relay`) hold a shared lock on `<database>.lock` while they run (`held_by_server`); a
restore takes it exclusively, so it refuses to run under a server (unless forced) and no server
starts while it runs. PostgreSQL has its own tools (pg_dump, pg_restore, continuous archiving):
these functions refuse its URLs with `BackupError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import make_url

from stmails.db.migrate import alembic_config, head_revision

POSTGRESQL_GUIDANCE = (
    "back up PostgreSQL with pg_dump and restore with pg_restore "
    "(docs/deployment.md, section Backups)"
)
# How many lines of a failed integrity check an error quotes.
_CHECK_LINES = 5


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why, for the operator."""


@dataclass(frozen=True)
class BackupInfo:
    """What a backup or restore wrote: the file, its size and its schema revision."""

    path: Path
    size: int
    revision: str
    head: str | None

    @property
    def at_head(self) -> bool:
        """True when the revision is the newest this code knows (no migration pending)."""
        return self.revision == self.head


def sqlite_file(database_url: str) -> Path:
    """The file of a SQLite database URL; BackupError for PostgreSQL or an in-memory database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(f"the database is not SQLite: {POSTGRESQL_GUIDANCE}")
    name = url.database or ""
    if name in ("", ":memory:") or name.startswith("file::memory:"):
        raise BackupError("an in-memory SQLite database has nothing to back up or restore")
    return Path(name)


def lock_file(database: Path) -> Path:
    """The lock file beside `database` that servers hold shared and a restore exclusively."""
    return database.with_name(database.name + ".lock")


@contextlib.contextmanager
def _locked(database: Path, exclusive: bool) -> Iterator[bool]:
    """Yields True while this process holds the lock of `database` (shared or exclusive),
    False when a holder of the other kind prevents it. The lock file is made with mode 0600."""
    path = lock_file(database)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        # Closing the descriptor releases the lock.
        os.close(fd)


@contextlib.contextmanager
def held_by_server(database_url: str) -> Iterator[None]:
    """Holds the shared lock of a SQLite database while a server process runs (nothing for
    PostgreSQL or an in-memory database); BackupError when a restore is running."""
    try:
        database = sqlite_file(database_url)
    except BackupError:
        yield
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    with _locked(database, exclusive=False) as held:
        if not held:
            raise BackupError(f"a restore of {database} is running; start again once it is done")
        yield


def _connect_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)


def _integrity_problems(connection: sqlite3.Connection) -> list[str]:
    """What `PRAGMA integrity_check` found, one problem a line (none when it says ok)."""
    rows = [str(row[0]) for row in connection.execute("PRAGMA integrity_check")]
    if rows == ["ok"]:
        return []
    return [line for row in rows for line in row.splitlines() if not line.startswith("***")]


def _revision(connection: sqlite3.Connection, what: Path) -> str:
    try:
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.DatabaseError:
        raise BackupError(f"{what} is not a stmails database (it has no schema revision)") from None
    if len(rows) != 1:
        raise BackupError(f"{what} has {len(rows)} schema revisions instead of one")
    return str(rows[0][0])


def _known(revision: str) -> bool:
    try:
        script = ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError:
        return False
    # Alembic also resolves a unique prefix of a revision; a stored revision is whole.
    return script is not None and script.revision == revision


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(
    database_url: str, destination: Path, *, overwrite: bool = False, busy_timeout: float = 5.0
) -> BackupInfo:
    """Copies the SQLite database of `database_url` to `destination` (see the module): a
    consistent, checked, self-contained file with mode 0600. Refuses to replace an existing
    `destination` unless `overwrite`; BackupError for anything that cannot be done."""
    source_path = sqlite_file(database_url)
    if not source_path.is_file():
        raise BackupError(f"there is no database at {source_path}")
    if destination.exists() and not overwrite:
        raise BackupError(f"{destination} exists; choose a new file (or --force to replace it)")
    if destination.is_dir():
        raise BackupError(f"{destination} is a folder; name the backup file")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        source = sqlite3.connect(source_path, timeout=busy_timeout)
        try:
            _revision(source, source_path)
            copy = sqlite3.connect(partial)
            try:
                # One step (all pages) is one read transaction on the source: a snapshot.
                source.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")
                problems = _integrity_problems(copy)
                if problems:
                    raise BackupError(
                        "the copy failed its integrity check: " + "; ".join(problems[:_CHECK_LINES])
                    )
                revision = _revision(copy, partial)
            finally:
                copy.close()
        finally:
            source.close()
        with partial.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, destination)
        _fsync_directory(destination.parent)
    except sqlite3.Error as exc:
        raise BackupError(f"the backup of {source_path} failed: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return BackupInfo(destination, destination.stat().st_size, revision, head_revision())


def check_backup(path: Path) -> str:
    """The schema revision of the backup file `path` once it passed every check (SQLite
    file, integrity, a revision this code knows); BackupError naming the first that failed."""
    if not path.is_file():
        raise BackupError(f"there is no backup file at {path}")
    try:
        connection = _connect_read_only(path, timeout=1.0)
        try:
            problems = _integrity_problems(connection)
            if problems:
                raise BackupError(
                    f"{path} failed its integrity check: " + "; ".join(problems[:_CHECK_LINES])
                )
            revision = _revision(connection, path)
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable SQLite database: {exc}") from exc
    if not _known(revision):
        raise BackupError(
            f"{path} is at schema revision {revision!r}, which this stmails does not know "
            "(a backup made by a newer version?)"
        )
    return revision


def restore(
    backup_file: Path, database_url: str, *, force: bool = False, busy_timeout: float = 5.0
) -> BackupInfo:
    """Replaces the content of the SQLite database of `database_url` with `backup_file` (see
    the module) after `check_backup`. Refuses while a server process holds the database unless
    `force` (the server then sees the restored data at once). A database file that does not
    exist yet is made with mode 0600."""
    target = sqlite_file(database_url)
    check_backup(backup_file)
    if target.exists() and target.resolve() == backup_file.resolve():
        raise BackupError("the backup file is the database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target, exclusive=True) as alone:
        if not alone and not force:
            raise BackupError(
                f"a stmails process (serve, worker or relay) is using {target}; stop it first "
                "(or pass --force to restore under it)"
            )
        if not target.exists():
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            source = _connect_read_only(backup_file, timeout=1.0)
            try:
                live = sqlite3.connect(target, timeout=busy_timeout)
                try:
                    # One step: the whole copy is one write transaction on the live database.
                    source.backup(live)
                    live.execute("PRAGMA journal_mode=WAL")
                    restored = _revision(live, target)
                finally:
                    live.close()
            finally:
                source.close()
        except sqlite3.Error as exc:
            raise BackupError(f"the restore into {target} failed: {exc}") from exc
    return BackupInfo(target, target.stat().st_size, restored, head_revision())
