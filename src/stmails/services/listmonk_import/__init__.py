"""Importing a listmonk database (schemas v4 to v6): `stmails import listmonk --from URL` and
`POST /api/import/listmonk`. See docs/migrating-from-listmonk.md."""

from __future__ import annotations

from sqlalchemy import Engine

from stmails.services.listmonk_import.importer import Importer, ImportReport, Progress, StepReport
from stmails.services.listmonk_import.source import (
    SUPPORTED_MAJORS,
    ListmonkImportError,
    SchemaVersion,
    parse_version,
    reading,
    source_engine,
)

__all__ = [
    "SUPPORTED_MAJORS",
    "ImportReport",
    "ListmonkImportError",
    "Progress",
    "SchemaVersion",
    "StepReport",
    "import_listmonk",
    "parse_version",
]


def import_listmonk(
    source_url: str, target: Engine, *, settings: bool = True, progress: Progress | None = None
) -> ImportReport:
    """Copy the listmonk database at `source_url` into the stmails database of `target`.

    Raises ListmonkImportError when the source cannot be read or its schema is unknown; what
    was imported before a failure stays (a second run completes it)."""
    engine = source_engine(source_url)
    try:
        with reading(engine) as source:
            return Importer(source, target, settings=settings, progress=progress).run()
    finally:
        engine.dispose()
