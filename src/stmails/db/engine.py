"""Engines and sessions for SQLite (WAL) and PostgreSQL (psycopg 3).

SQLite specifics: a database file that does not exist yet is created readable and writable by
its owner only (0600; SQLite gives the -wal and -shm files the same mode), since it holds
password hashes and subscribers' addresses. Every connection gets WAL, synchronous=NORMAL,
foreign keys and a busy timeout.
pysqlite's own transaction handling is switched off so that SQLAlchemy controls BEGIN: write
sessions start with `BEGIN IMMEDIATE` (take the write lock up front, so concurrent writers queue
on the busy timeout instead of failing with SQLITE_BUSY when a read turns into a write), and
sessions made with `readonly=True` start with a plain deferred `BEGIN` so readers never wait.
SAVEPOINTs (used by `services.bounces.record`) then work as documented.
Bulk writers may call `use_bulk_writes()` for a larger page cache and less frequent WAL
checkpoints on their connection only; the connection gets the defaults back when it returns to
the pool.

PostgreSQL connections get libpq's TCP timeouts (`POSTGRES_TCP`) unless the URL sets them, so
that a server that dies without a word (a failed primary behind a DNS name sends no reset) is
noticed in seconds, not after the kernel's retransmissions or two hours of keepalive idling.

`statement_deadline()` bounds the statements of a block in time, on both databases: PostgreSQL's
`statement_timeout` for the transaction, a progress handler on SQLite. Statements whose cost a
caller controls (listmonk's subscriber `query`) run inside it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from stmails.config import Settings
from stmails.db.prepared import run

# Execution option that marks a connection whose transactions only read.
READONLY_OPTION = "stmails_readonly"
# SQLite page cache sizes (negative: KiB). Bulk upserts touch random pages of the hash-keyed
# unique indexes; 64 MiB keeps most of a million-entry table's index pages in memory while
# they run (the memory is given back when the connection returns to the pool).
DEFAULT_CACHE_KIB = 2000
BULK_CACHE_KIB = 65536
# WAL pages after which a commit checkpoints: SQLite's default, and the bulk writers' value.
# A 10,000-entry suppression upsert dirties some 8,000 pages of a random-keyed index, so with the
# default every such commit checkpoints: two fsyncs and a rewrite of index pages that the next
# request dirties again. Every 32,768 pages (128 MiB) the checkpoint writes each page once for
# several requests. Durability is unchanged in kind: under synchronous=NORMAL a WAL commit
# survives a crash of the process at once and a power loss once a checkpoint has synced it,
# whatever the interval.
DEFAULT_WAL_PAGES = 1000
BULK_WAL_PAGES = 32768
# Key in the pool's per-connection info: the settings were changed and must be reset on check-in.
_BULK_FLAG = "stmails_bulk_writes"


# libpq's TCP settings for PostgreSQL connections (a key in the URL's query wins). Without them,
# a connection waiting on a dead host hangs for the kernel's retransmissions (tcp_retries2, some
# 15 minutes; the pool's pre-ping too) and an idle one is probed after two hours; a new
# connection to the dead address waits for the SYN retries. With them the pool gives up on the
# dead server within seconds and connects again, to the promoted standby once the name points
# at it: connecting takes at most 10 s, unacknowledged data at most 20 s, and an idle connection
# is found dead after 10 + 3 x 5 s.
POSTGRES_TCP: dict[str, int] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 20_000,
}


def tcp_arguments(url: URL) -> dict[str, int]:
    """The `POSTGRES_TCP` settings that `url`'s query does not set (psycopg connect arguments)."""
    return {key: value for key, value in POSTGRES_TCP.items() if key not in url.query}


def use_bulk_writes(connection: Connection) -> None:
    """Gives this pooled SQLite connection a large page cache and checkpoints every
    `BULK_WAL_PAGES` until it returns to the pool (no effect on other databases, whose servers
    manage their own buffers and logs)."""
    if connection.dialect.name != "sqlite":
        return
    connection.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
    connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={BULK_WAL_PAGES}")
    connection.info[_BULK_FLAG] = True


def normalize_url(url: str | URL) -> URL:
    """The URL with the psycopg 3 driver spelled out for PostgreSQL (`postgresql://` accepted)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(
    url: str | URL, *, busy_timeout_ms: int = 5000, pool_size: int = 10, echo: bool = False
) -> Engine:
    """An engine for `url`, configured for stmails' concurrency rules (see the module docstring)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, busy_timeout_ms=busy_timeout_ms, echo=echo)
    return create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args=tcp_arguments(parsed),
        echo=echo,
    )


