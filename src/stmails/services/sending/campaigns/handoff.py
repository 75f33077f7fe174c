"""Step 3 of a run (see `runner`): the claimed recipients handed to the SMTP engine in chunks,
at most two chunks ahead of the connections, each checked once more just before it goes; one
thread drives every connection of the pool and renders (and DKIM-signs) each message just
before it is sent (`multiplex.send_all`); the answers gathered for the ledger."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Campaign
from stmails.services.dkim_keys import Signer
from stmails.services.sending.campaigns import recipients
from stmails.services.sending.campaigns.recipients import Candidate
from stmails.services.sending.campaigns.rendering import render_for
from stmails.services.sending.compose import Content
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.envelope import ReturnPaths
from stmails.services.sending.messages import Message, MessageError
from stmails.services.sending.multiplex import send_all
from stmails.services.sending.signing import sign_message
from stmails.services.sending.smtp import NOT_ATTEMPTED, RateLimiter, SendResult, SmtpPool
from stmails.services.sending.templates import TemplateRenderError

# One logger for the package, named as before the split.
log = logging.getLogger("stmails.services.sending.campaigns")

# Messages per connection in one chunk handed to the SMTP engine.
SHARE_SIZE = 64
# How often the SMTP engine re-reads the campaign's status while it sends a chunk: every
# `HALT_EVERY` messages or `HALT_SECONDS`, whichever comes first (a read costs about as much
# CPU as rendering two messages; at 2,500 messages/s this is 25 reads a second).
HALT_EVERY = 100
HALT_SECONDS = 0.25

# One recipient's outcome in a chunk: its message (None when it was not rendered) and SMTP
# answer (None when its message could not be rendered: the candidate's `skip` then says why).
_Sent = tuple[Message | None, SendResult | None]
# A recipient, its message (None when it was not rendered) and the SMTP answer, for the ledger.
Outcome = tuple[Candidate, Message | None, SendResult]


@dataclass
class _Share:
    """Recipients handed to the SMTP engine together, and the future of their outcomes."""

    candidates: list[Candidate]
    outcomes: Future[list[_Sent]]


@dataclass
class Dispatched:
    """A batch handed to the SMTP engine and not yet recorded."""

    attempt: int
    shares: list[_Share] = field(default_factory=list)
    late_skips: list[Candidate] = field(default_factory=list)
    released: list[Candidate] = field(default_factory=list)
    # The database went away before every chunk was handed over (the rest are `released`):
    # the run stops with this error once the batch is recorded.
    database_error: DBAPIError | None = None


class Handoff:
    """Hands a runner's claims to the SMTP engine and gathers the answers; one per runner."""

    def __init__(
        self,
        smtp: SmtpPool,
        config: SendingConfig,
        return_paths: ReturnPaths,
        signer: Signer | None,
        reader: sessionmaker[Session],
        status: Callable[[int], str],
        now: Callable[[], datetime],
    ) -> None:
        """`status(campaign_id)` reads the campaign's stored status; `reader` makes the
        read-only sessions of the last suppression check."""
        self.smtp = smtp
        self.config = config
        self.return_paths = return_paths
        self.signer = signer
        self.reader = reader
        self.status = status
        self.now = now
        self.limiter = RateLimiter(config.message_rate)
        # The chunks handed to the SMTP engine, oldest first (see `dispatch`).
        self.chunks: deque[list[Future[list[_Sent]]]] = deque()

    def dispatch(
        self,
        campaign: Campaign,
        content: Content,
        claims: list[Candidate],
        pool: ThreadPoolExecutor,
        should_stop: Callable[[], bool],
        attempt: int,
        held_for: int,
    ) -> Dispatched:
        """Hands claimed recipients to the SMTP engine, in chunks of `SHARE_SIZE` per connection.

        Before each chunk it waits until at most one earlier chunk is still being sent, then
        checks the campaign's status and the chunk's addresses once more (with the domains the
        watcher held for campaign `held_for`); claims not handed over (stop, pause) are to be
        released. Messages are rendered by the engine's thread while the servers answer
        (`multiplex.send_all`), never in a long run in this thread that the engine would wait
        behind for the interpreter lock.
        """
        chunk_size = self.config.concurrency * SHARE_SIZE
        dispatched = Dispatched(attempt=attempt)
        for start in range(0, len(claims), chunk_size):
            chunk = claims[start : start + chunk_size]
            # The checks below are only worth their cost if the chunk goes out soon after them.
            while len(self.chunks) > 1:
                wait(self.chunks.popleft())
            try:
                stopped = should_stop() or self.status(campaign.id) != "running"
                if not stopped:
                    with self.reader() as session:
                        recipients.apply_suppressions(session, chunk, held_for, self.now)
            except DBAPIError as exc:
                # The database went away (a failover, a restart): nothing more goes out
                # unchecked; the chunks already handed over are answered and recorded.
                log.warning(
                    "campaign %s: the database is unreachable, %d claims not sent: %s",
                    campaign.id,
                    len(claims) - start,
                    exc.orig if exc.orig is not None else exc,
                )
                dispatched.database_error = exc
                stopped = True
            if stopped:
                dispatched.released.extend(claims[start:])
                break
            ready = []
            for candidate in chunk:
                if candidate.skip:
                    dispatched.late_skips.append(candidate)
                else:
                    ready.append(candidate)
            if not ready:
                continue
            outcomes = pool.submit(self._send_chunk, campaign, content, ready)
            dispatched.shares.append(_Share(ready, outcomes))
            self.chunks.append([outcomes])
        return dispatched

    def answers(self, dispatched: Dispatched) -> tuple[list[Outcome], list[Candidate]]:
        """Waits for a dispatched batch's answers: the outcomes, and the candidates skipped
        after their claim (by the last check, or because their message could not be rendered)."""
        outcomes: list[Outcome] = []
        late_skips = list(dispatched.late_skips)
        for share in dispatched.shares:
            for candidate, (message, result) in zip(
                share.candidates, share.outcomes.result(), strict=True
            ):
                if result is None and candidate.skip:
                    late_skips.append(candidate)
                else:
                    # A message without an answer or a reason to skip it was never sent: its
                    # claim is released like the untried ones.
                    outcomes.append((candidate, message, result or NOT_ATTEMPTED))
        return outcomes, late_skips

    def _render(self, campaign: Campaign, content: Content, candidate: Candidate) -> Message | None:
        """The candidate's message (DKIM-signed when a signer is set), or None (and `skip`
        says why) when the recipient's data cannot be rendered. Anything else raised is a bug
        and stops the campaign."""
        try:
            message = render_for(
                content,
                campaign,
                candidate.recipient,
                self.config,
                self.return_paths,
                candidate.message_id,
            )
            if self.signer is not None:
                message = sign_message(self.signer, message)
            return message
        except (TemplateRenderError, MessageError) as exc:
            candidate.skip = f"render_error: {exc}"[:200]
            log.warning(
                "campaign %s: subscriber %s skipped: %s",
                campaign.id,
                candidate.recipient.id,
                candidate.skip,
            )
            return None

    def _send_chunk(
        self, campaign: Campaign, content: Content, candidates: Sequence[Candidate]
    ) -> list[_Sent]:
        """Renders and sends the messages to `candidates` over the pool's connections from
        this one thread (`multiplex.send_all`): each next message is rendered while the servers
        answer. A message that cannot be rendered is skipped (the candidate's `skip` says why);
        one never rendered (sending stopped first) has a result but no message."""
        messages: list[Message | None] = [None] * len(candidates)

        def produce(index: int) -> Message | None:
            messages[index] = self._render(campaign, content, candidates[index])
            return messages[index]

        results = send_all(
            self.smtp,
            len(candidates),
            produce,
            self.config.concurrency,
            self.limiter,
            halt=self._halt_check(campaign.id),
        )
        return list(zip(messages, results, strict=True))

    def _halt_check(self, campaign_id: int) -> Callable[[], bool]:
        """A check the SMTP engine makes before each message it renders: True once the
        campaign stopped running (a pause by the deliverability watcher, by an admin, in
        another process). It reads the stored status every `HALT_EVERY` messages or
        `HALT_SECONDS`, whichever comes first, so that a pause takes effect mid-chunk."""
        state = {"count": 0, "at": time.monotonic(), "halted": False}

        def halted() -> bool:
            if state["halted"]:
                return True
            state["count"] += 1
            now = time.monotonic()
            if state["count"] < HALT_EVERY and now - state["at"] < HALT_SECONDS:
                return False
            state["count"], state["at"] = 0, now
            try:
                state["halted"] = self.status(campaign_id) != "running"
            except DBAPIError:
                # The database is unreachable: the chunk goes on (it was checked before it was
                # handed over); the run's own next read of the status stops the run.
                return False
            return bool(state["halted"])

        return halted
