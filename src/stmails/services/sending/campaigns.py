"""Campaign life cycle (listmonk's status rules), preview, and the exactly-once campaign sender.

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
unsent claims are released, answered ones recorded, before the run returns.

Several senders (processes on any hosts sharing one PostgreSQL) may run one campaign: they take
turns at picking and claiming a batch (`db.locks.turn`), retries are re-claimed with UPDATE ...
RETURNING (only the rows a sender's own update changed are its to send), and before finishing,
a sender waits for the others' claims in flight, marking those older than `claim_timeout` in
doubt (their sender died). A change of the settings ends a run between batches
(`settings_changed`) so that the caller starts again with the new ones.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, and_, bindparam, case, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from stmails import metrics
from stmails.core import match_reason
from stmails.core.event import Event
from stmails.db.engine import session_factory
from stmails.db.in_list import in_list
from stmails.db.locks import CAMPAIGN_BATCH_LOCK, turn
from stmails.db.models import (
    Bounce,
    Campaign,
    CampaignHold,
    CampaignList,
    CampaignMedia,
    CampaignSend,
    MailingList,
    Subscriber,
    SubscriberList,
    Template,
)
from stmails.db.prepared import Prepared
from stmails.db.types import normalize_email, utcnow
from stmails.db.upsert import dialect_insert
from stmails.services import campaigns as campaign_service
from stmails.services import subscribers
from stmails.services.alerts import watch
from stmails.services.dkim_keys import DkimError, Signer
from stmails.services.errors import InputError, InvalidInput, NotFound
from stmails.services.hygiene import segments
from stmails.services.media import library as media_library
from stmails.services.media.storage import StorageError
from stmails.services.sending.compose import (
    Content,
    Envelope,
    Recipient,
    Rendered,
    campaign_links,
    compile_content,
    senders_for,
    template_context,
    to_spec,
)
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.envelope import ReturnPaths
from stmails.services.sending.messages import (
    Attachment,
    Message,
    MessageError,
    attachment_filename,
    attachment_type,
    custom_headers,
    domain_of,
)
from stmails.services.sending.multiplex import send_all
from stmails.services.sending.routing import servers_for
from stmails.services.sending.signing import sign_message
from stmails.services.sending.smtp import NOT_ATTEMPTED, RateLimiter, SendResult, SmtpPool
from stmails.services.sending.templates import TemplateRenderError
from stmails.services.sending.window import SlidingWindow
from stmails.services.suppression import check_batch_detail
from stmails.services.tracking.links import tracked

log = logging.getLogger(__name__)


# A per-message transport (`SmtpPool.send`): transactional mail and the relay send through it.
Transport = Callable[[Message], SendResult]
BounceRecorder = Callable[[Session, Event], object]

# Messages per connection in one chunk handed to the SMTP engine.
SHARE_SIZE = 64
# How often the SMTP engine re-reads the campaign's status while it sends a chunk.
HALT_EVERY = 25
HALT_SECONDS = 0.25
# How many of the latest send errors a campaign keeps (`campaigns.last_errors`).
LAST_ERRORS = 10
IN_FLIGHT = "in_flight"
# The pause reason of a campaign done but for the messages of domains the watcher held.
WAITING_FOR_HELD = "waiting for held domains: "
IN_DOUBT = "in_doubt"
UNSUBSCRIBED = "unsubscribed"
DEFERRED = "deferred:"
SETTINGS_CHANGED = "settings changed"
# Seconds after which a claim still in flight is taken for that of a sender that died.
CLAIM_TIMEOUT = 120.0
# How long a campaign waiting for room in the sliding window sleeps before it looks again.
WINDOW_POLL_SECONDS = 5.0


class CampaignError(InputError):
    """A campaign operation the caller asked for that cannot be done; the text says why."""


def campaign_list_ids(session: Session, campaign_id: int) -> list[int]:
    """The ids of the lists a campaign goes to (deleted lists left out)."""
    rows = session.scalars(
        select(CampaignList.list_id).where(
            CampaignList.campaign_id == campaign_id, CampaignList.list_id.is_not(None)
        )
    )
    return sorted(int(r) for r in rows if r is not None)


def optin_list_ids(session: Session, list_ids: Sequence[int]) -> list[int]:
    """The double opt-in lists among `list_ids`."""
    if not list_ids:
        return []
    rows = session.scalars(
        select(MailingList.id).where(
            MailingList.id.in_(list(list_ids)), MailingList.optin == "double"
        )
    )
    return sorted(int(r) for r in rows)


def layout_for(session: Session, campaign: Campaign) -> str | None:
    """The body of the campaign's template (the default campaign template when none is set)."""
    if campaign.template_id is not None:
        template = session.get(Template, campaign.template_id)
        return template.body if template is not None else None
    default = session.scalar(
        select(Template).where(Template.type == "campaign", Template.is_default.is_(True))
    )
    return default.body if default is not None else None