def engine_for(settings: Settings) -> Engine:
    """The engine for `settings.database_url`, with its pool and busy-timeout settings."""
    return make_engine(
        settings.database_url,
        busy_timeout_ms=settings.db_busy_timeout_ms,
        pool_size=settings.db_pool_size,
    )


def create_private_file(database: str | None) -> None:
    """Creates the SQLite database file `database` with mode 0600 when it does not exist (no
    effect for in-memory databases and URIs, and on a file that exists)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        descriptor = os.open(database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError:
        # A missing folder or no permission: SQLite reports it when it opens the file.
        return
    os.close(descriptor)


def _sqlite_engine(url: URL, *, busy_timeout_ms: int, echo: bool) -> Engine:
    create_private_file(url.database)
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: SQLAlchemy emits BEGIN itself (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # An in-memory database has no WAL; the pragma then answers "memory", harmlessly.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        # A pooled connection must not keep a bulk writer's cache (memory per idle connection)
        # nor its checkpoint interval (the next writer could be anybody).
        if dbapi_connection is not None and record.info.pop(_BULK_FLAG, False):
            dbapi_connection.execute(f"PRAGMA cache_size=-{DEFAULT_CACHE_KIB}")
            dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={DEFAULT_WAL_PAGES}")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        readonly = connection.get_execution_options().get(READONLY_OPTION, False)
        # Straight on the driver's cursor (errors still come as SQLAlchemy's): every write
        # transaction starts here, the bounce writer's hundreds a second among them.
        run(connection, "BEGIN" if readonly else "BEGIN IMMEDIATE", ())

    return engine


def read_only(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions on the engine of `sessions` that only read: on SQLite they begin with a plain
    BEGIN, so they never queue for the write lock (for code handed a write sessionmaker)."""
    bind = sessions.kw.get("bind")
    assert isinstance(bind, Engine), "the sessionmaker must be bound to an engine"
    return session_factory(bind, readonly=True)


def session_factory(engine: Engine, *, readonly: bool = False) -> sessionmaker[Session]:
    """A sessionmaker bound to `engine`; `readonly=True` for sessions that never write.

    Objects stay usable after commit (`expire_on_commit=False`), which suits request handlers
    that commit and then serialize what they stored.
    """
    bind = engine.execution_options(**{READONLY_OPTION: True}) if readonly else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any exception."""
    with factory() as session, session.begin():
        yield session


class StatementTimeout(Exception):
    """A statement ran past its `statement_deadline`."""


# SQLite calls the progress handler every this many virtual-machine instructions.
_PROGRESS_STEPS = 1000
# PostgreSQL's SQLSTATE for a statement cancelled by statement_timeout.
_QUERY_CANCELED = "57014"


@contextmanager
def statement_deadline(session: Session, seconds: float) -> Iterator[None]:
    """Every statement `session` runs in the block stops after `seconds` (StatementTimeout).

    PostgreSQL: `statement_timeout` set for the transaction and put back afterwards (after a
    timeout the transaction is aborted; the caller rolls it back). SQLite: a progress handler
    that interrupts the statement once the block's deadline has passed.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        previous = connection.scalar(text("SELECT current_setting('statement_timeout')"))
        milliseconds = str(max(1, int(seconds * 1000)))
        connection.execute(
            text("SELECT set_config('statement_timeout', :value, true)"), {"value": milliseconds}
        )
        try:
            yield
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == _QUERY_CANCELED:
                raise StatementTimeout(f"a statement ran longer than {seconds:g} seconds") from exc
            raise
        connection.execute(
            text("SELECT set_config('statement_timeout', :value, true)"), {"value": previous}
        )
        return
    raw: Any = connection.connection.driver_connection
    if not hasattr(raw, "set_progress_handler"):
        yield
        return
    deadline = time.monotonic() + seconds
    # Non-zero from the handler makes SQLite interrupt the running statement.
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), _PROGRESS_STEPS)
    try:
        yield
    except OperationalError as exc:
        if "interrupted" in str(exc.orig) and time.monotonic() > deadline:
            raise StatementTimeout(f"a statement ran longer than {seconds:g} seconds") from exc
        raise
    finally:
        raw.set_progress_handler(None, _PROGRESS_STEPS)
