"""What the layers above `db` and `services` may hold of the database: a session, its
factory, the engine, and the errors a failing database raises.

The web layer imports these names from here, never from SQLAlchemy: it builds no query of
its own (the import-linter contract "web builds no SQL" in pyproject.toml), so that every
query lives in `services/` or `db/`, where it is tested on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "DBAPIError",
    "DataError",
    "DisconnectionError",
    "Engine",
    "OperationalError",
    "PoolTimeoutError",
    "ProgrammingError",
    "SQLAlchemyError",
    "Session",
    "sessionmaker",
]
