"""Statements compiled once per dialect and run straight on the driver's cursor.

For the few statements the bounce writer runs per batch, SQLAlchemy's per-execution work
(cache-key lookup, parameter and result processing, result objects) costs several times what
the database spends on the query. `Prepared` keeps what SQLAlchemy compiled (the SQL text and the
type conversions of each parameter and result column) and does only that work per execution.
Parameters and rows are converted exactly as SQLAlchemy converts them, and driver errors are
raised as SQLAlchemy's exceptions (`DBAPIError` and its subclasses), so callers handle them as
they handle any statement's. The statements take no list parameters (use `db.in_list`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Dialect, bindparam
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

# A type's conversion of one value (None: the value goes through as it is).
Converter = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    # Per parameter of the SQL text, in order: its key in the caller's mapping and the key's
    # conversion, or None and the value fixed in the statement (already converted).
    parameters: tuple[tuple[str | None, Any], ...]
    # Parameter names when the driver takes a mapping (None when it takes a sequence).
    names: tuple[str, ...] | None
    results: tuple[Converter, ...]


class Prepared:
    """`statement` (a Core select, or DML with RETURNING), ready to run on a connection."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[int, tuple[Dialect, _Compiled]] = {}

    def rows(
        self, connection: Connection, parameters: Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """The rows `statement` returns with `parameters`, in `connection`'s transaction."""
        compiled = self._for(connection.dialect)
        given = parameters or {}
        values = [
            fixed if key is None else (given[key] if fixed is None else fixed(given[key]))
            for key, fixed in compiled.parameters
        ]
        bound: Any = (
            tuple(values)
            if compiled.names is None
            else dict(zip(compiled.names, values, strict=True))
        )
        return run(connection, compiled.sql, bound, compiled.results)

    def _for(self, dialect: Dialect) -> _Compiled:
        # Keyed by identity; the dialect is kept alongside so that its id cannot be reused.
        entry = self._compiled.get(id(dialect))
        if entry is None:
            entry = (dialect, _compile(self.statement, dialect))
            self._compiled[id(dialect)] = entry
        return entry[1]


class PreparedIn:
    """A statement with `column IN (...)`, its list bound as `width` placeholders and compiled
    once, for keys `in_list` cannot carry (binary ones: a JSON list holds no bytes).

    `build(condition)` makes the statement around the IN condition. `rows()` runs it once per
    slice of `width` keys; a short slice repeats its first key, which matches nothing twice.
    """

    def __init__(
        self,
        build: Callable[[ColumnElement[bool]], Executable],
        column: ColumnElement[Any] | QueryableAttribute[Any],
        width: int = 64,
    ) -> None:
        self.width = width
        self._names = tuple(f"in_{n}" for n in range(width))
        keys = [bindparam(name, type_=column.type) for name in self._names]
        self._prepared = Prepared(build(column.in_(keys)))

    def rows(
        self,
        connection: Connection,
        keys: Sequence[Any],
        parameters: Mapping[str, Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        """The rows for every key of `keys` (the other parameters from `parameters`)."""
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(keys), self.width):
            part = list(keys[start : start + self.width])
            part += [part[0]] * (self.width - len(part))
            bound = dict(parameters or {})
            bound.update(zip(self._names, part, strict=True))
            found.extend(self._prepared.rows(connection, bound))
        return found


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise ValueError("Prepared statements take no expanding (list) parameters")
    order = compiled.positiontup or list(compiled.binds)
    parameters: list[tuple[str | None, Any]] = []
    for name in order:
        bind = compiled.binds[name]
        convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if bind.required:
            parameters.append((bind.key, convert))
        else:
            value = bind.effective_value
            parameters.append((None, value if convert is None else convert(value)))
    columns = getattr(statement, "exported_columns", ())
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
    )
    names = None if compiled.positiontup else tuple(order)
    return _Compiled(compiled.string, tuple(parameters), names, results)


def run(
    connection: Connection, sql: str, parameters: Any, results: Sequence[Converter] = ()
) -> list[tuple[Any, ...]]:
    """Runs `sql` on `connection`'s driver cursor; its rows converted by `results` per column.

    Driver errors are raised as SQLAlchemy's DBAPIError (with `connection_invalidated` set, and
    the connection invalidated, when the driver lost its server)."""
    dialect = connection.dialect
    proxied = connection.connection
    cursor = proxied.cursor()
    try:
        cursor.execute(sql, parameters)
        fetched = cursor.fetchall() if cursor.description is not None else []
    except dialect.loaded_dbapi.Error as exc:
        lost = dialect.is_disconnect(exc, proxied.dbapi_connection, cursor)
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            sql,
            parameters,
            exc,
            dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=dialect,
        ) from exc
    finally:
        cursor.close()
    converted = [(index, convert) for index, convert in enumerate(results) if convert is not None]
    if not converted:
        return [tuple(row) for row in fetched]
    # Only the columns with a conversion are touched (most columns have none).
    width = len(results)
    out: list[tuple[Any, ...]] = []
    for row in fetched:
        values = list(row)
        if len(values) != width:
            raise ValueError(f"a row of {len(values)} columns where {width} were expected")
        for index, convert in converted:
            values[index] = convert(values[index])
        out.append(tuple(values))
    return out
