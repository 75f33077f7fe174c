"""The bounce-mailbox scanner as it runs in production: inside `stmails serve` and for cron.

`scan_mailbox()` scans one mailbox once (used by `stmails bounces scan`); `MailboxWorker` is a
thread that scans every configured mailbox on its own interval. Whatever the number of worker
processes, one mailbox is scanned by one process at a time: a PostgreSQL advisory lock on
PostgreSQL, an exclusive lock file in `data_dir` on SQLite (one host).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from stmails import metrics
from stmails.config import Settings
from stmails.core import classify
from stmails.core.event import Event
from stmails.core.verp import DEFAULT_PREFIX, VerpResolver, VerpToken
from stmails.db.engine import read_only
from stmails.db.locks import try_hold
from stmails.filelock import try_lock
from stmails.ingest.isolated import ClassifierClosed, IsolatedClassifier, Outcome
from stmails.ingest.mailbox import (
    MailboxConfig,
    MailboxError,
    RecordUnavailable,
    Scanner,
    ScanSummary,
    connect,
    mailboxes_from_settings,
)
from stmails.ingest.mailbox.scanner import (
    Classifier,
    RecordEvents,
    ReportSink,
)
from stmails.services import bounces, dmarc_reports, subscribers
from stmails.services import settings as settings_service
from stmails.services.mailbox_ledger import SqlLedger
from stmails.services.sending import config as sending_config

log = logging.getLogger("stmails.workers.mailbox")

# How often the worker wakes up to see which mailbox is due (and to notice settings changes).
TICK_SECONDS = 5.0


def _unavailable(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError | DisconnectionError | PoolTimeoutError)


def make_recorder(sessions: sessionmaker[Session]) -> RecordEvents:
    """`record(events)`: services.bounces.record_many() in one transaction, committed.

    A database that is down or busy raises `RecordUnavailable` (the scan stops, no message is
    blamed); any other error is the message's and propagates.
    """

    def record(events: list[Event]) -> None:
        with sessions() as session:
            try:
                outcomes = bounces.record_many(session, events)
                refused = [o for o in outcomes if isinstance(o, bounces.RecordError)]
                if refused:
                    # Nothing of the batch is kept: the scanner records it again message by
                    # message, and the message with the refused event counts a failed try.
                    raise refused[0]
                session.commit()
            except Exception as exc:
                session.rollback()
                if _unavailable(exc):
                    raise RecordUnavailable(str(exc)) from exc
                raise
        held = sum(
            1
            for o in outcomes
            if isinstance(o, bounces.RecordResult) and not o.attributed and not o.duplicate
        )
        if held:
            log.info(
                "%d bounce(s) recorded without acting on them: nothing ties them to mail "
                "stmails sent (bounce.mailbox_trust; see meta.unattributed in /api/bounces)",
                held,
            )

    return record


@contextlib.contextmanager
def mailbox_lock(sessions: sessionmaker[Session], data_dir: Path, name: str) -> Iterator[bool]:
    """Yields True when this process holds the mailbox's lock (released on exit), else False."""
    digest = hashlib.sha256(name.encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    with sessions() as session, try_hold(session, key) as got:
        if got is not None:
            yield got
            return
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f".mailbox-{digest[:8].hex()}.lock"
    with try_lock(path) as held:
        yield held


def make_report_sink(sessions: sessionmaker[Session]) -> ReportSink:
    """Keeps the DMARC aggregate reports that arrive in a mailbox (`services.dmarc_reports`,
    source `mailbox`): each attachment that reads as a report is stored once."""

    def keep(attachments: list[bytes], mailbox: str) -> bool:
        reports = []
        for data in attachments:
            try:
                reports.append(dmarc_reports.read_report(data))
            except dmarc_reports.ReportError as exc:
                log.info("mailbox %s: an attachment is not a DMARC report: %s", mailbox, exc)
        if not reports:
            return False
        try:
            with sessions() as session:
                for report in reports:
                    _, new = dmarc_reports.store(session, report, source="mailbox")
                    log.info(
                        "mailbox %s: DMARC report %s of %s for %s %s",
                        mailbox,
                        report.report_id,
                        report.org_name,
                        report.domain,
                        "stored" if new else "already stored",
                    )
                session.commit()
        except Exception as exc:
            if _unavailable(exc):
                raise RecordUnavailable(str(exc)) from exc
            raise
        return True

    return keep


def verp_secret(settings: Settings) -> bytes:
    """The key VERP tokens are signed with (the instance's secret key)."""
    return settings.resolved_secret_key().encode()


def verp_resolver(sessions: sessionmaker[Session]) -> VerpResolver:
    """Maps the ids of a VERP token to the subscriber's and campaign's uuids (None when the
    subscriber no longer exists)."""

    def resolve(token: VerpToken) -> VerpToken | None:
        with sessions() as session:
            subscriber, campaign = subscribers.uuids_by_id(
                session, token.subscriber_id, token.campaign_id
            )
        if not subscriber:
            return None
        return dataclasses.replace(token, subscriber_uuid=subscriber, campaign_uuid=campaign)

    return resolve


def verp_prefix(sessions: sessionmaker[Session]) -> str:
    """The local part the sender puts before VERP tokens: that of the bounce address (an SMTP
    server's Return-Path header or `sending.bounce_address`, see services.sending.envelope)."""
    with sessions() as session:
        values = settings_service.get_all(session)
    return sending_config.verp_prefix(values) or DEFAULT_PREFIX


def configured_mailboxes(
    sessions: sessionmaker[Session], errors: list[str] | None = None
) -> list[MailboxConfig]:
    """The enabled mailboxes of the `bounce.mailboxes` setting; unusable entries are logged
    (and listed in `errors` when given) and left out."""
    # A read-only session: the poll every few seconds must not queue for SQLite's write lock.
    with read_only(sessions)() as session:
        entries = settings_service.get(session, "bounce.mailboxes")
    found: list[str] = []
    configs = mailboxes_from_settings(entries, found)
    for message in found:
        log.error("%s", message)
    if errors is not None:
        errors.extend(found)
    return configs


class TimedClassifier:
    """A batch classifier whose batches are timed into the classification histogram (each
    message counts the batch's mean time: the messages are classified in other processes)."""

    def __init__(self, inner: IsolatedClassifier) -> None:
        self._inner = inner

    def classify_many(self, raws: Sequence[bytes], budget: float) -> list[Outcome]:
        """The inner classifier's outcomes."""
        started = time.perf_counter()
        try:
            return self._inner.classify_many(raws, budget)
        finally:
            if raws:
                each = (time.perf_counter() - started) / len(raws)
                for _ in raws:
                    metrics.CLASSIFICATION_SECONDS.observe(each)


def scan_mailbox(
    config: MailboxConfig,
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    classifier: IsolatedClassifier | None = None,
) -> ScanSummary | None:
    """Scan `config` once under its lock; None when another process is scanning it now.

    Messages are classified in the worker processes of `classifier`, or of one started for
    this scan (never in this process: see `stmails.ingest.isolated`).
    """
    with mailbox_lock(sessions, settings.data_dir, config.name) as locked:
        if not locked:
            return None
        scanner = Scanner(
            config,
            make_recorder(sessions),
            SqlLedger(sessions),
            verp_secret=verp_secret(settings),
            verp_prefix=verp_prefix(sessions),
            verp_resolver=verp_resolver(sessions),
            classifier=None if classifier is None else TimedClassifier(classifier),
            dry_run=dry_run,
            progress=progress,
            reports=make_report_sink(sessions),
        )
        return scanner.scan(connect(config))


class MailboxWorker:
    """A daemon thread that scans each configured mailbox on its scan interval.

    Messages are classified by `classifier` in worker processes (started at the first scan,
    stopped with the worker), so that no message can hold the server's interpreter.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        *,
        classifier: Classifier = classify,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._due: dict[str, float] = {}
        self._classifier = IsolatedClassifier(classifier=classifier)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stmails-mailboxes", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None
        # A message still being classified (the join timed out) has its worker killed.
        self._classifier.close()

    def is_alive(self) -> bool:
        """True while the scanning thread runs (from `start()` until `stop()`)."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        # The first round waits one tick, so that a server that starts and stops at once (tests,
        # a failed start) never begins a scan.
        while not self._stop.wait(TICK_SECONDS):
            try:
                self.run_due(time.monotonic())
            except Exception:
                log.exception("mailbox worker round failed")

    def run_due(self, now: float) -> list[ScanSummary]:
        """Scan every mailbox whose interval has elapsed; returns what was scanned."""
        done = []
        for config in configured_mailboxes(self._sessions):
            if self._stop.is_set():
                break
            if self._due.get(config.name, 0.0) > now:
                continue
            self._due[config.name] = now + config.scan_interval
            started = time.time()
            try:
                summary = scan_mailbox(
                    config, self._sessions, self._settings, classifier=self._classifier
                )
            except ClassifierClosed:
                # The worker is stopping: the scan ended where it was, its tries taken back.
                break
            except (MailboxError, RecordUnavailable, OSError) as exc:
                log.warning("mailbox %s: scan stopped: %s", config.name, exc)
                continue
            if summary is not None:
                metrics.mailbox_scanned(config.name, started, time.time())
                log.info("mailbox %s: %s", config.name, summary.as_dict())
                done.append(summary)
        return done
