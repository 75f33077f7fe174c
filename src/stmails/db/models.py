"""The database schema: SQLAlchemy 2.0 typed models, portable across SQLite and PostgreSQL.

Enumerated columns are short strings guarded by CHECK constraints (portable, readable in SQL);
the allowed values are the tuples below. Every timestamp is timezone-aware UTC (`UTCDateTime`).
Addresses are stored as given and unique case-insensitively through an index on `lower(email)`.
The Alembic migrations (`migrations/versions/`, applied in order) must produce exactly this
schema (a test checks it).
"""

from __future__ import annotations

import uuid as uuid_module
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Connection,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    func,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from stmails.db.types import JSONDoc, Sha256Digest, UTCDateTime, utcnow

SUBSCRIBER_STATUSES = ("enabled", "disabled", "blocklisted")
LIST_TYPES = ("public", "private", "temporary")
LIST_OPTINS = ("single", "double")
# listmonk's list statuses: an archived list is hidden from the public forms and list pickers.
LIST_STATUSES = ("active", "archived")
SUBSCRIPTION_STATUSES = ("unconfirmed", "confirmed", "unsubscribed")
CAMPAIGN_STATUSES = ("draft", "scheduled", "running", "paused", "cancelled", "finished")
CONTENT_TYPES = ("richtext", "html", "plain", "markdown", "visual")
TEMPLATE_TYPES = ("campaign", "tx", "campaign_visual")
BOUNCE_TYPES = ("hard", "soft", "complaint")
SUPPRESSION_SCOPES = ("global", "list")
SUPPRESSION_REASONS = (
    "hard_bounce",
    "soft_bounce",
    "complaint",
    "unsubscribe",
    "manual",
    "import",
)
USER_TYPES = ("admin", "api")
# listmonk's role types: a user role grants permissions; a list role grants `list:get` and
# `list:manage` on named lists (role_lists).
ROLE_TYPES = ("user", "list")
LIST_PERMISSIONS = ("list:get", "list:manage")
USER_STATUSES = ("enabled", "disabled")
SEND_STATUSES = ("sent", "skipped", "failed")
MAILBOX_MESSAGE_STATUSES = ("processed", "failed")
IMPORT_STATUSES = ("none", "importing", "stopping", "stopped", "finished", "failed")
# Deliverability alerts (services.alerts): how bad, what was judged, how each is delivered.
ALERT_LEVELS = ("warning", "critical")
ALERT_KINDS = ("bounce_rate", "complaint_rate", "domain_bounce_rate")
ALERT_CHANNELS = ("email", "webhook")
ALERT_DELIVERY_STATUSES = ("pending", "sent", "failed")

# Deterministic constraint names, so that the migration and the models name things alike on
# every database and later migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    """A CHECK constraint named after `column` that allows only `values`."""
    # Comparisons joined by OR rather than `IN (...)`: SQLite builds a temporary index for an
    # IN list on every execution of a statement, which a bulk insert repeats for every row
    # (some 6 µs a row per constraint); the comparisons cost next to nothing.
    return CheckConstraint(" OR ".join(f"{column} = '{v}'" for v in values), name=column)


def new_uuid() -> str:
    """A random UUID as text (the form listmonk's API uses)."""
    return str(uuid_module.uuid4())


def empty_dict() -> dict[str, Any]:
    """A fresh empty JSON object for column defaults."""
    return {}


def empty_list() -> list[Any]:
    """A fresh empty JSON array for column defaults."""
    return []


class Base(DeclarativeBase):
    """Declarative base holding the shared metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Timestamped:
    """created_at and updated_at, both set by Python in UTC."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Subscriber(Timestamped, Base):
    """A person on one or more lists."""

    __tablename__ = "subscribers"
    __table_args__ = (
        one_of("status", SUBSCRIBER_STATUSES),
        # The monthly report counts the subscribers created in a month (migration 0013_alerts).
        Index("ix_subscribers_created_at", "created_at"),
        # The monthly report's subscribers blocklisted in the month.
        Index("ix_subscribers_status_updated_at", "status", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(500), default="")
    attribs: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=empty_dict)
    status: Mapped[str] = mapped_column(String(16), default="enabled")


# Addresses are unique whatever their case; lookups use `lower(email) = :normalized`.
Index("uq_subscribers_email_lower", func.lower(Subscriber.email), unique=True)


class MailingList(Timestamped, Base):
    """A mailing list (listmonk's `lists`)."""

    __tablename__ = "lists"
    __table_args__ = (
        one_of("type", LIST_TYPES),
        one_of("optin", LIST_OPTINS),
        one_of("status", LIST_STATUSES),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(500))
    type: Mapped[str] = mapped_column(String(16), default="private")
    optin: Mapped[str] = mapped_column(String(16), default="single")
    tags: Mapped[list[str]] = mapped_column(JSONDoc, default=empty_list)
    description: Mapped[str] = mapped_column(Text, default="")
    # listmonk's list status (migration 0009_parity), after the mixin's timestamps where the
    # migration adds it.
    status: Mapped[str] = mapped_column(
        String(16), default="active", server_default="active", sort_order=1
    )


