"""Copying a listmonk database into stmails, step by step, idempotently.

Every row is matched by what identifies it in both systems: uuids (subscribers, lists,
campaigns, media, links), the address (a subscriber stmails already has under another uuid is
merged, not doubled), names (templates by name and type, roles by type and name, users by user
name) and, for bounces, a dedup key made of listmonk's bounce id. A row stmails already has is
left as it is, so a second run adds only what is new in listmonk and changes nothing else;
settings are the exception: they are written again on every run (unless skipped).

Campaigns that were running or scheduled in listmonk arrive paused, with the reason: stmails
cannot know which subscribers listmonk already mailed, and must not start sending by itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import (
    BOUNCE_TYPES,
    CAMPAIGN_STATUSES,
    CONTENT_TYPES,
    LIST_OPTINS,
    LIST_STATUSES,
    LIST_TYPES,
    MEDIA_PROVIDERS,
    SUBSCRIBER_STATUSES,
    TEMPLATE_TYPES,
    Bounce,
    Campaign,
    CampaignList,
    CampaignMedia,
    ListmonkLink,
    MailingList,
    Media,
    Role,
    RoleList,
    Subscriber,
    SubscriberList,
    Template,
    User,
)
from stmails.db.types import email_hash, normalize_email, utcnow
from stmails.db.upsert import insert_rows_or_ignore
from stmails.services import settings as settings_service
from stmails.services import subscribers, suppression
from stmails.services.bounces import count_key_of
from stmails.services.errors import InvalidInput
from stmails.services.listmonk_import.source import SchemaVersion, Source

Progress = Callable[[str, int, int], None]
SUBSCRIPTION_STATUSES = ("unconfirmed", "confirmed", "unsubscribed")
# Rows per INSERT: well under SQLite's 32,766 parameters for the widest table here.
CHUNK = 500
PAUSED_REASON = (
    "Imported from listmonk while {status} ({sent} of {to_send} sent). stmails does not know "
    "which subscribers listmonk already mailed: resuming sends to every subscriber of its lists."
)


@dataclass
class StepReport:
    """What one step did: rows seen in listmonk, rows added, rows already there (matched)."""

    seen: int = 0
    added: int = 0
    matched: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    """The whole import: the source's schema version and each step's figures."""

    version: str
    steps: dict[str, StepReport] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: for the API job and `--json`."""
        return {
            "version": self.version,
            "steps": {
                name: {
                    "seen": step.seen,
                    "added": step.added,
                    "matched": step.matched,
                    "notes": step.notes,
                }
                for name, step in self.steps.items()
            },
        }


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def _aware(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return utcnow()


def _maybe_aware(value: Any) -> datetime | None:
    return _aware(value) if isinstance(value, datetime) else None


def _json(value: Any, default: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return default
    return default if value is None else value


def _one_of(value: Any, allowed: Sequence[str], default: str) -> str:
    return value if isinstance(value, str) and value in allowed else default


def _chunks(rows: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class Importer:
    """One run: `run()` copies every step inside its own target transactions."""

    def __init__(
        self,
        source: Source,
        target: Engine,
        *,
        settings: bool = True,
        progress: Progress | None = None,
    ) -> None:
        self.src = source
        self.target = target
        self.sessions: sessionmaker[Session] = sessionmaker(target, expire_on_commit=False)
        self.with_settings = settings
        self.progress = progress or (lambda step, done, total: None)
        self.report = ImportReport(str(source.version))
        # listmonk id -> stmails id, per kind.
        self.lists: dict[int, int] = {}
        self.templates: dict[int, int] = {}
        self.subscribers: dict[int, int] = {}
        self.subscriber_emails: dict[int, str] = {}
        self.campaigns: dict[int, tuple[int, str]] = {}
        self.media: dict[int, int] = {}
        self.roles: dict[int, int] = {}

    @property
    def version(self) -> SchemaVersion:
        return self.src.version

    def run(self) -> ImportReport:
        """Every step, in dependency order."""
        self._lists()
        self._templates()
        self._media()
        self._subscribers()
        self._subscriptions()
        self._campaigns()
        self._bounces()
        self._links()
        self._roles()
        self._users()
        if self.with_settings:
            self._settings()
        return self.report

    def _step(self, name: str) -> StepReport:
        return self.report.steps.setdefault(name, StepReport())

    def _insert_by_uuid(
        self, conn: Connection, model: Any, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> tuple[dict[str, int], int]:
        """Inserts `rows` (the uuid first) unless a row clashes; (stmails id of every row's
        uuid that exists now, how many were added). The ids of added rows come back from the
        insert; only the rows that were there already are looked up."""
        table = _table(model)
        ids: dict[str, int] = {}
        for part in _chunks(rows):
            inserted = insert_rows_or_ignore(conn, table, columns, part, ("uuid", "id"))
            ids.update((str(u), int(i)) for u, i in inserted)
        added = len(ids)
        kept = [row[0] for row in rows if row[0] not in ids]
        if kept:
            ids.update(
                conn.execute(select(table.c.uuid, table.c.id).where(table.c.uuid.in_(kept))).all()
            )
        return ids, added

    # --- lists, templates, media: small tables keyed by uuid or name -----------------------

    def _lists(self) -> None:
        step = self._step("lists")
        total = self.src.count("lists")
        wanted = {
            "id": "id",
            "uuid": "uuid::text",
            "name": "name",
            "type": "type::text",
            "optin": "optin::text",
            "status": "status::text" if self.src.has("lists", "status") else "='active'",
            "tags": "COALESCE(to_json(tags), '[]'::json)",
            "description": "description",
            "created_at": "created_at",
            "updated_at": "updated_at",
        }
        for batch in self.src.rows("lists", wanted):
            with self.target.begin() as conn:
                rows = [
                    (
                        str(r["uuid"]),
                        str(r["name"])[:500],
                        _one_of(r["type"], LIST_TYPES, "private"),
                        _one_of(r["optin"], LIST_OPTINS, "single"),
                        _one_of(r["status"], LIST_STATUSES, "active"),
                        [str(t) for t in _json(r["tags"], []) or []],
                        str(r["description"] or ""),
                        _aware(r["created_at"]),
                        _aware(r["updated_at"]),
                    )
                    for r in batch
                ]
                ids, added = self._insert_by_uuid(
                    conn,
                    MailingList,
                    (
                        "uuid",
                        "name",
                        "type",
                        "optin",
                        "status",
                        "tags",
                        "description",
                        "created_at",
                        "updated_at",
                    ),
                    rows,
                )
                step.added += added
            for r in batch:
                self.lists[int(r["id"])] = ids[str(r["uuid"])]
            step.seen += len(batch)
            self.progress("lists", step.seen, total)
        step.matched = step.seen - step.added

    def _templates(self) -> None:
        step = self._step("templates")
        total = self.src.count("templates")
        wanted = {
            "id": "id",
            "name": "name",
            "type": "type::text",
            "subject": "subject",
            "body": "body",
            "body_source": self.src.optional("templates", "body_source", "NULL"),
            "is_default": "is_default",
            "created_at": "created_at",
            "updated_at": "updated_at",
        }
        with self.sessions.begin() as session:
            for batch in self.src.rows("templates", wanted):
                for r in batch:
                    step.seen += 1
                    kind = _one_of(r["type"], TEMPLATE_TYPES, "campaign")
                    name = str(r["name"])[:500]
                    existing = session.scalar(
                        select(Template.id).where(Template.name == name, Template.type == kind)
                    )
                    if existing is not None:
                        self.templates[int(r["id"])] = int(existing)
                        step.matched += 1
                        continue
                    template = Template(
                        name=name,
                        type=kind,
                        subject=str(r["subject"] or "")[:1000],
                        body=str(r["body"] or ""),
                        is_default=False,
                        created_at=_aware(r["created_at"]),
                        updated_at=_aware(r["updated_at"]),
                    )
                    session.add(template)
                    session.flush()
                    self.templates[int(r["id"])] = template.id
                    step.added += 1
                    if r["is_default"]:
                        step.notes.append(
                            f"listmonk's default template {name!r} was imported; stmails' "
                            "default is unchanged (PUT /api/templates/{id}/default to change it)"
                        )
                self.progress("templates", step.seen, total)

    def _media(self) -> None:
        step = self._step("media")
        total = self.src.count("media")
        wanted = {
            "id": "id",
            "uuid": "uuid::text",
            "provider": "provider",
            "filename": "filename",
            "content_type": "content_type",
            "thumb": "thumb",
            "meta": "meta::text",
            "created_at": "created_at",
        }
        for batch in self.src.rows("media", wanted):
            with self.target.begin() as conn:
                rows = [
                    (
                        str(r["uuid"]),
                        _one_of(r["provider"], MEDIA_PROVIDERS, "filesystem"),
                        str(r["filename"])[:255],
                        str(r["content_type"] or "application/octet-stream")[:255],
                        str(r["thumb"] or "")[:255],
                        _json(r["meta"], {}) or {},
                        _aware(r["created_at"]),
                    )
                    for r in batch
                ]
                ids, added = self._insert_by_uuid(
                    conn,
                    Media,
                    (
                        "uuid",
                        "provider",
                        "filename",
                        "content_type",
                        "thumb",
                        "meta",
                        "created_at",
                    ),
                    rows,
                )
                step.added += added
            for r in batch:
                found = ids.get(str(r["uuid"]))
                if found is not None:
                    self.media[int(r["id"])] = found
                else:
                    step.notes.append(
                        f"media {r['filename']!r}: stmails has another file of that name"
                    )
            step.seen += len(batch)
            self.progress("media", step.seen, total)
        step.matched = step.seen - step.added - sum(1 for n in step.notes if n.startswith("media"))
        if step.seen:
            step.notes.append(
                "media records were imported; copy the files of listmonk's upload folder "
                "(or point stmails at the same S3 bucket) so that they are served"
            )

    # --- subscribers: the big table ---------------------------------------------------------

    def _subscribers(self) -> None:
        step = self._step("subscribers")
        total = self.src.count("subscribers")
        wanted = {
            "id": "id",
            "uuid": "uuid::text",
            "email": "email",
            "name": "name",
            "attribs": "attribs::text",
            "status": "status::text",
            "created_at": "created_at",
            "updated_at": "updated_at",
        }
        columns = ("uuid", "email", "name", "attribs", "status", "created_at", "updated_at")
        for batch in self.src.rows("subscribers", wanted):
            rows = []
            for r in batch:
                attribs = _json(r["attribs"], {})
                rows.append(
                    (
                        str(r["uuid"]),
                        str(r["email"]).strip()[:320],
                        str(r["name"] or "")[:500],
                        attribs if isinstance(attribs, dict) else {},
                        _one_of(r["status"], SUBSCRIBER_STATUSES, "enabled"),
                        _aware(r["created_at"]),
                        _aware(r["updated_at"]),
                    )
                )
            with self.target.begin() as conn:
                by_uuid, added = self._insert_by_uuid(conn, Subscriber, columns, rows)
                missing = [
                    normalize_email(str(r["email"])) for r in batch if str(r["uuid"]) not in by_uuid
                ]
                by_email: dict[str, int] = {}
                if missing:
                    by_email = {
                        normalize_email(email): sid
                        for email, sid in conn.execute(
                            select(Subscriber.email, Subscriber.id).where(
                                subscribers.email_in(missing)
                            )
                        )
                    }
                blocked = []
                for r in batch:
                    sid = by_uuid.get(str(r["uuid"]))
                    email = normalize_email(str(r["email"]))
                    if sid is None:
                        sid = by_email.get(email)
                        if sid is None:
                            step.notes.append(f"subscriber {r['id']}: could not be stored")
                            continue
                        step.notes.append(
                            f"subscriber {r['id']}: merged with stmails' subscriber {sid} "
                            "(same address, another uuid)"
                        )
                    self.subscribers[int(r["id"])] = int(sid)
                    self.subscriber_emails[int(r["id"])] = email
                    if r["status"] == "blocklisted":
                        blocked.append(
                            suppression.NewSuppression(
                                hashed=email_hash(email),
                                reason="manual",
                                email=email,
                                source="listmonk-import",
                                description="blocklisted in listmonk",
                            )
                        )
                if blocked:
                    with Session(bind=conn) as session:
                        suppression.add_many(session, blocked)
                        session.flush()
            step.added += added
            step.seen += len(batch)
            self.progress("subscribers", step.seen, total)
        step.matched = step.seen - step.added
        if len(step.notes) > 50:
            step.notes[50:] = [f"... and {len(step.notes) - 50} more"]

    def _subscriptions(self) -> None:
        step = self._step("subscriptions")
        total = self.src.count("subscriber_lists")
        wanted = {
            "subscriber_id": "subscriber_id",
            "list_id": "list_id",
            "status": "status::text",
            "meta": "meta::text",
            "created_at": "created_at",
            "updated_at": "updated_at",
        }
        columns = ("subscriber_id", "list_id", "status", "meta", "created_at", "updated_at")
        for batch in self.src.rows("subscriber_lists", wanted, order=("subscriber_id", "list_id")):
            rows = []
            for r in batch:
                sid = self.subscribers.get(int(r["subscriber_id"]))
                lid = self.lists.get(int(r["list_id"])) if r["list_id"] is not None else None
                if sid is None or lid is None:
                    continue
                meta = _json(r["meta"], {})
                rows.append(
                    (
                        sid,
                        lid,
                        _one_of(r["status"], SUBSCRIPTION_STATUSES, "unconfirmed"),
                        meta if isinstance(meta, dict) else {},
                        _aware(r["created_at"]),
                        _aware(r["updated_at"]),
                    )
                )
            with self.target.begin() as conn:
                for part in _chunks(rows):
                    step.added += len(
                        insert_rows_or_ignore(
                            conn, _table(SubscriberList), columns, part, ("subscriber_id",)
                        )
                    )
            step.seen += len(batch)
            self.progress("subscriptions", step.seen, total)
        step.matched = step.seen - step.added

    # --- campaigns, bounces, links ----------------------------------------------------------

    def _campaigns(self) -> None:
        step = self._step("campaigns")
        total = self.src.count("campaigns")
        has = self.src.has
        wanted = {
            "id": "id",
            "uuid": "uuid::text",
            "name": "name",
            "subject": "subject",
            "from_email": "from_email",
            "body": "body",
            "body_source": "body_source" if has("campaigns", "body_source") else "=NULL",
            "altbody": "altbody" if has("campaigns", "altbody") else "=NULL",
            "content_type": "content_type::text",
            "send_at": "send_at",
            "headers": "headers::text",
            "attribs": "attribs::text" if has("campaigns", "attribs") else "='{}'",
            "status": "status::text",
            "tags": "COALESCE(to_json(tags), '[]'::json)",
            "type": "type::text",
            "messenger": "messenger",
            "template_id": "template_id",
            "to_send": "to_send",
            "sent": "sent",
            "archive": "archive" if has("campaigns", "archive") else "=false",
            "archive_slug": "archive_slug" if has("campaigns", "archive_slug") else "=NULL",
            "archive_template_id": "archive_template_id"
            if has("campaigns", "archive_template_id")
            else "=NULL",
            "archive_meta": "archive_meta::text" if has("campaigns", "archive_meta") else "='{}'",
            "started_at": "started_at",
            "created_at": "created_at",
            "updated_at": "updated_at",
        }
        with self.sessions.begin() as session:
            for batch in self.src.rows("campaigns", wanted):
                for r in batch:
                    step.seen += 1
                    uuid = str(r["uuid"])
                    existing = session.execute(
                        select(Campaign.id, Campaign.uuid).where(Campaign.uuid == uuid)
                    ).first()
                    if existing is not None:
                        self.campaigns[int(r["id"])] = (int(existing[0]), uuid)
                        step.matched += 1
                        continue
                    status = _one_of(r["status"], CAMPAIGN_STATUSES, "draft")
                    reason = ""
                    if status in ("running", "scheduled"):
                        reason = PAUSED_REASON.format(
                            status=status, sent=r["sent"], to_send=r["to_send"]
                        )
                        step.notes.append(f"campaign {r['name']!r}: {status} in listmonk, paused")
                        status = "paused"
                    slug = r["archive_slug"]
                    if slug and session.scalar(
                        select(Campaign.id).where(Campaign.archive_slug == slug)
                    ):
                        step.notes.append(f"campaign {r['name']!r}: archive slug {slug!r} taken")
                        slug = None
                    headers = _json(r["headers"], [])
                    campaign = Campaign(
                        uuid=uuid,
                        name=str(r["name"])[:500],
                        subject=str(r["subject"])[:1000],
                        from_email=str(r["from_email"] or "")[:500],
                        body=str(r["body"] or ""),
                        body_source=r["body_source"],
                        altbody=r["altbody"],
                        content_type=_one_of(r["content_type"], CONTENT_TYPES, "richtext"),
                        template_id=self.templates.get(int(r["template_id"]))
                        if r["template_id"] is not None
                        else None,
                        status=status,
                        pause_reason=reason,
                        send_at=_maybe_aware(r["send_at"]),
                        started_at=_maybe_aware(r["started_at"]),
                        tags=[str(t) for t in _json(r["tags"], []) or []],
                        headers=headers if isinstance(headers, list) else [],
                        attribs=_json(r["attribs"], {}) or {},
                        messenger=str(r["messenger"] or "email")[:100],
                        type=_one_of(r["type"], ("regular", "optin"), "regular"),
                        to_send=int(r["to_send"] or 0),
                        sent=int(r["sent"] or 0),
                        archive=bool(r["archive"]),
                        archive_slug=slug,
                        archive_template_id=self.templates.get(int(r["archive_template_id"]))
                        if r["archive_template_id"] is not None
                        else None,
                        archive_meta=_json(r["archive_meta"], {}) or {},
                        created_at=_aware(r["created_at"]),
                        updated_at=_aware(r["updated_at"]),
                    )
                    session.add(campaign)
                    session.flush()
                    self.campaigns[int(r["id"])] = (campaign.id, uuid)
                    step.added += 1
                self.progress("campaigns", step.seen, total)
            self._campaign_links(session)

    def _campaign_links(self, session: Session) -> None:
        """Which lists and media each campaign had (matched by pair, so never doubled)."""
        for batch in self.src.rows(
            "campaign_lists",
            {"campaign_id": "campaign_id", "list_id": "list_id", "list_name": "list_name"},
        ):
            for r in batch:
                campaign = self.campaigns.get(int(r["campaign_id"]))
                if campaign is None:
                    continue
                lid = self.lists.get(int(r["list_id"])) if r["list_id"] is not None else None
                exists = session.scalar(
                    select(CampaignList.id).where(
                        CampaignList.campaign_id == campaign[0],
                        CampaignList.list_id.is_(None)
                        if lid is None
                        else CampaignList.list_id == lid,
                        CampaignList.list_name == str(r["list_name"] or "")[:500],
                    )
                )
                if exists is None:
                    session.add(
                        CampaignList(
                            campaign_id=campaign[0],
                            list_id=lid,
                            list_name=str(r["list_name"] or "")[:500],
                        )
                    )
        session.flush()
        for batch in self.src.rows(
            "campaign_media",
            {"campaign_id": "campaign_id", "media_id": "media_id", "filename": "filename"},
            order=("campaign_id", "media_id"),
        ):
            for r in batch:
                campaign = self.campaigns.get(int(r["campaign_id"]))
                mid = self.media.get(int(r["media_id"])) if r["media_id"] is not None else None
                if campaign is None or mid is None:
                    continue
                exists = session.scalar(
                    select(CampaignMedia.id).where(
                        CampaignMedia.campaign_id == campaign[0], CampaignMedia.media_id == mid
                    )
                )
                if exists is None:
                    session.add(
                        CampaignMedia(
                            campaign_id=campaign[0],
                            media_id=mid,
                            filename=str(r["filename"] or "")[:255],
                        )
                    )

    def _bounces(self) -> None:
        step = self._step("bounces")
        total = self.src.count("bounces")
        wanted = {
            "id": "id",
            "subscriber_id": "subscriber_id",
            "campaign_id": "campaign_id",
            "type": "type::text",
            "source": "source",
            "meta": "meta::text",
            "created_at": "created_at",
        }
        columns = (
            "subscriber_id",
            "email",
            "email_hash",
            "campaign_id",
            "campaign_uuid",
            "type",
            "effective_type",
            "reason",
            "status",
            "replycode",
            "diagnostic",
            "feedback_type",
            "source",
            "dedup_key",
            "count_key",
            "meta",
            "created_at",
            "recorded_at",
        )
        now = utcnow()
        for batch in self.src.rows("bounces", wanted):
            rows = []
            for r in batch:
                sid = self.subscribers.get(int(r["subscriber_id"]))
                email = self.subscriber_emails.get(int(r["subscriber_id"]), "")
                if sid is None:
                    continue
                campaign = (
                    self.campaigns.get(int(r["campaign_id"]))
                    if r["campaign_id"] is not None
                    else None
                )
                kind = _one_of(r["type"], BOUNCE_TYPES, "hard")
                occurred = _aware(r["created_at"])
                meta = _json(r["meta"], {})
                meta = meta if isinstance(meta, dict) else {"listmonk": meta}
                rows.append(
                    (
                        sid,
                        email,
                        email_hash(email),
                        campaign[0] if campaign else None,
                        campaign[1] if campaign else "",
                        kind,
                        kind,
                        "complaint" if kind == "complaint" else "undefined",
                        "",
                        "",
                        "",
                        "abuse" if kind == "complaint" else "",
                        ("listmonk:" + str(r["source"] or "api"))[:64],
                        f"listmonk:{r['id']}",
                        count_key_of(campaign[1] if campaign else "", occurred),
                        {"listmonk": meta, "listmonk_bounce_id": int(r["id"])},
                        occurred,
                        now,
                    )
                )
            with self.target.begin() as conn:
                for part in _chunks(rows):
                    step.added += len(
                        insert_rows_or_ignore(conn, _table(Bounce), columns, part, ("id",))
                    )
            step.seen += len(batch)
            self.progress("bounces", step.seen, total)
        step.matched = step.seen - step.added
        if step.seen:
            step.notes.append(
                "bounces are history: listmonk already applied its actions (blocklisted "
                "subscribers arrive blocklisted and on the suppression list)"
            )

    def _links(self) -> None:
        step = self._step("links")
        total = self.src.count("links")
        for batch in self.src.rows(
            "links", {"uuid": "uuid::text", "url": "url", "created_at": "created_at"}
        ):
            rows = [(str(r["uuid"]), str(r["url"]), _aware(r["created_at"])) for r in batch]
            with self.target.begin() as conn:
                for part in _chunks(rows):
                    step.added += len(
                        insert_rows_or_ignore(
                            conn,
                            _table(ListmonkLink),
                            ("uuid", "url", "created_at"),
                            part,
                            ("uuid",),
                        )
                    )
            step.seen += len(batch)
            self.progress("links", step.seen, total)
        step.matched = step.seen - step.added

    # --- roles, users, settings -------------------------------------------------------------

    def _roles(self) -> None:
        step = self._step("roles")
        total = self.src.count("roles")
        wanted = {
            "id": "id",
            "type": "type::text",
            "parent_id": "parent_id",
            "list_id": "list_id",
            "permissions": "to_json(permissions)",
            "name": "name",
        }
        children: list[dict[str, Any]] = []
        with self.sessions.begin() as session:
            for batch in self.src.rows("roles", wanted):
                for r in batch:
                    if r["parent_id"] is not None:
                        children.append(r)
                        continue
                    step.seen += 1
                    kind = _one_of(r["type"], ("user", "list"), "user")
                    name = str(r["name"] or f"listmonk role {r['id']}")[:200]
                    existing = session.scalar(
                        select(Role).where(Role.type == kind, Role.name == name)
                    )
                    if existing is not None:
                        self.roles[int(r["id"])] = existing.id
                        step.matched += 1
                        continue
                    perms = [str(p) for p in _json(r["permissions"], []) or []]
                    role = Role(name=name, type=kind, permissions=perms if kind == "user" else [])
                    session.add(role)
                    session.flush()
                    self.roles[int(r["id"])] = role.id
                    step.added += 1
            for r in children:
                role_id = self.roles.get(int(r["parent_id"]))
                lid = self.lists.get(int(r["list_id"])) if r["list_id"] is not None else None
                if role_id is None or lid is None:
                    continue
                if session.get(RoleList, (role_id, lid)) is None:
                    perms = [
                        str(p)
                        for p in _json(r["permissions"], []) or []
                        if p in ("list:get", "list:manage")
                    ]
                    session.add(RoleList(role_id=role_id, list_id=lid, permissions=perms))
            self.progress("roles", step.seen + len(children), total)

    def _users(self) -> None:
        step = self._step("users")
        total = self.src.count("users")
        wanted = {
            "id": "id",
            "username": "username",
            "email": "email",
            "name": "name",
            "type": "type::text",
            "user_role_id": "user_role_id",
            "list_role_id": "list_role_id",
            "status": "status::text",
            "created_at": "created_at",
        }
        without_password = 0
        with self.sessions.begin() as session:
            for batch in self.src.rows("users", wanted):
                for r in batch:
                    step.seen += 1
                    username = str(r["username"])[:200]
                    if session.scalar(select(User.id).where(User.username == username)):
                        step.matched += 1
                        continue
                    role_id = self.roles.get(int(r["user_role_id"]))
                    if role_id is None:
                        step.notes.append(f"user {username!r}: its role was not imported")
                        continue
                    list_role = (
                        self.roles.get(int(r["list_role_id"]))
                        if r["list_role_id"] is not None
                        else None
                    )
                    session.add(
                        User(
                            username=username,
                            type="api" if r["type"] == "api" else "admin",
                            password_hash=None,
                            token_hash=None,
                            status=_one_of(r["status"], ("enabled", "disabled"), "enabled"),
                            role_id=role_id,
                            list_role_id=list_role,
                            name=str(r["name"] or "")[:200],
                            email=str(r["email"] or "")[:255],
                            created_at=_aware(r["created_at"]),
                        )
                    )
                    session.flush()
                    without_password += 1
                    step.added += 1
            self.progress("users", step.seen, total)
        if without_password:
            step.notes.append(
                f"{without_password} users imported without a password or token (listmonk's "
                "bcrypt hashes are not carried over): each sets a password through the "
                "password reset page, and API users get a new token (PUT /api/users/{id})"
            )

    def _settings(self) -> None:
        step = self._step("settings")
        known = settings_service.DEFAULTS
        stored: dict[str, Any] = {}
        for batch in self.src.rows(
            "settings", {"key": "key", "value": "value::text"}, order=("key",)
        ):
            for r in batch:
                key = str(r["key"])
                if key == "migrations":
                    continue
                step.seen += 1
                if key not in known:
                    continue
                stored[key] = _json(r["value"], None)
        with self.sessions.begin() as session:
            for key, value in sorted(stored.items()):
                try:
                    with session.begin_nested():
                        settings_service.set_value(session, key, value)
                    step.added += 1
                except InvalidInput as exc:
                    step.notes.append(f"setting {key} not imported: {exc}")
        left_out = step.seen - len(stored)
        if left_out:
            step.notes.append(
                f"{left_out} listmonk settings have no stmails equivalent and were left out"
            )
