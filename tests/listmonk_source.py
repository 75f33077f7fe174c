"""A listmonk database for tests and benchmarks: listmonk's own schema.sql of a release
(tests/data/listmonk/), loaded into PostgreSQL, filled with generated data the way listmonk
stores it. `populate` returns what it stored, for the tests to compare with."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

DATA = Path(__file__).resolve().parent / "data" / "listmonk"
VERSIONS = ("v4.1.0", "v5.1.0", "v6.2.0")
SMTP = [
    {
        "enabled": True,
        "host": "smtp.example.net",
        "port": 587,
        "auth_protocol": "plain",
        "username": "sender",
        "password": "s3cret-from-listmonk",
        "hello_hostname": "",
        "max_conns": 4,
        "idle_timeout": "15s",
        "wait_timeout": "5s",
        "max_msg_retries": 2,
        "msg_retry_delay": "10ms",
        "tls_type": "STARTTLS",
        "tls_skip_verify": False,
        "email_headers": [],
    },
    # A named server (listmonk stores the name as its messenger's) routed by From: the
    # messenger `email-billing`, and the addresses of billing@ and of example.org.
    {
        "enabled": True,
        "name": "email-billing",
        "host": "billing-smtp.example.net",
        "port": 587,
        "auth_protocol": "none",
        "username": "",
        "password": "",
        "hello_hostname": "",
        "max_conns": 2,
        "idle_timeout": "15s",
        "wait_timeout": "5s",
        "max_msg_retries": 2,
        "msg_retry_delay": "2s",
        "tls_type": "STARTTLS",
        "tls_skip_verify": False,
        "email_headers": [],
        "from_addresses": ["billing@example.net", "example.org"],
    },
]


def load_schema(engine: Engine, version: str) -> None:
    """listmonk's schema.sql of `version`, run as listmonk's installer runs it, and the
    version recorded as listmonk records it (settings key `migrations`)."""
    script = (DATA / f"schema-{version}.sql").read_text(encoding="utf-8")
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(script)
        cursor.execute(
            "INSERT INTO settings (key, value) VALUES ('migrations', %s::jsonb)",
            (json.dumps([version]),),
        )
        raw.commit()
    finally:
        raw.close()


def columns(engine: Engine, table: str) -> set[str]:
    with engine.connect() as conn:
        return {
            str(c)
            for (c,) in conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = :t"
                ),
                {"t": table},
            )
        }


@dataclass
class Stored:
    """What `populate` wrote (listmonk ids and uuids), for assertions."""

    subscribers: int = 0
    blocklisted: int = 0
    subscriptions: int = 0
    list_uuids: dict[str, str] = field(default_factory=dict)
    campaign_uuids: dict[str, str] = field(default_factory=dict)
    link_uuid: str = ""
    link_url: str = ""
    bounces: int = 0
    sample: dict[str, Any] = field(default_factory=dict)


def populate(engine: Engine, subscribers: int) -> Stored:
    """Generated data in every table the importer reads (set-based SQL, so a million
    subscribers take seconds)."""
    stored = Stored(subscribers=subscribers)
    has_list_status = "status" in columns(engine, "lists")
    has_body_source = "body_source" in columns(engine, "campaigns")
    has_attribs = "attribs" in columns(engine, "campaigns")
    with engine.begin() as conn:
        x = conn.execute
        x(
            text("UPDATE settings SET value = CAST(:v AS jsonb) WHERE key = 'smtp'"),
            {"v": json.dumps(SMTP)},
        )
        x(text("UPDATE settings SET value = 'true' WHERE key = 'privacy.individual_tracking'"))
        lists = [
            ("Newsletter", "public", "single", "active"),
            ("Customers", "private", "double", "active"),
            ("Old list", "temporary", "single", "archived"),
        ]
        for name, kind, optin, status in lists:
            cols = "uuid, name, type, optin, tags, description"
            vals = (
                "gen_random_uuid(), :name, CAST(:type AS list_type), CAST(:optin AS list_optin),"
                " ARRAY['tag-' || :name]::varchar(100)[], 'about ' || :name"
            )
            if has_list_status:
                cols += ", status"
                vals += ", CAST(:status AS list_status)"
            uuid = x(
                text(f"INSERT INTO lists ({cols}) VALUES ({vals}) RETURNING uuid::text"),
                {"name": name, "type": kind, "optin": optin, "status": status},
            ).scalar_one()
            stored.list_uuids[name] = uuid
        x(
            text(
                "INSERT INTO subscribers (uuid, email, name, attribs, status) "
                "SELECT gen_random_uuid(), 'user' || i || '@example.com', 'User ' || i, "
                "jsonb_build_object('city', 'c' || (i % 5), 'n', i, 'tags', "
                "jsonb_build_array('a', i % 3)), "
                "CASE WHEN i % 50 = 0 THEN 'blocklisted' WHEN i % 20 = 0 THEN 'disabled' "
                "ELSE 'enabled' END::subscriber_status "
                "FROM generate_series(1, :n) AS i"
            ),
            {"n": subscribers},
        )
        stored.blocklisted = subscribers // 50
        x(
            text(
                "INSERT INTO subscriber_lists (subscriber_id, list_id, status, meta) "
                "SELECT s.id, l.id, CASE WHEN s.id % 7 = 0 THEN 'unsubscribed' "
                "ELSE 'confirmed' END::subscription_status, '{}' "
                "FROM subscribers s, lists l WHERE l.name = 'Newsletter'"
            )
        )
        x(
            text(
                "INSERT INTO subscriber_lists (subscriber_id, list_id, status, meta) "
                "SELECT s.id, l.id, 'unconfirmed', jsonb_build_object('optin_ip', '192.0.2.1') "
                "FROM subscribers s, lists l WHERE l.name = 'Customers' AND s.id % 2 = 0"
            )
        )
        stored.subscriptions = subscribers + subscribers // 2
        tpl = x(
            text(
                "INSERT INTO templates (name, type, subject, body, is_default) VALUES "
                "('Default campaign template', 'campaign', '', "
                "'<html><body>{{ template \"content\" . }}</body></html>', true) RETURNING id"
            )
        ).scalar_one()
        x(
            text(
                "INSERT INTO templates (name, type, subject, body, is_default) VALUES "
                "('Order receipt', 'tx', 'Your order {{ .Tx.Data.order }}', "
                "'<p>Thanks {{ .Subscriber.Name }}</p>', false)"
            )
        )
        for name, status, sent in (("Spring news", "finished", 120), ("Summer", "running", 40)):
            cols = (
                "uuid, name, subject, from_email, body, content_type, status, tags, type,"
                " messenger, template_id, to_send, sent, archive, archive_slug, headers"
            )
            vals = (
                "gen_random_uuid(), :name, 'Subject of ' || :name, 'News <news@example.com>',"
                " '<p>Hello {{ .Subscriber.FirstName }}</p>', 'richtext',"
                " CAST(:status AS campaign_status), ARRAY['t1'], 'regular', 'email', :tpl,"
                " 200, :sent, true, lower(replace(:name, ' ', '-')),"
                ' \'[{"X-Campaign": "yes"}]\''
            )
            if has_body_source:
                cols += ", body_source"
                vals += ", NULL"
            if has_attribs:
                cols += ", attribs"
                vals += ', \'{"owner": "marketing"}\''
            uuid, cid = x(
                text(f"INSERT INTO campaigns ({cols}) VALUES ({vals}) RETURNING uuid::text, id"),
                {"name": name, "status": status, "sent": sent, "tpl": tpl},
            ).one()
            stored.campaign_uuids[name] = uuid
            x(
                text(
                    "INSERT INTO campaign_lists (campaign_id, list_id, list_name) "
                    "SELECT :cid, id, name FROM lists WHERE name IN ('Newsletter', 'Customers')"
                ),
                {"cid": cid},
            )
        media_id = x(
            text(
                "INSERT INTO media (uuid, provider, filename, content_type, thumb, meta) VALUES "
                "(gen_random_uuid(), 'filesystem', 'banner.png', 'image/png', "
                "'thumb_banner.png', '{\"width\": 600, \"height\": 200}') RETURNING id"
            )
        ).scalar_one()
        x(
            text(
                "INSERT INTO campaign_media (campaign_id, media_id, filename) "
                "SELECT id, :m, 'banner.png' FROM campaigns WHERE name = 'Spring news'"
            ),
            {"m": media_id},
        )
        x(
            text(
                "INSERT INTO bounces (subscriber_id, campaign_id, type, source, meta) "
                "SELECT s.id, c.id, CASE WHEN s.id % 10 = 0 THEN 'complaint' "
                "WHEN s.id % 3 = 0 THEN 'soft' ELSE 'hard' END::bounce_type, 'pop3', "
                "jsonb_build_object('diag', '550 5.1.1 unknown ' || s.email) "
                "FROM subscribers s, campaigns c "
                "WHERE c.name = 'Spring news' AND s.id <= :b"
            ),
            {"b": min(30, subscribers)},
        )
        stored.bounces = min(30, subscribers)
        link = x(
            text(
                "INSERT INTO links (uuid, url) VALUES (gen_random_uuid(), "
                "'https://example.com/spring?a=1') RETURNING uuid::text, url"
            )
        ).one()
        stored.link_uuid, stored.link_url = link[0], link[1]
        x(text("INSERT INTO links (uuid, url) VALUES (gen_random_uuid(), 'javascript:alert(1)')"))
        perms = "ARRAY['subscribers:get_all','campaigns:get_all','bogus:thing']"
        x(text("INSERT INTO roles (type, name, permissions) VALUES ('user', 'Super Admin', '{}')"))
        x(text(f"INSERT INTO roles (type, name, permissions) VALUES ('user', 'Editors', {perms})"))
        parent = x(
            text("INSERT INTO roles (type, name) VALUES ('list', 'List managers') RETURNING id")
        ).scalar_one()
        x(
            text(
                "INSERT INTO roles (type, parent_id, list_id, permissions) "
                "SELECT 'list', :p, id, ARRAY['list:get','list:manage'] FROM lists "
                "WHERE name = 'Newsletter'"
            ),
            {"p": parent},
        )
        for username, kind, role in (
            ("boss", "user", "Super Admin"),
            ("editor", "user", "Editors"),
            ("robot", "api", "Editors"),
        ):
            x(
                text(
                    "INSERT INTO users (username, password_login, password, email, name, type,"
                    " user_role_id, list_role_id, status) SELECT :u, true,"
                    " '$2a$10$abcdefghijklmnopqrstuv', :u || '@example.com', initcap(:u),"
                    " CAST(:k AS user_type), r.id,"
                    " CASE WHEN :u = 'editor' THEN :p END, 'enabled'"
                    " FROM roles r WHERE r.type = 'user' AND r.name = :r"
                ),
                {"u": username, "k": kind, "r": role, "p": parent},
            )
        sample = x(
            text(
                "SELECT uuid::text, email, name, attribs::text FROM subscribers "
                "WHERE email = 'user7@example.com'"
            )
        ).one()
        stored.sample = {
            "uuid": sample[0],
            "email": sample[1],
            "name": sample[2],
            "attribs": json.loads(sample[3]),
        }
    return stored
