"""The normalized bounce event that every channel produces and `services.bounces.record()` consumes.

Channels (mailbox scanner, ESP webhooks, the native API, SMTP-time rejections) never touch the
database: they turn their input into `Event` objects and hand them to the one recording door.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

EventType = Literal["hard", "soft", "complaint"]
EVENT_TYPES: tuple[EventType, ...] = ("hard", "soft", "complaint")


@dataclass(frozen=True, slots=True)
class Evidence:
    """What ties a bounce read by an unauthenticated channel (a bounce mailbox) to mail stmails
    sent. `services.bounces` lets such a bounce act (unsubscribe, blocklist, suppress) only as
    far as the `bounce.mailbox_trust` setting allows; authenticated channels (signed webhooks,
    the API) give none.

    `message` names the message that reported the bounce (the events of one message share it);
    `verp` is true when the event's `subscriber_uuid` comes from a VERP token that verified;
    `signed` when a Message-ID the message refers to carries stmails' signature for this very
    recipient; `message_ids` are the Message-IDs it refers to (the returned original's, its
    In-Reply-To and References), to be matched against mail stmails sent; `sole` is true when
    the message reports on no other recipient.
    """

    message: str
    verp: bool = False
    signed: bool = False
    message_ids: tuple[str, ...] = ()
    sole: bool = True


@dataclass(frozen=True, slots=True)
class Event:
    """One bounce, complaint or unsubscribe-by-complaint reported for one recipient.

    `email` or `subscriber_uuid` identifies the recipient (at least one is set). `source` names
    the channel ("api", "mailbox", "ses", "sendgrid", "smtp", ...). `event_id` is the provider's
    own id when it has one; `dedup_key()` falls back to a hash of the content otherwise, so the
    same event delivered twice is recorded once. `evidence` is set by unauthenticated channels
    only (see `Evidence`).
    """

    source: str
    type: EventType
    email: str = ""
    subscriber_uuid: str = ""
    campaign_uuid: str = ""
    reason: str = "undefined"
    status: str = ""
    replycode: str = ""
    diagnostic: str = ""
    feedback_type: str = ""
    event_id: str = ""
    occurred_at: datetime | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    evidence: Evidence | None = None

    def dedup_key(self) -> str:
        """A stable key for idempotency: the provider's event id, else a content hash."""
        if self.event_id:
            return f"{self.source}:{self.event_id}"[:255]
        content = {
            "source": self.source,
            "type": self.type,
            "email": self.email.lower(),
            "subscriber_uuid": self.subscriber_uuid,
            "campaign_uuid": self.campaign_uuid,
            "reason": self.reason,
            "status": self.status,
            "diagnostic": self.diagnostic,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else "",
        }
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
        return f"{self.source}:sha256:{digest}"
