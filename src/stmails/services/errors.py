"""Errors the domain services raise; the web layer maps them to HTTP statuses.

`InputError` (400) is the base of every "the caller's input cannot be accepted" error of the
services (`CampaignError`, `SuppressionInputError`, `DirectSendError`, `MessageError`,
`TemplateRenderError`, `QueryError`, `InvalidInput`); its message is the answer, and the web
maps it to 400 in one place (`web.app`, through `web.errors.install_error_handlers`).
`InvalidInput` (400) names the offending field, `NotFound` (404) the missing thing, `Conflict`
(409) a uniqueness clash such as an address that is already a subscriber, `Forbidden` (403) a
change the caller's own rights do not cover (granting a permission it does not hold).
"""

from __future__ import annotations


class InputError(ValueError):
    """The caller's input cannot be accepted; the message says why (and names the field or
    place when there is one). A ValueError, so code that catches those still does."""


class InvalidInput(InputError):
    """The caller's input is wrong; `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(LookupError):
    """No such object; the message says which."""


class Conflict(ValueError):
    """The change clashes with existing data (for example a duplicate address)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Forbidden(PermissionError):
    """The caller may not make this change; the message says what it lacks."""
