"""The triggers that keep the analytics figures true to the event tables, on SQLite and PostgreSQL.

Every change to a row that a figure counts writes a delta row into `analytics_changes`, in the
same transaction as the change itself, whichever code made it (the sender, `bounces.record`,
the bounce API's deletions, `stmails bounces reapply`, a foreign-key action):

- `campaign_sends`: a send counts once its outcome is known. `accepted`: status `sent` with a
  reason other than `in_flight`/`in_doubt` (so also `unsubscribed`); `refused`: status `failed`
  with reason `hard_bounce: ...`/`soft_bounce: ...` (the SMTP server said no; the sender records
  the bounce too); `in_doubt`; `unsubscribed`. An insert adds its counts, an update takes the old
  row's away and adds the new row's. A deleted send (its subscriber or campaign was deleted)
  keeps counting: the message was sent. Its domain is the recipient's when the send is counted.
- `bounces`: hard, soft and complaint by `effective_type`, with reason, source and domain; an
  insert adds, a delete subtracts, an update of what is counted moves the count. The row's
  `domain` is filled in here from the address when it is stored, and stays when the address is
  erased (the rules' `delete` action), so per-domain figures do not change then.
- `campaigns`: when a campaign is deleted, its sends, opens and clicks move to campaign -1
  ("deleted or unknown campaign") so that totals keep them; its bounces move there through their
  own trigger (the foreign key sets their campaign_id to NULL; their campaign_uuid stays).
  Campaign 0 holds bounces of mail without a campaign (transactional mail, the relay).

Opens and clicks are written by the tracking writer itself (services.tracking). The deltas are
folded into the rollup tables by `services.analytics.rollups.fold`, and every query adds the
deltas not yet folded, so every figure is exact at any moment. `statements(dialect)` is the DDL;
`Base.metadata.create_all` (db.models) and the migration both run it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Integer, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from stmails.db.models import (
    BOUNCE_COUNTERS,
    DOMAIN_COUNTERS,
    ENGAGEMENT_COUNTERS,
    HOURLY_COUNTERS,
    REASON_COUNTERS,
    SEND_COUNTERS,
)

# Key of the PostgreSQL advisory lock that keeps folding to one transaction at a time.
FOLD_LOCK_KEY = 0x57A1_A7A

TRIGGERS = (
    ("analytics_sends_insert", "campaign_sends"),
    ("analytics_sends_update", "campaign_sends"),
    ("analytics_bounces_insert", "bounces"),
    ("analytics_bounces_update", "bounces"),
    ("analytics_bounces_delete", "bounces"),
    ("analytics_campaigns_delete", "campaigns"),
)
# PostgreSQL's BEFORE INSERT trigger that fills in bounces.domain (SQLite does it after).
PG_DOMAIN_TRIGGER = ("analytics_bounces_domain", "bounces")


class _Dialect:
    """The few expressions that SQLite and PostgreSQL spell differently."""

    def __init__(self, name: str) -> None:
        self.name = name

    def hour(self, timestamp: str) -> str:
        """Hours since 1970-01-01 UTC of a timestamp column."""
        if self.name == "sqlite":
            # Timestamps are naive UTC text (db.types.UTCDateTime).
            return f"(CAST(strftime('%s', {timestamp}) AS INTEGER) / 3600)"
        return f"CAST(floor(extract(epoch FROM {timestamp}) / 3600) AS INTEGER)"

    def domain(self, address: str) -> str:
        """The lower-case part after the last @ of an address (at most 255 characters), or ''."""
        if self.name == "sqlite":
            # rtrim() with every character but @ leaves the text up to the last @.
            after = f"substr({address}, length(rtrim({address}, replace({address}, '@', ''))) + 1)"
            return (
                f"(CASE WHEN instr({address}, '@') > 0"
                f" THEN substr(lower({after}), 1, 255) ELSE '' END)"
            )
        return (
            f"(CASE WHEN strpos({address}, '@') > 0"
            f" THEN left(lower(substring({address} FROM '[^@]*$')), 255) ELSE '' END)"
        )

    def month(self, column: str, unit: int) -> str:
        """Calendar months since 1970-01 (UTC) of an integer `column` counting `unit` seconds
        since 1970 (hours: 3600, days: 86400); computed in 64 bits (no overflow in 2038)."""
        seconds = f"(CAST({column} AS BIGINT) * {unit})"
        if self.name == "sqlite":
            part = "CAST(strftime('%{}', {}, 'unixepoch') AS INTEGER)"
            return f"(({part.format('Y', seconds)} - 1970) * 12 + {part.format('m', seconds)} - 1)"
        utc = f"(to_timestamp({seconds}) AT TIME ZONE 'UTC')"
        return (
            f"CAST((extract(year FROM {utc}) - 1970) * 12 + extract(month FROM {utc}) - 1"
            " AS INTEGER)"
        )


def _flag(condition: str) -> str:
    return f"(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _send_flags(row: str) -> dict[str, str]:
    """What a campaign_sends row counts as (0 or 1 each)."""
    refused = (
        f"{row}.status = 'failed' AND (substr({row}.reason, 1, 12) = 'hard_bounce:'"
        f" OR substr({row}.reason, 1, 12) = 'soft_bounce:')"
    )
    return {
        "accepted": _flag(
            f"{row}.status = 'sent' AND {row}.reason <> 'in_flight' AND {row}.reason <> 'in_doubt'"
        ),
        "refused": _flag(refused),
        "in_doubt": _flag(f"{row}.status = 'sent' AND {row}.reason = 'in_doubt'"),
        "unsubscribed": _flag(f"{row}.status = 'sent' AND {row}.reason = 'unsubscribed'"),
    }


def _send_counted(row: str) -> str:
    """Whether a campaign_sends row counts at all."""
    return " OR ".join(f"{flag} = 1" for flag in _send_flags(row).values())


def _bounce_campaign(row: str) -> str:
    """The campaign key of a bounce: its campaign, else -1 when it names a campaign stmails
    does not (or no longer) know, else 0 (mail without a campaign: transactional, relay)."""
    return (
        f"(CASE WHEN {row}.campaign_id IS NOT NULL THEN {row}.campaign_id"
        f" WHEN {row}.campaign_uuid <> '' THEN -1 ELSE 0 END)"
    )


def _bounce_flags(row: str) -> dict[str, str]:
    return {
        "hard": _flag(f"{row}.effective_type = 'hard'"),
        "soft": _flag(f"{row}.effective_type = 'soft'"),
        "complaints": _flag(f"{row}.effective_type = 'complaint'"),
    }


def _change(dialect: _Dialect, values: dict[str, str], where: str = "") -> str:
    """INSERT INTO analytics_changes of one row of `values` (column: SQL), optionally WHERE."""
    columns = ", ".join(values)
    selected = ", ".join(values.values())
    condition = f" WHERE {where}" if where else ""
    return f"INSERT INTO analytics_changes ({columns}) SELECT {selected}{condition}"


def _send_change(dialect: _Dialect, row: str, sign: str) -> str:
    domain = dialect.domain("email")
    lookup = f"COALESCE((SELECT {domain} FROM subscribers WHERE id = {row}.subscriber_id), '')"
    values = {
        "hour": dialect.hour(f"{row}.sent_at"),
        "campaign_id": f"{row}.campaign_id",
        "domain": lookup,
        **{name: f"{sign}{flag}" for name, flag in _send_flags(row).items()},
    }
    return _change(dialect, values, f"({_send_counted(row)})")


def _bounce_change(dialect: _Dialect, row: str, sign: str, domain: str) -> str:
    values = {
        "hour": dialect.hour(f"{row}.created_at"),
        "campaign_id": _bounce_campaign(row),
        "domain": domain,
        "reason": f"{row}.reason",
        "source": f"{row}.source",
        **{name: f"{sign}{flag}" for name, flag in _bounce_flags(row).items()},
    }
    return _change(dialect, values)


# What an update must change for the counts to change.
_SEND_COLUMNS = ("status", "reason", "sent_at")
_BOUNCE_COLUMNS = ("effective_type", "reason", "source", "created_at", "campaign_id")
# The campaign key of figures whose campaign was deleted (see _bounce_campaign).
GONE = -1
# Counters that move to campaign GONE when their campaign is deleted (bounces move by
# themselves: the foreign key clears their campaign_id).
_MOVED = (*SEND_COUNTERS, *ENGAGEMENT_COUNTERS)


def _changed(columns: Sequence[str], dialect: _Dialect) -> str:
    differs = "IS NOT" if dialect.name == "sqlite" else "IS DISTINCT FROM"
    return " OR ".join(f"OLD.{c} {differs} NEW.{c}" for c in columns)


def _move_to_gone(table: str, keys: Sequence[str], counters: Sequence[str]) -> list[str]:
    """Statements adding a deleted campaign's `counters` in `table` to the rows of campaign
    GONE and zeroing them (OLD is the campaign row)."""
    columns = ", ".join((*keys, "campaign_id", *counters))
    selected = ", ".join((*keys, str(GONE), *counters))
    conflict = ", ".join((*keys, "campaign_id"))
    added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters)
    zeroed = ", ".join(f"{c} = 0" for c in counters)
    return [
        f"INSERT INTO {table} ({columns}) SELECT {selected} FROM {table}"
        f" WHERE campaign_id = OLD.id ON CONFLICT ({conflict}) DO UPDATE SET {added}",
        f"UPDATE {table} SET {zeroed} WHERE campaign_id = OLD.id",
    ]


def _campaign_delete_body() -> list[str]:
    no_bounces = " AND ".join(f"{c} = 0" for c in BOUNCE_COUNTERS)
    domain_moved = [c for c in DOMAIN_COUNTERS if c not in BOUNCE_COUNTERS]
    return [
        *_move_to_gone("analytics_hourly", ("hour",), _MOVED),
        *_move_to_gone("analytics_domains", ("domain", "day"), domain_moved),
        f"UPDATE analytics_changes SET campaign_id = {GONE}"
        f" WHERE campaign_id = OLD.id AND {no_bounces}",
    ]


def _bodies(dialect: _Dialect) -> dict[str, tuple[str, list[str]]]:
    """Each trigger's event clause and statements (OLD and NEW as each database names them)."""
    new_domain = dialect.domain("NEW.email")
    sqlite = dialect.name == "sqlite"
    bounce_insert = [
        _bounce_change(
            dialect,
            "NEW",
            "",
            f"(CASE WHEN NEW.domain <> '' THEN NEW.domain ELSE {new_domain} END)"
            if sqlite
            else "NEW.domain",
        )
    ]
    if sqlite:
        # SQLite cannot change NEW before the insert: the stored row gets its domain here.
        bounce_insert.insert(
            0, f"UPDATE bounces SET domain = {new_domain} WHERE id = NEW.id AND domain = ''"
        )
    return {
        "analytics_sends_insert": ("INSERT", [_send_change(dialect, "NEW", "")]),
        "analytics_sends_update": (
            f"UPDATE OF {', '.join(_SEND_COLUMNS)}",
            [_send_change(dialect, "OLD", "-"), _send_change(dialect, "NEW", "")],
        ),
        "analytics_bounces_insert": ("INSERT", bounce_insert),
        "analytics_bounces_update": (
            f"UPDATE OF {', '.join(_BOUNCE_COLUMNS)}",
            [
                _bounce_change(dialect, "OLD", "-", "OLD.domain"),
                _bounce_change(dialect, "NEW", "", "NEW.domain"),
            ],
        ),
        "analytics_bounces_delete": ("DELETE", [_bounce_change(dialect, "OLD", "-", "OLD.domain")]),
        "analytics_campaigns_delete": (
            "DELETE",
            # The rollup rows it rewrites are the folder's too: wait for a fold to end first
            # (SQLite's write lock already does).
            ([] if sqlite else [f"PERFORM pg_advisory_xact_lock({FOLD_LOCK_KEY})"])
            + _campaign_delete_body(),
        ),
    }