class SubscriberList(Timestamped, Base):
    """One subscription: a subscriber on a list, with its status."""

    __tablename__ = "subscriber_lists"
    __table_args__ = (
        one_of("status", SUBSCRIPTION_STATUSES),
        # The dates make it cover the monthly report's list composition (one pass, no lookups).
        Index(
            "ix_subscriber_lists_list_id_status_dates",
            "list_id",
            "status",
            "created_at",
            "updated_at",
        ),
    )

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(
        ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16), default="unconfirmed")
    meta: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=empty_dict)


class Template(Timestamped, Base):
    """A campaign or transactional template."""

    __tablename__ = "templates"
    __table_args__ = (one_of("type", TEMPLATE_TYPES),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    type: Mapped[str] = mapped_column(String(16), default="campaign")
    subject: Mapped[str] = mapped_column(String(1000), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)


class Campaign(Timestamped, Base):
    """A campaign: its content, its lists and the progress of its sending."""

    __tablename__ = "campaigns"
    __table_args__ = (
        one_of("status", CAMPAIGN_STATUSES),
        one_of("content_type", CONTENT_TYPES),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(1000))
    from_email: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    altbody: Mapped[str | None] = mapped_column(Text, default=None)
    content_type: Mapped[str] = mapped_column(String(16), default="richtext")
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("templates.id", ondelete="SET NULL"), default=None
    )
    status: Mapped[str] = mapped_column(String(16), default="draft")
    send_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    tags: Mapped[list[str]] = mapped_column(JSONDoc, default=empty_list)
    headers: Mapped[list[dict[str, str]]] = mapped_column(JSONDoc, default=empty_list)
    messenger: Mapped[str] = mapped_column(String(100), default="email")
    # Sending progress: how many recipients there are, how many were handled, and the highest
    # subscriber id already handled (the checkpoint a restarted sender resumes after).
    to_send: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    last_subscriber_id: Mapped[int] = mapped_column(Integer, default=0)
    # The subscriber-facing side (migration 0005_public): listmonk's campaign `type` (`regular`,
    # or `optin`: the opt-in confirmation to the unconfirmed subscribers of its double opt-in
    # lists) and its public archive: shown at /archive when `archive` is on, under
    # `archive_slug`, rendered with `archive_template_id` and `archive_meta` as the subscriber.
    # sort_order: after the mixin's timestamps, where the migration adds them.
    type: Mapped[str] = mapped_column(
        String(16), default="regular", server_default="regular", sort_order=1
    )
    archive: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false"), sort_order=1
    )
    archive_slug: Mapped[str | None] = mapped_column(String(200), default=None, sort_order=1)
    archive_template_id: Mapped[int | None] = mapped_column(Integer, default=None, sort_order=1)
    archive_meta: Mapped[dict[str, Any]] = mapped_column(
        JSONDoc, default=empty_dict, server_default=text("'{}'"), sort_order=1
    )
    # Send errors (nothing delivered, or delivery in doubt), the latest of them (newest first:
    # at, subscriber_id, email, outcome, stage, code, message), and why the sender paused the
    # campaign (empty unless it did). Added by migration 0008_send_errors, hence last.
    send_errors: Mapped[int] = mapped_column(
        Integer, default=0, server_default=text("0"), sort_order=10
    )
    last_errors: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONDoc, default=empty_list, server_default=text("'[]'"), sort_order=10
    )
    pause_reason: Mapped[str] = mapped_column(
        String(1000), default="", server_default=text("''"), sort_order=10
    )
    # listmonk's `attribs` (data the message can use as `.Campaign.Attribs`) and `body_source`
    # (the visual editor's block document of a `visual` body); migration 0009_parity,
    # hence after the send errors.
    attribs: Mapped[dict[str, Any]] = mapped_column(
        JSONDoc, default=empty_dict, server_default=text("'{}'"), sort_order=20
    )
    body_source: Mapped[str | None] = mapped_column(Text, default=None, sort_order=20)
    # The figures behind an automatic pause by the deliverability watcher (services.alerts:
    # the alert id, rates, counts and thresholds); empty unless it paused or held the
    # campaign. Migration 0013_alerts, hence last.
    alert_figures: Mapped[dict[str, Any]] = mapped_column(
        JSONDoc, default=empty_dict, server_default=text("'{}'"), sort_order=30
    )
    # Why a running campaign waits (the sliding window is full, until when); empty while it
    # sends (migration 0015_sendparity, hence last).
    wait_reason: Mapped[str] = mapped_column(
        String(1000), default="", server_default=text("''"), sort_order=40
    )


