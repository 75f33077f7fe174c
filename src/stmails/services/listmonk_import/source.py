"""Reading a listmonk database: its schema version, its columns, and its rows in batches.

The source is read in one read-only, repeatable-read transaction, so every table is seen as of
the same moment even while listmonk keeps running. Big tables are streamed with a server-side
cursor; nothing is written to the source.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from stmails.db.engine import normalize_url

# listmonk releases whose schema this importer knows (`settings.migrations`' last entry).
SUPPORTED_MAJORS = (4, 5, 6)
BATCH = 2000
_VERSION = re.compile(r"v?(\d{1,3})\.(\d{1,3})\.(\d{1,3})")


class ListmonkImportError(Exception):
    """The source cannot be imported; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """A listmonk schema version (the release that last migrated the database)."""

    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"


def parse_version(value: str) -> SchemaVersion | None:
    """`v6.1.0` as a SchemaVersion; None when `value` is not a version."""
    found = _VERSION.fullmatch(value.strip())
    if found is None:
        return None
    return SchemaVersion(int(found[1]), int(found[2]), int(found[3]))


def check_supported(version: SchemaVersion) -> None:
    """ListmonkImportError unless stmails knows this schema."""
    if version.major not in SUPPORTED_MAJORS:
        low, high = SUPPORTED_MAJORS[0], SUPPORTED_MAJORS[-1]
        advice = (
            "upgrade it with listmonk's own `--upgrade` first"
            if version.major < low
            else "this stmails release does not know that schema yet"
        )
        raise ListmonkImportError(
            f"the listmonk database is at schema {version}; stmails imports listmonk v{low} to "
            f"v{high} databases: {advice}"
        )


def source_engine(url: str) -> Engine:
    """An engine on the listmonk database at `url` (PostgreSQL only)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ListmonkImportError(
            "the source must be a URL like postgresql://user:password@host:5432/listmonk"
        ) from None
    if parsed.get_backend_name() != "postgresql":
        raise ListmonkImportError("listmonk keeps its data in PostgreSQL: give a postgresql:// URL")
    try:
        return create_engine(normalize_url(parsed), pool_size=1, max_overflow=0)
    except NoSuchModuleError as exc:  # pragma: no cover - psycopg is a dependency
        raise ListmonkImportError(str(exc)) from None


class Source:
    """One consistent, read-only view of a listmonk database."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection
        self.columns = self._columns()
        if "settings" not in self.columns or "subscribers" not in self.columns:
            raise ListmonkImportError(
                "this database has no listmonk tables (settings, subscribers) in its search path"
            )
        self.version = self._version()
        check_supported(self.version)
        missing = [t for t in _REQUIRED if t not in self.columns]
        if missing:
            raise ListmonkImportError(
                f"the listmonk database at schema {self.version} lacks the tables "
                f"{', '.join(missing)}: it is damaged or not a listmonk database"
            )

    def _columns(self) -> dict[str, frozenset[str]]:
        rows = self._conn.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema()"
            )
        )
        found: dict[str, set[str]] = {}
        for table, column in rows:
            found.setdefault(str(table), set()).add(str(column))
        return {table: frozenset(columns) for table, columns in found.items()}

    def _version(self) -> SchemaVersion:
        value = self._conn.execute(
            text("SELECT value FROM settings WHERE key = 'migrations'")
        ).scalar()
        versions = value if isinstance(value, list) else []
        if not versions or not isinstance(versions[-1], str):
            raise ListmonkImportError(
                "the listmonk database records no schema version (settings key 'migrations'); "
                "run listmonk's `--upgrade` once, then import"
            )
        version = parse_version(versions[-1])
        if version is None:
            raise ListmonkImportError(f"unknown listmonk schema version {versions[-1]!r}")
        return version

    def has(self, table: str, column: str) -> bool:
        """Whether `table` has `column` in this schema version."""
        return column in self.columns.get(table, frozenset())

    def count(self, table: str) -> int:
        """Rows of `table` (0 when the table does not exist in this version)."""
        if table not in self.columns:
            return 0
        return int(self._conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar() or 0)

    def rows(
        self, table: str, wanted: Mapping[str, str], order: Sequence[str] = ("id",)
    ) -> Iterator[list[dict[str, Any]]]:
        """Batches of `table`'s rows as dicts of the `wanted` names; each wanted name maps to a
        column name (checked), an SQL expression, or `=expression` (a value used where this
        schema version lacks the column)."""
        if table not in self.columns:
            return
        selected = []
        for name, column in wanted.items():
            if column.startswith("="):
                expression = column[1:]
            elif not column.isidentifier() or column in self.columns[table]:
                expression = column
            else:
                raise ListmonkImportError(f"listmonk table {table} has no column {column}")
            selected.append(f"{expression} AS {name}")
        sql = f"SELECT {', '.join(selected)} FROM {table} ORDER BY {', '.join(order)}"
        result = self._conn.execution_options(stream_results=True, yield_per=BATCH).execute(
            text(sql)
        )
        for partition in result.mappings().partitions(BATCH):
            yield [dict(row) for row in partition]

    def optional(self, table: str, column: str, default_sql: str) -> str:
        """`column` when this version has it, else `=default_sql` (for `rows`)."""
        return column if self.has(table, column) else "=" + default_sql


@contextmanager
def reading(engine: Engine) -> Iterator[Source]:
    """A Source inside one read-only, repeatable-read transaction on `engine`."""
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise ListmonkImportError(f"cannot connect to the listmonk database: {exc.orig}") from None
    try:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.execute(text("SET TRANSACTION READ ONLY"))
            yield Source(conn)
    finally:
        conn.close()


_REQUIRED = (
    "lists",
    "subscriber_lists",
    "templates",
    "campaigns",
    "campaign_lists",
    "media",
    "bounces",
    "links",
    "users",
    "roles",
)
