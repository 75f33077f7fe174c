"""Imports every command module so that each registers its commands on the Typer app."""

from stmails.cli import parse  # noqa: F401
from stmails.cli import serve  # noqa: F401
