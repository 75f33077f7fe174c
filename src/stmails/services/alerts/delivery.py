"""Delivering alerts from the durable outbox (`alert_deliveries`): by email to the addresses
of `app.notify_emails` and by a signed HTTP POST to the URLs of `deliverability.alert_webhooks`.

A delivery is claimed before it is tried (its next attempt moved `LEASE` ahead, only if nobody
moved it first), so several processes never try the same one at once; it is then tried outside
any transaction, and its outcome recorded: sent, or retried after a backoff (30 s, doubling,
at most an hour) until `MAX_ATTEMPTS` tries have failed. The watcher only writes rows: a slow
or unreachable URL delays nothing but its own deliveries.

The POST body is JSON (`{"event": "alert", "alert": {...}}`, the alert as `GET /api/alerts/{id}`
shows it); header `X-Stmails-Signature: sha256=<hex>` is HMAC-SHA256 of the exact body bytes
under the webhook's secret, and `X-Stmails-Alert` carries the alert id. Any 2xx answer is a
delivery; anything else (or no answer within `TIMEOUT` seconds) is retried.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.engine import read_only
from stmails.db.models import Alert, AlertDelivery
from stmails.db.types import utcnow
from stmails.services.alerts.config import AlertConfig
from stmails.services.alerts.store import as_dict

log = logging.getLogger("stmails.alerts")

SIGNATURE_HEADER = "X-Stmails-Signature"
ALERT_HEADER = "X-Stmails-Alert"
MAX_ATTEMPTS = 8
BACKOFF_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 3600.0
LEASE = timedelta(minutes=2)
TIMEOUT = 5.0
BATCH = 50

# Sends one alert email: (to, subject, text) -> '' when the server accepted it, else the error.
EmailSender = Callable[[str, str, str], str]


def signature(secret: str, body: bytes) -> str:
    """The value of `X-Stmails-Signature` for `body`: `sha256=` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int, base: float = BACKOFF_SECONDS) -> timedelta:
    """How long to wait after the `attempts`-th failed try."""
    return timedelta(seconds=min(MAX_BACKOFF_SECONDS, base * 2 ** max(0, attempts - 1)))


def payload(alert: Alert) -> bytes:
    """The JSON body POSTed for `alert`."""
    return orjson.dumps({"event": "alert", "alert": as_dict(alert)})


def email_text(alert: Alert, root_url: str) -> tuple[str, str]:
    """The subject and plain-text body of the alert email."""
    subject = f"[stmails] {alert.level}: {alert.message}"[:200]
    lines = [
        f"{alert.level.upper()} deliverability alert #{alert.id} ({alert.kind})",
        "",
        alert.message,
        "",
        f"Raised at {alert.created_at.isoformat()}",
    ]
    if alert.actions:
        lines.append(f"Actions: {orjson.dumps(alert.actions).decode()}")
    lines += ["", f"Figures: {orjson.dumps(alert.figures).decode()}"]
    if root_url:
        lines += ["", f"Details: {root_url.rstrip('/')}/api/alerts/{alert.id}"]
    return subject, "\n".join(lines) + "\n"


def claim_due(sessions: sessionmaker[Session], now: datetime, limit: int = BATCH) -> list[int]:
    """Claims the pending deliveries that are due (see the module docstring); their ids."""
    claimed: list[int] = []
    with sessions() as session, session.begin():
        due = session.execute(
            select(AlertDelivery.id, AlertDelivery.next_attempt_at)
            .where(AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= now)
            .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id)
            .limit(limit)
        ).all()
        for delivery_id, at in due:
            won = session.execute(
                update(AlertDelivery)
                .where(AlertDelivery.id == delivery_id, AlertDelivery.next_attempt_at == at)
                .values(next_attempt_at=now + LEASE)
                .returning(AlertDelivery.id)
            ).all()
            if won:
                claimed.append(int(delivery_id))
    return claimed


@dataclass
class Deliverer:
    """Tries claimed deliveries. `post` is httpx's (a seam for unit tests); `send_email` comes
    from the worker (the transactional sending path)."""

    sessions: sessionmaker[Session]
    config: Callable[[Session], AlertConfig]
    send_email: EmailSender | None
    root_url: str = ""
    backoff_base: float = BACKOFF_SECONDS
    post: Callable[..., httpx.Response] = httpx.post

    def run_once(self, now: datetime | None = None) -> int:
        """Tries every due delivery once; returns how many were sent."""
        sent = 0
        reader = read_only(self.sessions)
        for delivery_id in claim_due(self.sessions, now or utcnow()):
            # Read, then let go of the database before trying: no lock is held meanwhile.
            with reader() as session:
                delivery = session.get(AlertDelivery, delivery_id)
                alert = session.get(Alert, delivery.alert_id) if delivery else None
                if delivery is None or alert is None:
                    continue
                config = self.config(session)
                channel, target = delivery.channel, delivery.target
                session.expunge(alert)
            error = self._try(channel, target, alert, config)
            self._record(delivery_id, error)
            sent += not error
        return sent

    def _try(self, channel: str, target: str, alert: Alert, config: AlertConfig) -> str:
        try:
            if channel == "webhook":
                return self._post(target, alert, config)
            if self.send_email is None:
                return "no SMTP server is enabled (settings: smtp)"
            subject, text = email_text(alert, self.root_url)
            return self.send_email(target, subject, text)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"[:1000]

    def _post(self, url: str, alert: Alert, config: AlertConfig) -> str:
        hook = next((h for h in config.webhooks if h.url == url and h.enabled), None)
        if hook is None:
            return "this URL is no longer an enabled alert webhook"
        body = payload(alert)
        try:
            answer = self.post(
                url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: signature(hook.secret, body),
                    ALERT_HEADER: str(alert.id),
                    "User-Agent": "stmails-alerts",
                },
                timeout=TIMEOUT,
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:1000]
        if 200 <= answer.status_code < 300:
            return ""
        return f"HTTP {answer.status_code}"

    def _record(self, delivery_id: int, error: str) -> None:
        now = utcnow()
        with self.sessions() as session, session.begin():
            delivery = session.get(AlertDelivery, delivery_id)
            if delivery is None:
                return
            delivery.attempts += 1
            if not error:
                delivery.status, delivery.sent_at, delivery.last_error = "sent", now, ""
                return
            delivery.last_error = error[:1000]
            if delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = "failed"
                log.error(
                    "alert %s: delivery to %s failed for good after %s tries: %s",
                    delivery.alert_id,
                    delivery.target,
                    delivery.attempts,
                    error,
                )
                return
            delivery.next_attempt_at = now + backoff(delivery.attempts, self.backoff_base)
            log.warning(
                "alert %s: delivery to %s failed (try %s), retried at %s: %s",
                delivery.alert_id,
                delivery.target,
                delivery.attempts,
                delivery.next_attempt_at.isoformat(),
                error,
            )
