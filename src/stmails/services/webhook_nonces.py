"""One-time values of signed webhook requests, shared by every server process.

Mailgun signs a timestamp and a token but not the body, so a captured request could be sent
again with another body while its timestamp is fresh. Each process remembers the tokens it
accepted, but another process behind the same address would not know them; this table does.
A value is accepted once until it expires (when its timestamp is too old to verify anyway);
expired values are deleted as new ones arrive.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete
from sqlalchemy.orm import Session

from stmails.db.models import WebhookNonce
from stmails.db.types import utcnow
from stmails.db.upsert import insert_or_ignore

_TABLE = cast(Table, WebhookNonce.__table__)


def first_use(
    session: Session,
    provider: str,
    nonce: str,
    expires_at: datetime,
    *,
    now: datetime | None = None,
) -> bool:
    """True the first time `nonce` of `provider` is seen (it is then remembered until
    `expires_at`); False for a replay. The caller commits."""
    session.execute(delete(WebhookNonce).where(WebhookNonce.expires_at < (now or utcnow())))
    stored = insert_or_ignore(
        session,
        _TABLE,
        {"provider": provider, "nonce": nonce, "expires_at": expires_at},
        _TABLE.c.provider,
    )
    return stored is not None
