"""Migration 0009_parity: existing rows get listmonk's defaults, and a new installation gets
the default campaign template and a sample transactional template (once)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text

from stmails.db.engine import make_engine
from stmails.db.migrate import upgrade
from stmails.services.default_templates import CAMPAIGN_BODY, TX_SUBJECT


def test_a_new_installation_gets_the_default_templates(
    fresh_database_url: Callable[[], str],
) -> None:
    eng = make_engine(fresh_database_url())
    try:
        upgrade(eng)
        upgrade(eng)
        with eng.connect() as conn:
            rows = conn.execute(
                text("SELECT type, is_default, subject, body FROM templates ORDER BY id")
            ).all()
        assert [(r[0], bool(r[1])) for r in rows] == [("campaign", True), ("tx", False)]
        assert rows[0][3] == CAMPAIGN_BODY and '{{ template "content" . }}' in rows[0][3]
        assert rows[1][2] == TX_SUBJECT
    finally:
        eng.dispose()


def test_an_upgrade_keeps_its_templates_and_gains_the_new_columns(
    fresh_database_url: Callable[[], str],
) -> None:
    eng = make_engine(fresh_database_url())
    stamp = {"t": "2026-03-02 09:00:00"}
    try:
        upgrade(eng, "0006_analytics")
        with eng.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO templates (name, type, subject, body, is_default, created_at,"
                    " updated_at) VALUES ('Mine', 'campaign', '', :b, true, :t, :t)"
                ),
                {**stamp, "b": '<div>{{ template "content" . }}</div>'},
            )
            conn.execute(
                text(
                    "INSERT INTO lists (id, uuid, name, type, optin, tags, description,"
                    " created_at, updated_at) VALUES (1, 'l1', 'L', 'public', 'single', '[]',"
                    " '', :t, :t)"
                ),
                stamp,
            )
            conn.execute(
                text(
                    "INSERT INTO roles (name, permissions, created_at, updated_at)"
                    " VALUES ('Editors', '[]', :t, :t)"
                ),
                stamp,
            )
            conn.execute(
                text(
                    "INSERT INTO users (username, type, status, created_at, role_id)"
                    " VALUES ('old', 'admin', 'enabled', :t, (SELECT id FROM roles))"
                ),
                stamp,
            )
            conn.execute(
                text(
                    "INSERT INTO campaigns (id, uuid, name, subject, from_email, body,"
                    " content_type, status, tags, headers, messenger, to_send, sent, skipped,"
                    " failed, last_subscriber_id, created_at, updated_at) VALUES (1, 'c1', 'C',"
                    " 'S', '', '', 'html', 'draft', '[]', '[]', 'email', 0, 0, 0, 0, 0, :t, :t)"
                ),
                stamp,
            )
        upgrade(eng)
        with eng.connect() as conn:
            templates = conn.execute(text("SELECT name, type FROM templates ORDER BY id")).all()
            status = conn.execute(text("SELECT status FROM lists")).scalar()
            role = conn.execute(text("SELECT type, name FROM roles")).one()
            user = conn.execute(text("SELECT username, list_role_id FROM users")).one()
            campaign = conn.execute(text("SELECT attribs, body_source FROM campaigns")).one()
        # The installation's own campaign template stays the only one; the sample tx is added.
        assert [tuple(t) for t in templates] == [
            ("Mine", "campaign"),
            ("Sample transactional template", "tx"),
        ]
        assert status == "active"
        assert tuple(role) == ("user", "Editors")
        assert tuple(user) == ("old", None)
        assert campaign[1] is None and campaign[0] in ({}, "{}")
    finally:
        eng.dispose()
