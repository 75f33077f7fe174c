"""The bounce-mailbox scanner: read, classify, record, and only then delete or move.

Exactly once, whatever moment the process dies at:
- a message is removed (POP3 DELE, IMAP \\Deleted + UID EXPUNGE, or UID MOVE) only after the
  `record` callable returned, i.e. after its events were committed;
- every event's id is derived from the message's content, so a message recorded but not yet
  removed when the process died is recorded again as a duplicate (counted once) and removed;
- a `Ledger` remembers what was done per message key (POP3 UIDL, IMAP UIDVALIDITY + UID), so
  messages left in place are not read again and failures are counted across scans: after
  `max_tries` a message goes to the quarantine folder (IMAP) or is skipped and reported (POP3).

Untrusted mail, bounded: every message is classified in a worker process within the mailbox's
`classify_timeout` (`stmails.ingest.isolated`), and its try is counted in the ledger (committed)
before it is classified, so a message that hangs or crashes even the scanning process uses up
its tries and is quarantined instead of being read again after every restart. Messages with a
failed or interrupted try behind them are read one at a time, so that only the culprit pays.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from stmails.core import BounceRecord, classify
from stmails.core.event import Event, Evidence
from stmails.core.verp import DEFAULT_PREFIX, VerpResolver, VerpToken, find_token
from stmails.ingest import message_ids
from stmails.ingest.isolated import ClassifierClosed, IsolatedClassifier, Outcome
from stmails.ingest.mailbox.client import MailboxClient, MessageRef
from stmails.ingest.mailbox.config import MailboxConfig
from stmails.ingest.mailbox.dmarc import report_attachments
from stmails.ingest.webhooks.base import uuid_or_empty

log = logging.getLogger(__name__)

SOURCE = "mailbox"
# Messages are fetched and recorded in batches of at most this many messages and bytes.
BATCH_MESSAGES = 100
BATCH_BYTES = 8 * 1024 * 1024

RecordEvents = Callable[[list[Event]], None]
# Reads and keeps the DMARC aggregate reports among a message's attachments (the mailbox's name
# for the log): True when one was a report (new or kept before), False when none was; raises
# RecordUnavailable when the store is down.
ReportSink = Callable[[list[bytes], str], bool]
Classifier = Callable[[bytes], list[BounceRecord]]
Status = Literal["processed", "ignored", "failed"]
# What a message's try reads as in the ledger until it is finished: a scan that stops (the
# process died) leaves it so, and the next scan counts that try as failed.
INTERRUPTED = "interrupted: the scan stopped while this message was being read"


@runtime_checkable
class BatchClassifier(Protocol):
    """Classifies several messages, each within `budget` seconds (`IsolatedClassifier`)."""

    def classify_many(self, raws: Sequence[bytes], budget: float) -> list[Outcome]:
        """One outcome per message, in order: its records or the exception that stopped it."""
        ...


class RecordUnavailable(Exception):
    """Raised by a `record` callable when our own store is down: the scan stops and no message
    is blamed (nothing counts as a failed try)."""


@dataclass(frozen=True, slots=True)
class MessageState:
    """What the ledger knows of one message."""

    status: Status
    attempts: int = 0


class Ledger(Protocol):
    """Per-mailbox bookkeeping of message keys (the `mailbox_state` table in the server)."""

    def states(self, mailbox: str, uidvalidity: str) -> dict[str, MessageState]:
        """Every known message of this mailbox and UIDVALIDITY, by key."""
        ...

    def attempt(self, mailbox: str, uidvalidity: str, keys: Sequence[str]) -> None:
        """Count one try of each of these messages, committed before they are read: until it is
        marked or failed, a try reads as failed (`INTERRUPTED`)."""
        ...

    def mark(self, mailbox: str, uidvalidity: str, keys: Sequence[str], status: Status) -> None:
        """Remember that these messages were recorded ("processed") or are not bounces."""
        ...

    def fail(self, mailbox: str, uidvalidity: str, key: str, error: str, *, tries: int = 0) -> int:
        """Remember why a message's try (counted by `attempt`) failed; `tries` raises its count
        of tries to at least that many (to give up on it at once). Returns its tries so far."""
        ...

    def forgive(self, mailbox: str, uidvalidity: str, keys: Sequence[str]) -> None:
        """Take back the tries `attempt` counted for these messages: our own store failed."""
        ...

    def prune(self, mailbox: str, uidvalidity: str, present: set[str]) -> None:
        """Forget messages no longer on the server and other UIDVALIDITYs of this mailbox."""
        ...


class MemoryLedger:
    """A `Ledger` in a dict: for `--dry-run`, tests and single-shot use."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], MessageState] = {}

    def states(self, mailbox: str, uidvalidity: str) -> dict[str, MessageState]:
        return {k: s for (m, v, k), s in self.rows.items() if (m, v) == (mailbox, uidvalidity)}

    def attempt(self, mailbox: str, uidvalidity: str, keys: Sequence[str]) -> None:
        for key in keys:
            previous = self.rows.get((mailbox, uidvalidity, key))
            tries = (previous.attempts if previous else 0) + 1
            self.rows[(mailbox, uidvalidity, key)] = MessageState("failed", tries)

    def mark(self, mailbox: str, uidvalidity: str, keys: Sequence[str], status: Status) -> None:
        for key in keys:
            previous = self.rows.get((mailbox, uidvalidity, key))
            self.rows[(mailbox, uidvalidity, key)] = MessageState(
                status, previous.attempts if previous else 0
            )

    def fail(self, mailbox: str, uidvalidity: str, key: str, error: str, *, tries: int = 0) -> int:
        previous = self.rows.get((mailbox, uidvalidity, key))
        attempts = max(previous.attempts if previous else 0, tries)
        self.rows[(mailbox, uidvalidity, key)] = MessageState("failed", attempts)
        return attempts

    def forgive(self, mailbox: str, uidvalidity: str, keys: Sequence[str]) -> None:
        for key in keys:
            previous = self.rows.get((mailbox, uidvalidity, key))
            if previous is None:
                continue
            if previous.attempts <= 1:
                del self.rows[(mailbox, uidvalidity, key)]
            else:
                self.rows[(mailbox, uidvalidity, key)] = MessageState(
                    "failed", previous.attempts - 1
                )

    def prune(self, mailbox: str, uidvalidity: str, present: set[str]) -> None:
        for row in list(self.rows):
            if row[0] == mailbox and (row[1] != uidvalidity or row[2] not in present):
                del self.rows[row]