def _conditions(dialect: _Dialect) -> dict[str, str]:
    """WHEN conditions that skip the triggers' work for rows that change no figure."""
    return {
        "analytics_sends_insert": _send_counted("NEW"),
        "analytics_sends_update": f"({_send_counted('OLD')} OR {_send_counted('NEW')})"
        f" AND ({_changed(_SEND_COLUMNS, dialect)})",
        "analytics_bounces_update": _changed(_BOUNCE_COLUMNS, dialect),
    }


def statements(dialect_name: str) -> list[str]:
    """The DDL creating the analytics triggers (replacing any of the same name)."""
    dialect = _Dialect(dialect_name)
    bodies = _bodies(dialect)
    conditions = _conditions(dialect)
    out = drop_statements(dialect_name)
    tables = dict(TRIGGERS)
    for name, (when, body) in bodies.items():
        condition = conditions.get(name)
        if dialect.name == "sqlite":
            guard = f" WHEN {condition}" if condition else ""
            program = "".join(f"{statement}; " for statement in body)
            out.append(
                f"CREATE TRIGGER {name} AFTER {when} ON {tables[name]} FOR EACH ROW{guard}"
                f" BEGIN {program}END"
            )
            continue
        program = "".join(f"{statement}; " for statement in body)
        result = "OLD" if when == "DELETE" else "NEW"
        out.append(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN {program}RETURN {result}; END $$"
        )
        guard = f" WHEN ({condition})" if condition else ""
        out.append(
            f"CREATE TRIGGER {name} AFTER {when} ON {tables[name]} FOR EACH ROW{guard}"
            f" EXECUTE FUNCTION {name}()"
        )
    if dialect.name == "postgresql":
        name, table = PG_DOMAIN_TRIGGER
        out.append(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.domain = '' THEN NEW.domain := {dialect.domain('NEW.email')}; END IF;"
            " RETURN NEW; END $$"
        )
        out.append(
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()"
        )
    return out


