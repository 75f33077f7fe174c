"""listmonk's subscriber `query` parameter: SQL-like expressions parsed into SQLAlchemy filters.

listmonk pastes the caller's text into its SQL. stmails never does: the text is tokenized and
parsed (recursive descent) into a SQLAlchemy expression that may only use the columns it is
given, a closed set of operators and functions, and bound parameters for every value. Anything
else is a `QueryError` whose message names the problem and its position.

Supported forms (keywords in any case):

    subscribers.email = 'a@b.org'                 -- also !=, <>, <, >, <=, >=
    subscribers.name LIKE '%x%'                   -- NOT LIKE, ILIKE, NOT ILIKE
    subscribers.attribs->>'city' = 'Oslo'         -- -> for nested keys, ->> for the text value
    (subscribers.attribs->>'age')::INT > 30       -- ::INT/INTEGER/BIGINT/NUMERIC/FLOAT/TEXT/BOOLEAN
    subscribers.status IN ('enabled', 'disabled') -- NOT IN
    subscribers.name IS NULL                      -- IS NOT NULL
    subscribers.id BETWEEN 1 AND 9                -- NOT BETWEEN
    subscribers.created_at > '2024-01-01'         -- timestamps compare with ISO 8601 strings
    LOWER(subscribers.email) = 'a@b.org'          -- LOWER, UPPER, TRIM
    subscribers.risk_level = 'high'               -- list hygiene: risk_score, risk_level,
                                                  -- hygiene_state, verify_result, verified_at
    a AND (b OR NOT c)

`->>` gives the same text on SQLite and PostgreSQL (JSON true/false as 'true'/'false', numbers
as their digits), so a query means the same on both databases.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    Float,
    Integer,
    Numeric,
    Text,
    and_,
    between,
    cast,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator, TypeEngine

from stmails.db.dialect import json_text, name_of
from stmails.db.engine import StatementTimeout, statement_deadline
from stmails.db.models import Subscriber, SubscriberHygiene
from stmails.services.errors import InputError

MAX_QUERY_LENGTH = 4000
MAX_DEPTH = 40
MAX_IN_ITEMS = 1000
# Seconds the database may spend on the statements that evaluate one query.
QUERY_SECONDS = 10.0


class QueryError(InputError):
    """The query text cannot be accepted; the message says why and where."""


@dataclass(frozen=True, slots=True)
class QueryColumns:
    """What a query may refer to.

    `columns` maps lower-case names ("email" and "subscribers.email") to columns; `json_columns`
    names the ones holding JSON objects (usable with -> and ->>). `dialect` is the database's
    SQLAlchemy dialect name ("sqlite", "postgresql"): JSON extraction is built per dialect.
    """

    columns: Mapping[str, ColumnElement[Any]]
    json_columns: frozenset[str] = field(default_factory=frozenset)
    dialect: str = "sqlite"


# --- tokens -------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<unterminated>')
  | (?P<number>\d+(?:\.\d+)?(?![A-Za-z_]))
  | (?P<qident>"[^"]{1,63}")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]{0,62})
  | (?P<op>->>|->|::|<=|>=|<>|!=|=|<|>|\(|\)|,|\.|-)
    """,
    re.VERBOSE,
)