# Two archived campaigns never share a slug (NULL: no slug).
Index("uq_campaigns_archive_slug", Campaign.archive_slug, unique=True)


class CampaignMedia(Base):
    """A file of the media library a campaign carries (listmonk's `campaign_media`); the
    filename is kept when the file is deleted from the library."""

    __tablename__ = "campaign_media"
    __table_args__ = (UniqueConstraint("campaign_id", "media_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    media_id: Mapped[int | None] = mapped_column(
        ForeignKey("media.id", ondelete="SET NULL"), default=None
    )
    filename: Mapped[str] = mapped_column(String(255), default="")


class CampaignList(Base):
    """A list a campaign goes to; the name is kept when the list is deleted."""

    __tablename__ = "campaign_lists"
    __table_args__ = (UniqueConstraint("campaign_id", "list_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    list_id: Mapped[int | None] = mapped_column(
        ForeignKey("lists.id", ondelete="SET NULL"), default=None
    )
    list_name: Mapped[str] = mapped_column(String(500), default="")


class Bounce(Base):
    """One recorded bounce or complaint: the complete history, one row per event (dedup_key).

    `email` is the recipient as reported; after a `delete` action it holds `email_hash` instead.
    `type` is what the channel reported; `effective_type` is the type the rules counted it as
    (after reason overrides and soft-bounce escalation). `count_key` is the unit of counting:
    the campaign uuid, or `day:YYYY-MM-DD` of `created_at` when there is no campaign.
    `created_at` is when the bounce happened; `recorded_at` when stmails stored it.
    `attributed` is false for a bounce from a bounce mailbox that `bounce.mailbox_trust` did not
    let act (`meta["unattributed"]` says why): it is history only, and no rule counts it.
    """

    __tablename__ = "bounces"
    __table_args__ = (
        one_of("type", BOUNCE_TYPES),
        one_of("effective_type", BOUNCE_TYPES),
        Index("ix_bounces_subscriber_id_effective_type", "subscriber_id", "effective_type"),
        Index("ix_bounces_email_hash_effective_type", "email_hash", "effective_type"),
        Index("ix_bounces_campaign_id", "campaign_id"),
        Index("ix_bounces_created_at", "created_at"),
        # The Bounces page's filters: one domain's bounces by time; counts by type, reason,
        # source and campaign read this narrow index instead of the wide rows.
        Index("ix_bounces_domain_created_at", "domain", "created_at"),
        Index("ix_bounces_filters", "type", "reason", "source", "campaign_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), default=None
    )
    email: Mapped[str] = mapped_column(String(320), default="")
    email_hash: Mapped[str] = mapped_column(String(64), default="")
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL"), default=None
    )
    campaign_uuid: Mapped[str] = mapped_column(String(36), default="")
    type: Mapped[str] = mapped_column(String(16))
    effective_type: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64), default="undefined")
    status: Mapped[str] = mapped_column(String(16), default="")
    replycode: Mapped[str] = mapped_column(String(16), default="")
    diagnostic: Mapped[str] = mapped_column(Text, default="")
    feedback_type: Mapped[str] = mapped_column(String(64), default="")
    source: Mapped[str] = mapped_column(String(64))
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    count_key: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=empty_dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The recipient's domain, set by the database when the row is stored (db.rollups) and kept
    # when the address is erased, so that per-domain figures outlive the address. No Python
    # default: writers leave it out and the database fills it in.
    domain: Mapped[str] = mapped_column(String(255), server_default="")
    # Last: a later migration added it to the end of the table. Only the database's default,
    # so that writers of every other column need not name it.
    attributed: Mapped[bool] = mapped_column(Boolean, server_default=true())