def compile_campaign(session: Session, campaign: Campaign, config: SendingConfig) -> Content:
    """The campaign's content compiled; CampaignError when a template is broken."""
    try:
        content = compile_content(
            subject=campaign.subject,
            body=campaign.body,
            content_type=campaign.content_type,
            from_email=campaign.from_email or config.from_email,
            layout=None if campaign.content_type == "plain" else layout_for(session, campaign),
            altbody=campaign.altbody,
            headers=custom_headers(campaign.headers or []),
        )
    except (TemplateRenderError, MessageError) as exc:
        raise CampaignError(str(exc)) from exc
    attachments = campaign_attachments(session, campaign.id)
    return replace(content, attachments=attachments) if attachments else content


# A campaign's attachments go into every message: their bytes in all, at most.
MAX_CAMPAIGN_ATTACHMENT_BYTES = 10 * 1024 * 1024


def campaign_attachments(session: Session, campaign_id: int) -> tuple[Attachment, ...]:
    """The campaign's media (`campaign_media`, listmonk's `media` field) as attachments of
    each message; CampaignError when one is gone or unreadable, or they are too big together,
    so that a campaign never goes out without the files it promises."""
    rows = session.execute(
        select(CampaignMedia.media_id, CampaignMedia.filename)
        .where(CampaignMedia.campaign_id == campaign_id)
        .order_by(CampaignMedia.id)
    ).all()
    attachments: list[Attachment] = []
    total = 0
    for media_id, filename in rows:
        if media_id is None:
            raise CampaignError(f"attachment {filename!r} was deleted from the media library")
        try:
            name, content_type, data = media_library.get_media_content(session, media_id)
        except (NotFound, StorageError) as exc:
            raise CampaignError(f"attachment {filename!r} cannot be read: {exc}") from None
        total += len(data)
        if total > MAX_CAMPAIGN_ATTACHMENT_BYTES:
            raise CampaignError(
                f"the campaign's attachments are over {MAX_CAMPAIGN_ATTACHMENT_BYTES} bytes in all"
            )
        attachments.append(
            Attachment(attachment_filename(name), attachment_type(name, content_type), data)
        )
    return tuple(attachments)


def change_status(
    session: Session, campaign: Campaign, status: str, config: SendingConfig
) -> Campaign:
    """Moves a campaign to `status` under listmonk's rules (services.campaigns.set_status);
    CampaignError when not allowed.

    Starting or scheduling compiles the content first, so a broken template is refused here
    rather than failing in the sender; starting needs an enabled SMTP server and counts the
    recipients (`to_send`). A change of status clears the reason of an automatic pause.
    The caller commits.
    """
    if status == campaign.status:
        return campaign
    if status in {"running", "scheduled"}:
        compile_campaign(session, campaign, config)
        if not campaign_list_ids(session, campaign.id):
            raise CampaignError("the campaign has no lists")
    if status == "running" and not config.smtp:
        raise CampaignError("no SMTP server is enabled (settings: smtp)")
    if status == "running":
        # Its messenger must be an enabled server, and some server must take its From.
        try:
            servers_for(config.smtp, campaign.messenger, campaign.from_email or config.from_email)
        except InvalidInput as exc:
            raise CampaignError(str(exc)) from None
    if status == "finished":
        raise CampaignError("only the sender finishes a campaign")
    first_start = status == "running" and campaign.started_at is None
    figures = dict(campaign.alert_figures or {})
    if status == "scheduled" and campaign.status == "paused" and figures.get("held_scheduled"):
        # A scheduled campaign the deliverability watcher held goes back to its schedule.
        if campaign.send_at is None:
            raise CampaignError("send_at is required to schedule a campaign")
        campaign.status = "scheduled"
        campaign.updated_at = utcnow()
    else:
        try:
            campaign_service.set_status(session, campaign, status)
        except InvalidInput as exc:
            raise CampaignError(str(exc)) from None
    if status == "running" and campaign.pause_reason.startswith(WAITING_FOR_HELD):
        # Resumed without releasing the held domains: their messages are dropped (they stay
        # skipped, `held:<domain>`) and the campaign can finish.
        session.execute(delete(CampaignHold).where(CampaignHold.campaign_id == campaign.id))
        log.warning("campaign %s: held messages dropped on resume", campaign.id)
    if figures and status in {"running", "scheduled"}:
        # The watcher's window restarts: sends before now no longer count (services.alerts).
        campaign.alert_figures = {**figures, "resumed_at": utcnow().isoformat()}
    campaign.pause_reason = ""
    campaign.wait_reason = ""
    if first_start:
        campaign.to_send = count_recipients(session, campaign.id)
    return campaign


