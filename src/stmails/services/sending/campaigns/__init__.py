"""Sending campaigns: their life cycle (listmonk's status rules), rendering and preview, and
the exactly-once campaign sender.

The package's modules, one concern each:

- `lifecycle`: status changes, scheduled starts, a campaign's lists and recipients, its content
  compiled with its layout and attachments (`CampaignError` when it cannot be);
- `rendering`: template views, the message to one recipient, previews;
- `recipients`: the next batch's recipients, checked just before the send;
- `ledger`: the sends ledger (`campaign_sends`): its vocabulary and a run's writes, and the
  bounce event of an SMTP-time rejection;
- `handoff`: the claims handed to the SMTP engine in chunks, and their answers gathered;
- `runner`: `CampaignRunner`, and how a run stays exactly-once (its docstring);
- `stats`: a campaign's counters and the sending queue's depths.

Every name is importable from `stmails.services.sending.campaigns` as before the split. The
modules read their constants where they are defined: a test that changes one patches that
module (`handoff.SHARE_SIZE`), not this package.
"""

from stmails.services.sending.campaigns.handoff import HALT_EVERY, HALT_SECONDS, SHARE_SIZE
from stmails.services.sending.campaigns.ledger import (
    DEFERRED,
    IN_DOUBT,
    IN_FLIGHT,
    LAST_ERRORS,
    UNSUBSCRIBED,
    BounceRecorder,
    Transport,
    smtp_event,
)
from stmails.services.sending.campaigns.lifecycle import (
    MAX_CAMPAIGN_ATTACHMENT_BYTES,
    WAITING_FOR_HELD,
    CampaignError,
    campaign_attachments,
    campaign_list_ids,
    change_status,
    compile_campaign,
    count_recipients,
    layout_for,
    optin_list_ids,
    start_due_campaigns,
)
from stmails.services.sending.campaigns.rendering import (
    campaign_view,
    preview,
    recipient_of,
    render_for,
    render_preview,
)
from stmails.services.sending.campaigns.runner import (
    CLAIM_TIMEOUT,
    SETTINGS_CHANGED,
    WINDOW_POLL_SECONDS,
    CampaignRunner,
    RunReport,
)
from stmails.services.sending.campaigns.stats import (
    campaign_stats,
    send_queue_depths,
    subscribers_by_email,
)

__all__ = [
    "CLAIM_TIMEOUT",
    "DEFERRED",
    "HALT_EVERY",
    "HALT_SECONDS",
    "IN_DOUBT",
    "IN_FLIGHT",
    "LAST_ERRORS",
    "MAX_CAMPAIGN_ATTACHMENT_BYTES",
    "SETTINGS_CHANGED",
    "SHARE_SIZE",
    "UNSUBSCRIBED",
    "WAITING_FOR_HELD",
    "WINDOW_POLL_SECONDS",
    "BounceRecorder",
    "CampaignError",
    "CampaignRunner",
    "RunReport",
    "Transport",
    "campaign_attachments",
    "campaign_list_ids",
    "campaign_stats",
    "campaign_view",
    "change_status",
    "compile_campaign",
    "count_recipients",
    "layout_for",
    "optin_list_ids",
    "preview",
    "recipient_of",
    "render_for",
    "render_preview",
    "send_queue_depths",
    "smtp_event",
    "start_due_campaigns",
    "subscribers_by_email",
]