class Suppression(Base):
    """An address (by its hash, and by text unless erased) or a domain that must not be mailed.

    Lookups go by `email_hash`, so an erased address (email NULL) still blocks. `scope` is
    `global` or `list` (then `list_id` names the list). `expires_at` NULL means forever.
    """

    __tablename__ = "suppressions"
    __table_args__ = (
        one_of("scope", SUPPRESSION_SCOPES),
        one_of("reason", SUPPRESSION_REASONS),
        # NULL list_id (global scope) is stored as 0, and the scope follows from list_id, so
        # (key, list_id) identifies an entry and the unique indexes need not hold the scope.
        CheckConstraint("(scope = 'global') = (list_id = 0)", name="scope_list_id"),
        # One unique index per kind of key, each holding only the rows of its kind (partial):
        # an address row then updates one index, keyed by a 32-byte digest. The hash index
        # also serves every lookup by hash (its leading column) and the domain index every
        # lookup by domain. Upserts name the index and its WHERE in ON CONFLICT.
        *(
            Index(
                f"uq_suppressions_{key}_list_id",
                key,
                "list_id",
                unique=True,
                sqlite_where=text(f"{key} IS NOT NULL"),
                postgresql_where=text(f"{key} IS NOT NULL"),
            )
            for key in ("email_hash", "domain")
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    email_hash: Mapped[str | None] = mapped_column(Sha256Digest, default=None)
    domain: Mapped[str | None] = mapped_column(String(255), default=None)
    scope: Mapped[str] = mapped_column(String(16), default="global")
    list_id: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(64), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    # created_at last: the bulk upsert's rows are its input tuples plus this one value.
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Setting(Base):
    """A run-time setting: listmonk's key (e.g. `bounce.actions`) and a JSON value."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONDoc)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Role(Timestamped, Base):
    """A role, as listmonk has them: a user role (`type` user) grants the permissions it names;
    a list role (`type` list) grants `list:get` / `list:manage` on the lists of its `role_lists`.

    `permissions` is a JSON array of permission names (see services.roles; empty for a list
    role). The built-in "Super Admin" user role is made by services.roles and grants every
    permission whatever it stores. Names are unique per type.
    """

    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("type", "name"), one_of("type", ROLE_TYPES))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    permissions: Mapped[list[str]] = mapped_column(JSONDoc, default=empty_list)
    # Migration 0009_parity: after the mixin's timestamps, where the migration adds it.
    type: Mapped[str] = mapped_column(
        String(16), default="user", server_default="user", sort_order=1
    )
    lists: Mapped[list[RoleList]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="RoleList.list_id"
    )


class RoleList(Base):
    """What a list role grants on one list: `permissions` holds `list:get` and/or `list:manage`.
    The grant goes with its list or its role."""

    __tablename__ = "role_lists"

    role_id: Mapped[int] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(
        ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True
    )
    permissions: Mapped[list[str]] = mapped_column(JSONDoc, default=empty_list)


class User(Base):
    """An admin (password login) or API user (token); secrets are kept only as salted hashes."""

    __tablename__ = "users"
    __table_args__ = (one_of("type", USER_TYPES), one_of("status", USER_STATUSES))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    token_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    status: Mapped[str] = mapped_column(String(16), default="enabled")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login: Mapped[datetime | None] = mapped_column(default=None)
    # A role in use cannot be deleted (services.roles refuses it; the database backs that up).
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"))
    role: Mapped[Role] = relationship(lazy="joined", innerjoin=True, foreign_keys=[role_id])
    # The admin UI's profile and two-factor columns (migration 0003_ui_sessions): a display
    # name, the address password-reset mail goes to, the interface language ('' follows the
    # browser), the TOTP secret (encrypted, see services.two_factor) and the last TOTP time
    # step accepted (a code is never accepted twice).
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    email: Mapped[str] = mapped_column(String(255), default="", server_default="")
    locale: Mapped[str] = mapped_column(String(16), default="", server_default="")
    totp_secret: Mapped[str | None] = mapped_column(String(255), default=None)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # listmonk's list role (migration 0009_parity): the lists this user works with when its
    # user role lacks lists:get_all / lists:manage_all (services.list_access). A list role in
    # use cannot be deleted.
    list_role_id: Mapped[int | None] = mapped_column(
        ForeignKey("roles.id", ondelete="RESTRICT"), default=None
    )
    list_role: Mapped[Role | None] = relationship(lazy="joined", foreign_keys=[list_role_id])


class CampaignSend(Base):
    """One campaign message to one subscriber, recorded exactly once (the sender's ledger)."""

    __tablename__ = "campaign_sends"
    __table_args__ = (
        UniqueConstraint("campaign_id", "subscriber_id"),
        one_of("status", SEND_STATUSES),
        Index("ix_campaign_sends_subscriber_id_sent_at", "subscriber_id", "sent_at"),
        Index("ix_campaign_sends_status_sent_at", "status", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200), default="")
    message_id: Mapped[str] = mapped_column(String(255), default="")
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


class MailboxMessage(Base):
    """What the bounce-mailbox scanner did with one message (by UID within a UIDVALIDITY)."""

    __tablename__ = "mailbox_state"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid"),
        one_of("status", MAILBOX_MESSAGE_STATUSES),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(200))
    uidvalidity: Mapped[str] = mapped_column(String(64), default="")
    uid: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ImportJob(Base):
    """The subscriber CSV import slot, shared by every server process (see services.import_jobs).

    One row (id 1) holds the current or last import. The process running an import owns it
    through `owner` and refreshes `updated_at` with every committed chunk; `cancel_requested`
    is how any process asks it to stop.
    """

    __tablename__ = "import_jobs"
    __table_args__ = (one_of("status", IMPORT_STATUSES),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default="none")
    total: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    log: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(64), default="")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookNonce(Base):
    """A one-time value of a provider's signed request (Mailgun's token), remembered until it
    expires so that no server process accepts the same signed request twice."""

    __tablename__ = "webhook_nonces"
    __table_args__ = (Index("ix_webhook_nonces_expires_at", "expires_at"),)

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column()


# Sender-domain hygiene (migration 0002_hygiene): DKIM keys and DMARC aggregate reports.
DKIM_ALGORITHMS = ("rsa-sha256", "ed25519-sha256")
DKIM_KEY_STATUSES = ("pending", "active", "retiring", "retired")
DKIM_KEY_SOURCES = ("generated", "imported")
DMARC_REPORT_SOURCES = ("upload", "mailbox")


class DkimKey(Base):
    """A DKIM key of a sending domain, published at `selector._domainkey.domain`.

    `private_key` is encrypted with a key derived from the app secret (services.dkim_keys);
    `public_key` is the base64 `p=` value of the DNS record. The life of a key: `pending`
    (made, to be published), `active` (signs; one per domain), `retiring` (replaced, still
    published so that mail signed with it verifies), `retired` (its record may be removed).
    """

    __tablename__ = "dkim_keys"
    __table_args__ = (
        UniqueConstraint("domain", "selector"),
        one_of("algorithm", DKIM_ALGORITHMS),
        one_of("status", DKIM_KEY_STATUSES),
        one_of("source", DKIM_KEY_SOURCES),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(253))
    selector: Mapped[str] = mapped_column(String(63))
    algorithm: Mapped[str] = mapped_column(String(16))
    bits: Mapped[int] = mapped_column(Integer, default=0)
    public_key: Mapped[str] = mapped_column(Text)
    private_key: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="generated")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(default=None)
    retired_at: Mapped[datetime | None] = mapped_column(default=None)


