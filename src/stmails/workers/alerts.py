"""The alert delivery worker: every few seconds it tries the due deliveries of the alert
outbox (services.alerts.delivery). Every `stmails serve` process runs one; a claim per
delivery keeps two processes from trying the same one. Alert emails go through the
transactional sending path (`DirectSender`: the suppression check, the SMTP pool, bounces of
a refused address recorded), to bare addresses."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from stmails.core.event import Event
from stmails.db.engine import read_only
from stmails.services import bounces
from stmails.services.alerts.delivery import BACKOFF_SECONDS, Deliverer
from stmails.services.alerts.watch import alert_config_of
from stmails.services.errors import InvalidInput
from stmails.services.sending.compose import compile_content
from stmails.services.sending.direct import DirectSender, raw_targets
from stmails.services.sending.runtime import load_config, return_path_for
from stmails.services.sending.smtp import SmtpPool

log = logging.getLogger("stmails.alerts")

DELIVERY_SECONDS = 2.0
# Untrusted text (domains from bounces, campaign names) is data, never template source.
SUBJECT = "{{ .Tx.Data.subject }}"
BODY = "{{ .Tx.Data.text }}"


class AlertEmails:
    """Sends alert emails over a pool rebuilt when the `smtp` setting changes."""

    def __init__(self, sessions: sessionmaker[Session], root_url: str) -> None:
        self._sessions = sessions
        self._root_url = root_url
        self._pool: SmtpPool | None = None
        self._key: tuple[object, ...] = ()

    def send(self, to: str, subject: str, text: str) -> str:
        def record(_: Session, event: Event) -> object:
            # A refusal is recorded in a transaction of its own: the send holds no write lock.
            with self._sessions() as writer, writer.begin():
                return bounces.record(writer, event)

        with read_only(self._sessions)() as session:
            try:
                config = load_config(session, self._root_url)
            except InvalidInput as exc:
                return f"the sending settings cannot work: {exc}"
            if not config.smtp:
                return "no SMTP server is enabled (settings: smtp)"
            key = tuple(config.smtp)
            if self._pool is None or key != self._key:
                self.close()
                self._pool, self._key = SmtpPool(config.smtp), key
            sender = DirectSender(config, self._pool.send, record, return_path_for(config, None))
            content = compile_content(
                subject=SUBJECT, body=BODY, content_type="plain", from_email=config.from_email
            )
            results = sender.send(
                session,
                content,
                raw_targets([to]),
                kind="alert",
                tx_data={"subject": subject, "text": text},
            )
        result = results[0]
        return "" if result.status == "sent" else f"{result.status}: {result.error}"[:1000]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class AlertWorker:
    """A daemon thread that delivers alerts every `interval` seconds."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        root_url: str,
        interval: float = DELIVERY_SECONDS,
        backoff_base: float = BACKOFF_SECONDS,
    ) -> None:
        self._emails = AlertEmails(sessions, root_url)
        self.deliverer = Deliverer(
            sessions,
            alert_config_of,
            self._emails.send,
            root_url=root_url,
            backoff_base=backoff_base,
        )
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stmails-alerts", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None
        self._emails.close()

    def is_alive(self) -> bool:
        """True while the delivery thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.deliverer.run_once()
            except Exception:
                log.exception("delivering alerts failed; retried in %ss", self._interval)
