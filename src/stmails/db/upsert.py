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
`upsert_rows` is INSERT ... ON CONFLICT DO UPDATE for many rows, as fast as each database
allows: SQLite's driver executemany with values so converted, PostgreSQL's batched VALUES.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Dialect, Table, bindparam, literal_column
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


def upsert_rows(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    key: Sequence[str],
    update: Sequence[str],
    fixed: Mapping[str, Any] | None = None,
) -> None:
    """Insert `rows` (tuples of values in the order of `columns`); a row that clashes with an
    existing one on the unique `key` columns sets that row's `update` columns instead.
    `fixed`: the values of other columns, the same for every row (a new row's defaults).

    As in `insert_rows_or_ignore`, `columns` and `fixed` must name every column that has a
    Python-side default (ValueError otherwise). On SQLite the rows go to the driver's own
    executemany with values converted by their column types (a value that is the very object
    of the row before is converted once; SQLAlchemy's per-row parameter processing would double
    the run) and the fixed values written into the statement (each bound value costs SQLite
    time on every row). On PostgreSQL, SQLAlchemy's executemany sends batched multi-row VALUES.
    """
    if not rows:
        return
    dialect = connection.dialect
    given = dict(fixed or {})
    _check_columns(table, (*columns, *given), (*key, *update))
    if dialect.name != "sqlite":
        statement = _upsert_statement(dialect.name, table, tuple(key), tuple(update))
        connection.execute(
            statement, [{**given, **dict(zip(columns, row, strict=True))} for row in rows]
        )
        return
    literals = tuple(
        (name, _sql_literal(dialect, table.c[name], value)) for name, value in given.items()
    )
    shape = _sqlite_upsert(dialect, table, tuple(columns), literals, tuple(key), tuple(update))
    connection.exec_driver_sql(shape.sql, _driver_rows(rows, shape.columns))


def _driver_rows(
    rows: Sequence[Sequence[Any]], columns: tuple[tuple[int, Any], ...]
) -> list[tuple[Any, ...]]:
    """`rows` as the driver takes them: values in the statement's order, each converted by
    its column type; a value that is the very object of the row before is converted once
    (one timestamp for a whole batch)."""
    order = [index for index, _ in columns]
    reorder = order != list(range(len(order)))
    converters = [(position, _once(convert)) for position, (_, convert) in enumerate(columns)]
    converters = [(position, convert) for position, convert in converters if convert is not None]
    out: list[tuple[Any, ...]] = []
    for row in rows:
        values = [row[index] for index in order] if reorder else list(row)
        for position, convert in converters:
            values[position] = convert(values[position])
        out.append(tuple(values))
    return out


def _once(convert: Any) -> Any:
    """`convert` remembering its last value: the same object again is not converted again."""
    if convert is None:
        return None
    last: list[Any] = [convert, None]  # `convert` is never a value.

    def converted(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, convert(value)
        return last[1]

    return converted


def _sql_literal(dialect: Dialect, column: Column[Any], value: Any) -> str:
    """`value` of `column` as SQL text: converted by the column's type, then quoted."""
    convert = column.type.dialect_impl(dialect).bind_processor(dialect)
    stored = convert(value) if convert is not None else value
    if stored is None:
        return "NULL"
    if isinstance(stored, bool):
        return str(int(stored))
    if isinstance(stored, int | float):
        return repr(stored)
    if isinstance(stored, str):
        return "'" + stored.replace("'", "''") + "'"
    raise NotImplementedError(f"upsert_rows: no SQL literal for {type(stored).__name__}")


@functools.lru_cache(maxsize=256)
def _check_columns(table: Table, named: tuple[str, ...], others: tuple[str, ...]) -> None:
    """ValueError unless `named` and `others` are columns of `table` and `named` holds every
    column with a Python-side default (a driver's executemany would not fill it in)."""
    unknown = [name for name in (*named, *others) if name not in table.c]
    if unknown:
        raise ValueError(f"upsert_rows: {table.name} has no column {', '.join(unknown)}")
    defaulted = [c.name for c in table.columns if c.default is not None and c.name not in named]
    if defaulted:
        raise ValueError(f"upsert_rows: give the columns {', '.join(defaulted)}")


@dataclass(frozen=True, slots=True)
class _SqliteUpsert:
    sql: str
    # Per parameter of `sql`: the index of the caller's column and its type's conversion.
    columns: tuple[tuple[int, Any], ...]


@functools.cache
def _upsert_statement(
    dialect: str, table: Table, key: tuple[str, ...], update: tuple[str, ...]
) -> Any:
    insert = _insert_construct(dialect)(table)
    return insert.on_conflict_do_update(
        index_elements=list(key), set_={name: insert.excluded[name] for name in update}
    )


@functools.lru_cache(maxsize=256)
def _sqlite_upsert(
    dialect: Dialect,
    table: Table,
    columns: tuple[str, ...],
    literals: tuple[tuple[str, str], ...],
    key: tuple[str, ...],
    update: tuple[str, ...],
) -> _SqliteUpsert:
    values: dict[str, Any] = {name: bindparam(name) for name in columns}
    values.update({name: literal_column(sql) for name, sql in literals})
    statement = _upsert_statement(dialect.name, table, key, update).values(values)
    compiled = statement.compile(dialect=dialect)
    positions = compiled.positiontup
    if positions is None or sorted(positions) != sorted(columns):
        raise NotImplementedError(f"unexpected parameters for {dialect.name}")
    converters = tuple(
        (columns.index(name), table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in positions
    )
    return _SqliteUpsert(compiled.string, converters)