RISK_LEVELS = ("low", "medium", "high")
HYGIENE_STATES = ("active", "reengaging", "reengaged", "sunset")


class SubscriberHygiene(Base):
    """What list hygiene knows about one subscriber (services.hygiene): the bounce-risk score
    with the factors that make it (`risk_factors`: [{"code", "points", "detail"}]), the last
    verification of the address, and the sunset-policy state (`active`, `reengaging` while the
    re-engagement series runs, `reengaged` after a person opened or clicked, `sunset` after
    the policy acted). A subscriber without a row is `active` and not yet scored."""

    __tablename__ = "subscriber_hygiene"
    __table_args__ = (
        one_of("risk_level", RISK_LEVELS),
        one_of("state", HYGIENE_STATES),
        Index("ix_subscriber_hygiene_risk_level", "risk_level"),
        Index("ix_subscriber_hygiene_state", "state"),
    )

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    risk_score: Mapped[int] = mapped_column(Integer, default=0)
    risk_level: Mapped[str] = mapped_column(String(8), default="low")
    risk_factors: Mapped[list[Any]] = mapped_column(JSONDoc, default=empty_list)
    scored_at: Mapped[datetime | None] = mapped_column(default=None)
    verify_result: Mapped[str] = mapped_column(String(16), default="")
    verify_reasons: Mapped[list[Any]] = mapped_column(JSONDoc, default=empty_list)
    verified_at: Mapped[datetime | None] = mapped_column(default=None)
    state: Mapped[str] = mapped_column(String(16), default="active")
    state_at: Mapped[datetime | None] = mapped_column(default=None)
    reengage_sent: Mapped[int] = mapped_column(Integer, default=0)
    reengage_last_at: Mapped[datetime | None] = mapped_column(default=None)


