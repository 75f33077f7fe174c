"""Settings pages: `/admin/settings/<group>`, one page (tab) per group of settings.

Every page edits listmonk's setting keys (services.settings) and saves them through the same
`settings.update()` as `PUT /api/settings`: a value that cannot work is refused (400) with the
validator's message shown next to its field, and nothing of the group is stored. Secrets are
never sent to the browser: their inputs start empty, and an empty input keeps the stored secret
(the masked-secret rule of services.settings, including its same-server condition).

The SMTP page's "Send test" and the Bounces page's "Test connection" buttons post the whole form
(unsaved values included) to a test route that calls the API's own test code.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from stmails.db.handles import Session
from stmails.services import settings as settings_service
from stmails.services.errors import InvalidInput
from stmails.verify.result import Reason
from stmails.web.admin.forms import form_fields, text
from stmails.web.admin.pages import can, page, redirect, render_page
from stmails.web.api import settings as settings_api
from stmails.web.api.media import check_upload_settings
from stmails.web.body import run_db
from stmails.web.deps import Viewer, app_state
from stmails.web.errors import ApiError
from stmails.web.i18n import N_, _

log = logging.getLogger("stmails.settings")
router = APIRouter()

BASE = "/admin/settings"
Kind = Literal["text", "int", "float", "bool", "select", "secret", "json", "lines", "multi"]


@dataclass(frozen=True, slots=True)
class Field:
    """One input: the setting `key`, the path inside its value (`sub`), and how it is edited."""

    key: str
    label: str
    kind: Kind = "text"
    sub: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    help: str = ""

    @property
    def name(self) -> str:
        return ".".join((self.key, *self.sub))


@dataclass(frozen=True, slots=True)
class ListSpec:
    """A setting that is a list of objects (SMTP servers, bounce mailboxes)."""

    key: str
    fields: tuple[Field, ...]
    defaults: Mapping[str, Any]
    # The field without which a new (blank) entry is ignored.
    required: str = "host"


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    fields: tuple[Field, ...] = ()
    help: str = ""
    # ESP webhook sections show the URL to give the provider.
    webhook: str = ""


@dataclass(frozen=True, slots=True)
class Group:
    key: str
    title: str
    sections: tuple[Section, ...] = ()
    lists: tuple[ListSpec, ...] = field(default_factory=tuple)
    # The index of the section the lists are shown before (-1: after every section).
    lists_before: int = -1

    def fields(self) -> list[Field]:
        return [f for s in self.sections for f in s.fields]

    def keys(self) -> list[str]:
        return list(dict.fromkeys([f.key for f in self.fields()] + [s.key for s in self.lists]))


ACTIONS = (
    ("none", N_("None")),
    ("unsubscribe", N_("Unsubscribe")),
    ("blocklist", N_("Blocklist")),
    ("delete", N_("Delete")),
)


def _rule(kind: str, title: str) -> Section:
    return Section(
        title,
        (
            Field("bounce.actions", N_("Bounce count"), "int", (kind, "count")),
            Field("bounce.actions", N_("Action"), "select", (kind, "action"), ACTIONS),
            Field(
                "bounce.actions",
                N_("Window (days)"),
                "int",
                (kind, "window_days"),
                help=N_("Count only the bounces of the last N days; 0 counts all of them."),
            ),
        ),
    )


def _webhook(name: str, title: str, *fields: Field) -> Section:
    return Section(title, fields, webhook=name)


def _enabled(key: str) -> Field:
    return Field(key, N_("Enabled"), "bool", ("enabled",))


SMTP_SERVERS = ListSpec(
    "smtp",
    (
        Field("smtp", N_("Enabled"), "bool", ("enabled",)),
        Field(
            "smtp",
            N_("Name"),
            "text",
            ("name",),
            help=N_("A named server is also the messenger email-<name> campaigns can pick."),
        ),
        Field("smtp", N_("Host"), "text", ("host",)),
        Field("smtp", N_("Port"), "int", ("port",)),
        Field(
            "smtp",
            N_("Auth protocol"),
            "select",
            ("auth_protocol",),
            (("none", "none"), ("plain", "PLAIN"), ("login", "LOGIN"), ("cram", "CRAM-MD5")),
        ),
        Field("smtp", N_("Username"), "text", ("username",)),
        Field("smtp", N_("Password"), "secret", ("password",)),
        Field(
            "smtp",
            N_("TLS"),
            "select",
            ("tls_type",),
            (("none", N_("Off")), ("STARTTLS", "STARTTLS"), ("TLS", "SSL/TLS")),
        ),
        Field("smtp", N_("Skip TLS verification"), "bool", ("tls_skip_verify",)),
        Field("smtp", N_("HELO host name"), "text", ("hello_hostname",)),
        Field("smtp", N_("Max. connections"), "int", ("max_conns",)),
        Field("smtp", N_("Retries"), "int", ("max_msg_retries",)),
        Field(
            "smtp",
            N_("Retry delay"),
            "text",
            ("msg_retry_delay",),
            help=N_("Wait between two tries of one message, e.g. 5s (empty: none)."),
        ),
        Field(
            "smtp",
            N_("From addresses"),
            "lines",
            ("from_addresses",),
            help=N_(
                "One per line: mail from these addresses goes through this server only; "
                "servers without any take the other addresses."
            ),
        ),
        Field("smtp", N_("Idle timeout"), "text", ("idle_timeout",)),
        Field("smtp", N_("Wait timeout"), "text", ("wait_timeout",)),
        Field(
            "smtp",
            N_("Custom headers"),
            "json",
            ("email_headers",),
            help=N_('JSON, e.g. [{"Return-Path": "bounces@example.com"}]'),
        ),
    ),
    # A new server starts from listmonk's defaults, without a host (left empty, it is not added).
    {
        **settings_service.DEFAULT_SMTP_SERVER,
        "host": "",
        "msg_retry_delay": "",
        "from_addresses": [],
    },
)

MAILBOX_DEFAULTS: Mapping[str, Any] = {
    "uuid": "",
    "name": "",
    "enabled": True,
    "type": "pop",
    "host": "",
    "port": 995,
    "auth_protocol": "userpass",
    "username": "",
    "password": "",
    "tls_mode": "tls",
    "tls_skip_verify": False,
    "scan_interval": "15m",
    "folder": "INBOX",
}

MAILBOXES = ListSpec(
    "bounce.mailboxes",
    (
        Field("bounce.mailboxes", N_("Enabled"), "bool", ("enabled",)),
        Field("bounce.mailboxes", N_("Name"), "text", ("name",)),
        Field(
            "bounce.mailboxes",
            N_("Protocol"),
            "select",
            ("type",),
            (("pop", "POP3"), ("imap", "IMAP")),
        ),
        Field("bounce.mailboxes", N_("Host"), "text", ("host",)),
        Field("bounce.mailboxes", N_("Port"), "int", ("port",)),
        Field(
            "bounce.mailboxes",
            N_("Auth protocol"),
            "select",
            ("auth_protocol",),
            (("userpass", N_("User name and password")), ("none", "none")),
        ),
        Field("bounce.mailboxes", N_("Username"), "text", ("username",)),
        Field("bounce.mailboxes", N_("Password"), "secret", ("password",)),
        Field(
            "bounce.mailboxes",
            N_("TLS"),
            "select",
            ("tls_mode",),
            (("tls", "SSL/TLS"), ("starttls", "STARTTLS"), ("none", N_("Off"))),
        ),
        Field("bounce.mailboxes", N_("Skip TLS verification"), "bool", ("tls_skip_verify",)),
        Field(
            "bounce.mailboxes",
            N_("Scan interval"),
            "text",
            ("scan_interval",),
            help=N_("For example 15m, 30s or 1h."),
        ),
        Field("bounce.mailboxes", N_("Folder (IMAP)"), "text", ("folder",)),
    ),
    MAILBOX_DEFAULTS,
)

GROUPS: tuple[Group, ...] = (
    Group(
        "general",
        N_("General"),
        (
            Section(
                N_("Site"),
                (
                    Field("app.site_name", N_("Site name")),
                    Field(
                        "app.root_url",
                        N_("Root URL"),
                        help=N_("The public address of this server, e.g. https://mail.example.com"),
                    ),
                    Field("app.logo_url", N_("Logo URL")),
                ),
            ),
            Section(
                N_("Sending"),
                (
                    Field("app.from_email", N_("Default from address")),
                    Field(
                        "sending.bounce_address",
                        N_("Bounce address (Return-Path)"),
                        help=N_("Envelope sender of campaign mail; bounces come back here."),
                    ),
                    Field("sending.verp", N_("VERP (one return path per recipient)"), "bool"),
                    Field("sending.message_id_domain", N_("Message-ID domain")),
                    Field("sending.unsubscribe_mailto", N_("Unsubscribe mailto address")),
                    Field("app.concurrency", N_("Concurrency"), "int"),
                    Field(
                        "app.message_rate",
                        N_("Message rate (per second, 0: unlimited)"),
                        "float",
                    ),
                    Field("app.batch_size", N_("Batch size"), "int"),
                    Field("app.max_send_errors", N_("Max. send errors"), "int"),
                    Field("sending.soft_retries", N_("Retries after a soft bounce"), "int"),
                    Field("sending.retry_delay", N_("Retry delay"), help=N_("For example 5m.")),
                    Field("app.message_sliding_window", N_("Sliding window"), "bool"),
                    Field(
                        "app.message_sliding_window_duration",
                        N_("Sliding window duration"),
                        help=N_("For example 1h or 24h."),
                    ),
                    Field(
                        "app.message_sliding_window_rate",
                        N_("Messages per sliding window"),
                        "int",
                        help=N_("At most this many campaign messages per window, all senders."),
                    ),
                ),
            ),
            Section(
                N_("Public pages"),
                (
                    Field("app.send_optin_confirmation", N_("Send opt-in confirmation"), "bool"),
                    Field(
                        "app.enable_public_subscription_page",
                        N_("Public subscription page"),
                        "bool",
                    ),
                    Field("app.enable_public_archive", N_("Public archive"), "bool"),
                ),
            ),
        ),
    ),
    Group("smtp", N_("SMTP"), lists=(SMTP_SERVERS,)),
    Group(
        "bounces",
        N_("Bounces"),
        (
            Section(
                N_("Bounce processing"),
                (
                    Field(
                        "bounce.enabled",
                        N_("Enable bounce processing"),
                        "bool",
                        help=N_("Mailbox scanning and the bounce API work only while this is on."),
                    ),
                    Field("bounce.webhooks_enabled", N_("Enable bounce webhooks"), "bool"),
                ),
            ),
            _rule("soft", N_("Soft bounces")),
            _rule("hard", N_("Hard bounces")),
            _rule("complaint", N_("Complaints")),
            Section(
                N_("More rules"),
                (
                    Field(
                        "bounce.soft_escalation",
                        N_("Treat repeated soft bounces as hard"),
                        "bool",
                        ("enabled",),
                    ),
                    Field(
                        "bounce.soft_escalation",
                        N_("Soft bounces from distinct campaigns"),
                        "int",
                        ("count",),
                    ),
                    Field(
                        "bounce.mailbox_trust",
                        N_("Bounces from mailboxes may act when they show"),
                        "select",
                        options=(
                            ("verp", N_("a VERP token")),
                            ("sent", N_("a VERP token or a Message-ID we sent")),
                            ("any", N_("anything")),
                        ),
                    ),
                ),
            ),
            _webhook(
                "ses",
                "Amazon SES",
                Field("bounce.ses_enabled", N_("Enabled"), "bool"),
            ),
            _webhook(
                "sendgrid",
                "SendGrid",
                Field("bounce.sendgrid_enabled", N_("Enabled"), "bool"),
                Field("bounce.sendgrid_key", N_("Verification key"), "secret"),
            ),
            _webhook(
                "postmark",
                "Postmark",
                _enabled("bounce.postmark"),
                Field("bounce.postmark", N_("Username"), "text", ("username",)),
                Field("bounce.postmark", N_("Password"), "secret", ("password",)),
            ),
            _webhook(
                "forwardemail",
                "Forward Email",
                _enabled("bounce.forwardemail"),
                Field("bounce.forwardemail", N_("Key"), "secret", ("key",)),
            ),
            _webhook(
                "mailgun",
                "Mailgun",
                _enabled("bounce.mailgun"),
                Field("bounce.mailgun", N_("Signing key"), "secret", ("signing_key",)),
            ),
            _webhook(
                "sparkpost",
                "SparkPost",
                _enabled("bounce.sparkpost"),
                Field("bounce.sparkpost", N_("Username"), "text", ("username",)),
                Field("bounce.sparkpost", N_("Password"), "secret", ("password",)),
                Field("bounce.sparkpost", N_("Token"), "secret", ("token",)),
            ),
            _webhook(
                "brevo",
                "Brevo",
                _enabled("bounce.brevo"),
                Field("bounce.brevo", N_("Username"), "text", ("username",)),
                Field("bounce.brevo", N_("Password"), "secret", ("password",)),
                Field("bounce.brevo", N_("Token"), "secret", ("token",)),
            ),
            _webhook(
                "mailjet",
                "Mailjet",
                _enabled("bounce.mailjet"),
                Field("bounce.mailjet", N_("Username"), "text", ("username",)),
                Field("bounce.mailjet", N_("Password"), "secret", ("password",)),
            ),
            _webhook(
                "resend",
                "Resend",
                _enabled("bounce.resend"),
                Field("bounce.resend", N_("Signing key"), "secret", ("signing_key",)),
            ),
            _webhook(
                "azure",
                "Azure Communication Services",
                _enabled("bounce.azure"),
                Field("bounce.azure", N_("Key"), "secret", ("key",)),
            ),
        ),
        lists=(MAILBOXES,),
        # As the user's documents order them: processing and rules, mailboxes, then webhooks.
        lists_before=5,
    ),
    Group(
        "verification",
        N_("Verification"),
        (
            Section(
                N_("New subscribers"),
                (
                    Field(
                        "verify.on_subscribe",
                        N_("Verify addresses on the way in"),
                        "select",
                        options=(
                            ("off", N_("Off")),
                            ("flag", N_("Flag what fails")),
                            ("reject", N_("Reject what fails")),
                        ),
                    ),
                    Field(
                        "verify.reject",
                        N_("Findings that reject an address"),
                        "multi",
                        options=tuple((r.value, r.value) for r in Reason),
                    ),
                    Field("verify.on_subscribe_dns", N_("Check the domain in DNS"), "bool"),
                    Field("verify.dns_timeout", N_("DNS timeout (seconds)"), "float"),
                ),
            ),
        ),
    ),
    Group(
        "privacy",
        N_("Privacy"),
        (
            Section(
                N_("Tracking"),
                (
                    Field(
                        "privacy.individual_tracking",
                        N_("Record opens and clicks per subscriber"),
                        "bool",
                    ),
                    Field("privacy.disable_tracking", N_("Do not track opens and clicks"), "bool"),
                    Field("privacy.record_optin_ip", N_("Record the opt-in IP address"), "bool"),
                ),
            ),
            Section(
                N_("Subscribers may"),
                (
                    Field("privacy.allow_blocklist", N_("Block all mail"), "bool"),
                    Field("privacy.allow_preferences", N_("Change their preferences"), "bool"),
                    Field("privacy.allow_export", N_("Export their data"), "bool"),
                    Field("privacy.allow_wipe", N_("Wipe their data"), "bool"),
                ),
            ),
            Section(
                N_("Domains"),
                (
                    Field(
                        "privacy.domain_blocklist",
                        N_("Domains refused on sign-up (one per line)"),
                        "lines",
                    ),
                    Field(
                        "privacy.domain_allowlist",
                        N_("Only these domains may sign up (one per line)"),
                        "lines",
                    ),
                ),
            ),
        ),
    ),
)

# Deliverability alerts (services.alerts, built apart) have a tab once their settings exist,
# and the General tab then has listmonk's notification addresses.
ALERTS_KEY = "deliverability.alerts"
ALERT_WEBHOOKS_KEY = "deliverability.alert_webhooks"
NOTIFY_KEY = "app.notify_emails"


def _alerts_group() -> Group:
    def threshold(name: str, label: str, kind: Kind) -> Field:
        return Field(ALERTS_KEY, label, kind, (name,))

    sections = [
        Section(
            N_("Thresholds"),
            (
                threshold("enabled", N_("Watch running campaigns"), "bool"),
                threshold("bounce_warning", N_("Bounce rate warning (%%)"), "float"),
                threshold("bounce_critical", N_("Bounce rate critical (%%)"), "float"),
                threshold("domain_bounce", N_("Domain bounce rate (%%)"), "float"),
                threshold("complaint", N_("Complaint rate (%%)"), "float"),
            ),
        ),
        Section(
            N_("Samples and window"),
            (
                threshold("min_sample", N_("Sends before the bounce rate is judged"), "int"),
                threshold(
                    "complaint_min_sample",
                    N_("Deliveries before the complaint rate is judged"),
                    "int",
                ),
                threshold("domain_min_sample", N_("Sends to a domain before it is judged"), "int"),
                threshold("window_sends", N_("Latest sends judged"), "int"),
                threshold("window_minutes", N_("Window (minutes)"), "int"),
            ),
        ),
        Section(
            N_("Automatic actions"),
            (
                threshold("pause_campaign", N_("Pause the campaign when critical"), "bool"),
                threshold("hold_scheduled", N_("Hold scheduled campaigns when critical"), "bool"),
                threshold("hold_domains", N_("Hold a domain above its threshold"), "bool"),
            ),
        ),
    ]
    if ALERT_WEBHOOKS_KEY in settings_service.DEFAULTS:
        sections.append(
            Section(
                N_("Alert webhooks"),
                (
                    Field(
                        ALERT_WEBHOOKS_KEY,
                        N_("Webhooks (JSON)"),
                        "json",
                        help=N_('e.g. [{"url": "https://example.com/hook", "secret": "…"}]'),
                    ),
                ),
            )
        )
    return Group("alerts", N_("Deliverability alerts"), tuple(sections))


if NOTIFY_KEY in settings_service.DEFAULTS:  # pragma: no cover - depends on services.alerts
    _general = GROUPS[0]
    _site = _general.sections[0]
    GROUPS = (
        Group(
            _general.key,
            _general.title,
            (
                Section(
                    _site.title,
                    (
                        *_site.fields,
                        Field(
                            NOTIFY_KEY,
                            N_("Notify emails (one per line)"),
                            "lines",
                            help=N_("Alerts and notices are mailed to these addresses."),
                        ),
                    ),
                ),
                *_general.sections[1:],
            ),
        ),
        *GROUPS[1:],
    )
if ALERTS_KEY in settings_service.DEFAULTS:  # pragma: no cover - depends on services.alerts
    GROUPS = (*GROUPS[:3], _alerts_group(), *GROUPS[3:])

GROUP_BY_KEY = {g.key: g for g in GROUPS}


# --- Reading values -------------------------------------------------------------------------


def _dig(value: Any, path: Sequence[str]) -> Any:
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _put(value: dict[str, Any], path: Sequence[str], item: Any) -> None:
    for part in path[:-1]:
        nxt = value.get(part)
        if not isinstance(nxt, dict):
            nxt = value[part] = {}
        value = nxt
    value[path[-1]] = item


def _shown(f: Field, value: Any) -> Any:
    """The value as its input shows it (secrets: whether one is stored)."""
    if f.kind == "secret":
        # Never the secret itself: whether one is stored, or was typed and not saved yet.
        if not value:
            return ""
        return "stored" if value == settings_service.MASK else "typed"
    if f.kind == "json":
        return json.dumps(value, ensure_ascii=False) if value is not None else ""
    if f.kind == "lines":
        return "\n".join(str(v) for v in value) if isinstance(value, list) else ""
    if f.kind == "multi":
        return [str(v) for v in value] if isinstance(value, list) else []
    if f.kind == "bool":
        return bool(value)
    return "" if value is None else str(value)


class FormErrors(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def _parse(f: Field, form: FormData, name: str) -> Any:
    """The value of one input; FormErrors naming it when it is not of its kind."""
    if f.kind == "bool":
        return name in form
    if f.kind == "multi":
        return [v for v in form.getlist(name) if isinstance(v, str)]
    raw = text(form, name).strip() if f.kind != "json" else text(form, name)
    if f.kind == "int":
        if not re.fullmatch(r"-?\d{1,12}", raw):
            raise FormErrors({name: _("Enter a whole number.")})
        return int(raw)
    if f.kind == "float":
        try:
            number = float(raw)
        except ValueError:
            raise FormErrors({name: _("Enter a number.")}) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise FormErrors({name: _("Enter a number.")})
        return number
    if f.kind == "json":
        if not raw.strip():
            return []
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise FormErrors({name: _("Not valid JSON: %(error)s") % {"error": str(exc)}}) from None
    if f.kind == "lines":
        return [line.strip() for line in raw.splitlines() if line.strip()]
    if f.key == "sending.retry_delay" and raw.isdigit():
        return int(raw)
    return raw


def _parse_entry(
    spec: ListSpec, form: FormData, index: int, olds: list[dict[str, Any]]
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """Entry `index` of the form: the stored one it edits (matched by uuid, else position)
    with the posted fields; None when removed, absent or the blank "new" entry left empty."""
    prefix = f"{spec.key}.{index}"
    if f"{prefix}.remove" in form or f"{prefix}.{spec.required}" not in form:
        return None, {}
    wanted = text(form, f"{prefix}.uuid", 100)
    base: dict[str, Any] | None
    if wanted:
        base = next((o for o in olds if o.get("uuid") == wanted), None)
    else:
        base = olds[index] if index < len(olds) and not olds[index].get("uuid") else None
    entry = copy.deepcopy(dict(base if base is not None else spec.defaults))
    errors: dict[str, str] = {}
    for f in spec.fields:
        name = f"{prefix}.{'.'.join(f.sub)}"
        try:
            parsed = _parse(f, form, name)
        except FormErrors as exc:
            errors.update(exc.errors)
            continue
        if f.kind == "secret" and parsed == "":
            continue  # an empty secret input keeps the stored (masked) one
        _put(entry, f.sub, parsed)
    if base is None and not wanted and not str(entry.get(spec.required) or "").strip():
        return None, {}
    if not entry.get("uuid"):
        # New entries get a uuid: masked secrets are matched by it.
        entry["uuid"] = wanted or str(uuid.uuid4())
    return entry, errors


def _olds(stored: Any) -> list[dict[str, Any]]:
    return [o for o in stored if isinstance(o, dict)] if isinstance(stored, list) else []


def _count(form: FormData, spec: ListSpec) -> int:
    raw = text(form, f"{spec.key}.count", 6)
    return min(int(raw), 100) if raw.isdigit() else 0


def _parse_list(
    spec: ListSpec, form: FormData, stored: Any
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]], dict[str, str]]:
    """The entries of a list setting from the form, the same by their index in the form, and
    the errors of inputs that are not of their kind."""
    olds = _olds(stored)
    entries: list[dict[str, Any]] = []
    by_index: dict[int, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for index in range(_count(form, spec)):
        entry, found = _parse_entry(spec, form, index, olds)
        errors.update(found)
        if entry is not None:
            entries.append(entry)
            by_index[index] = entry
    return entries, by_index, errors


@dataclass(slots=True)
class Posted:
    """A settings form as posted: the group's values, list entries by their index in the form,
    and the errors of inputs that are not of their kind."""

    values: dict[str, Any]
    entries: dict[str, dict[int, dict[str, Any]]]
    errors: dict[str, str]


def parse_group(group: Group, form: FormData, current: Mapping[str, Any]) -> Posted:
    """The group's settings as posted: `current` (masked) values with the form's changes."""
    values: dict[str, Any] = {}
    entries_of: dict[str, dict[int, dict[str, Any]]] = {}
    errors: dict[str, str] = {}
    for f in group.fields():
        base = values.setdefault(f.key, copy.deepcopy(current.get(f.key)))
        if f.kind == "secret" and not text(form, f.name).strip():
            continue  # an empty secret input keeps the stored (masked) one
        try:
            parsed = _parse(f, form, f.name)
        except FormErrors as exc:
            errors.update(exc.errors)
            continue
        if f.sub:
            if not isinstance(base, dict):
                base = values[f.key] = {}
            _put(base, f.sub, parsed)
        else:
            values[f.key] = parsed
    for spec in group.lists:
        entries, by_index, list_errors = _parse_list(spec, form, current.get(spec.key))
        values[spec.key] = entries
        entries_of[spec.key] = by_index
        errors.update(list_errors)
    return Posted(values, entries_of, errors)


def error_name(field_path: str, names: set[str]) -> str:
    """The input (or list entry) an error of `settings.update()` belongs to: `smtp[0].host` is
    input `smtp.0.host`; a path without an input falls back to its closest parent."""
    name = re.sub(r"\[(\d+)\]", r".\1", field_path)
    while name and name not in names:
        name = name.rpartition(".")[0]
    return name or ""


# --- Rendering -------------------------------------------------------------------------------


def _view_list(spec: ListSpec, entries: Any) -> list[dict[str, Any]]:
    items = []
    for index, entry in enumerate(e for e in (entries or []) if isinstance(e, Mapping)):
        items.append(_view_item(spec, index, entry))
    items.append(_view_item(spec, len(items), spec.defaults, new=True))
    return items


def _view_item(
    spec: ListSpec, index: int, entry: Mapping[str, Any], new: bool = False
) -> dict[str, Any]:
    prefix = f"{spec.key}.{index}"
    return {
        "index": index,
        "prefix": prefix,
        "uuid": "" if new else str(entry.get("uuid") or ""),
        "new": new,
        "title": str(entry.get("name") or entry.get("host") or ""),
        "fields": [
            {
                "spec": f,
                "name": f"{prefix}.{'.'.join(f.sub)}",
                "value": _shown(f, _dig(entry, f.sub)),
            }
            for f in spec.fields
        ],
    }


def _input_names(group: Group, values: Mapping[str, Any]) -> set[str]:
    names = {f.name for f in group.fields()}
    for spec in group.lists:
        for item in _view_list(spec, values.get(spec.key)):
            names.add(item["prefix"])
            names.update(f["name"] for f in item["fields"])
    return names


def _root_url(request: Request, values: Mapping[str, Any]) -> str:
    root = str(values.get("app.root_url") or app_state(request).settings.root_url or "")
    return (root or str(request.base_url)).rstrip("/")


def _render(
    request: Request,
    viewer: Viewer,
    group: Group,
    values: Mapping[str, Any],
    *,
    errors: Mapping[str, str] | None = None,
    tests: Mapping[str, Mapping[str, Any]] | None = None,
    status_code: int = 200,
) -> Response:
    sections = [
        {
            "title": s.title,
            "help": s.help,
            "webhook": f"{_root_url(request, values)}/webhooks/service/{s.webhook}"
            if s.webhook
            else "",
            "fields": [
                {"spec": f, "name": f.name, "value": _shown(f, _dig(values.get(f.key), f.sub))}
                for f in s.fields
            ],
        }
        for s in group.sections
    ]
    lists = [
        {"key": spec.key, "items": _view_list(spec, values.get(spec.key))} for spec in group.lists
    ]
    return render_page(
        request,
        "admin/settings.html",
        viewer=viewer,
        section="settings",
        title=_("Settings") + " · " + _(group.title),
        groups=GROUPS,
        group=group,
        sections=sections,
        lists=lists,
        errors=dict(errors or {}),
        tests=dict(tests or {}),
        editable=can(viewer, "settings:manage"),
        bounce_webhook=f"{_root_url(request, values)}/webhooks/bounce",
        test_email=text_or(values, "_test_email"),
        status_code=status_code,
    )


def text_or(values: Mapping[str, Any], key: str) -> str:
    value = values.get(key)
    return value if isinstance(value, str) else ""


def _missing(request: Request, viewer: Viewer) -> Response:
    return render_page(
        request,
        "error.html",
        viewer=viewer,
        section="settings",
        title="404",
        status_code=404,
        message=_("There is no such settings page."),
    )


async def _current(request: Request) -> dict[str, Any]:
    return await run_db(request, lambda s: settings_service.masked(settings_service.get_all(s)))


# --- Routes ----------------------------------------------------------------------------------


@router.get(BASE, include_in_schema=False)
async def settings_home(viewer: Annotated[Viewer, page("settings:get")]) -> Response:
    return RedirectResponse(f"{BASE}/general", status_code=303)


@router.get(BASE + "/{name}", include_in_schema=False)
async def settings_page(
    request: Request, name: str, viewer: Annotated[Viewer, page("settings:get")]
) -> Response:
    group = GROUP_BY_KEY.get(name)
    if group is None:
        return _missing(request, viewer)
    return _render(request, viewer, group, await _current(request))


@router.post(BASE + "/{name}", include_in_schema=False)
async def save_settings(
    request: Request,
    name: str,
    viewer: Annotated[Viewer, page("settings:get", "settings:manage")],
) -> Response:
    group = GROUP_BY_KEY.get(name)
    if group is None:
        return _missing(request, viewer)
    form = await form_fields(request)
    current = await _current(request)
    posted = parse_group(group, form, current)
    values, errors = posted.values, posted.errors
    shown = {**current, **values}
    if errors:
        return _render(request, viewer, group, shown, errors=errors, status_code=400)
    try:
        await check_upload_settings(request, values)

        def save(session: Session) -> None:
            settings_service.update(session, values)

        await run_db(request, save, write=True)
    except InvalidInput as exc:
        log.info("settings page %s refused for %s: %s", group.key, viewer.principal.username, exc)
        where = error_name(exc.field, _input_names(group, shown))
        return _render(request, viewer, group, shown, errors={where: exc.message}, status_code=400)
    except ApiError as exc:
        if exc.status >= 500:
            raise
        return _render(request, viewer, group, shown, errors={"": exc.message}, status_code=400)
    log.info(
        "settings saved from the %s page by %s: %s",
        group.key,
        viewer.principal.username,
        ", ".join(sorted(values)),
    )
    return redirect(request, f"{BASE}/{group.key}", flash=("success", _("Settings saved.")))


@router.post(BASE + "/smtp/test/{index}", include_in_schema=False)
async def smtp_test(
    request: Request,
    index: int,
    viewer: Annotated[Viewer, page("settings:get", "settings:manage")],
) -> Response:
    """The SMTP page's "Send test" of server `index`, with the values in the form (unsaved)."""
    group = GROUP_BY_KEY["smtp"]
    form = await form_fields(request)
    current = await _current(request)
    posted = parse_group(group, form, current)
    errors = posted.errors
    email = text(form, "test_email", 300).strip()
    shown = {**current, **posted.values, "_test_email": email}
    entry = posted.entries["smtp"].get(index)
    key = f"smtp.{index}"
    if errors or entry is None:
        errors = errors or {key: _("Fill in the server's host first.")}
        return _render(request, viewer, group, shown, errors=errors, status_code=400)
    try:
        answer, failure = await settings_api.run_smtp_test(request, {**entry, "email": email})
    except ApiError as exc:
        if exc.status >= 500:
            raise
        result = {"ok": False, "text": exc.message}
        return _render(request, viewer, group, shown, tests={key: result}, status_code=400)
    if answer["sent"]:
        message = _("Sent: the server answered %(code)s %(text)s") % {
            "code": answer["code"],
            "text": answer["message"],
        }
    else:
        message = _("Failed at %(failure)s") % {"failure": failure}
    result = {"ok": bool(answer["sent"]), "text": message}
    return _render(request, viewer, group, shown, tests={key: result})


