"""Imports every command module so that each registers its commands on the Typer app."""

from stmails.cli import (
    bounces,  # noqa: F401
    config,  # noqa: F401
    db,  # noqa: F401
    importing,  # noqa: F401
    parse,  # noqa: F401
    relay,  # noqa: F401
    serve,  # noqa: F401
    suppressions,  # noqa: F401
    users,  # noqa: F401
    verify,  # noqa: F401
    webhooks,  # noqa: F401
    worker,  # noqa: F401
)
