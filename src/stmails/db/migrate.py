"""Programmatic Alembic: bring a database to the newest schema (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from stmails.config import Settings
from stmails.db.engine import engine_for

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Key of the PostgreSQL advisory lock that serializes migrations of server processes starting
# at once (`stmails serve --workers N`).
MIGRATION_LOCK_KEY = 0x57A1_5D8


def alembic_config() -> Config:
    """An Alembic configuration pointing at stmails' migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration up to `revision` on `engine`'s database, in one transaction.

    Safe to call on every start: an up-to-date database is left as it is.
    """
    config = alembic_config()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A batch migration rebuilds a SQLite table (copy, drop, rename). With foreign keys
            # enforced, dropping the old table would cascade and delete the rows that refer to
            # it (a campaign's sends, say), so they are off while migrating, and checked after.
            # The pragma must be set outside a transaction, hence on the driver's connection.
            _driver(connection).execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql(
                        f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
                    )
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(
                            f"migration left {len(broken)} rows with broken references, e.g."
                            f" {tuple(broken[0])}; rolled back"
                        )
        finally:
            if sqlite:
                _driver(connection).execute("PRAGMA foreign_keys=ON")


def _driver(connection: Connection) -> Any:
    # The DBAPI connection under SQLAlchemy's, for statements that must not start a transaction.
    return connection.connection.driver_connection


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for a database never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision among the migration scripts."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def open_database(settings: Settings, *, migrate: bool = True) -> Engine:
    """The engine for `settings`, with the schema brought up to date first (unless told not to).

    `stmails serve` and the CLI commands start here, so a fresh SQLite file is created and
    migrated on first use.
    """
    engine = engine_for(settings)
    if migrate:
        upgrade(engine)
    return engine
