"""The bounce rules without a database: `decide()` and the attribution gate, table by table.

`decide()` is pure: the configured rules, the bounce at hand and the subject's earlier bounces
go in, the decision comes out. The recording tests (test_bounces_record.py) check the same
rules through the database; these pin each rule down on its own.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import stmails.services.bounces.rules as rules_module
from stmails.core.event import Event, EventType, Evidence
from stmails.services.bounces import (
    MAX_ACTING_RECIPIENTS,
    UNATTRIBUTED_GONE,
    UNATTRIBUTED_NO_VERP,
    UNATTRIBUTED_NOT_SENT,
    UNATTRIBUTED_OTHER_RECIPIENT,
    UNATTRIBUTED_TOO_MANY,
    Decision,
    Fact,
    base_type,
    count_key_of,
    decide,
)
from stmails.services.bounces.attribution import Known, Subscribers, attribute
from stmails.services.settings import BounceAction, BounceConfig, BounceRule, MailboxTrust

T0 = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
C1, C2, C3, C4 = (f"0000000{n}-0000-4000-8000-000000000000" for n in range(1, 5))


# The rules every case starts from; a case replaces the ones it is about.
HARD = BounceRule(1, "blocklist")
SOFT = BounceRule(3, "unsubscribe", 30)
COMPLAINT = BounceRule(1, "blocklist")


def config(
    *,
    hard: BounceRule = HARD,
    soft: BounceRule = SOFT,
    complaint: BounceRule = COMPLAINT,
    escalation: int = 0,
    overrides: dict[str, EventType] | None = None,
) -> BounceConfig:
    return BounceConfig(
        enabled=True,
        rules={"hard": hard, "soft": soft, "complaint": complaint},
        escalation_count=escalation,
        reason_overrides=overrides or {},
    )


def fact(kind: str, key: str, days_ago: float = 0, reason: str = "undefined") -> Fact:
    """A bounce `days_ago` before T0, as stored (its effective type is its base type)."""
    at = T0 - timedelta(days=days_ago)
    return Fact(kind, reason, key, at, kind)


@dataclass
class Sent:
    """The send ledger seen by `decide()`: records whether it was asked."""

    campaigns: list[str] = field(default_factory=list)
    asked: int = 0

    def __call__(self) -> Sequence[str]:
        self.asked += 1
        return self.campaigns


@dataclass(frozen=True)
class Case:
    id: str
    config: BounceConfig
    current: Fact
    history: tuple[Fact, ...]
    expected: Decision
    sent: tuple[str, ...] = ()


def decision(
    kind: EventType,
    action: BounceAction = "none",
    *,
    counted: bool = True,
    escalated: bool = False,
    suppress: str | None = None,
) -> Decision:
    return Decision(kind, escalated, counted, action, suppress)  # type: ignore[arg-type]


CASES = [
    # Counts: a rule acts when the count of distinct units reaches it.
    Case(
        "hard-first-reaches-count-1",
        config(),
        fact("hard", C1),
        (),
        decision("hard", "blocklist", suppress="hard_bounce"),
    ),
    Case(
        "hard-count-2-not-reached-by-one",
        config(hard=BounceRule(2, "unsubscribe")),
        fact("hard", C1),
        (),
        decision("hard"),
    ),
    Case(
        "hard-count-2-reached-by-second-campaign",
        config(hard=BounceRule(2, "unsubscribe")),
        fact("hard", C2),
        (fact("hard", C1, 1),),
        decision("hard", "unsubscribe", suppress="hard_bounce"),
    ),
    Case(
        "same-campaign-counts-once",
        config(soft=BounceRule(2, "unsubscribe")),
        fact("soft", C1),
        (fact("soft", C1, 1),),
        decision("soft", counted=False),
    ),
    Case(
        "soft-reaches-count-without-suppressing",
        config(),
        fact("soft", C3),
        (fact("soft", C1, 2), fact("soft", C2, 1)),
        decision("soft", "unsubscribe"),
    ),
    Case(
        "other-types-do-not-count",
        config(soft=BounceRule(2, "unsubscribe")),
        fact("soft", C2),
        (fact("hard", C1, 1), fact("complaint", C3, 1)),
        decision("soft"),
    ),
    Case(
        "action-none-reached-still-suppresses-hard",
        config(hard=BounceRule(1, "none")),
        fact("hard", C1),
        (),
        decision("hard", "none", suppress="hard_bounce"),
    ),
    Case(
        "delete-action",
        config(hard=BounceRule(1, "delete")),
        fact("hard", C1),
        (),
        decision("hard", "delete", suppress="hard_bounce"),
    ),
    # Windows: only bounces within the rule's window count; 0 counts all time.
    Case(
        "outside-window-not-counted",
        config(),
        fact("soft", C3),
        (fact("soft", C1, 31), fact("soft", C2, 1)),
        decision("soft"),
    ),
    Case(
        "window-edge-counts",
        config(),
        fact("soft", C3),
        (fact("soft", C1, 30), fact("soft", C2, 1)),
        decision("soft", "unsubscribe"),
    ),
    Case(
        "window-0-is-all-time",
        config(soft=BounceRule(3, "unsubscribe", 0)),
        fact("soft", C3),
        (fact("soft", C1, 3000), fact("soft", C2, 1)),
        decision("soft", "unsubscribe"),
    ),
    # Without a campaign the unit is the calendar day (UTC).
    Case(
        "same-day-counts-once",
        config(soft=BounceRule(2, "unsubscribe")),
        fact("soft", count_key_of("", T0)),
        (fact("soft", count_key_of("", T0 - timedelta(hours=1)), 1 / 24),),
        decision("soft", counted=False),
    ),
    Case(
        "two-days-count-twice",
        config(soft=BounceRule(2, "unsubscribe")),
        fact("soft", count_key_of("", T0)),
        (fact("soft", count_key_of("", T0 - timedelta(days=1)), 1),),
        decision("soft", "unsubscribe"),
    ),
    # Reason overrides turn a bounce into another type (complaints stay complaints).
    Case(
        "override-soft-to-hard",
        config(overrides={"mailbox_full": "hard"}),
        fact("soft", C1, reason="mailbox_full"),
        (),
        decision("hard", "blocklist", suppress="hard_bounce"),
    ),
    Case(
        "override-hard-to-soft",
        config(overrides={"user_unknown": "soft"}),
        fact("hard", C1, reason="user_unknown"),
        (),
        decision("soft"),
    ),
    Case(
        "override-never-applies-to-complaints",
        config(overrides={"abuse": "soft"}),
        fact("complaint", C1, reason="abuse"),
        (),
        decision("complaint", "blocklist", suppress="complaint"),
    ),
    # Complaints: their own rule and suppression reason.
    Case(
        "complaint-reaches-rule",
        config(complaint=BounceRule(1, "unsubscribe")),
        fact("complaint", C1),
        (),
        decision("complaint", "unsubscribe", suppress="complaint"),
    ),
    Case(
        "complaint-count-2-not-reached",
        config(complaint=BounceRule(2, "blocklist")),
        fact("complaint", C1),
        (),
        decision("complaint"),
    ),
    # Soft escalation: N campaigns in a row soft-bounced make the bounce hard.
    Case(
        "escalates-when-last-n-sent-all-soft-bounced",
        config(escalation=3),
        fact("soft", C3),
        (fact("soft", C1, 2), fact("soft", C2, 1)),
        decision("hard", "blocklist", escalated=True, suppress="soft_bounce"),
        sent=(C3, C2, C1),
    ),
    Case(
        "no-escalation-when-a-recent-send-was-delivered",
        config(escalation=3, soft=BounceRule(9, "unsubscribe")),
        fact("soft", C3),
        (fact("soft", C1, 2), fact("soft", C2, 1)),
        decision("soft"),
        sent=(C3, C4, C2),
    ),
    Case(
        "escalates-without-a-ledger-of-n-sends",
        config(escalation=3),
        fact("soft", C3),
        (fact("soft", C1, 2), fact("soft", C2, 1)),
        decision("hard", "blocklist", escalated=True, suppress="soft_bounce"),
        sent=(C3,),
    ),
    Case(
        "no-escalation-below-n-campaigns",
        config(escalation=3, soft=BounceRule(9, "unsubscribe")),
        fact("soft", C2),
        (fact("soft", C1, 1),),
        decision("soft"),
    ),
    Case(
        "no-escalation-for-day-units",
        config(escalation=2, soft=BounceRule(9, "unsubscribe")),
        fact("soft", count_key_of("", T0)),
        (fact("soft", C1, 1), fact("soft", count_key_of("", T0 - timedelta(days=2)), 2)),
        decision("soft"),
    ),
    Case(
        "escalation-ignores-soft-bounces-outside-the-soft-window",
        config(escalation=2, soft=BounceRule(9, "unsubscribe", 10)),
        fact("soft", C2),
        (fact("soft", C1, 11),),
        decision("soft"),
    ),
    Case(
        "escalated-bounce-counts-toward-the-hard-rule",
        config(escalation=2, hard=BounceRule(2, "delete")),
        fact("soft", C3),
        (fact("soft", C2, 1), fact("hard", C1, 5)),
        decision("hard", "delete", escalated=True, suppress="soft_bounce"),
        sent=(C3, C2),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decide(case: Case) -> None:
    sent = Sent(list(case.sent))
    assert decide(case.config, case.current, case.history, sent) == case.expected


def test_the_send_ledger_is_read_only_when_escalation_is_in_question() -> None:
    sent = Sent([C2, C1])
    decide(config(escalation=2), fact("hard", C2), (fact("soft", C1, 1),), sent)
    decide(config(escalation=0), fact("soft", C2), (fact("soft", C1, 1),), sent)
    decide(config(escalation=3), fact("soft", C2), (fact("soft", C1, 1),), sent)
    assert sent.asked == 0
    decide(config(escalation=2), fact("soft", C2), (fact("soft", C1, 1),), sent)
    assert sent.asked == 1


def test_the_ledger_of_more_than_n_campaigns_is_cut_to_the_last_n() -> None:
    # Newest first: only C3 and C2 matter with N = 2, so an older delivered C4 is irrelevant.
    sent = Sent([C3, C2, C4])
    result = decide(config(escalation=2), fact("soft", C3), (fact("soft", C2, 1),), sent)
    assert result.escalated and result.effective_type == "hard"


@pytest.mark.parametrize(
    ("kind", "reason", "overrides", "expected"),
    [
        ("hard", "undefined", {}, "hard"),
        ("soft", "undefined", {}, "soft"),
        ("complaint", "abuse", {"abuse": "hard"}, "complaint"),
        ("soft", "mailbox_full", {"mailbox_full": "hard"}, "hard"),
        ("hard", "user_unknown", {"user_unknown": "soft"}, "soft"),
        # An unknown kind counts as soft (the rules know three types).
        ("unsubscribe", "undefined", {}, "soft"),
    ],
)
def test_base_type(kind: str, reason: str, overrides: dict[str, EventType], expected: str) -> None:
    assert base_type(kind, reason, config(overrides=overrides)) == expected


@pytest.mark.parametrize(
    ("campaign", "at", "expected"),
    [
        (C1.upper(), T0, C1),
        ("", datetime(2026, 5, 10, 23, 30, tzinfo=UTC), "day:2026-05-10"),
        # The day is UTC's, whatever the bounce's own offset.
        (
            "",
            datetime.fromisoformat("2026-05-11T01:00:00+02:00"),
            "day:2026-05-10",
        ),
    ],
)
def test_count_key(campaign: str, at: datetime, expected: str) -> None:
    assert count_key_of(campaign, at) == expected


# --- The attribution gate (no database either: subscribers and sends are given) ---------

ANA = Known(1, "a1a1a1a1-0000-4000-8000-000000000001", "ana@example.org")
BOB = Known(2, "b2b2b2b2-0000-4000-8000-000000000002", "bob@example.org")
FOUND = Subscribers([ANA, BOB])
SENT = {"<m-ana@stmails>": (ANA.uuid, C1)}


@dataclass(frozen=True)
class Gate:
    id: str
    trust: MailboxTrust
    event: Event
    # Expected: the subscriber id acted on (None: a stranger), why not ("" when it acts).
    subscriber: int | None
    why_not: str
    campaign: str = ""
    address: str = ""


def mailbox(
    email: str,
    *,
    uuid: str = "",
    campaign: str = "",
    verp: bool = False,
    signed: bool = False,
    ids: tuple[str, ...] = (),
    sole: bool = True,
) -> Event:
    return Event(
        source="mailbox",
        type="hard",
        email=email,
        subscriber_uuid=uuid,
        campaign_uuid=campaign,
        evidence=Evidence("msg", verp=verp, signed=signed, message_ids=ids, sole=sole),
    )


GATES = [
    Gate("verp-acts", "verp", mailbox("ana@example.org", uuid=ANA.uuid, verp=True), 1, ""),
    Gate(
        "verp-trust-refuses-without-token",
        "verp",
        mailbox("ana@example.org"),
        1,
        UNATTRIBUTED_NO_VERP,
    ),
    Gate(
        "sent-trust-refuses-without-evidence",
        "sent",
        mailbox("ana@example.org"),
        1,
        UNATTRIBUTED_NOT_SENT,
    ),
    Gate(
        "sent-trust-accepts-a-sent-message-id",
        "sent",
        mailbox("ana@example.org", ids=("<m-ana@stmails>",)),
        1,
        "",
        campaign=C1,
    ),
    Gate(
        "a-claimed-uuid-is-not-proof",
        "sent",
        mailbox("bob@example.org", uuid=ANA.uuid),
        2,
        UNATTRIBUTED_NOT_SENT,
    ),
    Gate(
        "signed-message-id-acts-by-address",
        "sent",
        mailbox("bob@example.org", uuid=ANA.uuid, signed=True),
        2,
        "",
    ),
    Gate("any-trust-accepts", "any", mailbox("bob@example.org"), 2, ""),
    Gate("stranger-by-address", "any", mailbox("eve@example.net"), None, ""),
    Gate(
        "verp-of-a-deleted-subscriber",
        "verp",
        mailbox("gone@example.org", uuid="c3c3c3c3-0000-4000-8000-000000000003", verp=True),
        None,
        UNATTRIBUTED_GONE,
    ),
    Gate(
        "verp-sole-forward-acts-on-the-subscriber",
        "verp",
        mailbox("ana.forward@example.net", uuid=ANA.uuid, verp=True),
        1,
        "",
        address="ana@example.org",
    ),
    Gate(
        "verp-other-recipient-of-a-multi-report",
        "verp",
        mailbox("eve@example.net", uuid=ANA.uuid, verp=True, sole=False),
        None,
        UNATTRIBUTED_OTHER_RECIPIENT,
    ),
    Gate(
        "unattributed-drops-the-claimed-campaign",
        "sent",
        mailbox("ana@example.org", campaign=C2),
        1,
        UNATTRIBUTED_NOT_SENT,
    ),
]


@pytest.mark.parametrize("gate", GATES, ids=[g.id for g in GATES])
def test_attribution_gate(gate: Gate) -> None:
    assert gate.event.evidence is not None
    gated = attribute(gate.event, gate.event.evidence, gate.trust, FOUND, SENT, {})
    assert (gated.subscriber.id if gated.subscriber else None) == gate.subscriber
    assert gated.unattributed == gate.why_not
    assert gated.campaign_uuid == gate.campaign
    if gate.address:
        assert gated.address == gate.address
    if gate.why_not:
        assert gated.notes["attribution"] == "none"
        assert gated.notes["unattributed"] == gate.why_not
    else:
        assert gated.notes["attribution"] != "none"


def test_one_message_acts_on_at_most_max_acting_recipients() -> None:
    acting: dict[str, int] = {}
    outcomes = [
        attribute(
            mailbox(f"r{n}@example.org"), Evidence("one-message"), "any", FOUND, {}, acting
        ).unattributed
        for n in range(MAX_ACTING_RECIPIENTS + 2)
    ]
    assert outcomes[:MAX_ACTING_RECIPIENTS] == [""] * MAX_ACTING_RECIPIENTS
    assert outcomes[MAX_ACTING_RECIPIENTS:] == [UNATTRIBUTED_TOO_MANY] * 2


def test_the_rules_module_imports_no_database() -> None:
    # `decide()` must stay callable without a session: its module imports neither SQLAlchemy
    # nor the database layer (the types it names come from the settings and suppression).
    tree = ast.parse(Path(rules_module.__file__ or "").read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert "stmails.services.settings" in imported
    database = {m for m in imported if m.partition(".")[0] == "sqlalchemy" or "stmails.db" in m}
    assert not database