@dataclass
class ScanSummary:
    """What one scan of one mailbox did. `skipped` lists POP3 keys given up on (reported)."""

    mailbox: str
    read: int = 0
    bounces: int = 0
    complaints: int = 0
    ignored: int = 0
    quarantined: int = 0
    failed: int = 0
    events: int = 0
    removed: int = 0
    # DMARC aggregate reports found and handed to the report sink.
    reports: int = 0
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "mailbox": self.mailbox,
            "read": self.read,
            "bounces": self.bounces,
            "complaints": self.complaints,
            "ignored": self.ignored,
            "quarantined": self.quarantined,
            "failed": self.failed,
            "events": self.events,
            "removed": self.removed,
            "reports": self.reports,
        }


def message_events(
    raw: bytes,
    mailbox: str = "",
    *,
    verp_secret: bytes = b"",
    verp_prefix: str = DEFAULT_PREFIX,
    verp_resolver: VerpResolver | None = None,
    classifier: Classifier = classify,
) -> list[Event]:
    """The bounce and complaint events one message reports; [] for anything else.

    Classifies `raw` in this process with `classifier`; `events_from` does the rest.
    """
    return events_from(
        raw,
        classifier(raw),
        mailbox,
        verp_secret=verp_secret,
        verp_prefix=verp_prefix,
        verp_resolver=verp_resolver,
    )


