"""The exactly-once campaign sender: `CampaignRunner` runs one campaign at a time.

How a run stays exactly-once across pauses, crashes and several senders:

1. Recipients are walked in subscriber-id order after `campaigns.last_subscriber_id`.
2. For each batch, just before sending: subscriber enabled, subscription valid (double opt-in
   lists need `confirmed`), address not suppressed (global, list or domain; one indexed IN query
   per 1,000 hashes). Each recipient then gets its `campaign_sends` row in one transaction,
   committed BEFORE any SMTP traffic: `skipped` with the reason, or `sent` with the reason
   `in_flight` (a claim). The table's unique (campaign_id, subscriber_id) makes the claim
   exclusive: a second sender, or a restarted one, never claims the same recipient again.
3. Recipients go to SMTP in chunks, at most two chunks ahead of the connections (one thread
   drives every connection of the pool and renders each message just before it is sent, see
   `multiplex`; this is the only way a campaign is sent). Right before a chunk is handed over,
   the campaign's status and the chunk's addresses are checked once more, so a pause, bounce or
   unsubscribe committed mid-campaign stops the sends that have not been handed over (at most
   two chunks are past the check at any time).
4. After SMTP answers, one transaction records the outcome: the claim becomes a plain `sent`,
   a 5xx becomes `failed` plus a bounce through `services.bounces.record()`, a 4xx becomes a
   deferred retry (`failed`, reason `deferred:N: ...`), an error before the end of the data
   (connect, TLS, AUTH, MAIL FROM, a connection lost earlier) releases the claim (nothing was
   delivered), and a connection lost after the whole data was sent marks it `in_doubt`.
5. Send errors are counted (`campaigns.send_errors`, the latest in `last_errors`) and logged.
   The campaign is paused, with the reason in `pause_reason`, at an error that trying again
   cannot mend (`SendResult.fatal`: wrong password, certificate, sender refused...) or after
   `app.max_send_errors` errors in a row.

The crash window: if the process dies after SMTP accepted a message but before step 4 commits,
the row still says `in_flight`. The next run does not resend it (it is marked `in_doubt`): a
duplicate is worse than a rare missing message, and at most two batches can be affected (one
batch is sent while the next is prepared). Pausing or stopping never leaves rows in flight:
unsent claims are released, answered ones recorded, before the run returns. Neither does the
database going away while the process lives (a failover): claims not yet handed to SMTP are
released, and the answers are recorded once the database is back (`_collect_patiently`, for up
to `claim_timeout`), then the run ends with the database's error and the caller starts it again.

Several senders (processes on any hosts sharing one PostgreSQL) may run one campaign: they take
turns at picking and claiming a batch (`db.locks.turn`), retries are re-claimed with UPDATE ...
RETURNING (only the rows a sender's own update changed are its to send), and before finishing,
a sender waits for the others' claims in flight, marking those older than `claim_timeout` in
doubt (their sender died). A change of the settings ends a run between batches
(`settings_changed`) so that the caller starts again with the new ones.

This module runs the steps in order; `recipients` picks and checks a batch (1, 2), `ledger`
writes its rows (2, 4), `handoff` hands it to the SMTP engine (3).
"""

from __future__ import annotations

import copy
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from stmails import metrics
from stmails.core.event import Event
from stmails.db.engine import session_factory
from stmails.db.locks import CAMPAIGN_BATCH_LOCK, turn
from stmails.db.models import Campaign, CampaignSend
from stmails.db.prepared import Prepared
from stmails.db.types import utcnow
from stmails.services.alerts import watch
from stmails.services.dkim_keys import DkimError, Signer
from stmails.services.hygiene import segments
from stmails.services.sending.campaigns import ledger, recipients
from stmails.services.sending.campaigns.handoff import Dispatched, Handoff, Outcome
from stmails.services.sending.campaigns.ledger import (
    DEFERRED,
    BounceRecorder,
    attempt_of,
    error_entry,
    smtp_event,
)
from stmails.services.sending.campaigns.lifecycle import (
    WAITING_FOR_HELD,
    CampaignError,
    campaign_list_ids,
    compile_campaign,
    layout_for,
    optin_list_ids,
)
from stmails.services.sending.campaigns.recipients import Candidate
from stmails.services.sending.compose import Content
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.envelope import ReturnPaths
from stmails.services.sending.messages import domain_of
from stmails.services.sending.smtp import SendResult, SmtpPool
from stmails.services.sending.window import SlidingWindow
from stmails.services.tracking.links import tracked

