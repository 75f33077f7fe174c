"""The result type of the classifier: one `BounceRecord` per recipient a message reports on."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Literal

from stmails.core.event import Event
from stmails.core.reasons import is_hard

BounceType = Literal["hard", "soft", "complaint"]

# Record fields carried in an Event's `meta` (the others map to Event fields).
_EVENT_META = frozenset(
    {
        "action",
        "remote_mta",
        "reporting_mta",
        "user_agent",
        "message_id",
        "subject",
        "from",
        "detector",
        "hard",
        "status_inferred",
    }
)


@dataclass(frozen=True, slots=True)
class BounceRecord:
    """What one message says happened to one recipient.

    `reason` is one of `stmails.core.REASONS`; `hard` is true only when the address itself is
    bad; `type` is "hard", "soft", "complaint", or None for delivery reports and auto-replies.
    `status` is the RFC 3463 code found in the message, else the reason's standard code in
    the failure's class with `status_inferred` true. Text fields are decoded and
    length-capped; absent values are empty strings. `timestamp`
    is ISO 8601: when the failure happened per the report, else the report's Date.
    """

    recipient: str
    reason: str
    hard: bool = False
    type: BounceType | None = None
    status: str = ""
    status_inferred: bool = False
    replycode: str = ""
    diagnostic: str = ""
    action: str = ""
    remote_mta: str = ""
    reporting_mta: str = ""
    timestamp: str = ""
    feedback_type: str = ""
    user_agent: str = ""
    message_id: str = ""
    subject: str = ""
    from_: str = ""
    campaign: str = ""
    subscriber: str = ""
    detector: str = ""

    def to_event(self, source: str = "mailbox") -> Event | None:
        """The normalized `Event` for this record, or None when it is not a bounce or a
        complaint (delivery reports, auto-replies). Fields not in Event go to `meta`."""
        if self.type is None:
            return None
        occurred = None
        if self.timestamp:
            try:
                occurred = datetime.fromisoformat(self.timestamp)
            except ValueError:
                occurred = None
        meta = {
            key: value
            for key, value in self.to_dict().items()
            if key in _EVENT_META and value not in ("", None)
        }
        return Event(
            source=source,
            type=self.type,
            email=self.recipient,
            subscriber_uuid=self.subscriber,
            campaign_uuid=self.campaign,
            reason=self.reason,
            status=self.status,
            replycode=self.replycode,
            diagnostic=self.diagnostic,
            feedback_type=self.feedback_type,
            occurred_at=occurred,
            meta=meta,
        )

    def to_dict(self) -> dict[str, object]:
        """The record as a JSON-ready dict; `from_` is serialized as "from"."""
        out: dict[str, object] = {}
        for f in fields(self):
            key = "from" if f.name == "from_" else f.name
            out[key] = getattr(self, f.name)
        return out


def bounce_type(record: BounceRecord) -> BounceType | None:
    """ "complaint" for feedback reports, None for delivered/vacation/relayed/delayed-only
    reports, else "hard" when the address is bad and "soft" otherwise."""
    return type_for(record.reason, record.status, record.action)


def type_for(reason: str, status: str, action: str) -> BounceType | None:
    """The bounce type for a reason, status code and DSN action (see `bounce_type`); a delay
    warning (action "delayed") is never hard: the server is still trying."""
    if reason == "feedback":
        return "complaint"
    if reason in ("delivered", "vacation") or action in ("delivered", "relayed", "expanded"):
        return None
    return "hard" if is_hard(reason, status) and action != "delayed" else "soft"