def count_recipients(session: Session, campaign_id: int) -> int:
    """How many distinct subscribers the campaign's lists hold."""
    lists = campaign_list_ids(session, campaign_id)
    if not lists:
        return 0
    count = session.scalar(
        select(func.count(func.distinct(SubscriberList.subscriber_id))).where(
            SubscriberList.list_id.in_(lists)
        )
    )
    return int(count or 0)


def start_due_campaigns(session: Session, now: datetime | None = None) -> list[int]:
    """Scheduled campaigns whose send_at has come are set running; returns their ids.

    Every sender runs this on each pass: on PostgreSQL a campaign another sender is starting
    right now is skipped (its row is locked), so each campaign is started by one of them."""
    now = now or utcnow()
    due = list(
        session.scalars(
            select(Campaign)
            .where(Campaign.status == "scheduled", Campaign.send_at <= now)
            .with_for_update(skip_locked=True)
        )
    )
    for campaign in due:
        campaign.status = "running"
        campaign.started_at = campaign.started_at or now
        campaign.to_send = count_recipients(session, campaign.id)
    return [c.id for c in due]


def recipient_of(subscriber: Subscriber) -> Recipient:
    """The template view of a subscriber."""
    return Recipient(
        id=subscriber.id,
        uuid=subscriber.uuid,
        email=subscriber.email,
        name=subscriber.name,
        status=subscriber.status,
        attribs=subscriber.attribs or {},
        created_at=subscriber.created_at,
        updated_at=subscriber.updated_at,
    )


def campaign_view(campaign: Campaign) -> dict[str, Any]:
    """The campaign fields templates may use."""
    return {
        "id": campaign.id,
        "uuid": campaign.uuid,
        "name": campaign.name,
        "subject": campaign.subject,
        "from_email": campaign.from_email,
        "attribs": dict(campaign.attribs or {}),
        "tags": list(campaign.tags or []),
    }


def _campaign_context(
    campaign: Campaign, recipient: Recipient, config: SendingConfig, tracking: Any = None
) -> tuple[str, dict[str, Any]]:
    """The recipient's unsubscribe URL, and the template context of the campaign for them."""
    links = campaign_links(config.root_url, campaign.uuid, recipient.uuid)
    context = template_context(
        recipient, campaign=campaign_view(campaign), links=links, tracking=tracking
    )
    return links.unsubscribe_url, context


def render_for(
    content: Content,
    campaign: Campaign,
    recipient: Recipient,
    config: SendingConfig,
    return_paths: ReturnPaths,
    message_id: str = "",
) -> Message:
    """The campaign's message to one recipient, serialized (the SMTP server it goes through
    adds its own custom headers and Return-Path: `smtp.outgoing`)."""
    url, context = _campaign_context(campaign, recipient, config, content.tracking)
    rendered = content.render(context)
    envelope = Envelope(
        senders=senders_for(return_paths, campaign.id, recipient.id, rendered),
        message_id=message_id or f"<{campaign.uuid}.{recipient.uuid}@{config.id_domain}>",
        campaign_uuid=campaign.uuid,
        unsubscribe_url=url,
        unsubscribe_mailto=config.unsubscribe_mailto,
        feedback_id=f"{campaign.id}:{campaign.uuid[:8]}:campaign:{config.feedback_id_sender}",
        header_names=content.header_names,
    )
    spec = to_spec(rendered, recipient, envelope)
    spec.attachments = content.attachments
    return spec.build()


def render_preview(
    session: Session,
    campaign: Campaign,
    subscriber: Subscriber | None,
    config: SendingConfig,
    tracking: Any = None,
) -> tuple[Rendered, str]:
    """The campaign rendered for `subscriber` (a sample one when None), and that recipient's
    unsubscribe URL; CampaignError when a template fails. Untracked unless `tracking`
    (services.tracking.links.CampaignTracking) is given."""
    content = compile_campaign(session, campaign, config)
    recipient = (
        recipient_of(subscriber)
        if subscriber is not None
        else Recipient(
            id=0,
            uuid="00000000-0000-0000-0000-000000000000",
            email="subscriber@example.com",
            name="Demo Subscriber",
            attribs={"city": "Bengaluru"},
        )
    )
    url, context = _campaign_context(campaign, recipient, config, tracking)
    try:
        return content.render(context), url
    except TemplateRenderError as exc:
        raise CampaignError(str(exc)) from exc


def preview(
    session: Session,
    campaign: Campaign,
    subscriber: Subscriber | None,
    config: SendingConfig,
    tracking: Any = None,
) -> tuple[str, str]:
    """The campaign rendered for `subscriber` (a sample one when None): (content type, body).
    Untracked unless `tracking` is given."""
    rendered, _ = render_preview(session, campaign, subscriber, config, tracking)
    if rendered.html is not None:
        return "text/html", rendered.html
    return "text/plain", rendered.text or ""


