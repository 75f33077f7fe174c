"""The one door for bounces: `record()` stores, counts, decides and acts, in one transaction.

Every channel (the HTTP API, mailboxes, ESP webhooks, SMTP-time rejections) hands a normalized
`Event` to `record()`. What it does, in order (docs/bounces-rules.md explains the rules):

1. find the subscriber: by uuid, else by address (case-insensitively); unknown addresses are
   recorded by address alone;
2. store the bounce once: the event's dedup key is unique, a repeat returns `duplicate=True` and
   changes nothing (INSERT ... ON CONFLICT DO NOTHING absorbs two concurrent deliveries);
3. work out the type the rules count it as: reason overrides, then soft-bounce escalation;
4. count the subscriber's bounces of that type within the rule's window, one per campaign (or
   per calendar day, UTC, without a campaign), and when the count reaches the rule, act:
   `none`, `unsubscribe`, `blocklist` or `delete`;
5. when a hard-bounce or complaint rule is reached, put the address on the suppression list, for
   subscribers and strangers alike.

The attribution gate comes first: an event from an unauthenticated channel (a bounce mailbox:
it carries `Evidence`) acts only when `bounce.mailbox_trust` accepts its evidence (a verified
VERP token; with "sent", also a Message-ID of mail stmails sent to that recipient; with "any",
nothing), and one message acts on at most `MAX_ACTING_RECIPIENTS` recipients. Any other such
event is stored unattributed (`attributed` false, `meta["unattributed"]` saying why): it is
history only, no rule counts it, and it never unsubscribes, blocklists or suppresses.

`record_many()` does the same for a batch of events in a handful of statements (the web layer's
group commit uses it); `record()` is a batch of one.
`reapply()` replays the whole history under the rules in force (`stmails bounces reapply`).
The listing and deletion helpers serve the HTTP API (`/api/bounces`).

The package's modules, one concern each:

- `rules`: the pure rules and `decide()` (no database);
- `attribution`: the gate for events of unauthenticated channels;
- `history`: a subject's stored bounces and the send ledger, as the rules read them;
- `recording`: `record()`, `record_many()`, `record_and_commit()`;
- `actions`: unsubscribe, blocklist, delete (`erase_subscriber`);
- `replay`: `reapply()`;
- `queries`: listing and deleting for the HTTP API.

Every name is importable from `stmails.services.bounces` as before the split.
"""

from stmails.services.bounces.actions import ERASED, erase_subscriber
from stmails.services.bounces.attribution import (
    MAX_ACTING_RECIPIENTS,
    UNATTRIBUTED_GONE,
    UNATTRIBUTED_NO_VERP,
    UNATTRIBUTED_NOT_SENT,
    UNATTRIBUTED_OTHER_RECIPIENT,
    UNATTRIBUTED_TOO_MANY,
    SentMessages,
)
from stmails.services.bounces.queries import (
    BounceFilter,
    BounceOrder,
    BouncePage,
    BounceRow,
    blocklist_bounced,
    delete_bounces,
    get_bounce,
    list_bounces,
)
from stmails.services.bounces.recording import (
    BOUNCES,
    MAX_DIAGNOSTIC_CHARS,
    MAX_META_CHARS,
    RecordError,
    RecordResult,
    record,
    record_and_commit,
    record_many,
)
from stmails.services.bounces.replay import REAPPLY_CHUNK, ReapplyResult, reapply
from stmails.services.bounces.rules import (
    ACTION_STRENGTH,
    Decision,
    Fact,
    base_type,
    count_key_of,
    decide,
)

__all__ = [
    "ACTION_STRENGTH",
    "BOUNCES",
    "ERASED",
    "MAX_ACTING_RECIPIENTS",
    "MAX_DIAGNOSTIC_CHARS",
    "MAX_META_CHARS",
    "REAPPLY_CHUNK",
    "UNATTRIBUTED_GONE",
    "UNATTRIBUTED_NOT_SENT",
    "UNATTRIBUTED_NO_VERP",
    "UNATTRIBUTED_OTHER_RECIPIENT",
    "UNATTRIBUTED_TOO_MANY",
    "BounceFilter",
    "BounceOrder",
    "BouncePage",
    "BounceRow",
    "Decision",
    "Fact",
    "ReapplyResult",
    "RecordError",
    "RecordResult",
    "SentMessages",
    "base_type",
    "blocklist_bounced",
    "count_key_of",
    "decide",
    "delete_bounces",
    "erase_subscriber",
    "get_bounce",
    "list_bounces",
    "reapply",
    "record",
    "record_and_commit",
    "record_many",
]