# One logger for the package, named as before the split.
log = logging.getLogger("stmails.services.sending.campaigns")

SETTINGS_CHANGED = "settings changed"
# Seconds after which a claim still in flight is taken for that of a sender that died.
CLAIM_TIMEOUT = 120.0
# How long a campaign waiting for room in the sliding window sleeps before it looks again.
WINDOW_POLL_SECONDS = 5.0


@dataclass
class RunReport:
    """What one call of `CampaignRunner.run` did."""

    sent: int = 0
    skipped: int = 0
    hard: int = 0
    soft: int = 0
    deferred: int = 0
    errors: int = 0
    in_doubt: int = 0
    released: int = 0
    finished: bool = False
    stopped_because: str = ""
    skip_reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class _Failures:
    """Send errors in a row (a message the server answered ends the row) and the reason to
    pause the campaign, once there is one."""

    limit: int
    in_a_row: int = 0
    pause_reason: str = ""

    def answered(self) -> None:
        self.in_a_row = 0

    def failed(self, result: SendResult) -> None:
        self.in_a_row += 1
        if self.pause_reason:
            return
        if result.fatal:
            self.pause_reason = f"send error that retrying cannot mend, {result.describe()}"
        elif self.limit and self.in_a_row >= self.limit:
            self.pause_reason = (
                f"{self.in_a_row} send errors in a row (app.max_send_errors {self.limit}); "
                f"last {result.describe()}"
            )


# The campaign's status, read before every batch and chunk.
_STATUS = Prepared(select(Campaign.status).where(Campaign.id == bindparam("campaign")))