@dataclass
class _Candidate:
    recipient: Recipient
    lists: list[int]
    message_id: str = ""
    skip: str = ""


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


# One recipient's outcome in a chunk: its message (None when it was not rendered) and SMTP
# answer (None when its message could not be rendered: the candidate's `skip` then says why).
_Sent = tuple[Message | None, SendResult | None]


@dataclass
class _Share:
    """Recipients handed to the SMTP engine together, and the future of their outcomes."""

    candidates: list[_Candidate]
    outcomes: Future[list[_Sent]]


@dataclass
class _Dispatched:
    """A batch handed to the SMTP engine and not yet recorded."""

    attempt: int
    shares: list[_Share] = field(default_factory=list)
    late_skips: list[_Candidate] = field(default_factory=list)
    released: list[_Candidate] = field(default_factory=list)


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


def _insert_ignore(session: Session) -> Any:
    # The Core table, not the mapped class: a batch of claims then skips the ORM's per-row work.
    table = cast(Table, CampaignSend.__table__)
    return dialect_insert(session, table).on_conflict_do_nothing(
        index_elements=["campaign_id", "subscriber_id"]
    )


def smtp_event(
    result: SendResult, message: Message, campaign_uuid: str, subscriber_uuid: str, kind: str
) -> Event:
    """The bounce event for an SMTP-time rejection (classified by its text and codes)."""
    status = result.enhanced_status
    return Event(
        source="smtp",
        type="hard" if kind == "hard" else "soft",
        email=message.recipient,
        subscriber_uuid=subscriber_uuid,
        campaign_uuid=campaign_uuid,
        reason=match_reason(result.text, status, str(result.code or "")),
        status=status,
        replycode=str(result.code or ""),
        diagnostic=result.text,
        event_id=f"{message.message_id}:{kind}",
        occurred_at=datetime.now(UTC),
        meta={"stage": result.stage},
    )


def _batch_statement() -> Any:
    # A batch's subscribers, each with its subscriptions to the campaign's lists (one row per
    # subscription, or one row of NULLs): one statement compiled once, run on the driver.
    people = cast(Table, Subscriber.__table__)
    links = cast(Table, SubscriberList.__table__)
    optins = cast(Table, MailingList.__table__)
    p, k, o = people.c, links.c, optins.c
    return (
        select(
            p.id,
            p.uuid,
            p.email,
            p.name,
            p.status,
            p.attribs,
            p.created_at,
            p.updated_at,
            k.list_id,
            k.status,
            o.optin,
        )
        .select_from(people)
        .outerjoin(links, and_(k.subscriber_id == p.id, in_list(k.list_id, "lists")))
        .outerjoin(optins, o.id == k.list_id)
        .where(in_list(p.id, "ids"))
    )


