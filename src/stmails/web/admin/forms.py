"""Reading the fields of a submitted page form."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request

FIELD_MAX = 10_000


async def form_fields(request: Request) -> FormData:
    """The submitted form (read once; the CSRF check has already read it)."""
    return await request.form()


def text(form: FormData, name: str, limit: int = FIELD_MAX) -> str:
    """The text field `name` ('' when absent or a file), cut to `limit` characters."""
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""