class CampaignRunner:
    """Sends running campaigns; one instance per process, `run()` per campaign."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        smtp: SmtpPool,
        config: SendingConfig,
        record_bounce: BounceRecorder,
        return_paths: ReturnPaths,
        *,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = utcnow,
        signer: Signer | None = None,
        settings_changed: Callable[[], bool] = lambda: False,
        claim_timeout: float = CLAIM_TIMEOUT,
    ) -> None:
        """`smtp` is the pool whose connections one thread drives (see `multiplex`); `signer`
        DKIM-signs every message by its From domain's active key (none: unsigned).

        `settings_changed()` is asked before each batch: when it answers True the run stops
        (every claim recorded or released) so that the caller sends on with the new settings.
        `claim_timeout`: seconds after which another sender's claim still in flight is taken
        for the claim of a process that died (see `_settle_in_flight`)."""
        self.settings_changed = settings_changed
        self.claim_timeout = claim_timeout
        self.factory = factory
        self.signer = signer
        self.smtp = smtp
        self.config = config
        self.record_bounce = record_bounce
        self.return_paths = return_paths
        self.sleep = sleep
        self.now = now
        # Reads take no write lock (SQLite): a separate read-only session maker.
        self.engine: Engine = factory.kw["bind"]
        self.reader = session_factory(self.engine, readonly=True)
        # Whether the campaign being run is an opt-in campaign (see `run`).
        self._optin = False
        # The campaign's segment (services.hygiene.segments; empty: the whole lists).
        self._segment = segments.Segment()
        # Step 3, the SMTP engine's side of the run (`handoff`).
        self._handoff = Handoff(
            smtp, config, return_paths, signer, self.reader, self._status, self.now
        )
        self._failures = _Failures(config.max_send_errors)
        # listmonk's sliding window (services.sending.window), the room it leaves the next
        # batch, and the wait reason last written on the campaign.
        self.window = (
            SlidingWindow(config.window_seconds, config.window_rate)
            if config.window_seconds > 0
            else None
        )
        self._batch_room = config.batch_size
        self._wait_reasons: dict[int, str] = {}
        # The campaign being run (for its held domains, see `recipients.apply_suppressions`).
        self._campaign_id = 0

    # -- one campaign -----------------------------------------------------------------------

    def run(self, campaign_id: int, should_stop: Callable[[], bool] = lambda: False) -> RunReport:
        """Sends the campaign until it finishes, is paused or cancelled, or `should_stop()`."""
        report = RunReport()
        with self.factory() as session:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None or campaign.status != "running":
                report.stopped_because = "not running"
                return report
            try:
                content = compile_campaign(session, campaign, self.config)
            except CampaignError as exc:
                reason = f"the content cannot be rendered: {exc}"[:1000]
                log.error("campaign %s paused: %s", campaign_id, reason)
                metrics.alert_raised("campaign_paused")
                campaign.status = "paused"
                campaign.pause_reason = reason
                session.commit()
                report.stopped_because = reason
                return report
            # Its tracked links are registered once per run (services.tracking.links).
            content = tracked(
                session, campaign, content, self.config.root_url, layout_for(session, campaign)
            )
            session.commit()
            lists = campaign_list_ids(session, campaign_id)
            # An opt-in campaign (listmonk's `optin` type) goes to the unconfirmed subscribers
            # of its double opt-in lists, and only through those lists.
            self._optin = campaign.type == "optin"
            if self._optin:
                lists = optin_list_ids(session, lists)
            self._segment = segments.get_segment(session, campaign_id)
            problem = self._signing_problem(campaign)
            if problem:
                # Mail that should be signed never leaves unsigned: the campaign waits for
                # an admin to mend the key.
                log.error("campaign %s paused: %s", campaign_id, problem)
                metrics.alert_raised("campaign_paused")
                campaign.status = "paused"
                campaign.pause_reason = problem[:1000]
                session.commit()
                report.stopped_because = problem
                return report
            session.expunge(campaign)
        self._campaign_id = campaign_id
        self._mark_in_doubt(campaign_id)
        self._handoff.chunks.clear()
        self._failures = _Failures(self.config.max_send_errors)
        # One thread for the SMTP engine, so that it sends while this one does the database.
        with ThreadPoolExecutor(max_workers=1) as pool:
            # One batch stays in flight while the next is prepared, so the SMTP connections
            # keep working during the database steps; it is always recorded before returning.
            # Batches handed to the SMTP engine and not yet recorded, oldest first.
            unrecorded: deque[Dispatched] = deque()
            try:
                while True:
                    if self._failures.pause_reason:
                        report.stopped_because = self._failures.pause_reason
                        return report
                    if should_stop():
                        report.stopped_because = "stopped"
                        return report
                    status = self._status(campaign_id)
                    if status != "running":
                        report.stopped_because = status or "deleted"
                        return report
                    if self.settings_changed():
                        report.stopped_because = SETTINGS_CHANGED
                        return report
                    if self._window_full(campaign_id):
                        # The sliding window is full: the campaign stays running and waits.
                        continue
                    # Senders of the campaign take turns at picking and claiming a batch (on
                    # PostgreSQL), so that each picks recipients the others have not.
                    with turn(self.engine, CAMPAIGN_BATCH_LOCK, campaign_id):
                        batch = self._next_batch(campaign_id, lists)
                        won = self._claim(campaign_id, batch) if batch else None
                    if batch:
                        dispatched = self._send_batch(
                            campaign, content, won, pool, report, should_stop
                        )
                        if dispatched is not None:
                            unrecorded.append(dispatched)
                            if dispatched.database_error is not None:
                                raise dispatched.database_error
                        errors = 0
                        while len(unrecorded) > 1:
                            errors += self._collect(campaign, unrecorded[0], report)
                            unrecorded.popleft()
                        if errors:
                            # The server may be down for a moment: do not spin through the list.
                            self.sleep(min(5.0, self.config.retry_delay))
                        continue
                    if unrecorded:
                        self._collect(campaign, unrecorded[0], report)
                        unrecorded.popleft()
                        continue
                    if self._retry_due(campaign, content, lists, pool, report, should_stop):
                        continue
                    waiting = self._deferred_wait(campaign_id)
                    if waiting is None:
                        if self._settle_in_flight(campaign_id):
                            # Another sender's batch is still out: its answers come first.
                            self.sleep(1.0)
                            continue
                        held = self._wait_for_held(campaign_id)
                        if held:
                            report.stopped_because = held
                            return report
                        self._finish(campaign_id)
                        report.finished = True
                        return report
                    self.sleep(min(waiting, 1.0))
            finally:
                # Also when the database went away: the answers are only in this process.
                while unrecorded:
                    self._collect_patiently(campaign, unrecorded[0], report, should_stop)
                    unrecorded.popleft()

    # -- steps --------------------------------------------------------------------------------

    def _window_full(self, campaign_id: int) -> bool:
        """Whether the sliding window leaves no room now (then waits a little, the reason on
        the campaign); else sets how many recipients the next batch may take."""
        self._batch_room = self.config.batch_size
        if self.window is None:
            return False
        now = self.now()
        with self.reader() as session:
            room = self.window.room(session, now)
        reason = ""
        if room.until is not None:
            reason = (
                f"waiting: the sliding window is full ({self.window.describe()}); "
                f"sending resumes at {room.until.isoformat(timespec='seconds')} UTC"
            )
        if reason != self._wait_reasons.get(campaign_id):
            self._wait_reasons[campaign_id] = reason
            with self.factory() as session, session.begin():
                session.execute(
                    update(Campaign).where(Campaign.id == campaign_id).values(wait_reason=reason)
                )
            if reason:
                log.info("campaign %s %s", campaign_id, reason)
            else:
                log.info("campaign %s: the sliding window has room again", campaign_id)
        if room.until is None:
            self._batch_room = min(self.config.batch_size, room.free)
            return False
        self.sleep(min(max((room.until - now).total_seconds(), 0.05), WINDOW_POLL_SECONDS))
        return True

    def _status(self, campaign_id: int) -> str:
        with self.reader() as session:
            rows = _STATUS.rows(session.connection(), {"campaign": campaign_id})
        return str(rows[0][0]) if rows else ""

    def _set_status(self, campaign_id: int, status: str) -> None:
        with self.factory() as session, session.begin():
            session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.status == "running")
                .values(status=status)
            )

    def _wait_for_held(self, campaign_id: int) -> str:
        """When messages of held domains wait (services.alerts), the campaign is paused instead
        of finished, with the reason; returns it ('' when nothing waits)."""
        with self.reader() as session:
            domains = sorted(watch.held_domains(session, campaign_id))
            if not domains:
                return ""
            waiting = session.scalar(
                select(func.count()).where(
                    CampaignSend.campaign_id == campaign_id,
                    CampaignSend.status == "skipped",
                    CampaignSend.reason.like(f"{watch.HELD}%"),
                )
            )
        if not waiting:
            return ""
        reason = (
            f"{WAITING_FOR_HELD}{', '.join(domains)} ({waiting} messages): release a domain "
            "to send them (PUT /api/alerts/{id}), or resume the campaign to drop them"
        )[:1000]
        with self.factory() as session, session.begin():
            session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.status == "running")
                .values(status="paused", pause_reason=reason)
            )
        log.warning("campaign %s paused: %s", campaign_id, reason)
        return reason

    def _finish(self, campaign_id: int) -> None:
        self._set_status(campaign_id, "finished")

    def _mark_in_doubt(self, campaign_id: int) -> None:
        # Claims left in flight by a run that died: never resent (see the module docstring).
        with self.factory() as session, session.begin():
            ledger.mark_in_doubt(session, campaign_id)

    def _settle_in_flight(self, campaign_id: int) -> int:
        """Marks in doubt the claims still in flight after `claim_timeout` (their sender died
        between SMTP and recording, or is far behind: its answer, if it comes, still wins);
        returns how many younger claims remain in flight (other senders' batches)."""
        cutoff = self.now() - timedelta(seconds=self.claim_timeout)
        with self.factory() as session, session.begin():
            stale, left = ledger.settle_in_flight(session, campaign_id, cutoff)
        if stale:
            log.warning(
                "campaign %s: %s sends left in flight for over %.0f s are marked in doubt "
                "(their sender stopped before recording them)",
                campaign_id,
                stale,
                self.claim_timeout,
            )
        return left

    def _next_batch(self, campaign_id: int, lists: Sequence[int]) -> list[Candidate]:
        if not lists:
            return []
        with self.reader() as session:
            ids = recipients.next_ids(session, campaign_id, lists, self._batch_room)
            if not ids:
                return []
            return self._candidates(session, ids, lists)

    def _candidates(
        self, session: Session, ids: Sequence[int], lists: Sequence[int]
    ) -> list[Candidate]:
        """Subscribers `ids` with the lists they may receive this campaign through, or why not."""
        return recipients.candidates(
            session,
            ids,
            lists,
            optin=self._optin,
            segment=self._segment,
            campaign_id=self._campaign_id,
            now=self.now,
        )

    def _claim(self, campaign_id: int, batch: Sequence[Candidate]) -> list[Candidate] | None:
        """Writes the batch's rows (skips and claims) in one transaction; returns the claims
        this sender won, or None when the campaign stopped running meanwhile."""
        now = self.now()
        with self.factory() as session, session.begin():
            return ledger.claim(session, campaign_id, batch, now, self.config.id_domain)

    def _send_batch(
        self,
        campaign: Campaign,
        content: Content,
        won: list[Candidate] | None,
        pool: ThreadPoolExecutor,
        report: RunReport,
        should_stop: Callable[[], bool],
    ) -> Dispatched | None:
        """Hands the claims this sender won (`_claim`) to the SMTP engine; counts the skips."""
        if won is None:
            return None
        for candidate in won:
            if candidate.skip:
                report.skipped += 1
                report.skip_reasons[candidate.skip] = report.skip_reasons.get(candidate.skip, 0) + 1
        claims = [c for c in won if not c.skip]
        return self._handoff.dispatch(
            campaign, content, claims, pool, should_stop, 0, self._campaign_id
        )

    def _collect(self, campaign: Campaign, dispatched: Dispatched | None, report: RunReport) -> int:
        """Waits for a dispatched batch's answers and records them; returns the send errors."""
        if dispatched is None:
            return 0
        outcomes, late_skips = self._handoff.answers(dispatched)
        return self._record(
            campaign, outcomes, late_skips, dispatched.released, report, dispatched.attempt
        )

    def _collect_patiently(
        self,
        campaign: Campaign,
        dispatched: Dispatched,
        report: RunReport,
        should_stop: Callable[[], bool],
    ) -> int:
        """`_collect`, tried again while the database is unreachable (a failover, a restart of
        PostgreSQL, a locked SQLite file): the SMTP answers are only in this process, and
        without them the batch's claims would end in doubt, sent or not, at the next run.
        Gives up (raises) on `should_stop()` or after `claim_timeout` seconds, when the other
        senders take such claims for those of a sender that died."""
        deadline = time.monotonic() + self.claim_timeout
        delay = 0.5
        while True:
            # A failed try leaves the report and the error count as they were.
            saved_report, saved_failures = copy.deepcopy(report), replace(self._failures)
            try:
                return self._collect(campaign, dispatched, report)
            except DBAPIError as exc:
                for name in (f.name for f in fields(report)):
                    setattr(report, name, getattr(saved_report, name))
                self._failures = saved_failures
                if should_stop() or time.monotonic() >= deadline:
                    raise
                log.warning(
                    "campaign %s: the answers of a batch cannot be recorded yet, trying again "
                    "in %.1f s: %s",
                    campaign.id,
                    delay,
                    exc.orig if exc.orig is not None else exc,
                )
                self.sleep(delay)
                delay = min(2 * delay, 5.0)

    def _signing_problem(self, campaign: Campaign) -> str:
        """Why the campaign's mail cannot be DKIM-signed although its From domain has an
        active key ('' when it can, or needs no signature)."""
        if self.signer is None:
            return ""
        try:
            self.signer.check(domain_of(campaign.from_email))
        except DkimError as exc:
            return f"DKIM signing failed: {exc}"
        return ""

    def _record(
        self,
        campaign: Campaign,
        outcomes: Sequence[Outcome],
        late_skips: Sequence[Candidate],
        released: Sequence[Candidate],
        report: RunReport,
        attempt: int,
    ) -> int:
        """Records a batch's outcomes in one transaction (see the module docstring); pauses the
        campaign when the errors call for it. Returns the number of send errors."""
        accepted: list[int] = []
        doubtful: list[int] = []
        failed_updates: list[dict[str, Any]] = []
        to_release = [c.recipient.id for c in released]
        bounces: list[Event] = []
        errors: list[dict[str, Any]] = []
        now = self.now()
        for candidate, message, result in outcomes:
            sub_id = candidate.recipient.id
            if result.outcome in ("error", "in_doubt"):
                if result.outcome == "in_doubt":
                    doubtful.append(sub_id)
                else:
                    to_release.append(sub_id)
                if result.stage == "queue":
                    # Never tried (an earlier message stopped the sending): not an error of its own.
                    continue
                self._failures.failed(result)
                errors.append(error_entry(now, candidate.recipient, result))
                log.warning(
                    "campaign %s: send %s for subscriber %s: %s",
                    campaign.id,
                    "in doubt" if result.outcome == "in_doubt" else "error",
                    sub_id,
                    result.describe(),
                )
                continue
            self._failures.answered()
            if result.outcome == "sent":
                accepted.append(sub_id)
                continue
            assert message is not None
            summary = f"{result.code} {result.text}"[:150]
            if result.outcome == "soft" and attempt < self.config.soft_retries:
                failed_updates.append(
                    {"sid": sub_id, "st": "failed", "rs": f"{DEFERRED}{attempt + 1}: {summary}"}
                )
                report.deferred += 1
                continue
            kind = "hard" if result.outcome == "hard" else "soft"
            reason = f"{kind}_bounce: {summary}"
            failed_updates.append({"sid": sub_id, "st": "failed", "rs": reason})
            bounces.append(
                smtp_event(result, message, campaign.uuid, candidate.recipient.uuid, kind)
            )
            if kind == "hard":
                report.hard += 1
            else:
                report.soft += 1
        for candidate in late_skips:
            failed_updates.append(
                {"sid": candidate.recipient.id, "st": "skipped", "rs": candidate.skip}
            )
            report.skipped += 1
            report.skip_reasons[candidate.skip] = report.skip_reasons.get(candidate.skip, 0) + 1
        pause_reason = self._failures.pause_reason
        with self.factory() as session, session.begin():
            ledger.record(
                session,
                campaign.id,
                now,
                accepted=accepted,
                doubtful=doubtful,
                failed_updates=failed_updates,
                to_release=to_release,
                late=len(late_skips),
                errors=errors,
                pause_reason=pause_reason,
            )
            for event in bounces:
                self.record_bounce(session, event)
            if accepted and not bounces:
                self._watch(session, campaign.id)
        if pause_reason and not report.stopped_because:
            log.error("campaign %s paused: %s", campaign.id, pause_reason)
            metrics.alert_raised("campaign_paused")
            report.stopped_because = pause_reason
        report.sent += len(accepted)
        report.errors += len(errors)
        report.in_doubt += len(doubtful)
        report.released += len(to_release)
        return len(errors)

    def _watch(self, session: Session, campaign_id: int) -> None:
        # The window moves with every batch, not only with bounces (services.alerts.watch);
        # bounces recorded above were judged by `record_bounce` already.
        try:
            with session.begin_nested():
                watch.judge(session, [campaign_id], now=self.now())
        except Exception:
            log.exception("campaign %s: the deliverability watcher failed", campaign_id)

    # -- deferred (4xx) retries ----------------------------------------------------------------

    def _deferred_wait(self, campaign_id: int) -> float | None:
        """Seconds until the next deferred retry is due; None when nothing is deferred."""
        with self.reader() as session:
            oldest = ledger.oldest_deferred(session, campaign_id)
        if oldest is None:
            return None
        due: datetime = oldest + timedelta(seconds=self.config.retry_delay)
        return max(0.0, (due - self.now()).total_seconds())

    def _retry_due(
        self,
        campaign: Campaign,
        content: Content,
        lists: Sequence[int],
        pool: ThreadPoolExecutor,
        report: RunReport,
        should_stop: Callable[[], bool],
    ) -> bool:
        cutoff = self.now() - timedelta(seconds=self.config.retry_delay)
        with self.reader() as session:
            # At most what the sliding window leaves (the batch size without one).
            rows = ledger.due_retries(session, campaign.id, cutoff, self._batch_room)
            if not rows:
                return False
            attempts = {r.subscriber_id: attempt_of(r.reason) for r in rows}
            ids = [r.subscriber_id for r in rows]
            message_ids = {r.subscriber_id: r.message_id for r in rows}
            candidates = self._candidates(session, ids, lists)
        # Re-claim the retries (back to in flight) in one transaction before sending; another
        # sender may have re-claimed some of them meanwhile: only the rows this update changed
        # are ours to send.
        with self.factory() as session, session.begin():
            won = ledger.reclaim(session, campaign.id, ids, self.now())
        by_attempt: dict[int, list[Candidate]] = {}
        for candidate in candidates:
            if candidate.recipient.id not in won:
                continue
            candidate.message_id = message_ids[candidate.recipient.id]
            by_attempt.setdefault(attempts[candidate.recipient.id], []).append(candidate)
        for attempt, group in by_attempt.items():
            skips = [c for c in group if c.skip]
            if skips:
                self._record(campaign, [], skips, [], report, attempt)
            live = [c for c in group if not c.skip]
            dispatched = self._handoff.dispatch(
                campaign, content, live, pool, should_stop, attempt, self._campaign_id
            )
            self._collect_patiently(campaign, dispatched, report, should_stop)
            if dispatched.database_error is not None:
                raise dispatched.database_error
        return True