def events_from(
    raw: bytes,
    records: Sequence[BounceRecord],
    mailbox: str = "",
    *,
    verp_secret: bytes = b"",
    verp_prefix: str = DEFAULT_PREFIX,
    verp_resolver: VerpResolver | None = None,
) -> list[Event]:
    """The events of the bounce and complaint `records` classifying `raw` gave.

    Attribution, in order: a genuine VERP token (subscriber when the message reports one
    recipient, and campaign), the X-Stmails-* headers of the returned original, the address.
    A token that names its subscriber by id is attributed only through `verp_resolver`.
    Every event carries the `Evidence` that `services.bounces` weighs under the
    `bounce.mailbox_trust` setting: whether the subscriber came from a verified token, and
    the Message-IDs the message refers to (whether one is signed for the recipient is checked
    here, with `verp_secret`, the instance's secret key).
    """
    records = [r for r in records if r.type is not None]
    if not records:
        return []
    token = find_token(verp_secret, raw, verp_prefix) if verp_secret else None
    if token is not None and not token.subscriber_uuid:
        token = _resolved(token, verp_resolver)
    digest = hashlib.sha256(raw).hexdigest()[:40]
    referenced = message_ids.referenced_ids(raw)
    sole = len(records) == 1
    events = []
    for index, record in enumerate(records):
        assert record.type is not None
        subscriber = uuid_or_empty(record.subscriber)
        campaign = uuid_or_empty(record.campaign)
        attributed = "header" if subscriber else "address"
        if token is not None:
            campaign = token.campaign_uuid or campaign
            if sole:
                subscriber, attributed = token.subscriber_uuid, "verp"
        if not record.recipient and not subscriber:
            continue
        recipient = record.recipient.lower()
        ids = message_ids.unique([message_ids.normalized(record.message_id), *referenced])
        signed = any(message_ids.sent_to(verp_secret, found, recipient) for found in ids)
        events.append(
            Event(
                source=SOURCE,
                type=record.type,
                email=recipient,
                subscriber_uuid=subscriber,
                campaign_uuid=campaign,
                reason=record.reason,
                status=record.status,
                replycode=record.replycode,
                diagnostic=record.diagnostic,
                feedback_type=record.feedback_type,
                # Content-derived, so that a message recorded twice is stored once.
                event_id=f"{digest}:{recipient or index}",
                meta={
                    "mailbox": mailbox,
                    "detector": record.detector,
                    "attribution": attributed,
                    "message_id": record.message_id,
                },
                evidence=Evidence(
                    message=digest,
                    verp=attributed == "verp",
                    signed=signed,
                    message_ids=tuple(ids),
                    sole=sole,
                ),
            )
        )
    return events


def _resolved(token: VerpToken, resolver: VerpResolver | None) -> VerpToken | None:
    # A token of ids says nothing usable without the database; its subscriber may be gone.
    found = resolver(token) if resolver is not None else None
    return found if found is not None and found.subscriber_uuid else None