def drop_statements(dialect_name: str) -> list[str]:
    """The DDL removing the analytics triggers (and PostgreSQL's trigger functions)."""
    out: list[str] = []
    names = [*TRIGGERS] + ([PG_DOMAIN_TRIGGER] if dialect_name == "postgresql" else [])
    for name, table in names:
        if dialect_name == "sqlite":
            out.append(f"DROP TRIGGER IF EXISTS {name}")
        else:
            out.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            out.append(f"DROP FUNCTION IF EXISTS {name}()")
    return out


def install(connection: Connection) -> None:
    """Create (or re-create) the triggers on `connection`'s database."""
    for statement in statements(connection.dialect.name):
        connection.exec_driver_sql(statement)


def backfill_statements(dialect_name: str) -> list[str]:
    """Statements that write the deltas of every row already stored (for a database that had
    events before the triggers existed; the migration runs them once, then folds)."""
    dialect = _Dialect(dialect_name)
    sends = {
        "hour": dialect.hour("s.sent_at"),
        "campaign_id": "s.campaign_id",
        "domain": f"COALESCE((SELECT {dialect.domain('email')} FROM subscribers"
        " WHERE id = s.subscriber_id), '')",
        **_send_flags("s"),
    }
    bounces = {
        "hour": dialect.hour("b.created_at"),
        "campaign_id": _bounce_campaign("b"),
        "domain": "b.domain",
        "reason": "b.reason",
        "source": "b.source",
        **_bounce_flags("b"),
    }
    return [
        f"UPDATE bounces SET domain = {dialect.domain('email')} WHERE domain = ''",
        f"INSERT INTO analytics_changes ({', '.join(sends)}) SELECT {', '.join(sends.values())}"
        f" FROM campaign_sends s WHERE {_send_counted('s')}",
        f"INSERT INTO analytics_changes ({', '.join(bounces)})"
        f" SELECT {', '.join(bounces.values())} FROM bounces b",
    ]


