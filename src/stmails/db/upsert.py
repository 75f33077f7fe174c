"""INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL, in one statement.

Idempotent writes (a bounce by its dedup key, a suppression by its address) use this instead of
a savepoint around an ORM insert: one round trip, and on PostgreSQL a concurrent insert of the
same key waits for the other transaction and then does nothing, without an error to recover from.

`dialect_insert` is the dialect's own INSERT (with `on_conflict_do_nothing`,
`on_conflict_do_update` and `excluded`) for the upserts the helpers here do not cover, so that
code outside `db/` never names a dialect.

`insert_rows_or_ignore` is the same statement for a hot path: the caller gives every column of
every row, and the values go to the driver with only the column types' own conversions, which
skips SQLAlchemy's per-row parameter handling (it costs as much as the insert itself).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Dialect, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from stmails.db.prepared import run


def dialect_insert(bind: Session | Connection, table: Table) -> Any:
    """`INSERT INTO table` in the dialect of `bind` (a Session or Connection): SQLite's or
    PostgreSQL's insert construct, which both offer `on_conflict_do_nothing`,
    `on_conflict_do_update` and `excluded` with the same arguments."""
    dialect = bind.dialect if isinstance(bind, Connection) else bind.get_bind().dialect
    return _insert_construct(dialect.name)(table)


def _insert_construct(dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"stmails does not support the {dialect} dialect")


def insert_or_ignore(
    session: Session, table: Table, values: Mapping[str, Any], returning: Column[Any]
) -> Any | None:
    """Insert one row unless it clashes with a unique constraint; the new row's `returning`
    column, or None when an existing row made the insert do nothing."""
    statement = _statement(session.get_bind().dialect.name, table, (returning,))
    return session.execute(statement, dict(values)).scalar()


def insert_many_or_ignore(
    session: Session | Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    returning: Sequence[Column[Any]],
) -> list[tuple[Any, ...]]:
    """Insert `rows` (all with the same keys), skipping those that clash with a unique
    constraint; the `returning` columns of the rows actually inserted, in no particular order.

    `session` may be a Session's Connection, which skips the ORM's per-statement work."""
    if not rows:
        return []
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    statement = _statement(dialect.name, table, tuple(returning))
    return [tuple(r) for r in session.execute(statement, [dict(r) for r in rows])]


def insert_rows_or_ignore(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """Insert `rows` (tuples of values in the order of `columns`), skipping those that clash
    with a unique constraint; the `returning` columns of the rows actually inserted.

    Unlike `insert_many_or_ignore`, no Python-side column default is filled in: `columns` must
    name every column that has one (ValueError otherwise). Values are converted by their column
    types, as SQLAlchemy converts them; driver errors are raised as SQLAlchemy's."""
    if not rows:
        return []
    shape = _rows_statement(connection.dialect, table, tuple(columns), tuple(returning), len(rows))
    converted: list[Any] = []
    # A value that is the very object of the row before (e.g. one timestamp for the whole
    # batch) is converted once.
    last: dict[int, tuple[Any, Any]] = {}
    for row in rows:
        for index, convert in shape.columns:
            value = row[index]
            if convert is None:
                converted.append(value)
                continue
            seen = last.get(index)
            if seen is None or seen[0] is not value:
                seen = last[index] = (value, convert(value))
            converted.append(seen[1])
    parameters: Any = (
        tuple(converted) if shape.names is None else dict(zip(shape.names, converted, strict=True))
    )
    return run(connection, shape.sql, parameters)


@dataclass(frozen=True, slots=True)
class _RowsShape:
    sql: str
    # Parameter names when the driver takes a mapping (None when it takes a sequence).
    names: tuple[str, ...] | None
    # Per value of a row in the SQL (the table's column order): the index of the caller's
    # column, and its type's conversion (or None).
    columns: tuple[tuple[int, Any], ...]


@functools.lru_cache(maxsize=1024)
def _rows_statement(
    dialect: Dialect, table: Table, columns: tuple[str, ...], returning: tuple[str, ...], count: int
) -> _RowsShape:
    """The insert of `count` rows, compiled by SQLAlchemy once per shape."""
    unknown = [name for name in columns if name not in table.c]
    if unknown:
        raise ValueError(f"insert_rows_or_ignore: {table.name} has no column {', '.join(unknown)}")
    defaulted = [c.name for c in table.columns if c.default is not None and c.name not in columns]
    if defaulted:
        raise ValueError(f"insert_rows_or_ignore: give the columns {', '.join(defaulted)}")
    # SQLAlchemy renders the values of a row in the table's column order.
    ordered = [column.name for column in table.columns if column.name in columns]
    names = [[f"r{index}_{column}" for column in ordered] for index in range(count)]
    values: list[dict[str, Any]] = [
        {column: bindparam(name) for column, name in zip(ordered, row, strict=True)}
        for row in names
    ]
    base = _statement(dialect.name, table, tuple(table.c[name] for name in returning))
    compiled = base.values(values).compile(dialect=dialect)
    flat = tuple(name for row in names for name in row)
    positions = compiled.positiontup
    # The flattening in insert_rows_or_ignore relies on this order: row by row, column by column.
    if positions is not None and tuple(positions) != flat:
        raise NotImplementedError(f"unexpected parameter order for {dialect.name}")
    converters = tuple(
        (columns.index(name), table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in ordered
    )
    return _RowsShape(compiled.string, None if positions is not None else flat, converters)


@functools.cache
def _statement(dialect: str, table: Table, returning: tuple[Column[Any], ...]) -> Any:
    # Built once per table: the values travel as parameters, so the compiled form is reused.
    statement = _insert_construct(dialect)(table)
    return statement.on_conflict_do_nothing().returning(*returning)
