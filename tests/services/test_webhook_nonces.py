"""services.webhook_nonces: a signed request's one-time value is accepted once, until it expires."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from stmails.db.types import utcnow
from stmails.services import webhook_nonces


def test_a_nonce_is_accepted_once_per_provider_until_it_expires(session: Session) -> None:
    now = utcnow()
    later = now + timedelta(minutes=20)
    assert webhook_nonces.first_use(session, "mailgun", "tok-1", later, now=now)
    assert not webhook_nonces.first_use(session, "mailgun", "tok-1", later, now=now)
    assert webhook_nonces.first_use(session, "other", "tok-1", later, now=now)
    # Once expired it is forgotten (its timestamp no longer verifies by then anyway).
    after = later + timedelta(seconds=1)
    assert webhook_nonces.first_use(
        session, "mailgun", "tok-1", after + timedelta(minutes=20), now=after
    )