class HygieneTransition(Base):
    """One move of a subscriber between sunset-policy states, with its reason and the action
    taken (`unsubscribe`, `suppress`, `tag` or '' for none); `undone_at` once an admin undid
    it. Kept when the subscriber is deleted (subscriber_id NULL, the address kept)."""

    __tablename__ = "hygiene_transitions"
    __table_args__ = (
        Index("ix_hygiene_transitions_subscriber_id", "subscriber_id"),
        Index("ix_hygiene_transitions_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), default=None
    )
    email: Mapped[str] = mapped_column(String(320), default="")
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    action: Mapped[str] = mapped_column(String(16), default="")
    actor: Mapped[str] = mapped_column(String(200), default="")
    meta: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=empty_dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(default=None)


class SchedulerLease(Base):
    """The lease that makes one scheduler per deployment: the process named `holder` runs
    the periodic jobs until `expires_at`; `last_runs` keeps each job's last start and outcome."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), default="")
    expires_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_runs: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=empty_dict)


class CampaignSegment(Base):
    """A campaign's segment on top of its lists: only subscribers whose risk level,
    engagement level and verification result are among the listed ones (an empty list
    allows every value)."""

    __tablename__ = "campaign_segments"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    risk_levels: Mapped[list[Any]] = mapped_column(JSONDoc, default=empty_list)
    engagement_levels: Mapped[list[Any]] = mapped_column(JSONDoc, default=empty_list)
    verify_results: Mapped[list[Any]] = mapped_column(JSONDoc, default=empty_list)


class DmarcReport(Base):
    """One DMARC aggregate report (RFC 7489 appendix C), stored once per (org_name, report_id)."""

    __tablename__ = "dmarc_reports"
    __table_args__ = (
        UniqueConstraint("org_name", "report_id"),
        one_of("source", DMARC_REPORT_SOURCES),
        Index("ix_dmarc_reports_domain_begin_at", "domain", "begin_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_name: Mapped[str] = mapped_column(String(255))
    report_id: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(320), default="")
    domain: Mapped[str] = mapped_column(String(253))
    begin_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime] = mapped_column()
    # The policy published when the report was made: p, sp, pct, adkim, aspf.
    policy: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=empty_dict)
    messages: Mapped[int] = mapped_column(BigInteger, default=0)
    source: Mapped[str] = mapped_column(String(16), default="upload")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class DmarcRecord(Base):
    """One row of a DMARC aggregate report: `count` messages from `source_ip` and what the
    receiver found (DMARC's own verdicts, `dkim_aligned`/`spf_aligned`, and the raw results)."""

    __tablename__ = "dmarc_records"
    __table_args__ = (
        Index("ix_dmarc_records_report_id", "report_id"),
        Index("ix_dmarc_records_header_from_source_ip", "header_from", "source_ip"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("dmarc_reports.id", ondelete="CASCADE"))
    source_ip: Mapped[str] = mapped_column(String(45))
    count: Mapped[int] = mapped_column(BigInteger)
    disposition: Mapped[str] = mapped_column(String(16), default="none")
    dkim_aligned: Mapped[bool] = mapped_column(Boolean, default=False)
    spf_aligned: Mapped[bool] = mapped_column(Boolean, default=False)
    header_from: Mapped[str] = mapped_column(String(253))
    envelope_from: Mapped[str] = mapped_column(String(253), default="")
    # [{"domain", "selector", "result"}] and [{"domain", "scope", "result"}] as reported, and
    # the receiver's override reasons [{"type", "comment"}].
    dkim_results: Mapped[list[dict[str, str]]] = mapped_column(JSONDoc, default=empty_list)
    spf_results: Mapped[list[dict[str, str]]] = mapped_column(JSONDoc, default=empty_list)
    reasons: Mapped[list[dict[str, str]]] = mapped_column(JSONDoc, default=empty_list)


class BrowserSession(Base):
    """A signed-in browser (services.sessions): the row is found by a hash of the cookie's
    token, so a copy of the table opens no session. `mfa_pending` marks a password-checked
    login that still owes its TOTP code; `data` holds small per-session state (a TOTP secret
    being enrolled)."""

    __tablename__ = "browser_sessions"
    __table_args__ = (
        Index("ix_browser_sessions_user_id", "user_id"),
        Index("ix_browser_sessions_expires_at", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    mfa_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=empty_dict)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    idle_expires_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()


class RecoveryCode(Base):
    """A two-factor recovery code of a user, kept as a salted hash; used at most once."""

    __tablename__ = "recovery_codes"
    __table_args__ = (Index("ix_recovery_codes_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class PasswordReset(Base):
    """A password-reset link sent by mail: the SHA-256 of its token, single use, expiring."""

    __tablename__ = "password_resets"
    __table_args__ = (Index("ix_password_resets_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class LoginThrottle(Base):
    """Failed sign-ins counted per client address or user name (services.login_guard); the key
    is a hash of `ip:<address>` or `user:<name>`, so its length is fixed whatever was sent."""

    __tablename__ = "login_throttle"
    __table_args__ = (Index("ix_login_throttle_last_failure_at", "last_failure_at"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)


# The media library (migration 0004_media).
MEDIA_PROVIDERS = ("filesystem", "s3")


class Media(Base):
    """An uploaded file of the media library (listmonk's `media` table).

    `filename` is the stored object's name, unique per provider; `thumb` names the thumbnail
    stored beside it ('' when there is none); `content_type` is what the content was found to
    be, never what the uploader claimed; `meta` holds an image's `width` and `height`.
    """

    __tablename__ = "media"
    __table_args__ = (
        UniqueConstraint("provider", "filename"),
        one_of("provider", MEDIA_PROVIDERS),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    provider: Mapped[str] = mapped_column(String(16), default="filesystem")
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    thumb: Mapped[str] = mapped_column(String(255), default="")
    meta: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=empty_dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RateEvent(Base):
    """One counted action of the public pages (a sign-up from an address, a confirmation mail
    to an address), for sliding-window rate limits (services.rate_limits). `key` is a hash of
    what is limited, so its length is fixed and no address is kept in clear."""

    __tablename__ = "rate_events"
    __table_args__ = (Index("ix_rate_events_key_created_at", "key", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- Engagement tracking and deliverability analytics (services.tracking, services.analytics) --

MAX_LINK_URL_CHARS = 2000


class Link(Base):
    """A URL of a campaign that `{{ TrackLink }}` rewrote, registered when the campaign runs.

    The click route redirects only to the URL stored for the link's own campaign.
    """

    __tablename__ = "links"
    __table_args__ = (UniqueConstraint("campaign_id", "url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(MAX_LINK_URL_CHARS))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ListmonkLink(Base):
    """A tracked link of mail that listmonk sent, kept by `stmails import listmonk` so that
    `/link/{uuid}/...` in that mail keeps working. listmonk's links are one per URL, shared by
    its campaigns; a click registers the URL as a link of the clicked campaign (`Link`)."""

    __tablename__ = "listmonk_links"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    url: Mapped[str] = mapped_column(String(MAX_LINK_URL_CHARS))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignView(Base):
    """One open (a load of the tracking pixel). `subscriber_id` is NULL without individual
    tracking; `machine` names the rule that judged it automatic ('' for a person)."""

    __tablename__ = "campaign_views"
    __table_args__ = (
        Index("ix_campaign_views_campaign_id_created_at", "campaign_id", "created_at"),
        Index("ix_campaign_views_subscriber_id", "subscriber_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), default=None
    )
    machine: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LinkClick(Base):
    """One click of a tracked link (see CampaignView for `subscriber_id` and `machine`)."""

    __tablename__ = "link_clicks"
    __table_args__ = (
        Index("ix_link_clicks_campaign_id_created_at", "campaign_id", "created_at"),
        Index("ix_link_clicks_subscriber_id", "subscriber_id"),
        Index("ix_link_clicks_link_id", "link_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), default=None
    )
    machine: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignEngagement(Base):
    """A subscriber's first open and first click (by a person) of a campaign: what makes an
    open or a click unique, decided once even when two server processes record hits at once."""

    __tablename__ = "campaign_engagement"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    viewed_at: Mapped[datetime | None] = mapped_column(default=None)
    clicked_at: Mapped[datetime | None] = mapped_column(default=None)


# The counters of the analytics rollups (db.rollups): sends from the sender's ledger, bounces
# and complaints by effective type, and opens and clicks (by people; machines apart). Each
# counter is a column of the tables below that hold it.
DELIVERY_COUNTERS = ("accepted", "refused")
SEND_COUNTERS = (*DELIVERY_COUNTERS, "in_doubt", "unsubscribed")
BOUNCE_COUNTERS = ("hard", "soft", "complaints")
ENGAGEMENT_COUNTERS = (
    "views",
    "unique_views",
    "machine_views",
    "clicks",
    "unique_clicks",
    "machine_clicks",
)
HOURLY_COUNTERS = SEND_COUNTERS + BOUNCE_COUNTERS + ENGAGEMENT_COUNTERS
REASON_COUNTERS = BOUNCE_COUNTERS
DOMAIN_COUNTERS = DELIVERY_COUNTERS + BOUNCE_COUNTERS


def _counter() -> Mapped[int]:
    return mapped_column(Integer, default=0, server_default="0")


class _DeliveryCounters:
    """Messages whose sending ended with the SMTP server's answer: accepted, or refused."""

    accepted: Mapped[int] = _counter()
    refused: Mapped[int] = _counter()


class _SendCounters:
    """The delivery counters, plus sends of unknown outcome (a crash mid-send) and sends the
    recipient later unsubscribed from."""

    accepted: Mapped[int] = _counter()
    refused: Mapped[int] = _counter()
    in_doubt: Mapped[int] = _counter()
    unsubscribed: Mapped[int] = _counter()


class _BounceCounters:
    """Bounces by the type the rules counted them as (`bounces.effective_type`)."""

    hard: Mapped[int] = _counter()
    soft: Mapped[int] = _counter()
    complaints: Mapped[int] = _counter()


class _EngagementCounters:
    """Opens and clicks by people (all, and first per subscriber) and by machines."""

    views: Mapped[int] = _counter()
    unique_views: Mapped[int] = _counter()
    machine_views: Mapped[int] = _counter()
    clicks: Mapped[int] = _counter()
    unique_clicks: Mapped[int] = _counter()
    machine_clicks: Mapped[int] = _counter()


class AnalyticsChange(_SendCounters, _BounceCounters, _EngagementCounters, Base):
    """One change to the figures, written by triggers on the event tables (and by the tracking
    writer) and folded into the rollups below every few seconds (services.analytics.rollups).

    Insert-only, so concurrent writers never wait for each other on a counter row. `hour` is
    hours since 1970 (UTC); `campaign_id` is 0 for mail without a campaign and -1 for a
    deleted (or unknown) campaign; the counters are +1/-1 deltas.
    Derived tables (`info["derived"]`) are emptied last by the tests' cleanup.
    """

    __tablename__ = "analytics_changes"
    # No index but the key: every event writes here, and the rows live only seconds.
    __table_args__ = ({"info": {"derived": True}},)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    hour: Mapped[int] = mapped_column(Integer)
    campaign_id: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    domain: Mapped[str] = mapped_column(String(255), default="", server_default="")
    reason: Mapped[str] = mapped_column(String(64), default="", server_default="")
    source: Mapped[str] = mapped_column(String(64), default="", server_default="")


class AnalyticsHourly(_SendCounters, _BounceCounters, _EngagementCounters, Base):
    """Every counter per hour and campaign."""

    __tablename__ = "analytics_hourly"
    __table_args__ = (
        Index("ix_analytics_hourly_campaign_id", "campaign_id"),
        {"info": {"derived": True}},
    )

    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class AnalyticsReason(_BounceCounters, Base):
    """Bounces and complaints per day (days since 1970, UTC), campaign, reason and source."""

    __tablename__ = "analytics_reasons"
    __table_args__ = (
        Index("ix_analytics_reasons_campaign_id", "campaign_id"),
        {"info": {"derived": True}},
    )

    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)


class AnalyticsDomain(_DeliveryCounters, _BounceCounters, Base):
    """Sends, bounces and complaints per recipient domain, day and campaign.

    The key starts with the domain and the table is the key's B-tree (SQLite's WITHOUT ROWID):
    the per-domain figures are read in key order, without sorting a row per campaign and domain.
    """

    __tablename__ = "analytics_domains"
    __table_args__ = (
        Index("ix_analytics_domains_campaign_id", "campaign_id"),
        # The few days around the whole months of a period (services.analytics.rollups; the
        # longer reads keep to the table's own order, migration 0016_perf).
        Index(
            "ix_analytics_domains_day",
            "day",
            "domain",
            "campaign_id",
            "accepted",
            "refused",
            "hard",
            "soft",
            "complaints",
        ),
        {"info": {"derived": True}, "sqlite_with_rowid": False},
    )

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class AnalyticsDomainMonth(_DeliveryCounters, _BounceCounters, Base):
    """Sends, bounces and complaints of campaign mail (every campaign key but 0) per recipient
    domain and calendar month (months since 1970-01, UTC): the per-domain figures of all
    campaigns read it for the whole months of a period, and `analytics_domains` for the days
    around them. A table of the key's B-tree, like `analytics_domains`."""

    __tablename__ = "analytics_domain_months"
    __table_args__ = ({"info": {"derived": True}, "sqlite_with_rowid": False},)

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    month: Mapped[int] = mapped_column(Integer, primary_key=True)


class Alert(Base):
    """A threshold the deliverability watcher saw crossed (services.alerts), with the figures
    it judged and what it did about it; acknowledged by an admin through the API."""

    __tablename__ = "alerts"
    __table_args__ = (
        one_of("level", ALERT_LEVELS),
        one_of("kind", ALERT_KINDS),
        Index("ix_alerts_created_at", "created_at"),
        Index("ix_alerts_campaign_id", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL"), default=None
    )
    # The recipient domain of a per-domain alert ('' otherwise).
    domain: Mapped[str] = mapped_column(String(255), default="")
    message: Mapped[str] = mapped_column(String(1000))
    figures: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=empty_dict)
    # What the watcher did: paused campaign ids, held scheduled campaigns, a held domain.
    actions: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=empty_dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[str] = mapped_column(String(200), default="")


class AlertDelivery(Base):
    """The outbox of alert notifications: one row per alert and destination (an email
    address of `app.notify_emails`, a URL of `deliverability.alert_webhooks`), retried with
    backoff by the alert worker until sent or out of attempts."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        one_of("channel", ALERT_CHANNELS),
        one_of("status", ALERT_DELIVERY_STATUSES),
        Index("ix_alert_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_alert_deliveries_alert_id", "alert_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str] = mapped_column(String(1000), default="")
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignHold(Base):
    """A recipient domain whose messages in a campaign are deferred (not sent) because its
    bounce rate crossed `deliverability.alerts.domain_bounce`; released by an admin."""

    __tablename__ = "campaign_holds"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alerts.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


@event.listens_for(Base.metadata, "after_create")
def _install_triggers(target: MetaData, connection: Connection, **_: Any) -> None:
    # The analytics triggers belong to the schema: `create_all` makes them like the migration.
    from stmails.db import rollups

    rollups.install(connection)