_BATCH = Prepared(_batch_statement())
# The campaign's status, read before every batch and chunk.
_STATUS = Prepared(select(Campaign.status).where(Campaign.id == bindparam("campaign")))
# The next batch's subscriber ids: the lists' subscribers after the campaign's position.
_NEXT_IDS = Prepared(
    select(SubscriberList.subscriber_id)
    .where(
        in_list(SubscriberList.list_id, "lists"),
        SubscriberList.subscriber_id
        > func.coalesce(
            select(Campaign.last_subscriber_id)
            .where(Campaign.id == bindparam("campaign"))
            .scalar_subquery(),
            0,
        ),
    )
    .group_by(SubscriberList.subscriber_id)
    .order_by(SubscriberList.subscriber_id)
    .limit(bindparam("size"))
)


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
        self.limiter = RateLimiter(config.message_rate)
        # Reads take no write lock (SQLite): a separate read-only session maker.
        self.engine: Engine = factory.kw["bind"]
        self.reader = session_factory(self.engine, readonly=True)
        # Whether the campaign being run is an opt-in campaign (see `run`).
        self._optin = False
        # The campaign's segment (services.hygiene.segments; empty: the whole lists).
        self._segment = segments.Segment()
        # The chunks handed to the SMTP engine, oldest first (see `_dispatch`).
        self._chunks: deque[list[Future[list[_Sent]]]] = deque()
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
        # The campaign being run (for its held domains, see `_apply_suppressions`).
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
        self._chunks.clear()
        self._failures = _Failures(self.config.max_send_errors)
        # One thread for the SMTP engine, so that it sends while this one does the database.
        with ThreadPoolExecutor(max_workers=1) as pool:
            # One batch stays in flight while the next is prepared, so the SMTP connections
            # keep working during the database steps; it is always recorded before returning.
            pending: _Dispatched | None = None
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
                        errors = 0
                        if pending is not None:
                            errors = self._collect(campaign, pending, report)
                        pending = dispatched
                        if errors:
                            # The server may be down for a moment: do not spin through the list.
                            self.sleep(min(5.0, self.config.retry_delay))
                        continue
                    if pending is not None:
                        self._collect(campaign, pending, report)
                        pending = None
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
                if pending is not None:
                    self._collect(campaign, pending, report)

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
            session.execute(
                update(CampaignSend)
                .where(CampaignSend.campaign_id == campaign_id, CampaignSend.reason == IN_FLIGHT)
                .values(reason=IN_DOUBT)
            )

    def _settle_in_flight(self, campaign_id: int) -> int:
        """Marks in doubt the claims still in flight after `claim_timeout` (their sender died
        between SMTP and recording, or is far behind: its answer, if it comes, still wins);
        returns how many younger claims remain in flight (other senders' batches)."""
        cutoff = self.now() - timedelta(seconds=self.claim_timeout)
        with self.factory() as session, session.begin():
            result = session.execute(
                update(CampaignSend)
                .where(
                    CampaignSend.campaign_id == campaign_id,
                    CampaignSend.reason == IN_FLIGHT,
                    CampaignSend.sent_at <= cutoff,
                )
                .values(reason=IN_DOUBT)
            )
            stale = int(getattr(result, "rowcount", 0) or 0)
            left = session.scalar(
                select(func.count())
                .select_from(CampaignSend)
                .where(CampaignSend.campaign_id == campaign_id, CampaignSend.reason == IN_FLIGHT)
            )
        if stale:
            log.warning(
                "campaign %s: %s sends left in flight for over %.0f s are marked in doubt "
                "(their sender stopped before recording them)",
                campaign_id,
                stale,
                self.claim_timeout,
            )
        return int(left or 0)

    def _next_batch(self, campaign_id: int, lists: Sequence[int]) -> list[_Candidate]:
        if not lists:
            return []
        with self.reader() as session:
            parameters = {
                "campaign": campaign_id,
                "lists": list(lists),
                "size": self._batch_room,
            }
            ids = [row[0] for row in _NEXT_IDS.rows(session.connection(), parameters)]
            if not ids:
                return []
            return self._candidates(session, ids, lists)

    def _candidates(
        self, session: Session, ids: Sequence[int], lists: Sequence[int]
    ) -> list[_Candidate]:
        """Subscribers `ids` with the lists they may receive this campaign through, or why not."""
        subscribers: dict[int, tuple[Any, ...]] = {}
        subscriptions: dict[int, list[tuple[int, str, str]]] = {}
        for row in _BATCH.rows(session.connection(), {"ids": list(ids), "lists": list(lists)}):
            sub_id, list_id = row[0], row[8]
            if sub_id not in subscribers:
                subscribers[sub_id] = row
            if list_id is not None:
                subscriptions.setdefault(sub_id, []).append((list_id, row[9], row[10]))
        candidates: list[_Candidate] = []
        for sub_id in ids:
            subscriber = subscribers.get(sub_id)
            if subscriber is None:
                continue
            candidate = _Candidate(
                Recipient(
                    id=subscriber[0],
                    uuid=subscriber[1],
                    email=subscriber[2],
                    name=subscriber[3],
                    status=subscriber[4],
                    attribs=subscriber[5] or {},
                    created_at=subscriber[6],
                    updated_at=subscriber[7],
                ),
                [],
            )
            subs = subscriptions.get(sub_id, [])
            candidate.lists = [
                list_id
                for list_id, status, optin in subs
                if (
                    status == "unconfirmed" and optin == "double"
                    if self._optin
                    else status == "confirmed" or (status == "unconfirmed" and optin != "double")
                )
            ]
            if subscriber[4] != "enabled":
                candidate.skip = f"subscriber_{subscriber[4]}"
            elif not candidate.lists:
                statuses = {status for _, status, _ in subs}
                candidate.skip = "unsubscribed" if "unsubscribed" in statuses else "unconfirmed"
            candidates.append(candidate)
        self._apply_suppressions(session, candidates)
        self._apply_segment(session, candidates)
        return candidates

    def _apply_segment(self, session: Session, candidates: Sequence[_Candidate]) -> None:
        """Skips the candidates the campaign's segment or a segment's frequency cap leaves
        out (an opt-in campaign is never narrowed: it asks for consent)."""
        if self._optin:
            return
        live = [c for c in candidates if not c.skip]
        left_out = segments.skips(
            session, self._segment, [c.recipient.id for c in live], self.now()
        )
        for candidate in live:
            reason = left_out.get(candidate.recipient.id)
            if reason:
                candidate.skip = reason

    def _apply_suppressions(self, session: Session, candidates: Sequence[_Candidate]) -> int:
        live = [c for c in candidates if not c.skip]
        held = watch.held_domains(session, self._campaign_id) if self._campaign_id else set()
        if held:
            # Domains the watcher held: deferred, sent if an admin releases the domain.
            for candidate in live:
                domain = watch.domain_of(candidate.recipient.email)
                if domain in held:
                    candidate.skip = f"{watch.HELD}{domain}"[:200]
            live = [c for c in live if not c.skip]
        found = check_batch_detail(session, [c.recipient.email for c in live], now=self.now())
        count = 0
        for candidate in live:
            status = found.get(normalize_email(candidate.recipient.email))
            hit = status.blocking(candidate.lists) if status is not None else None
            if hit is not None:
                where = "list" if hit.scope == "list" else hit.kind
                candidate.skip = f"suppressed:{where}:{hit.reason}"
                count += 1
        return count

    def _claim(self, campaign_id: int, batch: Sequence[_Candidate]) -> list[_Candidate] | None:
        """Writes the batch's rows (skips and claims) in one transaction; returns the claims
        this sender won, or None when the campaign stopped running meanwhile."""
        now = self.now()
        for candidate in batch:
            if not candidate.skip:
                candidate.message_id = (
                    f"<{candidate.recipient.uuid}.{int(now.timestamp() * 1000)}"
                    f".{campaign_id}@{self.config.id_domain}>"
                )
        rows = [
            {
                "campaign_id": campaign_id,
                "subscriber_id": c.recipient.id,
                "status": "skipped" if c.skip else "sent",
                "reason": c.skip or IN_FLIGHT,
                "message_id": c.message_id,
                "sent_at": now,
            }
            for c in batch
        ]
        with self.factory() as session, session.begin():
            # Locking the campaign row serializes the claims of concurrent senders (SQLite's
            # BEGIN IMMEDIATE already does), so "already there" below is exact.
            campaign = session.scalar(
                select(Campaign).where(Campaign.id == campaign_id).with_for_update()
            )
            if campaign is None or campaign.status != "running":
                return None
            # The batch's id range, not its ids: two parameters instead of one per recipient.
            ids = [c.recipient.id for c in batch]
            taken = set(
                session.scalars(
                    select(CampaignSend.subscriber_id).where(
                        CampaignSend.campaign_id == campaign_id,
                        CampaignSend.subscriber_id.between(min(ids), max(ids)),
                    )
                )
            )
            won = [c for c in batch if c.recipient.id not in taken]
            fresh = [r for r in rows if r["subscriber_id"] not in taken]
            if fresh:
                session.execute(_insert_ignore(session), fresh)
            skipped = sum(1 for c in won if c.skip)
            campaign.last_subscriber_id = max(
                campaign.last_subscriber_id, max(c.recipient.id for c in batch)
            )
            campaign.skipped += skipped
        return won

    def _send_batch(
        self,
        campaign: Campaign,
        content: Content,
        won: list[_Candidate] | None,
        pool: ThreadPoolExecutor,
        report: RunReport,
        should_stop: Callable[[], bool],
    ) -> _Dispatched | None:
        """Hands the claims this sender won (`_claim`) to the SMTP engine; counts the skips."""
        if won is None:
            return None
        for candidate in won:
            if candidate.skip:
                report.skipped += 1
                report.skip_reasons[candidate.skip] = report.skip_reasons.get(candidate.skip, 0) + 1
        claims = [c for c in won if not c.skip]
        return self._dispatch(campaign, content, claims, pool, should_stop, attempt=0)

    def _dispatch(
        self,
        campaign: Campaign,
        content: Content,
        claims: list[_Candidate],
        pool: ThreadPoolExecutor,
        should_stop: Callable[[], bool],
        attempt: int,
    ) -> _Dispatched:
        """Hands claimed recipients to the SMTP engine, in chunks of `SHARE_SIZE` per connection.

        Before each chunk it waits until at most one earlier chunk is still being sent, then
        checks the campaign's status and the chunk's addresses once more; claims not handed over
        (stop, pause) are to be released. Messages are rendered by the engine's thread while
        the servers answer (`multiplex.send_all`), never in a long run in this thread that the
        engine would wait behind for the interpreter lock.
        """
        chunk_size = self.config.concurrency * SHARE_SIZE
        dispatched = _Dispatched(attempt=attempt)
        for start in range(0, len(claims), chunk_size):
            chunk = claims[start : start + chunk_size]
            # The checks below are only worth their cost if the chunk goes out soon after them.
            while len(self._chunks) > 1:
                wait(self._chunks.popleft())
            if should_stop() or self._status(campaign.id) != "running":
                dispatched.released.extend(claims[start:])
                break
            with self.reader() as session:
                self._apply_suppressions(session, chunk)
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
            self._chunks.append([outcomes])
        return dispatched

    def _collect(
        self, campaign: Campaign, dispatched: _Dispatched | None, report: RunReport
    ) -> int:
        """Waits for a dispatched batch's answers and records them; returns the send errors."""
        if dispatched is None:
            return 0
        outcomes: list[tuple[_Candidate, Message | None, SendResult]] = []
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
        return self._record(
            campaign, outcomes, late_skips, dispatched.released, report, dispatched.attempt
        )

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

    def _render(
        self, campaign: Campaign, content: Content, candidate: _Candidate
    ) -> Message | None:
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
        self, campaign: Campaign, content: Content, candidates: Sequence[_Candidate]
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
            state["halted"] = self._status(campaign_id) != "running"
            return bool(state["halted"])

        return halted

    def _record(
        self,
        campaign: Campaign,
        outcomes: Sequence[tuple[_Candidate, Message | None, SendResult]],
        late_skips: Sequence[_Candidate],
        released: Sequence[_Candidate],
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
                errors.append(_error_entry(now, candidate.recipient, result))
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
            for ids, reason in ((accepted, ""), (doubtful, IN_DOUBT)):
                if ids:
                    session.execute(
                        update(CampaignSend)
                        .where(
                            CampaignSend.campaign_id == campaign.id,
                            CampaignSend.subscriber_id.in_(ids),
                        )
                        .values(status="sent", reason=reason, sent_at=now)
                    )
            for row in failed_updates:
                session.execute(
                    update(CampaignSend)
                    .where(
                        CampaignSend.campaign_id == campaign.id,
                        CampaignSend.subscriber_id == row["sid"],
                    )
                    .values(status=row["st"], reason=row["rs"], sent_at=now)
                )
            if to_release:
                session.execute(
                    delete(CampaignSend).where(
                        CampaignSend.campaign_id == campaign.id,
                        CampaignSend.subscriber_id.in_(to_release),
                    )
                )
                # Walk back so the released recipients are fetched again; rows already
                # claimed above them are protected by the unique claim.
                session.execute(
                    update(Campaign)
                    .where(
                        Campaign.id == campaign.id,
                        Campaign.last_subscriber_id >= min(to_release),
                    )
                    .values(last_subscriber_id=min(to_release) - 1)
                )
            final_failures = sum(1 for r in failed_updates if r["st"] == "failed") - sum(
                1 for r in failed_updates if r["rs"].startswith(DEFERRED)
            )
            late = len(late_skips)
            values: dict[str, Any] = {
                "sent": Campaign.sent + len(accepted),
                "failed": Campaign.failed + final_failures,
                "skipped": Campaign.skipped + late,
            }
            if errors:
                latest = session.scalar(
                    select(Campaign.last_errors).where(Campaign.id == campaign.id)
                )
                values["send_errors"] = Campaign.send_errors + len(errors)
                values["last_errors"] = [*reversed(errors), *(latest or [])][:LAST_ERRORS]
            session.execute(update(Campaign).where(Campaign.id == campaign.id).values(**values))
            if pause_reason:
                session.execute(
                    update(Campaign)
                    .where(Campaign.id == campaign.id, Campaign.status == "running")
                    .values(status="paused", pause_reason=pause_reason[:1000])
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

    def _deferred_rows(self, session: Session, campaign_id: int) -> Any:
        return select(CampaignSend).where(
            CampaignSend.campaign_id == campaign_id,
            CampaignSend.status == "failed",
            CampaignSend.reason.like(f"{DEFERRED}%"),
        )

    def _deferred_wait(self, campaign_id: int) -> float | None:
        """Seconds until the next deferred retry is due; None when nothing is deferred."""
        with self.reader() as session:
            oldest = session.scalar(
                self._deferred_rows(session, campaign_id)
                .with_only_columns(func.min(CampaignSend.sent_at))
                .order_by(None)
            )
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
            rows = list(
                session.scalars(
                    self._deferred_rows(session, campaign.id)
                    .where(CampaignSend.sent_at <= cutoff)
                    .order_by(CampaignSend.subscriber_id)
                    # At most what the sliding window leaves (the batch size without one).
                    .limit(self._batch_room)
                )
            )
            if not rows:
                return False
            attempts = {r.subscriber_id: _attempt_of(r.reason) for r in rows}
            ids = [r.subscriber_id for r in rows]
            message_ids = {r.subscriber_id: r.message_id for r in rows}
            candidates = self._candidates(session, ids, lists)
        # Re-claim the retries (back to in flight) in one transaction before sending; another
        # sender may have re-claimed some of them meanwhile: only the rows this update changed
        # are ours to send.
        with self.factory() as session, session.begin():
            won = set(
                session.scalars(
                    update(CampaignSend)
                    .where(
                        CampaignSend.campaign_id == campaign.id,
                        CampaignSend.subscriber_id.in_(ids),
                        CampaignSend.status == "failed",
                        CampaignSend.reason.like(f"{DEFERRED}%"),
                    )
                    .values(status="sent", reason=IN_FLIGHT, sent_at=self.now())
                    .returning(CampaignSend.subscriber_id)
                )
            )
        by_attempt: dict[int, list[_Candidate]] = {}
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
            dispatched = self._dispatch(campaign, content, live, pool, should_stop, attempt)
            self._collect(campaign, dispatched, report)
        return True


def _error_entry(now: datetime, recipient: Recipient, result: SendResult) -> dict[str, Any]:
    """One of a campaign's `last_errors`, as the API shows it."""
    return {
        "at": now.isoformat(),
        "subscriber_id": recipient.id,
        "email": recipient.email,
        "outcome": result.outcome,
        "stage": result.stage,
        "code": result.code,
        "message": result.text[:300],
    }


def _attempt_of(reason: str) -> int:
    try:
        return int(reason[len(DEFERRED) :].split(":", 1)[0])
    except ValueError:
        return 1


def campaign_stats(session: Session, campaign_id: int) -> dict[str, Any]:
    """Per-campaign counters: sent (accepted by the SMTP server), skipped by reason, failed,
    bounces by type, complaints, unsubscribes, deferred, in-doubt and in-flight (`sending`)
    sends, and the send errors: how many, the latest, and why the sender paused the campaign."""
    skipped: dict[str, int] = {}
    sent = failed = deferred = in_doubt = sending = unsubscribes = 0
    rows = session.execute(
        select(CampaignSend.status, CampaignSend.reason, func.count())
        .where(CampaignSend.campaign_id == campaign_id)
        .group_by(CampaignSend.status, CampaignSend.reason)
    )
    for status, reason, count in rows:
        if status == "sent":
            if reason == IN_DOUBT:
                in_doubt += count
            elif reason == IN_FLIGHT:
                sending += count
            else:
                sent += count
            if reason == UNSUBSCRIBED:
                unsubscribes += count
        elif status == "skipped":
            key = reason.split(":", 2)[0] if reason.startswith("suppressed") else reason
            key = ":".join(reason.split(":")[:2]) if reason.startswith("suppressed") else key
            skipped[key] = skipped.get(key, 0) + count
        elif reason.startswith(DEFERRED):
            deferred += count
        else:
            failed += count
    bounces = dict(
        session.execute(
            select(Bounce.effective_type, func.count())
            .where(Bounce.campaign_id == campaign_id)
            .group_by(Bounce.effective_type)
        ).all()
    )
    errors = session.execute(
        select(Campaign.send_errors, Campaign.last_errors, Campaign.pause_reason).where(
            Campaign.id == campaign_id
        )
    ).first()
    send_errors, last_errors, pause_reason = errors if errors is not None else (0, [], "")
    return {
        "sent": sent,
        "skipped": sum(skipped.values()),
        "skipped_by_reason": skipped,
        "failed": failed,
        "deferred": deferred,
        "in_doubt": in_doubt,
        "sending": sending,
        "bounces": {"hard": int(bounces.get("hard", 0)), "soft": int(bounces.get("soft", 0))},
        "complaints": int(bounces.get("complaint", 0)),
        "unsubscribes": unsubscribes,
        "send_errors": int(send_errors or 0),
        "last_errors": list(last_errors or []),
        "pause_reason": pause_reason or "",
    }


def subscribers_by_email(session: Session, emails: Iterable[str]) -> dict[str, Subscriber]:
    """Subscribers whose address is among `emails` (`subscribers.get_many_by_email`)."""
    return subscribers.get_many_by_email(session, emails)


def send_queue_depths(session: Session) -> dict[str, int]:
    """The sending queue of the running and paused campaigns now: recipients not yet handled
    (`campaign_unsent`, running ones), claims being sent (`campaign_in_flight`), 4xx deferrals
    waiting for their retry (`campaign_deferred`) and sends in doubt (`campaign_in_doubt`)."""
    left = Campaign.to_send - Campaign.sent - Campaign.skipped - Campaign.failed
    unsent = session.scalar(
        select(func.coalesce(func.sum(case((left > 0, left), else_=0)), 0)).where(
            Campaign.status == "running"
        )
    )
    active = select(Campaign.id).where(Campaign.status.in_(("running", "paused")))
    rows = session.execute(
        select(CampaignSend.status, CampaignSend.reason, func.count())
        .where(
            CampaignSend.campaign_id.in_(active.scalar_subquery()),
            CampaignSend.reason.in_((IN_FLIGHT, IN_DOUBT))
            | CampaignSend.reason.like(f"{DEFERRED}%"),
        )
        .group_by(CampaignSend.status, CampaignSend.reason)
    )
    depths = {
        "campaign_unsent": int(unsent or 0),
        "campaign_in_flight": 0,
        "campaign_deferred": 0,
        "campaign_in_doubt": 0,
    }
    for status, reason, count in rows:
        if reason == IN_FLIGHT:
            depths["campaign_in_flight"] += int(count)
        elif reason == IN_DOUBT:
            depths["campaign_in_doubt"] += int(count)
        elif status == "failed":
            depths["campaign_deferred"] += int(count)
    return depths