# --- Folding the deltas into the rollups ---------------------------------------------------

# The rollup tables: name, key columns (as computed from a delta row), counters, and the
# condition a delta row must meet to concern the table. `{month}` is the calendar month of the
# delta's hour (months since 1970-01), spelt per database.
ROLLUPS: tuple[tuple[str, tuple[tuple[str, str], ...], tuple[str, ...], str], ...] = (
    (
        "analytics_hourly",
        (("hour", "hour"), ("campaign_id", "campaign_id")),
        HOURLY_COUNTERS,
        "",
    ),
    (
        "analytics_reasons",
        (
            ("day", "hour / 24"),
            ("campaign_id", "campaign_id"),
            ("reason", "reason"),
            ("source", "source"),
        ),
        REASON_COUNTERS,
        " OR ".join(f"{c} <> 0" for c in REASON_COUNTERS),
    ),
    (
        "analytics_domains",
        (("domain", "domain"), ("day", "hour / 24"), ("campaign_id", "campaign_id")),
        DOMAIN_COUNTERS,
        " OR ".join(f"{c} <> 0" for c in DOMAIN_COUNTERS),
    ),
    (
        # Campaign mail only (every campaign key but 0), per month: what the per-domain figures
        # of all campaigns read for the whole months of a period (services.analytics.rollups).
        # Deleting a campaign moves its figures between keys that are both campaign mail, so
        # this table needs no trigger of its own.
        "analytics_domain_months",
        (("domain", "domain"), ("month", "{month}")),
        DOMAIN_COUNTERS,
        "campaign_id <> 0 AND (" + " OR ".join(f"{c} <> 0" for c in DOMAIN_COUNTERS) + ")",
    ),
)


