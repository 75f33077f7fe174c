"""The sends ledger (`campaign_sends`, one row per campaign and subscriber): its vocabulary and
the writes of a run (claims, outcomes, releases, retries re-claimed, claims in doubt), in the
caller's transaction; and the bounce event an SMTP-time rejection becomes (`smtp_event`).
Why the rows are written in this order is the runner's docstring (`runner`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.orm import Session

from stmails.core import match_reason
from stmails.core.event import Event
from stmails.db.models import Campaign, CampaignSend
from stmails.db.upsert import dialect_insert
from stmails.services.sending.campaigns.recipients import Candidate
from stmails.services.sending.compose import Recipient
from stmails.services.sending.messages import Message
from stmails.services.sending.smtp import SendResult

# A per-message transport (`SmtpPool.send`): transactional mail and the relay send through it.
Transport = Callable[[Message], SendResult]
BounceRecorder = Callable[[Session, Event], object]

# How many of the latest send errors a campaign keeps (`campaigns.last_errors`).
LAST_ERRORS = 10
IN_FLIGHT = "in_flight"
IN_DOUBT = "in_doubt"
UNSUBSCRIBED = "unsubscribed"
DEFERRED = "deferred:"


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


def claim(
    session: Session, campaign_id: int, batch: Sequence[Candidate], now: datetime, id_domain: str
) -> list[Candidate] | None:
    """Writes the batch's rows (skips, and claims with their Message-IDs) in the caller's
    transaction; returns the candidates this sender won, or None when the campaign stopped
    running meanwhile."""
    for candidate in batch:
        if not candidate.skip:
            candidate.message_id = (
                f"<{candidate.recipient.uuid}.{int(now.timestamp() * 1000)}"
                f".{campaign_id}@{id_domain}>"
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
    # Locking the campaign row serializes the claims of concurrent senders (SQLite's
    # BEGIN IMMEDIATE already does), so "already there" below is exact.
    campaign = session.scalar(select(Campaign).where(Campaign.id == campaign_id).with_for_update())
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


def record(
    session: Session,
    campaign_id: int,
    now: datetime,
    *,
    accepted: Sequence[int],
    doubtful: Sequence[int],
    failed_updates: Sequence[dict[str, Any]],
    to_release: Sequence[int],
    late: int,
    errors: Sequence[dict[str, Any]],
    pause_reason: str,
) -> None:
    """Writes a batch's outcomes in the caller's transaction: the claims `accepted` become plain
    `sent` and the `doubtful` ones `in_doubt`; `failed_updates` ({"sid", "st", "rs"}: subscriber
    id, status, reason) are the bounces, deferrals and late skips; the claims `to_release` are
    deleted and the campaign's position walked back to them; the campaign's counters and
    latest `errors` are updated, and it is paused when `pause_reason` says so."""
    for ids, reason in ((accepted, ""), (doubtful, IN_DOUBT)):
        if ids:
            session.execute(
                update(CampaignSend)
                .where(
                    CampaignSend.campaign_id == campaign_id,
                    CampaignSend.subscriber_id.in_(ids),
                )
                .values(status="sent", reason=reason, sent_at=now)
            )
    for row in failed_updates:
        session.execute(
            update(CampaignSend)
            .where(
                CampaignSend.campaign_id == campaign_id,
                CampaignSend.subscriber_id == row["sid"],
            )
            .values(status=row["st"], reason=row["rs"], sent_at=now)
        )
    if to_release:
        session.execute(
            delete(CampaignSend).where(
                CampaignSend.campaign_id == campaign_id,
                CampaignSend.subscriber_id.in_(to_release),
            )
        )
        # Walk back so the released recipients are fetched again; rows already
        # claimed above them are protected by the unique claim.
        session.execute(
            update(Campaign)
            .where(
                Campaign.id == campaign_id,
                Campaign.last_subscriber_id >= min(to_release),
            )
            .values(last_subscriber_id=min(to_release) - 1)
        )
    final_failures = sum(1 for r in failed_updates if r["st"] == "failed") - sum(
        1 for r in failed_updates if r["rs"].startswith(DEFERRED)
    )
    values: dict[str, Any] = {
        "sent": Campaign.sent + len(accepted),
        "failed": Campaign.failed + final_failures,
        "skipped": Campaign.skipped + late,
    }
    if errors:
        latest = session.scalar(select(Campaign.last_errors).where(Campaign.id == campaign_id))
        values["send_errors"] = Campaign.send_errors + len(errors)
        values["last_errors"] = [*reversed(errors), *(latest or [])][:LAST_ERRORS]
    session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))
    if pause_reason:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == "running")
            .values(status="paused", pause_reason=pause_reason[:1000])
        )


def error_entry(now: datetime, recipient: Recipient, result: SendResult) -> dict[str, Any]:
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


def mark_in_doubt(session: Session, campaign_id: int) -> None:
    """Claims left in flight by a run that died: never resent (see `runner`)."""
    session.execute(
        update(CampaignSend)
        .where(CampaignSend.campaign_id == campaign_id, CampaignSend.reason == IN_FLIGHT)
        .values(reason=IN_DOUBT)
    )


def settle_in_flight(session: Session, campaign_id: int, cutoff: datetime) -> tuple[int, int]:
    """Marks in doubt the claims still in flight since `cutoff` or earlier; returns how many it
    marked and how many younger claims remain in flight."""
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
    return stale, int(left or 0)


# -- deferred (4xx) retries ---------------------------------------------------------------------


def _deferred_rows(campaign_id: int) -> Any:
    return select(CampaignSend).where(
        CampaignSend.campaign_id == campaign_id,
        CampaignSend.status == "failed",
        CampaignSend.reason.like(f"{DEFERRED}%"),
    )


def oldest_deferred(session: Session, campaign_id: int) -> datetime | None:
    """When the oldest deferred send of the campaign was answered; None when none is."""
    oldest: datetime | None = session.scalar(
        _deferred_rows(campaign_id).with_only_columns(func.min(CampaignSend.sent_at)).order_by(None)
    )
    return oldest


def due_retries(
    session: Session, campaign_id: int, cutoff: datetime, limit: int
) -> list[CampaignSend]:
    """The campaign's deferred sends answered at `cutoff` or earlier, at most `limit`, in
    subscriber-id order."""
    return list(
        session.scalars(
            _deferred_rows(campaign_id)
            .where(CampaignSend.sent_at <= cutoff)
            .order_by(CampaignSend.subscriber_id)
            .limit(limit)
        )
    )


def reclaim(session: Session, campaign_id: int, ids: Sequence[int], now: datetime) -> set[int]:
    """Claims the deferred sends of subscribers `ids` again (back to in flight); returns the
    subscribers whose row this update changed: another sender may have re-claimed some of them
    meanwhile, and only those this update changed are this sender's to send."""
    return set(
        session.scalars(
            update(CampaignSend)
            .where(
                CampaignSend.campaign_id == campaign_id,
                CampaignSend.subscriber_id.in_(ids),
                CampaignSend.status == "failed",
                CampaignSend.reason.like(f"{DEFERRED}%"),
            )
            .values(status="sent", reason=IN_FLIGHT, sent_at=now)
            .returning(CampaignSend.subscriber_id)
        )
    )


def attempt_of(reason: str) -> int:
    """The attempt a deferred send's reason (`deferred:N: ...`) counts."""
    try:
        return int(reason[len(DEFERRED) :].split(":", 1)[0])
    except ValueError:
        return 1
