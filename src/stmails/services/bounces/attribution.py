"""The attribution gate for events of unauthenticated channels (a bounce mailbox).

An event that carries `Evidence` acts only when `bounce.mailbox_trust` accepts its evidence (a
verified VERP token; with "sent", also a Message-ID of mail stmails sent to that recipient; with
"any", nothing), and one message acts on at most `MAX_ACTING_RECIPIENTS` recipients. Any other
such event is stored unattributed (`attributed` false, `meta["unattributed"]` saying why).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from stmails.core.event import Event, Evidence
from stmails.db.in_list import in_list
from stmails.db.models import Campaign, CampaignSend, Subscriber
from stmails.db.types import normalize_email
from stmails.services.settings import MailboxTrust
from stmails.services.subscribers import email_key

# One message from a bounce mailbox acts on at most this many recipients, whatever the trust:
# stmails sends one recipient per message, so a genuine bounce names one or two.
MAX_ACTING_RECIPIENTS = 10
# Why a bounce from a mailbox was recorded without acting (`meta["unattributed"]`).
UNATTRIBUTED_NO_VERP = "no valid VERP token (bounce.mailbox_trust is verp)"
UNATTRIBUTED_NOT_SENT = "no valid VERP token and no Message-ID of mail stmails sent to this address"
UNATTRIBUTED_OTHER_RECIPIENT = "the returned message was sent to another recipient"
UNATTRIBUTED_GONE = "the subscriber the VERP token names no longer exists"
UNATTRIBUTED_TOO_MANY = f"the message reports more than {MAX_ACTING_RECIPIENTS} recipients"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class Known:
    """A subscriber as recording sees it: its row's id, uuid and address (no ORM object; one
    is loaded only for a subscriber the rules act on)."""

    id: int
    uuid: str
    email: str


class Subscribers:
    """Loaded subscribers, found by uuid or by normalized address."""

    def __init__(self, found: Sequence[Known]) -> None:
        self.by_uuid = {sub.uuid: sub for sub in found}
        self.by_email = {email_key(sub.email): sub for sub in found}

    def match(self, uuid: str, email: str) -> Known | None:
        """The subscriber with `uuid`, else with address `email`, else None."""
        found = self.by_uuid.get(uuid.strip().lower()) if uuid.strip() else None
        if found is None and email.strip():
            found = self.by_email.get(email_key(email))
        return found


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What the attribution gate makes of one event: whether it may act, how it was
    attributed (`meta["attribution"]`), and whom its evidence names."""

    acts: bool
    how: str
    why_not: str = ""
    # The subscriber (and campaign) the evidence names, instead of what the message claims.
    subscriber_uuid: str = ""
    campaign_uuid: str = ""
    # Look the subscriber up by the reported address only (the message's claim is not proof).
    by_address: bool = False


# Message-ID -> (subscriber uuid, campaign uuid) of campaign mail stmails sent.
SentMessages = Mapping[str, tuple[str, str]]


def _verdict(event: Event, evidence: Evidence, trust: MailboxTrust, sent: SentMessages) -> _Verdict:
    """Whether an event of an unauthenticated channel may act under `trust`."""
    if evidence.verp:
        return _Verdict(True, "verp", subscriber_uuid=event.subscriber_uuid)
    if trust == "any":
        return _Verdict(True, str(event.meta.get("attribution") or "any"))
    if trust == "verp":
        return _Verdict(False, "none", UNATTRIBUTED_NO_VERP, by_address=True)
    if evidence.signed:
        return _Verdict(True, "signed_message_id", by_address=True)
    for message_id in evidence.message_ids:
        match = sent.get(message_id)
        if match is not None:
            return _Verdict(True, "message_id", subscriber_uuid=match[0], campaign_uuid=match[1])
    return _Verdict(False, "none", UNATTRIBUTED_NOT_SENT, by_address=True)


def sent_messages(session: Session, events: Sequence[Event]) -> dict[str, tuple[str, str]]:
    """The campaign messages stmails sent that the evidence of `events` refers to.

    Sends are found through their subscriber (the uuid the message claims, or one inside a
    Message-ID): the send ledger's indexes lead there, and the Message-ID must then match.
    """
    ids: set[str] = set()
    uuids: set[str] = set()
    for event in events:
        evidence = event.evidence
        if evidence is None or evidence.verp or not evidence.message_ids:
            continue
        ids.update(evidence.message_ids)
        claimed = event.subscriber_uuid.strip().lower()
        if claimed:
            uuids.add(claimed)
        for message_id in evidence.message_ids:
            uuids.update(_UUID.findall(message_id.lower()))
    if not ids or not uuids:
        return {}
    rows = session.execute(
        select(CampaignSend.message_id, Subscriber.uuid, Campaign.uuid)
        .join(Subscriber, Subscriber.id == CampaignSend.subscriber_id)
        .join(Campaign, Campaign.id == CampaignSend.campaign_id)
        .where(
            in_list(Subscriber.uuid, "uuids"),
            in_list(CampaignSend.message_id, "ids"),
        ),
        {"uuids": sorted(uuids), "ids": sorted(ids)},
    )
    return {message_id: (subscriber, campaign) for message_id, subscriber, campaign in rows}


@dataclass(frozen=True, slots=True)
class _Gated:
    """An event of an unauthenticated channel after the gate: whom and which campaign it is
    about, and why it may not act ("" when it may)."""

    subscriber: Known | None
    address: str
    campaign_uuid: str
    unattributed: str
    notes: dict[str, str]


def attribute(
    event: Event,
    evidence: Evidence,
    trust: MailboxTrust,
    found: Subscribers,
    sent: SentMessages,
    acting: dict[str, int],
) -> _Gated:
    """The attribution gate for one event (see the module docstring); `acting` counts the
    events of each message that may act so far."""
    verdict = _verdict(event, evidence, trust, sent)
    reported = normalize_email(event.email)
    subscriber = found.match(event.subscriber_uuid, event.email)
    address = reported
    campaign_uuid = (verdict.campaign_uuid or event.campaign_uuid).strip().lower()
    why_not = verdict.why_not
    notes: dict[str, str] = {}
    if verdict.by_address:
        subscriber = found.match("", event.email)
    elif verdict.subscriber_uuid:
        subscriber = found.match(verdict.subscriber_uuid, "")
        if subscriber is None:
            why_not = UNATTRIBUTED_GONE
        elif reported != email_key(subscriber.email):
            # The evidence names the subscriber the message went to: a different address in
            # the report (a forward) is not the one to act on, and on a report about several
            # recipients only that subscriber's may act.
            if evidence.sole or not reported:
                notes["reported_recipient"] = reported
                address = email_key(subscriber.email)
            else:
                why_not = UNATTRIBUTED_OTHER_RECIPIENT
    if not why_not:
        acting[evidence.message] = acting.get(evidence.message, 0) + 1
        if acting[evidence.message] > MAX_ACTING_RECIPIENTS:
            why_not = UNATTRIBUTED_TOO_MANY
    if not why_not:
        notes["attribution"] = verdict.how
        if not address and subscriber is not None:
            address = email_key(subscriber.email)
        return _Gated(subscriber, address, campaign_uuid, "", notes)
    # History only: filed under the address it reports, not a campaign it only claims.
    notes = {"attribution": "none", "unattributed": why_not}
    if campaign_uuid:
        notes["claimed_campaign"] = campaign_uuid
    return _Gated(found.match("", event.email), reported, "", why_not, notes)
