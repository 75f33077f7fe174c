"""Pydantic's refusals in the services' words: the first error of a model as `InvalidInput`.

A model states what a caller's input must be; the messages the API has always answered with
(`tags: must be an array of strings`) are kept in a table of wordings beside the model, looked
up by the error's field and pydantic's error type (`string_type`, `list_type`, ...). A
validator's own ValueError keeps its message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from stmails.services.errors import InvalidInput


def first_error(exc: ValidationError, wording: Mapping[str, str] | None = None) -> InvalidInput:
    """The first error of `exc` as InvalidInput naming its (top-level) field.

    The message is the validator's own for a ValueError it raised, else the first of
    `wording["field.error_type"]`, `wording["field"]` and `wording["error_type"]` that is
    there, else pydantic's message."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    kind = error["type"]
    table = wording or {}
    message = None
    if kind != "value_error":
        message = table.get(f"{field}.{kind}") or table.get(field) or table.get(kind)
    return InvalidInput(field, message or str(error["msg"]).removeprefix("Value error, "))


def none_is_empty(value: Any) -> Any:
    """null read as an empty list (a BeforeValidator: listmonk's clients send null for none)."""
    return [] if value is None else value


def setting_check(kind: Any, message: str) -> Callable[[str, Any], Any]:
    """A check of one setting: `check(key, value)` is `value` validated strictly as `kind` (a
    type, with its constraints in `Annotated`), or InvalidInput(key, message). The adapter is
    built once, here."""
    adapter: TypeAdapter[Any] = TypeAdapter(kind)

    def check(key: str, value: Any) -> Any:
        try:
            return adapter.validate_python(value, strict=True)
        except ValidationError:
            raise InvalidInput(key, message) from None

    return check
