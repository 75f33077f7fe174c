"""Shared test fixtures: ../shared, and the test database (SQLite or PostgreSQL).

Database fixtures, for every developer's tests:

- `db_url`: `$STMAILS_TEST_DATABASE_URL` when set (scripts/test.sh sets it for the PostgreSQL
  run), else a SQLite file in a temporary folder. One database per test session.
- `engine`: an engine on `db_url` whose schema is created once per session from the models.
- `session_maker`: a sessionmaker on a database emptied before the test (all rows deleted),
  for tests that need several sessions (threads, a second connection).
- `session`: one session from `session_maker`, closed after the test (uncommitted work is
  rolled back).
- `fresh_database_url`: makes URLs of further empty databases (a new SQLite file, or a new
  PostgreSQL schema), dropped at the end of the session; for migration tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.engine import make_engine, normalize_url, session_factory
from stmails.db.models import Base

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
TEST_DATABASE_ENV = "STMAILS_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared folder beside the repository; tests that need it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"../shared is absent ({SHARED}); corpus tests skipped")
    return SHARED


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of the test database: `$STMAILS_TEST_DATABASE_URL`, else a temporary SQLite file."""
    configured = os.environ.get(TEST_DATABASE_ENV, "")
    if configured:
        return normalize_url(configured).render_as_string(hide_password=False)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the test database, with the models' schema created once per session."""
    eng = make_engine(db_url)
    Base.metadata.drop_all(eng)
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


def empty_tables(eng: Engine) -> None:
    """Delete every row of every model table (fast enough to run before each test)."""
    tables = list(reversed(Base.metadata.sorted_tables))
    # Derived tables (the analytics rollups) last: deleting events writes deltas into them.
    tables.sort(key=lambda table: bool(table.info.get("derived")))
    with eng.begin() as conn:
        if eng.dialect.name == "postgresql":
            names = ", ".join(t.name for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture
def session_maker(engine: Engine) -> sessionmaker[Session]:
    """A sessionmaker on the emptied test database."""
    empty_tables(engine)
    return session_factory(engine)


@pytest.fixture
def session(session_maker: sessionmaker[Session]) -> Iterator[Session]:
    """A session on the emptied test database; closed (uncommitted work rolled back) after."""
    with session_maker() as db:
        yield db


@pytest.fixture(scope="session")
def fresh_database_url(
    db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], str]]:
    """A factory of URLs of new, empty databases of the same kind as `db_url`."""
    made_schemas: list[str] = []

    def make() -> str:
        if make_url(db_url).get_backend_name() == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('fresh') / 'fresh.db'}"
        schema = f"test_{uuid.uuid4().hex[:12]}"
        admin = make_engine(db_url)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
        made_schemas.append(schema)
        url = make_url(db_url).update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)

    yield make
    if made_schemas:
        admin = make_engine(db_url)
        # One transaction per schema: dropping them all at once takes a lock per table of
        # every schema, more than PostgreSQL's lock table holds once there are many.
        for schema in made_schemas:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@contextmanager
def _write_lock_held(engine: Engine, table: str) -> Iterator[None]:
    """Another writer (an import, the bounce writer) holds the write lock meanwhile: SQLite's
    one lock (the engine begins write transactions with BEGIN IMMEDIATE), or on PostgreSQL an
    exclusive lock on `table`, which blocks its writers but not its readers."""
    with engine.connect() as holder:
        holder.begin()
        if engine.dialect.name == "postgresql":
            holder.exec_driver_sql(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        else:
            holder.exec_driver_sql("SELECT 1")
        try:
            yield
        finally:
            holder.rollback()


@pytest.fixture
def write_lock_held() -> Callable[[Engine, str], AbstractContextManager[None]]:
    """`with write_lock_held(engine, table):` another writer holds the write lock meanwhile."""
    return _write_lock_held
