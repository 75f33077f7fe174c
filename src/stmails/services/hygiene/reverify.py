"""Re-verification on a schedule (`hygiene.reverify`, off until enabled; monthly by default).

Each run takes the enabled subscribers whose last verification is older than
`older_than_days` (or who were never verified), oldest first, at most `max_per_run`, and
verifies them in bulk with the existing verifier (syntax, disposable and role lists, DNS; an
SMTP probe only when `smtp_probe` is set). DNS questions are paced to `dns_per_second` (one per
domain: the verifier groups addresses by domain). Each result is stored
(`subscriber_hygiene.verify_*`) and rescores the subscriber. An address found invalid follows
`invalid_action`: `none` (recorded and scored only), `unsubscribe` (from every list),
`suppress` (global suppression list, source `reverify`) or `blocklist`; each such action is a
recorded transition (reason, undo) like the sunset policy's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Subscriber, SubscriberHygiene, SubscriberList
from stmails.db.types import utcnow
from stmails.services import settings as settings_service
from stmails.services import suppression
from stmails.services.hygiene import risk
from stmails.services.hygiene.sunset import Move, record_transition
from stmails.verify.mx import DomainMail, MailDomainResolver
from stmails.verify.pipeline import Verifier

log = logging.getLogger(__name__)

__all__ = ["PacedResolver", "due", "run"]

CHUNK = 1000


class PacedResolver(MailDomainResolver):
    """A MailDomainResolver that asks DNS at most `per_second` times a second (answers from
    its cache are not paced)."""

    def __init__(
        self,
        *args: Any,
        per_second: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.interval = 1.0 / per_second
        self._sleep = sleep
        self._now = now
        self._next = 0.0
        self._lock: asyncio.Lock | None = None

    async def _lookup_and_cache(self, domain: str) -> DomainMail:
        # Only a question that goes to DNS waits its turn (a cached answer does not).
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            wait = self._next - self._now()
            if wait > 0:
                await self._sleep(wait)
            self._next = max(self._now(), self._next) + self.interval
        return await super()._lookup_and_cache(domain)


def due(session: Session, older_than_days: int, limit: int, now: datetime) -> list[tuple[int, str]]:
    """(id, address) of the enabled subscribers to re-verify: never verified, or last verified
    over `older_than_days` ago; the never verified first, then the oldest."""
    cutoff = now - timedelta(days=older_than_days)
    rows = session.execute(
        select(Subscriber.id, Subscriber.email)
        .outerjoin(SubscriberHygiene, SubscriberHygiene.subscriber_id == Subscriber.id)
        .where(
            Subscriber.status == "enabled",
            or_(SubscriberHygiene.verified_at.is_(None), SubscriberHygiene.verified_at < cutoff),
        )
        .order_by(
            SubscriberHygiene.verified_at.is_not(None),
            SubscriberHygiene.verified_at,
            Subscriber.id,
        )
        .limit(limit)
    )
    return [(sid, email) for sid, email in rows]


def _act(
    session: Session,
    subscriber_id: int,
    email: str,
    action: str,
    reasons: list[str],
    now: datetime,
) -> None:
    """Applies `invalid_action` to an address found invalid, as a recorded transition."""
    meta: dict[str, Any] = {}
    if action == "unsubscribe":
        memberships = list(
            session.scalars(
                select(SubscriberList).where(
                    SubscriberList.subscriber_id == subscriber_id,
                    SubscriberList.status != "unsubscribed",
                )
            )
        )
        meta["subscriptions"] = {str(m.list_id): m.status for m in memberships}
        for membership in memberships:
            membership.status = "unsubscribed"
    elif action == "suppress":
        entry, created = suppression.add(
            session,
            reason="manual",
            email=email,
            source="reverify",
            description=f"re-verification: invalid ({', '.join(reasons)})",
            now=now,
        )
        meta["suppression_id"] = entry.id if created else None
    elif action == "blocklist":
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return
        meta["subscriber_status"] = subscriber.status
        subscriber.status = "blocklisted"
    row = session.get(SubscriberHygiene, subscriber_id)
    state = row.state if row is not None else "active"
    move = Move(
        subscriber_id,
        email,
        state,
        state,
        f"re-verification found the address invalid ({', '.join(reasons) or 'invalid'})",
        action,
    )
    record_transition(session, move, "reverify", now, meta)


def run(
    factory: sessionmaker[Session], verifier: Verifier, *, now: datetime | None = None
) -> dict[str, Any]:
    """One run (nothing when disabled); each chunk of results is committed on its own."""
    now = now or utcnow()
    with factory() as session:
        config = settings_service.get_valid(session, "hygiene.reverify")
        if not config["enabled"]:
            return {"enabled": False}
        subjects = due(session, int(config["older_than_days"]), int(config["max_per_run"]), now)
    action = str(config["invalid_action"])
    counts: dict[str, int] = {}
    acted = 0
    for start in range(0, len(subjects), CHUNK):
        part = subjects[start : start + CHUNK]
        results = asyncio.run(verifier.verify_many([email for _, email in part]))
        with factory() as session, session.begin():
            for (subscriber_id, email), result in zip(part, results, strict=True):
                verdict = result.result.value
                reasons = [reason.value for reason in result.reasons]
                counts[verdict] = counts.get(verdict, 0) + 1
                risk.record_verification(
                    session, subscriber_id, verdict, reasons, now=now, rescore_now=False
                )
                if verdict == "invalid" and action != "none":
                    _act(session, subscriber_id, email, action, reasons, now)
                    acted += 1
            # The results move the scores (verification result, its age, role, catch-all...).
            risk.rescore(session, [subscriber_id for subscriber_id, _ in part], now=now)
    log.info(
        "re-verification: %d subscribers, %s, %d acted on (%s)",
        len(subjects), counts, acted, action,
    )  # fmt: skip
    return {"verified": len(subjects), "results": counts, "acted": acted, "action": action}
