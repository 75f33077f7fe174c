"""What differs between SQLite and PostgreSQL, behind functions: code outside `db/` asks these
(and `db.upsert`, `db.locks`) instead of naming a dialect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Text, case, cast, func, or_, text
from sqlalchemy.orm import Session

Bind = Session | Connection | Engine


def name_of(bind: Bind) -> str:
    """The dialect's name ("sqlite" or "postgresql")."""
    if isinstance(bind, Session):
        return bind.get_bind().dialect.name
    return bind.dialect.name


def is_sqlite(bind: Bind) -> bool:
    """True on SQLite: one writer at a time for the whole database."""
    return name_of(bind) == "sqlite"


def least(bind: Bind, *values: Any) -> Any:
    """The smallest of `values` as an SQL expression (`LEAST` on PostgreSQL, the scalar `MIN`
    of several arguments on SQLite)."""
    if is_sqlite(bind):
        return func.min(*values)
    return func.least(*values)


def snapshot_options(bind: Bind) -> dict[str, Any]:
    """Execution options under which a transaction's reads all see one moment of the database:
    REPEATABLE READ on PostgreSQL; none on SQLite, where a read transaction always does."""
    if name_of(bind) == "postgresql":
        return {"isolation_level": "REPEATABLE READ"}
    return {}


def database_info(session: Session) -> tuple[str, str, int]:
    """The database's kind, server version and size in bytes."""
    dialect = name_of(session)
    if dialect == "postgresql":
        version = session.scalar(text("SHOW server_version"))
        size = session.scalar(text("SELECT pg_database_size(current_database())"))
    else:
        version = session.scalar(text("SELECT sqlite_version()"))
        pages = session.scalar(text("PRAGMA page_count")) or 0
        size = pages * (session.scalar(text("PRAGMA page_size")) or 0)
    return dialect, str(version), int(size or 0)


def json_text(dialect: str, base: Any, path: Sequence[str | int]) -> Any:
    """The JSON value at `path` (keys and array indexes) inside the JSON column expression
    `base`, as text, the same on both databases: PostgreSQL's `->>`; on SQLite json_extract,
    with booleans spelled `true`/`false` as PostgreSQL spells them."""
    if dialect == "postgresql":
        return base[tuple(path)].as_string()
    pointer = "$" + "".join(f"[{k}]" if isinstance(k, int) else f'."{k}"' for k in path)
    kind = func.json_type(base, pointer)
    return case(
        (kind == "true", "true"),
        (kind == "false", "false"),
        else_=cast(func.json_extract(base, pointer), Text()),
    )


def contains_text(dialect: str, columns: Sequence[Any], needle: str) -> ColumnElement[bool]:
    """A search box's condition, "one of `columns` contains `needle` in any case", for the
    dialect named `dialect` (`name_of`). SQLite's LIKE already ignores the case of ASCII
    letters and, like its lower(), no other: there the condition is written without lower() on
    every row, which makes a search over 100k rows about three times faster; elsewhere both
    sides are lower-cased."""
    escaped = needle.strip().lower().replace("\\", "\\\\").replace("%", "\\%")
    pattern = "%" + escaped.replace("_", "\\_") + "%"
    if dialect == "sqlite":
        return or_(*(column.like(pattern, escape="\\") for column in columns))
    return or_(*(func.lower(column).like(pattern, escape="\\") for column in columns))