def fold_statements(dialect_name: str) -> list[str]:
    """INSERT ... SELECT ... ON CONFLICT statements adding the deltas with id <= :upper to each
    rollup, then the DELETE of those deltas."""
    month = _Dialect(dialect_name).month("hour", 3600)
    out = []
    for table, template, counters, condition in ROLLUPS:
        keys = [(name, expression.format(month=month)) for name, expression in template]
        names = [name for name, _ in keys]
        columns = ", ".join((*names, *counters))
        selected = ", ".join(
            [f"{expression} AS {name}" for name, expression in keys]
            + [f"SUM({c})" for c in counters]
        )
        grouped = ", ".join(expression for _, expression in keys)
        where = f"id <= :upper AND ({condition})" if condition else "id <= :upper"
        added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters)
        out.append(
            f"INSERT INTO {table} ({columns}) SELECT {selected} FROM analytics_changes"
            f" WHERE {where} GROUP BY {grouped} ORDER BY {grouped}"
            f" ON CONFLICT ({', '.join(names)}) DO UPDATE SET {added}"
        )
    out.append("DELETE FROM analytics_changes WHERE id <= :upper")
    return out


def month_backfill_statement(dialect_name: str) -> str:
    """The statement filling `analytics_domain_months` from the folded `analytics_domains`
    (migration 0016; deltas not yet folded are added by the next fold)."""
    month = _Dialect(dialect_name).month("day", 86400)
    counters = ", ".join(DOMAIN_COUNTERS)
    summed = ", ".join(f"SUM({c})" for c in DOMAIN_COUNTERS)
    return (
        f"INSERT INTO analytics_domain_months (domain, month, {counters})"
        f" SELECT domain, {month}, {summed} FROM analytics_domains WHERE campaign_id <> 0"
        f" GROUP BY domain, {month}"
    )


_FOLD = {name: fold_statements(name) for name in ("sqlite", "postgresql")}


def fold(connection: Connection, limit: int = 200_000, tables: Sequence[str] | None = None) -> int:
    """Folds up to `limit` of the oldest deltas into the rollups, in the caller's transaction;
    returns how many. On PostgreSQL the transaction must be REPEATABLE READ (every statement
    then sees the same deltas) and another transaction folding at the moment makes this one
    fold nothing (an advisory lock). `tables`: only those rollups (a migration that runs
    before the later ones exist)."""
    if connection.dialect.name == "postgresql":
        locked = connection.exec_driver_sql(
            f"SELECT pg_try_advisory_xact_lock({FOLD_LOCK_KEY})"
        ).scalar()
        if not locked:
            return 0
    row = connection.execute(
        text(
            "SELECT count(*), max(id) FROM (SELECT id FROM analytics_changes"
            " ORDER BY id LIMIT :limit) AS oldest"
        ),
        {"limit": limit},
    ).one()
    count, upper = int(row[0]), row[1]
    if not count:
        return 0
    statements = _FOLD[connection.dialect.name]
    if tables is not None:
        kept = [s for (table, *_), s in zip(ROLLUPS, statements, strict=False) if table in tables]
        statements = [*kept, statements[-1]]
    for statement in statements:
        connection.execute(text(statement), {"upper": upper})
    return count


class HourOf(FunctionElement[int]):
    """Hours since 1970-01-01 UTC of a timestamp column, in SQL (as the triggers compute it)."""

    type = Integer()
    inherit_cache = True
    name = "hour_of"


@compiles(HourOf, "sqlite")
@compiles(HourOf, "postgresql")
def _hour_of(element: HourOf, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return _Dialect(compiler.dialect.name).hour(compiler.process(column, **kw))