KEYWORDS = frozenset(
    {"and", "or", "not", "like", "ilike", "in", "is", "null", "true", "false", "between"}
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "string", "number", "ident", "keyword", "op", "end"
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    """Splits `text` into tokens; any character outside the grammar is a QueryError."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"query is longer than {MAX_QUERY_LENGTH} characters")
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise QueryError(f"unexpected character {text[pos]!r} at position {pos}")
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "unterminated":
            raise QueryError(f"unterminated string starting at position {pos}")
        if kind == "string":
            tokens.append(Token("string", value[1:-1].replace("''", "'"), pos))
        elif kind == "qident":
            tokens.append(Token("ident", value[1:-1].lower(), pos))
        elif kind == "ident":
            lowered = value.lower()
            tokens.append(Token("keyword" if lowered in KEYWORDS else "ident", lowered, pos))
        elif kind in ("number", "op"):
            tokens.append(Token(kind, value, pos))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# --- values -------------------------------------------------------------------------------------


# What an operand is, for the checks that keep queries meaningful: "column" (a plain column),
# "json" (a JSON object column or a `->` step, not comparable), "text" (a `->>` value or a text
# function), "cast" (a cast value), "literal" (a bound constant), "bool" (a condition).
@dataclass(slots=True)
class Operand:
    kind: str
    sql: Any
    pos: int
    # For JSON paths under construction: the JSON column and the keys so far.
    json_base: ColumnElement[Any] | None = None
    json_path: tuple[str | int, ...] = ()
    sql_type: TypeEngine[Any] | None = None

    @property
    def is_column_side(self) -> bool:
        return self.kind in ("column", "text", "cast", "json")


_CASTS: dict[str, Callable[[], TypeEngine[Any]]] = {
    "int": Integer,
    "integer": Integer,
    "int4": Integer,
    "smallint": Integer,
    "bigint": BigInteger,
    "int8": BigInteger,
    "numeric": lambda: Numeric(asdecimal=False),
    "decimal": lambda: Numeric(asdecimal=False),
    "float": Float,
    "real": Float,
    "float8": Float,
    "text": Text,
    "varchar": Text,
    "boolean": Boolean,
    "bool": Boolean,
    "date": lambda: DateTime(timezone=True),
    "timestamp": lambda: DateTime(timezone=True),
    "timestamptz": lambda: DateTime(timezone=True),
}

_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "lower": func.lower,
    "upper": func.upper,
    "trim": func.trim,
}

_COMPARISONS = {"=", "!=", "<>", "<", ">", "<=", ">="}


def _is_timestamp(column_type: TypeEngine[Any] | None) -> bool:
    if isinstance(column_type, TypeDecorator):
        return isinstance(column_type.impl_instance, DateTime)
    return isinstance(column_type, DateTime)


def _parse_timestamp(text: str, pos: int) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise QueryError(f"{text!r} at position {pos} is not an ISO 8601 date or time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class _Parser:
    def __init__(self, tokens: list[Token], columns: QueryColumns) -> None:
        self.tokens = tokens
        self.index = 0
        self.columns = columns
        self.depth = 0

    # Token helpers.
    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.current
        return token.kind == kind and (text is None or token.text == text)

    def accept(self, kind: str, text: str | None = None) -> bool:
        if self.at(kind, text):
            self.advance()
            return True
        return False

    def expect(self, kind: str, text: str, what: str) -> None:
        if not self.accept(kind, text):
            raise self.error(f"expected {what}")

    def error(self, message: str) -> QueryError:
        token = self.current
        found = "end of query" if token.kind == "end" else repr(token.text)
        return QueryError(f"{message} at position {token.pos} (found {found})")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(f"query is nested deeper than {MAX_DEPTH} levels")

    # Grammar: condition := or; or := and (OR and)*; and := not (AND not)*; not := NOT not | test.
    def parse(self) -> ColumnElement[bool]:
        if self.at("end"):
            raise QueryError("query is empty")
        result = self.parse_or()
        if not self.at("end"):
            raise self.error("unexpected text after the condition")
        return self.as_condition(result)

    def parse_or(self) -> Operand:
        self.enter()
        left = self.parse_and()
        while self.at("keyword", "or"):
            pos = self.advance().pos
            right = self.parse_and()
            left = Operand("bool", or_(self.as_condition(left), self.as_condition(right)), pos)
        self.depth -= 1
        return left

    def parse_and(self) -> Operand:
        left = self.parse_not()
        while self.at("keyword", "and"):
            pos = self.advance().pos
            right = self.parse_not()
            left = Operand("bool", and_(self.as_condition(left), self.as_condition(right)), pos)
        return left

    def parse_not(self) -> Operand:
        if self.at("keyword", "not"):
            pos = self.advance().pos
            self.enter()
            inner = self.parse_not()
            self.depth -= 1
            return Operand("bool", not_(self.as_condition(inner)), pos)
        return self.parse_test()

    def as_condition(self, operand: Operand) -> ColumnElement[bool]:
        if operand.kind == "bool":
            return operand.sql  # type: ignore[no-any-return]
        raise QueryError(f"expected a condition at position {operand.pos}, found a value")

    # test := value [cmp value | [NOT] LIKE value | [NOT] IN (...) | IS [NOT] NULL | BETWEEN].
    def parse_test(self) -> Operand:
        left = self.parse_value()
        token = self.current
        negated = False
        if token.kind == "keyword" and token.text == "not":
            nxt = self.tokens[self.index + 1]
            if nxt.kind == "keyword" and nxt.text in ("like", "ilike", "in", "between"):
                self.advance()
                negated = True
                token = self.current
        if token.kind == "op" and token.text in _COMPARISONS:
            self.advance()
            right = self.parse_value()
            return self.compare(left, token.text, right, token.pos)
        if token.kind == "keyword" and token.text in ("like", "ilike"):
            self.advance()
            right = self.parse_value()
            a, b = self.comparable(left, right, token.pos, textual=True)
            expr = a.ilike(b) if token.text == "ilike" else a.like(b)
            return Operand("bool", not_(expr) if negated else expr, token.pos)
        if token.kind == "keyword" and token.text == "in":
            self.advance()
            return self.parse_in(left, negated, token.pos)
        if token.kind == "keyword" and token.text == "between":
            self.advance()
            low = self.parse_value()
            self.expect("keyword", "and", "AND in BETWEEN")
            high = self.parse_value()
            a, lo = self.comparable(left, low, token.pos)
            _, hi = self.comparable(left, high, token.pos)
            expr = between(a, lo, hi)
            return Operand("bool", not_(expr) if negated else expr, token.pos)
        if token.kind == "keyword" and token.text == "is":
            self.advance()
            is_not = self.accept("keyword", "not")
            if not self.accept("keyword", "null"):
                raise self.error("expected NULL after IS")
            target = self.column_side(left, token.pos, "IS NULL")
            expr = target.is_not(None) if is_not else target.is_(None)
            return Operand("bool", expr, token.pos)
        if negated:
            raise self.error("expected LIKE, ILIKE, IN or BETWEEN after NOT")
        return left

    def parse_in(self, left: Operand, negated: bool, pos: int) -> Operand:
        self.expect("op", "(", "'(' after IN")
        items: list[Operand] = [self.parse_value()]
        while self.accept("op", ","):
            items.append(self.parse_value())
            if len(items) > MAX_IN_ITEMS:
                raise QueryError(f"IN list at position {pos} has more than {MAX_IN_ITEMS} items")
        self.expect("op", ")", "')' closing the IN list")
        values: list[Any] = []
        column: Any = None
        for item in items:
            if item.kind != "literal":
                raise QueryError(f"IN list at position {pos} may hold only constants")
            column, value = self.comparable(left, item, pos)
            values.append(value)
        expr = column.in_(values)
        return Operand("bool", not_(expr) if negated else expr, pos)

    def compare(self, left: Operand, op: str, right: Operand, pos: int) -> Operand:
        a, b = self.comparable(left, right, pos)
        if op == "=":
            expr = a == b
        elif op in ("!=", "<>"):
            expr = a != b
        elif op == "<":
            expr = a < b
        elif op == ">":
            expr = a > b
        elif op == "<=":
            expr = a <= b
        else:
            expr = a >= b
        return Operand("bool", expr, pos)

    def column_side(self, operand: Operand, pos: int, what: str) -> Any:
        if operand.kind == "json" and operand.json_path:
            return self.json_text(operand)
        if operand.kind in ("column", "text", "cast"):
            return operand.sql
        if operand.kind == "json":
            return operand.sql
        raise QueryError(f"{what} at position {pos} needs a column on its left")

    def comparable(
        self, left: Operand, right: Operand, pos: int, textual: bool = False
    ) -> tuple[Any, Any]:
        """The two SQL sides of a comparison: a column side and a bound value or column."""
        if left.kind == "literal" and right.is_column_side:
            left, right = right, left
        if not left.is_column_side:
            raise QueryError(f"comparison at position {pos} needs a column on one side")
        if left.kind == "json" or right.kind == "json":
            raise QueryError(
                f"comparison at position {pos}: a JSON object cannot be compared; "
                "use ->> to compare one of its values as text"
            )
        if right.kind == "bool" or left.kind == "bool":
            raise QueryError(f"comparison at position {pos} compares a condition")
        if right.kind != "literal":
            return left.sql, right.sql
        value = right.sql
        column = left.sql
        if value is None:
            raise QueryError(f"comparison at position {pos} with NULL: use IS NULL")
        column_type = left.sql_type
        if _is_timestamp(column_type) and not textual:
            when = value if isinstance(value, datetime) else None
            if when is None:
                when = _parse_timestamp(str(value), right.pos)
            if isinstance(column_type, DateTime) and not column_type.timezone:
                when = when.replace(tzinfo=None)
            return column, literal(when, column_type)
        if isinstance(value, datetime):
            raise QueryError(f"comparison at position {pos}: a timestamp needs a time column")
        if textual:
            return column, literal(str(value), Text())
        if left.kind == "text" and isinstance(value, int | float) and not isinstance(value, bool):
            # A JSON text value compared with a number: compare as numbers, as the caller means.
            return cast(column, Float()), literal(float(value), Float())
        if column_type is not None and not isinstance(value, str | bool):
            return column, literal(value, column_type)
        if (
            column_type is not None
            and isinstance(value, str)
            and isinstance(column_type, Integer | Float | Numeric)
        ):
            try:
                number: int | float = (
                    int(value) if isinstance(column_type, Integer) else float(value)
                )
            except ValueError:
                raise QueryError(f"{value!r} at position {right.pos} is not a number") from None
            return column, literal(number, column_type)
        return column, literal(value, column_type)

    # value := ['-'] atom ('->' key | '->>' key | '::' type)*.
    def parse_value(self) -> Operand:
        operand = self.parse_atom()
        # Each step wraps the value in one more expression (a cast nests, and SQL compilers
        # recurse on it): steps count toward the depth like parentheses.
        outer = self.depth
        try:
            while True:
                token = self.current
                if token.kind == "op" and token.text in ("->", "->>"):
                    self.advance()
                    self.enter()
                    operand = self.json_step(operand, token)
                elif token.kind == "op" and token.text == "::":
                    self.advance()
                    self.enter()
                    operand = self.cast_to(operand, token.pos)
                else:
                    return operand
        finally:
            self.depth = outer

    def json_step(self, operand: Operand, arrow: Token) -> Operand:
        if operand.kind != "json" or operand.json_base is None:
            raise QueryError(f"{arrow.text} at position {arrow.pos} needs a JSON column or value")
        key_token = self.advance()
        key: str | int
        if key_token.kind == "string":
            key = key_token.text
            if not key or len(key) > 200 or any(c in key for c in '"\\') or not key.isprintable():
                raise QueryError(f"JSON key at position {key_token.pos} is not allowed")
        elif key_token.kind == "number" and key_token.text.isdigit():
            key = int(key_token.text)
        else:
            raise QueryError(f"expected a quoted key after {arrow.text} at position {arrow.pos}")
        path = (*operand.json_path, key)
        if arrow.text == "->":
            return Operand("json", operand.json_base, arrow.pos, operand.json_base, path)
        step = Operand("json", operand.json_base, arrow.pos, operand.json_base, path)
        return Operand("text", self.json_text(step), arrow.pos, sql_type=Text())

    def json_text(self, operand: Operand) -> Any:
        """The JSON value at the operand's path as text, the same on SQLite and PostgreSQL."""
        base = operand.json_base
        assert base is not None
        return json_text(self.columns.dialect, base, operand.json_path)

    def cast_to(self, operand: Operand, pos: int) -> Operand:
        name_token = self.advance()
        type_factory = _CASTS.get(name_token.text) if name_token.kind == "ident" else None
        if type_factory is None:
            raise QueryError(f"unknown type after :: at position {pos}")
        target = type_factory()
        if operand.kind == "literal":
            value = operand.sql
            try:
                if isinstance(target, DateTime):
                    return Operand("literal", _parse_timestamp(str(value), pos), pos)
                if isinstance(target, Integer):
                    return Operand("literal", int(value), pos)
                if isinstance(target, Float | Numeric):
                    return Operand("literal", float(value), pos)
                if isinstance(target, Boolean):
                    lowered = str(value).lower()
                    if lowered not in ("true", "false", "t", "f", "1", "0"):
                        raise ValueError(value)
                    return Operand("literal", lowered in ("true", "t", "1"), pos)
            except (TypeError, ValueError):
                raise QueryError(
                    f"{value!r} cannot be cast to {name_token.text.upper()} at position {pos}"
                ) from None
            return Operand("literal", str(value), pos)
        if operand.kind == "json":
            operand = Operand("text", self.json_text(operand), pos, sql_type=Text())
        if operand.kind == "bool":
            raise QueryError(f"a condition cannot be cast at position {pos}")
        if isinstance(target, DateTime):
            raise QueryError(f"only constants can be cast to {name_token.text.upper()}")
        if isinstance(target, Boolean) and operand.kind == "text":
            return Operand("cast", operand.sql == "true", pos, sql_type=Boolean())
        return Operand("cast", cast(operand.sql, target), pos, sql_type=target)

    def parse_atom(self) -> Operand:
        token = self.current
        if token.kind == "op" and token.text == "(":
            self.advance()
            self.enter()
            inner = self.parse_or()
            self.depth -= 1
            self.expect("op", ")", "')'")
            return inner
        if token.kind == "op" and token.text == "-":
            self.advance()
            number = self.advance()
            if number.kind != "number":
                raise QueryError(f"expected a number after '-' at position {token.pos}")
            return Operand("literal", -_number(number.text), token.pos)
        if token.kind == "string":
            self.advance()
            return Operand("literal", token.text, token.pos)
        if token.kind == "number":
            self.advance()
            return Operand("literal", _number(token.text), token.pos)
        if token.kind == "keyword" and token.text in ("true", "false"):
            self.advance()
            return Operand("literal", token.text == "true", token.pos)
        if token.kind == "keyword" and token.text == "null":
            self.advance()
            return Operand("literal", None, token.pos, sql_type=None)
        if token.kind == "ident":
            return self.parse_name()
        raise self.error("expected a column, a value or '('")

    def parse_name(self) -> Operand:
        first = self.advance()
        name = first.text
        if self.at("op", "(") and name in _FUNCTIONS:
            self.advance()
            self.enter()
            argument = self.parse_value()
            self.depth -= 1
            self.expect("op", ")", f"')' closing {name.upper()}(")
            if argument.kind == "json":
                argument = Operand("text", self.json_text(argument), argument.pos)
            if argument.kind not in ("column", "text", "cast"):
                raise QueryError(f"{name.upper()}() at position {first.pos} needs a column")
            return Operand("text", _FUNCTIONS[name](argument.sql), first.pos, sql_type=Text())
        if self.at("op", "("):
            raise QueryError(f"unknown function {name!r} at position {first.pos}")
        while self.accept("op", "."):
            part = self.advance()
            if part.kind not in ("ident", "keyword"):
                raise QueryError(f"expected a column name after '.' at position {part.pos}")
            name = f"{name}.{part.text}"
        column = self.columns.columns.get(name)
        if column is None:
            raise QueryError(f"unknown column {name!r} at position {first.pos}")
        if name in self.columns.json_columns:
            return Operand("json", column, first.pos, column, ())
        return Operand("column", column, first.pos, sql_type=column.type)


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def parse_query(text: str, columns: QueryColumns) -> ColumnElement[bool]:
    """The SQLAlchemy condition for listmonk-style `text`; QueryError when it is not accepted."""
    return _Parser(tokenize(text), columns).parse()


SUBSCRIBER_COLUMNS = (
    "id",
    "uuid",
    "email",
    "name",
    "attribs",
    "status",
    "created_at",
    "updated_at",
)


# List hygiene's per-subscriber facts (services.hygiene), queried as if they were columns of
# the subscriber: `risk_level = 'high'`, `subscribers.risk_score > 40`, `hygiene_state =
# 'sunset'`, `verify_result = 'invalid'`. A subscriber not yet scored has NULL ones.
HYGIENE_COLUMNS = {
    "risk_score": SubscriberHygiene.risk_score,
    "risk_level": SubscriberHygiene.risk_level,
    "hygiene_state": SubscriberHygiene.state,
    "verify_result": SubscriberHygiene.verify_result,
    "verified_at": SubscriberHygiene.verified_at,
}


def subscriber_columns(dialect: str) -> QueryColumns:
    """The subscriber columns a query may use (`email` or `subscribers.email`, ...)."""
    columns: dict[str, ColumnElement[Any]] = {}
    for name in SUBSCRIBER_COLUMNS:
        column = getattr(Subscriber, name)
        columns[name] = column
        columns[f"subscribers.{name}"] = column
    for name, source in HYGIENE_COLUMNS.items():
        # A correlated lookup by primary key: no join, so listing and counting stay as they are.
        value = (
            select(source).where(SubscriberHygiene.subscriber_id == Subscriber.id).scalar_subquery()
        )
        columns[name] = value
        columns[f"subscribers.{name}"] = value
    return QueryColumns(columns, frozenset({"attribs", "subscribers.attribs"}), dialect)


def subscriber_condition(session: Session, text: str) -> ColumnElement[bool]:
    """The condition over subscribers for listmonk's `query` text, for this session's database."""
    return parse_query(text, subscriber_columns(name_of(session)))


@contextmanager
def query_deadline(session: Session, seconds: float | None = None) -> Iterator[None]:
    """Runs the block's statements (those that evaluate a caller's query) under a time limit of
    `seconds` (default QUERY_SECONDS); past it, QueryError (400): the query is too costly."""
    limit = QUERY_SECONDS if seconds is None else seconds
    try:
        with statement_deadline(session, limit):
            yield
    except StatementTimeout:
        raise QueryError(
            f"query: took longer than {limit:g} seconds to evaluate; make it more selective"
        ) from None