class Scanner:
    """Scans one mailbox through an open client; see the module docstring for the guarantees.

    `classifier` is where messages are classified: None (production) for worker processes of
    an `IsolatedClassifier` started for each scan, an `IsolatedClassifier` (or other
    `BatchClassifier`) to share one, or a plain function, called in this process (tests).
    """

    def __init__(
        self,
        config: MailboxConfig,
        record: RecordEvents,
        ledger: Ledger,
        *,
        verp_secret: bytes = b"",
        verp_prefix: str = DEFAULT_PREFIX,
        verp_resolver: VerpResolver | None = None,
        classifier: Classifier | BatchClassifier | None = None,
        dry_run: bool = False,
        progress: Callable[[int, int], None] | None = None,
        reports: ReportSink | None = None,
    ) -> None:
        self.config = config
        self._reports = reports
        self._record = record
        self._ledger = ledger
        self._verp_secret = verp_secret
        self._verp_prefix = verp_prefix
        self._verp_resolver = verp_resolver
        self._classifier = classifier
        self._dry_run = dry_run
        self._progress = progress

    def scan(self, client: MailboxClient) -> ScanSummary:
        """One pass over the mailbox; commits the client's deletions at the end.

        Any exception (including a crash injected by a test) abandons the session, so that
        nothing staged takes effect; events already recorded stay recorded.
        """
        try:
            if self._classifier is None:
                with IsolatedClassifier() as isolated:
                    summary = self._scan(client, isolated)
            else:
                summary = self._scan(client, self._classifier)
            if self._dry_run:
                client.abandon()
            else:
                client.commit()
        except BaseException:
            client.abandon()
            raise
        return summary

    def _scan(self, client: MailboxClient, classifier: Classifier | BatchClassifier) -> ScanSummary:
        name, validity = self.config.name, client.uidvalidity
        summary = ScanSummary(name)
        refs = client.list_messages()
        if not self._dry_run:
            self._ledger.prune(name, validity, {ref.key for ref in refs})
        states = self._ledger.states(name, validity)
        # New messages, and failed ones that still have tries left.
        fresh = [
            ref
            for ref in refs
            if ref.key not in states
            or (
                states[ref.key].status == "failed"
                and states[ref.key].attempts < self.config.max_tries
            )
        ][: self.config.max_messages]
        self._finish_known(client, states, summary)
        # A message with a failed or interrupted try behind it is read alone: its try is then
        # counted for it only, and a message that kills the scan again costs no other a try.
        alone = (
            {ref.key for ref in fresh if ref.key in states} if self.config.max_tries > 1 else None
        )
        done = 0
        for batch in self._batches(fresh, summary, client, alone):
            self._process(client, batch, summary, classifier)
            done += len(batch)
            if self._progress:
                self._progress(done, len(fresh))
        return summary

    def _finish_known(
        self, client: MailboxClient, states: dict[str, MessageState], summary: ScanSummary
    ) -> None:
        """Redo the actions of messages handled before but still here (the process died)."""
        if self._dry_run:
            return
        processed = [k for k, s in states.items() if s.status == "processed"]
        ignored = [k for k, s in states.items() if s.status == "ignored"]
        given_up = [
            k
            for k, s in states.items()
            if s.status == "failed" and s.attempts >= self.config.max_tries
        ]
        self._remove(client, processed, summary)
        if self.config.non_bounce_action == "move" and ignored:
            client.move(ignored, self.config.non_bounce_folder)
        self._quarantine(client, given_up, summary)

    def _batches(
        self,
        refs: list[MessageRef],
        summary: ScanSummary,
        client: MailboxClient,
        alone: set[str] | None,
    ) -> list[list[MessageRef]]:
        """Batches of messages to read together; keys in `alone` (every key when None) get a
        batch of their own."""
        batches: list[list[MessageRef]] = []
        current: list[MessageRef] = []
        size = 0
        oversized = []
        for ref in refs:
            if ref.size > self.config.max_message_bytes:
                oversized.append(ref.key)
                continue
            if alone is None or ref.key in alone:
                batches.append([ref])
                continue
            if current and (len(current) >= BATCH_MESSAGES or size + ref.size > BATCH_BYTES):
                batches.append(current)
                current, size = [], 0
            current.append(ref)
            size += ref.size
        if current:
            batches.append(current)
        # Too big to read safely: no retry can help, so it is given up on at once.
        for key in oversized:
            summary.failed += 1
            if not self._dry_run:
                self._ledger.fail(
                    self.config.name,
                    client.uidvalidity,
                    key,
                    "message too big",
                    tries=self.config.max_tries,
                )
        self._quarantine(client, oversized, summary)
        return batches

    def _classify(
        self, raws: list[bytes], classifier: Classifier | BatchClassifier
    ) -> list[Outcome]:
        if isinstance(classifier, BatchClassifier):
            return classifier.classify_many(raws, self.config.classify_timeout)
        outcomes: list[Outcome] = []
        for raw in raws:
            try:
                outcomes.append(classifier(raw))
            except Exception as exc:  # a bad message must not stop the scan
                outcomes.append(exc)
        return outcomes

    def _process(
        self,
        client: MailboxClient,
        batch: list[MessageRef],
        summary: ScanSummary,
        classifier: Classifier | BatchClassifier,
    ) -> None:
        raws = client.fetch(batch)
        # A message gone since it was listed (another client) needs nothing.
        present = [ref.key for ref in batch if ref.key in raws]
        if not present:
            return
        name, validity = self.config.name, client.uidvalidity
        if not self._dry_run:
            # Committed before anything reads them: a message that hangs or crashes this
            # process still uses up a try.
            self._ledger.attempt(name, validity, present)
        reports = self._take_reports(client, present, raws, summary)
        present = [key for key in present if key not in reports]
        if not present:
            return
        try:
            outcomes = self._classify([raws[key] for key in present], classifier)
        except ClassifierClosed:
            # The process is stopping: these messages are not at fault.
            self._forgive(name, validity, present)
            raise
        per_message: dict[str, list[Event]] = {}
        ignored: list[str] = []
        for key, outcome in zip(present, outcomes, strict=True):
            try:
                if isinstance(outcome, Exception):
                    raise outcome
                events = events_from(
                    raws[key],
                    outcome,
                    name,
                    verp_secret=self._verp_secret,
                    verp_prefix=self._verp_prefix,
                    verp_resolver=self._verp_resolver,
                )
            except Exception as exc:  # a bad message must not stop the scan
                self._failed(client, key, exc, summary)
                continue
            summary.read += 1
            if events:
                per_message[key] = events
            else:
                ignored.append(key)
        summary.ignored += len(ignored)
        try:
            recorded = self._record_all(client, per_message, summary)
        except RecordUnavailable:
            # Our store failed, not these messages (a failed classification stays counted).
            self._forgive(name, validity, [*per_message, *ignored])
            raise
        for key in recorded:
            if any(e.type == "complaint" for e in per_message[key]):
                summary.complaints += 1
            else:
                summary.bounces += 1
            summary.events += len(per_message[key])
        if self._dry_run:
            return
        self._ledger.mark(name, validity, recorded, "processed")
        self._ledger.mark(name, validity, ignored, "ignored")
        self._remove(client, recorded, summary)
        if self.config.non_bounce_action == "move" and ignored:
            client.move(ignored, self.config.non_bounce_folder)

    def _take_reports(
        self,
        client: MailboxClient,
        keys: list[str],
        raws: dict[str, bytes],
        summary: ScanSummary,
    ) -> set[str]:
        """The messages of `keys` that are DMARC aggregate reports, handed to the report sink
        (stored there) and done with like recorded bounces; a dry run only counts them."""
        if self._reports is None:
            return set()
        taken: set[str] = set()
        for key in keys:
            attachments = report_attachments(raws[key])
            if not attachments:
                continue
            if self._dry_run:
                summary.reports += 1
                taken.add(key)
                continue
            try:
                kept = self._reports(attachments, self.config.name)
            except RecordUnavailable:
                self._forgive(self.config.name, client.uidvalidity, keys)
                raise
            if kept:
                summary.reports += 1
                taken.add(key)
        if taken and not self._dry_run:
            done = sorted(taken)
            self._ledger.mark(self.config.name, client.uidvalidity, done, "processed")
            self._remove(client, done, summary)
        return taken

    def _forgive(self, name: str, validity: str, keys: list[str]) -> None:
        """Take back the tries of `keys`, where the ledger's store lets us (it may be the very
        thing that failed)."""
        if self._dry_run or not keys:
            return
        with contextlib.suppress(Exception):
            self._ledger.forgive(name, validity, keys)

    def _record_all(
        self, client: MailboxClient, per_message: dict[str, list[Event]], summary: ScanSummary
    ) -> list[str]:
        """Record the batch in one call; on a data error, message by message to find the culprit."""
        if not per_message or self._dry_run:
            return list(per_message)
        try:
            self._record([event for events in per_message.values() for event in events])
            return list(per_message)
        except RecordUnavailable:
            raise
        except Exception:
            log.warning(
                "mailbox %s: batch not recorded; retrying message by message", self.config.name
            )
        recorded = []
        for key, events in per_message.items():
            try:
                self._record(events)
            except RecordUnavailable:
                raise
            except Exception as exc:
                self._failed(client, key, exc, summary)
                continue
            recorded.append(key)
        return recorded

    def _failed(
        self, client: MailboxClient, key: str, exc: Exception, summary: ScanSummary
    ) -> None:
        summary.failed += 1
        error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("mailbox %s: message %s failed: %s", self.config.name, key, error)
        if self._dry_run:
            return
        attempts = self._ledger.fail(self.config.name, client.uidvalidity, key, error)
        if attempts >= self.config.max_tries:
            self._quarantine(client, [key], summary)

    def _remove(self, client: MailboxClient, keys: list[str], summary: ScanSummary) -> None:
        if not keys or self._dry_run:
            return
        if self.config.processed_action == "move" and client.can_move:
            client.move(keys, self.config.processed_folder)
        else:
            client.delete(keys)
        summary.removed += len(keys)

    def _quarantine(self, client: MailboxClient, keys: list[str], summary: ScanSummary) -> None:
        if not keys:
            return
        summary.quarantined += len(keys)
        if self._dry_run:
            return
        if client.can_move:
            client.move(keys, self.config.quarantine_folder)
            log.error(
                "mailbox %s: %d message(s) moved to %s after %d failed tries: %s",
                self.config.name,
                len(keys),
                self.config.quarantine_folder,
                self.config.max_tries,
                ", ".join(keys[:20]),
            )
        else:
            summary.skipped.extend(keys)
            log.error(
                "mailbox %s: %d message(s) skipped after %d failed tries: %s",
                self.config.name,
                len(keys),
                self.config.max_tries,
                ", ".join(keys[:20]),
            )
