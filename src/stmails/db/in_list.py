"""`column IN (a list)` with the list as one parameter, so that the SQL text never changes.

SQLAlchemy's `in_()` with a list renders a placeholder per item: the statement is rendered
again for every execution and the database prepares it again. On the bounce writer's path that
costs more than running the query. `in_list(column, name)` takes the whole list as the single
parameter `name` instead: a JSON array read with `json_each` on SQLite, an array compared with
`= ANY` on PostgreSQL. Both use the column's index, and an empty list matches nothing.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ARRAY, Boolean, ColumnElement, Dialect, LargeBinary, String, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import InternalTraversal, _TraverseInternalsType
from sqlalchemy.types import TypeDecorator, TypeEngine


class ListParameter(TypeDecorator[list[Any]]):
    """A list bound as one parameter: JSON text on SQLite, an array of `item_type` elsewhere."""

    impl = String
    cache_ok = True

    def __init__(self, item_type: TypeEngine[Any]) -> None:
        super().__init__()
        self.item_type = item_type

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String())
        return dialect.type_descriptor(ARRAY(self.item_type))

    def process_bind_param(self, value: list[Any] | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return json.dumps(list(value)) if dialect.name == "sqlite" else list(value)


class InList(ColumnElement[bool]):
    """`column` is one of the items of the list bound to `parameter` (see `in_list`)."""

    inherit_cache = True
    type = Boolean()
    # A condition in its own right: SQLAlchemy must not compare it with 1 (which would keep
    # SQLite from using the column's index).
    _is_implicitly_boolean = True
    # What SQLAlchemy's statement cache key is made of (a list, as SQLAlchemy declares it).
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012
        ("column", InternalTraversal.dp_clauseelement),
        ("parameter", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], parameter: BindParameter[Any]) -> None:
        self.column = column
        self.parameter = parameter


def in_list(column: ColumnElement[Any] | QueryableAttribute[Any], name: str) -> InList:
    """`column IN (...)`, the items given at execution as the list parameter `name`.

    The items have the column's type (text for an expression of no known type). A binary
    column cannot be compared this way (JSON carries no bytes): use an expanding `in_()`."""
    expression = column.__clause_element__() if isinstance(column, QueryableAttribute) else column
    item_type = String() if expression.type._isnull else expression.type
    stored_as = getattr(item_type, "impl", item_type)
    if isinstance(stored_as, LargeBinary) or isinstance(item_type, LargeBinary):
        raise TypeError(f"in_list cannot compare the binary column {expression}")
    return InList(expression, bindparam(name, type_=ListParameter(item_type)))


@compiles(InList)
def _in_list_default(element: InList, compiler: SQLCompiler, **kw: Any) -> str:
    raise NotImplementedError(f"in_list does not support {compiler.dialect.name}")


@compiles(InList, "sqlite")
def _in_list_sqlite(element: InList, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    parameter = compiler.process(element.parameter, **kw)
    return f"{column} IN (SELECT value FROM json_each({parameter}))"


@compiles(InList, "postgresql")
def _in_list_postgresql(element: InList, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    parameter = compiler.process(element.parameter, **kw)
    return f"{column} = ANY ({parameter})"