@router.post(BASE + "/bounces/mailbox/test/{index}", include_in_schema=False)
async def mailbox_test(
    request: Request,
    index: int,
    viewer: Annotated[Viewer, page("settings:get", "settings:manage")],
) -> Response:
    """The Bounces page's "Test connection" of mailbox `index`, with the values in the form."""
    group = GROUP_BY_KEY["bounces"]
    form = await form_fields(request)
    current = await _current(request)
    posted = parse_group(group, form, current)
    errors = posted.errors
    shown = {**current, **posted.values}
    entry = posted.entries["bounce.mailboxes"].get(index)
    key = f"bounce.mailboxes.{index}"
    if errors or entry is None:
        errors = errors or {key: _("Fill in the mailbox's host first.")}
        return _render(request, viewer, group, shown, errors=errors, status_code=400)
    try:
        found = await settings_api.run_mailbox_test(request, entry)
    except ApiError as exc:
        if exc.status >= 500:
            raise
        result = {"ok": False, "text": exc.message}
        return _render(request, viewer, group, shown, tests={key: result}, status_code=400)
    if found.ok:
        message = _("Connected and logged in: %(count)s messages waiting.") % {
            "count": found.messages
        }
    else:
        message = _("Failed: %(error)s") % {"error": found.error}
    return _render(request, viewer, group, shown, tests={key: {"ok": found.ok, "text": message}})
