"""The small read queries behind admin pages (form choices, the dashboard's running sends, the
templates list): services.lists, services.templates and services.campaign_records, on the
test database."""

from __future__ import annotations

from sqlalchemy.orm import Session

from stmails.db.models import Campaign, MailingList, Template
from stmails.services import campaign_records, lists, templates

BODY = '<html><body>{{ template "content" . }}</body></html>'


def _template(session: Session, name: str, kind: str, *, default: bool = False) -> Template:
    template = Template(name=name, type=kind, body=BODY, is_default=default)
    session.add(template)
    session.flush()
    return template


def _campaign(session: Session, name: str, mlist: MailingList, **fields: object) -> Campaign:
    return campaign_records.create(
        session, name=name, subject="s", list_ids=[mlist.id], body="<p>b</p>", **fields
    )


def test_list_names_by_name(session: Session) -> None:
    b = lists.create(session, name="Beta")
    a = lists.create(session, name="Alpha")
    assert lists.names(session) == [(a.id, "Alpha"), (b.id, "Beta")]


def test_campaign_template_choices_by_name_without_other_types(session: Session) -> None:
    z = _template(session, "Zed", "campaign", default=True)
    a = _template(session, "Ant", "campaign")
    _template(session, "Mail", "tx")
    _template(session, "Visual", "campaign_visual")
    assert templates.campaign_choices(session) == [(a.id, "Ant", False), (z.id, "Zed", True)]


def test_templates_by_type_and_name_skip_visual_ones(session: Session) -> None:
    _template(session, "Visual", "campaign_visual")
    tx = _template(session, "A tx", "tx")
    b = _template(session, "B", "campaign")
    a = _template(session, "A", "campaign")
    assert [t.id for t in templates.by_type_and_name(session)] == [a.id, b.id, tx.id]


def test_campaign_counts_per_template(session: Session) -> None:
    mlist = lists.create(session, name="L")
    used = _template(session, "Used", "campaign")
    _template(session, "Unused", "campaign")
    _campaign(session, "One", mlist, template_id=used.id)
    _campaign(session, "Two", mlist, template_id=used.id)
    _campaign(session, "Visual", mlist, content_type="visual")  # no template
    assert templates.campaign_counts(session) == {used.id: 2}


def test_newest_campaign_names(session: Session) -> None:
    mlist = lists.create(session, name="L")
    made = [_campaign(session, f"C{n}", mlist) for n in range(3)]
    assert campaign_records.newest_names(session, 2) == [
        (made[2].id, "C2"),
        (made[1].id, "C1"),
    ]


def test_running_progress_newest_running_first(session: Session) -> None:
    mlist = lists.create(session, name="L")
    old = _campaign(session, "Old", mlist)
    _campaign(session, "Draft", mlist)
    new = _campaign(session, "New", mlist)
    for campaign, sent in ((old, 4), (new, 0)):
        campaign.status, campaign.to_send, campaign.sent = "running", 10, sent
    session.flush()
    assert campaign_records.running_progress(session, 5) == [
        (new.id, "New", "running", 10, 0),
        (old.id, "Old", "running", 10, 4),
    ]
    assert campaign_records.running_progress(session, 1) == [(new.id, "New", "running", 10, 0)]
