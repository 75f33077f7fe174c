"""The database schema: SQLAlchemy 2.0 typed models, portable across SQLite and PostgreSQL.

Enumerated columns are short strings guarded by CHECK constraints (portable, readable in SQL);
the allowed values are the tuples below. Every timestamp is timezone-aware UTC (`UTCDateTime`).
Addresses are stored as given and unique case-insensitively through an index on `lower(email)`.
The Alembic migration `0001_initial` must produce exactly this schema (a test checks it).
"""

from __future__ import annotations

import uuid as uuid_module
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from stmails.db.types import JSONDoc, Sha256Digest, UTCDateTime, utcnow

SUBSCRIBER_STATUSES = ("enabled", "disabled", "blocklisted")
LIST_TYPES = ("public", "private", "temporary")
LIST_OPTINS = ("single", "double")
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
USER_STATUSES = ("enabled", "disabled")
SEND_STATUSES = ("sent", "skipped", "failed")
MAILBOX_MESSAGE_STATUSES = ("processed", "failed")
IMPORT_STATUSES = ("none", "importing", "stopping", "stopped", "finished", "failed")

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
    __table_args__ = (one_of("status", SUBSCRIBER_STATUSES),)

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
    __table_args__ = (one_of("type", LIST_TYPES), one_of("optin", LIST_OPTINS))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(500))
    type: Mapped[str] = mapped_column(String(16), default="private")
    optin: Mapped[str] = mapped_column(String(16), default="single")
    tags: Mapped[list[str]] = mapped_column(JSONDoc, default=empty_list)
    description: Mapped[str] = mapped_column(Text, default="")


class SubscriberList(Timestamped, Base):
    """One subscription: a subscriber on a list, with its status."""

    __tablename__ = "subscriber_lists"
    __table_args__ = (
        one_of("status", SUBSCRIPTION_STATUSES),
        Index("ix_subscriber_lists_list_id_status", "list_id", "status"),
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
    # Send errors (nothing delivered, or delivery in doubt), the latest of them (newest first:
    # at, subscriber_id, email, outcome, stage, code, message), and why the sender paused the
    # campaign (empty unless it did). Added by migration 0002_send_errors, hence last.
    send_errors: Mapped[int] = mapped_column(
        Integer, default=0, server_default=text("0"), sort_order=10
    )
    last_errors: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONDoc, default=empty_list, server_default=text("'[]'"), sort_order=10
    )
    pause_reason: Mapped[str] = mapped_column(
        String(1000), default="", server_default=text("''"), sort_order=10
    )


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
    """

    __tablename__ = "bounces"
    __table_args__ = (
        one_of("type", BOUNCE_TYPES),
        one_of("effective_type", BOUNCE_TYPES),
        Index("ix_bounces_subscriber_id_effective_type", "subscriber_id", "effective_type"),
        Index("ix_bounces_email_hash_effective_type", "email_hash", "effective_type"),
        Index("ix_bounces_campaign_id", "campaign_id"),
        Index("ix_bounces_created_at", "created_at"),
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
    """A user role: a name and the permissions it grants (listmonk's user roles).

    `permissions` is a JSON array of permission names (see services.roles). The built-in
    "Super Admin" role is made by services.roles and grants every permission whatever it stores.
    """

    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
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
    role: Mapped[Role] = relationship(lazy="joined", innerjoin=True)


class CampaignSend(Base):
    """One campaign message to one subscriber, recorded exactly once (the sender's ledger)."""

    __tablename__ = "campaign_sends"
    __table_args__ = (
        UniqueConstraint("campaign_id", "subscriber_id"),
        one_of("status", SEND_STATUSES),
        Index("ix_campaign_sends_subscriber_id_sent_at", "subscriber_id", "sent_at"),
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
