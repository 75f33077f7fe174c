"""`stmails import listmonk`: listmonk's own schema (v4, v5, v6 releases) loaded into a real
PostgreSQL, filled with generated data, imported into stmails on SQLite and on PostgreSQL.

The listmonk source needs PostgreSQL, so these tests run in `make test`'s PostgreSQL pass
(scripts/test.sh), where the stmails target is tested on both databases."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from typer.testing import CliRunner

from listmonk_source import SMTP, VERSIONS, Stored, load_schema, populate
from stmails.cli import commands  # noqa: F401  (registers the commands)
from stmails.cli.main import app as cli_app
from stmails.db.engine import make_engine, session_factory
from stmails.db.migrate import upgrade
from stmails.db.models import (
    Bounce,
    Campaign,
    CampaignList,
    CampaignMedia,
    Link,
    LinkClick,
    ListmonkLink,
    MailingList,
    Media,
    Role,
    RoleList,
    Setting,
    Subscriber,
    SubscriberList,
    Suppression,
    Template,
    User,
)
from stmails.services.listmonk_import import ListmonkImportError, import_listmonk

SUBSCRIBERS = 200

pytestmark = pytest.mark.skipif(
    not os.environ.get("STMAILS_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="the listmonk source is a PostgreSQL database: runs in make test's PostgreSQL pass",
)


@pytest.fixture
def source(fresh_database_url: Callable[[], str]) -> Callable[[str], tuple[str, Stored]]:
    def make(version: str) -> tuple[str, Stored]:
        url = fresh_database_url()
        engine = make_engine(url)
        try:
            load_schema(engine, version)
            stored = populate(engine, SUBSCRIBERS)
        finally:
            engine.dispose()
        return url, stored

    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def target(
    request: pytest.FixtureRequest, fresh_database_url: Callable[[], str], tmp_path: Path
) -> Iterator[Engine]:
    url = (
        f"sqlite:///{tmp_path / 'stmails.db'}"
        if request.param == "sqlite"
        else fresh_database_url()
    )
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            model.__tablename__: int(
                conn.execute(select(func.count()).select_from(model)).scalar_one()
            )
            for model in (
                Subscriber,
                MailingList,
                SubscriberList,
                Template,
                Campaign,
                CampaignList,
                CampaignMedia,
                Media,
                Bounce,
                ListmonkLink,
                Role,
                RoleList,
                User,
                Suppression,
            )
        }


@pytest.mark.parametrize("version", VERSIONS)
def test_every_listmonk_release_imports_completely_and_twice_adds_nothing(
    version: str, source: Callable[[str], tuple[str, Stored]], target: Engine
) -> None:
    url, stored = source(version)
    before = counts(target)
    seen: list[tuple[str, int, int]] = []
    report = import_listmonk(url, target, progress=lambda s, d, t: seen.append((s, d, t)))
    assert report.version == version
    after = counts(target)
    added = {k: after[k] - before[k] for k in after}
    assert added["subscribers"] == stored.subscribers
    assert added["lists"] == 3
    assert added["subscriber_lists"] == stored.subscriptions
    assert added["campaigns"] == 2 and added["campaign_lists"] == 4
    assert added["media"] == 1 and added["campaign_media"] == 1
    assert added["bounces"] == stored.bounces
    assert added["listmonk_links"] == 2
    assert added["users"] == 3
    assert added["suppressions"] == stored.blocklisted
    # Progress was reported for the big step up to its total.
    assert ("subscribers", stored.subscribers, stored.subscribers) in seen

    sessions = session_factory(target)
    with sessions() as s:
        sample = s.scalars(select(Subscriber).where(Subscriber.uuid == stored.sample["uuid"])).one()
        assert sample.email == stored.sample["email"] and sample.name == "User 7"
        assert sample.attribs == stored.sample["attribs"]
        assert s.scalar(select(func.count()).where(Subscriber.status == "blocklisted")) == (
            stored.blocklisted
        )
        # Uuids are kept: links in mail listmonk sent find the same lists and campaigns.
        newsletter = s.scalars(
            select(MailingList).where(MailingList.uuid == stored.list_uuids["Newsletter"])
        ).one()
        assert (newsletter.type, newsletter.optin, newsletter.tags) == (
            "public",
            "single",
            ["tag-Newsletter"],
        )
        old = s.scalars(select(MailingList).where(MailingList.name == "Old list")).one()
        # listmonk before v6 has no list status: every list is active there.
        assert old.status == ("archived" if version >= "v6" else "active")
        statuses = dict(
            s.execute(
                select(SubscriberList.status, func.count())
                .where(SubscriberList.list_id == newsletter.id)
                .group_by(SubscriberList.status)
            ).all()
        )
        assert statuses == {
            "unsubscribed": stored.subscribers // 7,
            "confirmed": stored.subscribers - stored.subscribers // 7,
        }
        summer = s.scalars(
            select(Campaign).where(Campaign.uuid == stored.campaign_uuids["Summer"])
        ).one()
        # A campaign listmonk was sending arrives paused, with why.
        assert summer.status == "paused" and "listmonk" in summer.pause_reason
        assert summer.sent == 40 and summer.to_send == 200
        spring = s.scalars(
            select(Campaign).where(Campaign.uuid == stored.campaign_uuids["Spring news"])
        ).one()
        assert spring.status == "finished" and spring.archive_slug == "spring-news"
        assert spring.headers == [{"X-Campaign": "yes"}]
        template = s.get(Template, spring.template_id)
        assert template is not None and template.name == "Default campaign template"
        if version >= "v6":
            assert spring.attribs == {"owner": "marketing"}
        bounce = s.scalars(select(Bounce).where(Bounce.dedup_key.like("listmonk:%"))).first()
        assert bounce is not None and bounce.campaign_id == spring.id
        assert bounce.meta["listmonk"]["diag"].startswith("550 5.1.1")
        assert (
            s.scalar(select(func.count()).where(Bounce.type == "complaint")) == stored.bounces // 10
        )
        editors = s.scalars(select(Role).where(Role.name == "Editors")).one()
        assert "subscribers:get_all" in editors.permissions
        editor = s.scalars(select(User).where(User.username == "editor")).one()
        assert editor.role_id == editors.id and editor.password_hash is None
        assert editor.list_role is not None and editor.list_role.name == "List managers"
        grants = s.scalars(select(RoleList).where(RoleList.role_id == editor.list_role.id)).all()
        assert [(g.list_id, sorted(g.permissions)) for g in grants] == [
            (newsletter.id, ["list:get", "list:manage"])
        ]
        robot = s.scalars(select(User).where(User.username == "robot")).one()
        assert robot.type == "api" and robot.token_hash is None
        smtp = s.get(Setting, "smtp")
        assert smtp is not None and smtp.value[0]["host"] == SMTP[0]["host"]
        assert smtp.value[0]["password"] == SMTP[0]["password"]
        # listmonk's routing and retry delay come along, and its sliding window settings.
        assert smtp.value[1]["from_addresses"] == ["billing@example.net", "example.org"]
        assert (smtp.value[1]["name"], smtp.value[1]["msg_retry_delay"]) == ("email-billing", "2s")
        window = s.get(Setting, "app.message_sliding_window_duration")
        assert window is not None and window.value == "1h"

    # Again: nothing doubled, nothing changed.
    again = import_listmonk(url, target)
    assert counts(target) == after
    assert again.steps["subscribers"].added == 0
    assert again.steps["subscribers"].matched == stored.subscribers


def test_an_address_stmails_already_has_is_merged_not_doubled(
    source: Callable[[str], tuple[str, Stored]], target: Engine
) -> None:
    url, stored = source("v6.2.0")
    with target.begin() as conn:
        conn.execute(
            Subscriber.__table__.insert().values(  # type: ignore[attr-defined]
                uuid="00000000-0000-4000-8000-000000000007",
                email="USER7@example.com",
                name="Already here",
                attribs={},
                status="enabled",
            )
        )
    report = import_listmonk(url, target, settings=False)
    with session_factory(target)() as s:
        rows = s.scalars(
            select(Subscriber).where(func.lower(Subscriber.email) == "user7@example.com")
        ).all()
        assert [r.name for r in rows] == ["Already here"]
        assert s.scalar(select(func.count()).select_from(Subscriber)) == stored.subscribers
        # Its listmonk subscriptions now belong to the existing subscriber.
        assert s.scalar(select(func.count()).where(SubscriberList.subscriber_id == rows[0].id)) == 1
        assert s.get(Setting, "smtp") is None
    assert any("merged" in note for note in report.steps["subscribers"].notes)


@pytest.mark.parametrize(
    ("recorded", "message"),
    [
        ("v3.0.0", "upgrade it with listmonk's own `--upgrade` first"),
        ("v7.0.0", "does not know that schema yet"),
        ("nonsense", "unknown listmonk schema version"),
    ],
)
def test_an_unknown_schema_version_is_refused_and_nothing_is_written(
    recorded: str,
    message: str,
    source: Callable[[str], tuple[str, Stored]],
    target: Engine,
) -> None:
    url, _ = source("v6.2.0")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE settings SET value = CAST(:v AS jsonb) WHERE key = 'migrations'"),
            {"v": f'["{recorded}"]'},
        )
    engine.dispose()
    before = counts(target)
    with pytest.raises(ListmonkImportError, match=message.replace("`", ".").replace("'", ".")):
        import_listmonk(url, target)
    assert counts(target) == before


def test_a_database_that_is_not_listmonk_is_refused(
    fresh_database_url: Callable[[], str], target: Engine
) -> None:
    with pytest.raises(ListmonkImportError, match="no listmonk tables"):
        import_listmonk(fresh_database_url(), target)
    with pytest.raises(ListmonkImportError, match="PostgreSQL"):
        import_listmonk("sqlite:///listmonk.db", target)


def test_the_command_line_imports_and_links_in_listmonk_mail_keep_working(
    source: Callable[[str], tuple[str, Stored]],
    fresh_database_url: Callable[[], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As a listmonk user would: `stmails import listmonk --from URL`, then the links of a
    mail listmonk sent (tracked link, unsubscribe) open on stmails."""
    from fastapi.testclient import TestClient

    from stmails.config import load_settings
    from stmails.web.app import create_app

    url, stored = source("v5.1.0")
    target_url = f"sqlite:///{tmp_path / 'stmails.db'}"
    monkeypatch.setenv("STMAILS_DATABASE_URL", target_url)
    result = CliRunner().invoke(cli_app, ["import", "listmonk", "--from", url])
    assert result.exit_code == 0, result.output
    assert "listmonk schema v5.1.0" in result.output
    line = next(
        x for x in result.output.splitlines() if x.startswith("subscribers ") and "read" in x
    )
    assert line.split() == [
        "subscribers",
        str(stored.subscribers),
        "read",
        str(stored.subscribers),
        "added",
        "0",
        "kept",
    ]
    refused = CliRunner().invoke(cli_app, ["import", "listmonk", "--from", "mysql://x/y"])
    assert refused.exit_code == 2 and "PostgreSQL" in refused.output

    engine = make_engine(target_url)
    with session_factory(engine)() as s:
        subscriber = s.scalars(
            select(Subscriber).where(Subscriber.uuid == stored.sample["uuid"])
        ).one()
    engine.dispose()
    campaign = stored.campaign_uuids["Spring news"]
    with TestClient(create_app(load_settings())) as client:
        clicked = client.get(
            f"/link/{stored.link_uuid}/{campaign}/{subscriber.uuid}", follow_redirects=False
        )
        assert clicked.status_code == 302
        assert clicked.headers["location"] == stored.link_url
        again = client.get(
            f"/link/{stored.link_uuid}/{campaign}/{subscriber.uuid}", follow_redirects=False
        )
        assert again.status_code == 302
        # listmonk's unsubscribe link: the preferences page of that subscriber.
        page = client.get(f"/subscription/{campaign}/{subscriber.uuid}")
        assert page.status_code == 200 and "user7@example.com" in page.text
        unknown = client.get(
            f"/link/{'0' * 8}-0000-4000-8000-{'0' * 12}/{campaign}/{subscriber.uuid}",
            follow_redirects=False,
        )
        assert unknown.status_code == 404
    engine = make_engine(target_url)
    with engine.connect() as conn:
        clicks = conn.execute(
            select(LinkClick.subscriber_id, Link.url).join(Link, Link.id == LinkClick.link_id)
        ).all()
    engine.dispose()
    assert [tuple(c) for c in clicks] == [(subscriber.id, stored.link_url)] * 2
