"""Sending settings: their validation (pydantic models, one per key) and `SendingConfig`.

The settings live in the run-time `settings` table under listmonk's keys where listmonk has
them: `smtp` (the list of servers), `app.root_url`, `app.from_email`, `app.concurrency`,
`app.message_rate`, `app.batch_size`, `app.max_send_errors`, and the sliding window
`app.message_sliding_window` (on/off), `app.message_sliding_window_duration` ("1h") and
`app.message_sliding_window_rate` (10000): at most that many campaign messages per window,
counted across every sender (`services.sending.window`). stmails' own keys:

- `sending.bounce_address`: the envelope sender (MAIL FROM) of every message, e.g.
  `bounce@mail.example.com`; empty means the From address. A `Return-Path` header among an SMTP
  server's `email_headers` (listmonk's way) or a message's own headers takes precedence (see
  `services.sending.envelope`).
- `sending.verp`: true to send from `local+TOKEN@domain` (an HMAC token naming campaign and
  subscriber), which the mailbox scanner verifies.
- `sending.message_id_domain`: the domain of Message-IDs (default: the bounce address's domain).
- `sending.unsubscribe_mailto`: the mailto target of List-Unsubscribe (default: none).
- `sending.feedback_id_sender`: the last field of Feedback-ID (default `stmails`).
- `sending.soft_retries`, `sending.retry_delay`: how often and how long after a 4xx answer a
  message is tried again before it is recorded as a soft bounce.
- `relay.sender_domains`: the domains the SMTP relay accepts as senders (empty: any).

`validate_setting(key, value)` checks one key (`InvalidInput` naming the field, e.g.
`smtp[0].port`), `check_together(values)` what only the keys together can get wrong (VERP and
the bounce addresses), and `SendingConfig.from_settings(values)` builds what the senders use.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.utils import parseaddr
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
)
from pydantic_core import ErrorDetails

from stmails.core.verp import MAX_PREFIX
from stmails.services.errors import InvalidInput
from stmails.services.sending.messages import TRACKING_HEADERS, WRITTEN_HEADERS
from stmails.services.sending.routing import messenger_of
from stmails.services.sending.smtp import SmtpServer, parse_duration
from stmails.verify.syntax import Policy, check_domain, check_syntax

# Headers stmails writes itself (and Cc/Bcc, which would copy every message to someone): an
# SMTP server's custom headers may not set them.
OWN_HEADERS = WRITTEN_HEADERS | TRACKING_HEADERS | {"cc", "bcc"}
# A header field name: printable ASCII without a colon (RFC 5322 section 2.2).
_FIELD_NAME = re.compile(r"[!-9;-~]{1,76}")
# RFC 5322 section 2.1.1: a line is at most 998 characters.
MAX_HEADER_VALUE = 900
# Anchored: pydantic's `pattern` searches.
_FEEDBACK_SENDER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HOSTNAME_CHARS = re.compile(r"[A-Za-z0-9.:\[\]_-]{1,253}")


def address_problem(address: str) -> str | None:
    """Why `address` (a bare `local@domain`) cannot be a sender, or None when it can."""
    result = check_syntax(address, Policy.RFC5321)
    return None if result.valid else result.error or "not an e-mail address"


def bare_address(value: str) -> str:
    """`local@domain` from `local@domain`, `<local@domain>` or `Name <local@domain>`;
    ValueError when there is no usable address."""
    text = value.strip()
    if "\r" in text or "\n" in text:
        raise ValueError("must be on one line")
    address = parseaddr(text)[1]
    problem = address_problem(address) if address else "not an e-mail address"
    if problem:
        raise ValueError(f"{text[:100]!r}: {problem}")
    return address


def _sender_address(value: str) -> str:
    # A From address: `Name <addr>` or a bare address, kept as written.
    bare_address(value)
    return value.strip()


def _from_address(value: str) -> str:
    # An address or, as listmonk takes them, a domain (any address there); compared without
    # letter case: stored as the bare address or the domain in lower case.
    if "@" in value:
        return bare_address(value).lower()
    return _domain(value)


def _optional_address(value: str) -> str:
    return bare_address(value) if value.strip() else ""


def _domain(value: str) -> str:
    domain = value.strip().lower().rstrip(".")
    error = check_domain(domain).error(Policy.RFC5321)
    if error:
        raise ValueError(f"{value[:100]!r}: {error}")
    return domain


def _optional_domain(value: str) -> str:
    return _domain(value) if value.strip() else ""


def _host(value: str) -> str:
    # A host name or an IP address (listmonk trims pasted whitespace too).
    host = value.strip()
    if not host:
        raise ValueError("an SMTP server needs a host")
    if "://" in host or not _HOSTNAME_CHARS.fullmatch(host):
        raise ValueError(f"{host[:100]!r} is not a host name or IP address")
    return host


def _root_url(value: str) -> str:
    url = value.strip().rstrip("/")
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in url:
        raise ValueError(f"{value[:100]!r} is not an http(s) URL")
    return url


def _duration(value: Any) -> Any:
    # listmonk's durations ("15s", "1m", "500ms") or a number of seconds; kept as written.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a duration like 15s, 1m or 500ms")
    seconds = parse_duration(value, 0.0)
    if seconds < 0 or seconds > 7 * 86400:
        raise ValueError("must be between 0 and 7 days")
    return value


def _positive_duration(value: Any) -> Any:
    if parse_duration(_duration(value), 0.0) <= 0:
        raise ValueError("must be more than 0s")
    return value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _tls_type(value: Any) -> Any:
    # listmonk writes none, STARTTLS and TLS; any letter case is understood.
    if isinstance(value, str):
        return {"": "none", "none": "none", "starttls": "STARTTLS", "tls": "TLS"}.get(
            value.strip().lower(), value
        )
    return value


def _auth_protocol(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return "none"
    return _lower(value)


Duration = Annotated[str | int | float, BeforeValidator(_duration)]
PositiveDuration = Annotated[str | int | float, BeforeValidator(_positive_duration)]
Host = Annotated[str, AfterValidator(_host)]
SenderAddress = Annotated[str, AfterValidator(_sender_address)]
OptionalAddress = Annotated[str, AfterValidator(_optional_address)]
OptionalDomain = Annotated[str, AfterValidator(_optional_domain)]


class SmtpServerSetting(BaseModel):
    """One element of listmonk's `smtp` list, as `PUT /api/settings` accepts it."""

    model_config = ConfigDict(extra="forbid")

    uuid: str = ""
    name: str = ""
    enabled: StrictBool = True
    host: Host
    hello_hostname: str = ""
    port: StrictInt = Field(default=25, ge=1, le=65535)
    auth_protocol: Annotated[
        Literal["none", "plain", "login", "cram"], BeforeValidator(_auth_protocol)
    ] = "none"
    username: str = ""
    password: str = ""
    email_headers: list[dict[str, str]] = Field(default_factory=list)
    max_conns: StrictInt = Field(default=10, ge=1, le=1000)
    max_msg_retries: StrictInt = Field(default=2, ge=0, le=100)
    # listmonk's delay between two tries of one message (on a new connection); empty: none.
    msg_retry_delay: Duration = ""
    idle_timeout: PositiveDuration = "15s"
    wait_timeout: PositiveDuration = "5s"
    tls_type: Annotated[Literal["none", "STARTTLS", "TLS"], BeforeValidator(_tls_type)] = "none"
    tls_skip_verify: StrictBool = False
    # listmonk's routing: a message whose From address is listed here goes through this
    # server; servers without a list take the others.
    from_addresses: list[Annotated[str, AfterValidator(_from_address)]] = Field(
        default_factory=list, max_length=1000
    )

    def headers(self) -> list[tuple[str, str]]:
        """The custom headers as (name, value) pairs, in order."""
        return [(name, value) for entry in self.email_headers for name, value in entry.items()]

    def return_path(self) -> str:
        """The bare address of the `Return-Path` custom header ('' when there is none)."""
        for name, value in self.headers():
            if name.strip().lower() == "return-path":
                return bare_address(value)
        return ""

    def runtime(self) -> SmtpServer:
        """The server as the SMTP pool uses it."""
        return SmtpServer(
            host=self.host,
            port=self.port,
            hello_hostname=self.hello_hostname.strip(),
            auth_protocol=self.auth_protocol,
            username=self.username,
            password=self.password,
            tls_type=self.tls_type.lower(),
            tls_skip_verify=self.tls_skip_verify,
            max_conns=self.max_conns,
            max_msg_retries=self.max_msg_retries,
            msg_retry_delay=parse_duration(self.msg_retry_delay, 0.0),
            idle_timeout=parse_duration(self.idle_timeout, 15.0),
            wait_timeout=parse_duration(self.wait_timeout, 5.0),
            email_headers=tuple(
                (n.strip(), v) for n, v in self.headers() if n.strip().lower() != "return-path"
            ),
            return_path=self.return_path(),
            name=self.name.strip(),
            from_addresses=tuple(dict.fromkeys(self.from_addresses)),
        )


def _check_server(server: SmtpServerSetting, where: str) -> None:
    """What the model alone cannot say: AUTH needs credentials smtplib can send, and custom
    headers must be well-formed, not ours, and a Return-Path must be an address."""
    if server.auth_protocol != "none":
        for name in ("username", "password"):
            value = getattr(server, name)
            if not value:
                raise InvalidInput(
                    f"{where}.{name}",
                    f"required with auth_protocol {server.auth_protocol} (a masked password is "
                    "kept only while host, port and TLS settings stay the same)",
                )
            if not value.isascii():
                raise InvalidInput(f"{where}.{name}", "must be ASCII (SMTP AUTH sends it so)")
    if server.hello_hostname and not _HOSTNAME_CHARS.fullmatch(server.hello_hostname.strip()):
        raise InvalidInput(f"{where}.hello_hostname", "must be a host name")
    seen: set[str] = set()
    for number, entry in enumerate(server.email_headers):
        for name, value in entry.items():
            here = f"{where}.email_headers[{number}]"
            key = name.strip().lower()
            if not _FIELD_NAME.fullmatch(name.strip()):
                raise InvalidInput(here, f"bad header name {name[:60]!r}")
            if key in OWN_HEADERS:
                raise InvalidInput(here, f"header {name!r} is written by stmails")
            if "\r" in value or "\n" in value or len(value) > MAX_HEADER_VALUE:
                raise InvalidInput(
                    here, f"header {name!r}: one line of at most {MAX_HEADER_VALUE} characters"
                )
            if key in seen:
                raise InvalidInput(here, f"header {name!r} is given twice")
            seen.add(key)
            if key == "return-path":
                try:
                    bare_address(value)
                except ValueError as exc:
                    raise InvalidInput(here, f"Return-Path: {exc}") from None


def _smtp(value: Any) -> list[dict[str, Any]]:
    return [server.model_dump() for server in _servers(value)]


def _servers(value: Any) -> list[SmtpServerSetting]:
    """Every server of the `smtp` setting, validated (models, then what only the list as a
    whole can get wrong), each with a uuid; InvalidInput naming the first wrong field."""
    if not isinstance(value, list):
        raise InvalidInput("smtp", "must be a list of SMTP servers")
    servers: list[SmtpServerSetting] = []
    uuids: set[str] = set()
    names: dict[str, str] = {}
    senders: dict[str, str] = {}
    for number, entry in enumerate(value):
        where = f"smtp[{number}]"
        server: SmtpServerSetting = _model(SmtpServerSetting, entry, where)
        _check_server(server, where)
        # A named server is also the messenger `email-<name>`: names must tell them apart.
        name = messenger_of({"name": server.name})
        if name in names:
            raise InvalidInput(
                f"{where}.name", f"{names[name]} has the same messenger name {name!r}"
            )
        if name:
            names[name] = where
        for index, address in enumerate(server.from_addresses):
            if address in senders and senders[address] != where:
                raise InvalidInput(
                    f"{where}.from_addresses[{index}]",
                    f"{address} is listed by {senders[address]} too: a From address goes "
                    "through one server",
                )
            senders[address] = where
        # As listmonk does: a uuid names the server, so that a masked password written back
        # finds the server it belongs to.
        server.uuid = server.uuid or str(uuid.uuid4())
        if server.uuid in uuids:
            raise InvalidInput(f"{where}.uuid", "two servers have the same uuid")
        uuids.add(server.uuid)
        servers.append(server)
    return servers


def _model(model: type[BaseModel], value: Any, where: str) -> Any:
    """`value` validated by `model`; InvalidInput naming the first wrong field."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = where
        for part in first["loc"]:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        raise InvalidInput(path, _message(first)) from None


def _message(error: ErrorDetails) -> str:
    """What a pydantic error says, without its "Value error, " prefix."""
    return str(error["msg"]).removeprefix("Value error, ")


class _Scalars(BaseModel):
    """The single-value sending keys; each is validated alone (`validate_setting`)."""

    model_config = ConfigDict(extra="forbid")

    root_url: Annotated[str, AfterValidator(_root_url)] = ""
    from_email: SenderAddress = "stmails <noreply@localhost>"
    concurrency: StrictInt = Field(default=4, ge=1, le=100)
    message_rate: StrictFloat = Field(default=0.0, ge=0, le=1_000_000)
    batch_size: StrictInt = Field(default=500, ge=1, le=5000)
    max_send_errors: StrictInt = Field(default=1000, ge=0, le=10_000_000)
    bounce_address: OptionalAddress = ""
    verp: StrictBool = False
    message_id_domain: OptionalDomain = ""
    unsubscribe_mailto: OptionalAddress = ""
    feedback_id_sender: str = Field(default="stmails", pattern=_FEEDBACK_SENDER.pattern)
    soft_retries: StrictInt = Field(default=2, ge=0, le=20)
    retry_delay: Duration = 300
    sliding_window: StrictBool = False
    sliding_window_duration: PositiveDuration = "1h"
    sliding_window_rate: StrictInt = Field(default=10000, ge=1, le=100_000_000)


# Setting key -> field of `_Scalars`.
SCALAR_KEYS = {
    "app.root_url": "root_url",
    "app.from_email": "from_email",
    "app.concurrency": "concurrency",
    "app.message_rate": "message_rate",
    "app.batch_size": "batch_size",
    "app.max_send_errors": "max_send_errors",
    "sending.bounce_address": "bounce_address",
    "sending.verp": "verp",
    "sending.message_id_domain": "message_id_domain",
    "sending.unsubscribe_mailto": "unsubscribe_mailto",
    "sending.feedback_id_sender": "feedback_id_sender",
    "sending.soft_retries": "soft_retries",
    "sending.retry_delay": "retry_delay",
    "app.message_sliding_window": "sliding_window",
    "app.message_sliding_window_duration": "sliding_window_duration",
    "app.message_sliding_window_rate": "sliding_window_rate",
}
_DEFAULTS = _Scalars()
# Field of `_Scalars` -> setting key.
_KEY_OF = {name: key for key, name in SCALAR_KEYS.items()}

# Defaults of the sending keys as `GET /api/settings` shows them.
DEFAULTS: dict[str, Any] = {key: getattr(_DEFAULTS, name) for key, name in SCALAR_KEYS.items()}
DEFAULTS["relay.sender_domains"] = []


def _sender_domains(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput("relay.sender_domains", "must be a list of domain names")
    domains = []
    for number, item in enumerate(value):
        try:
            domains.append(_domain(item))
        except ValueError as exc:
            raise InvalidInput(f"relay.sender_domains[{number}]", str(exc)) from None
    return list(dict.fromkeys(domains))


def _scalars(given: Mapping[str, Any]) -> _Scalars:
    """`_Scalars` from field names to values (absent fields: their defaults, unchecked);
    InvalidInput naming the setting key of the first wrong field."""
    try:
        return _Scalars.model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(_KEY_OF[str(first["loc"][0])], _message(first)) from None


def _scalar(key: str, value: Any) -> Any:
    name = SCALAR_KEYS[key]
    if value is None:
        raise InvalidInput(key, "must not be null")
    return getattr(_scalars({name: value}), name)


def stored_scalars(values: Mapping[str, Any]) -> _Scalars:
    """The single-value sending keys of a mapping of stored settings, validated by one model
    (a key missing, null or empty takes its default); InvalidInput naming the first wrong key."""
    return _scalars(
        {
            name: value
            for key, name in SCALAR_KEYS.items()
            if (value := values.get(key)) is not None and value != ""
        }
    )


def _scalar_validator(key: str) -> Callable[[Any], Any]:
    return lambda value: _scalar(key, value)


VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "smtp": _smtp,
    "relay.sender_domains": _sender_domains,
    **{key: _scalar_validator(key) for key in SCALAR_KEYS},
}


def validate_setting(key: str, value: Any) -> Any:
    """The value to store for a sending key, normalized; InvalidInput naming the field."""
    return VALIDATORS[key](value)


def enabled_servers(values: Mapping[str, Any]) -> list[SmtpServerSetting]:
    """The enabled servers of the stored `smtp` setting (validated; InvalidInput if not)."""
    return [server for server in _servers(values.get("smtp") or []) if server.enabled]


def bounce_bases(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(setting, address) of the addresses envelope senders are made from: each enabled
    server's Return-Path header, and `sending.bounce_address` while a server has none."""
    bases: list[tuple[str, str]] = []
    servers = enabled_servers(values)
    for number, server in enumerate(servers):
        if server.return_path():
            bases.append((f"smtp[{number}].email_headers", server.return_path()))
    bounce = str(values.get("sending.bounce_address") or "")
    if bounce and (not servers or any(not s.return_path() for s in servers)):
        bases.append(("sending.bounce_address", bounce))
    return bases


def check_together(values: Mapping[str, Any]) -> None:
    """What only the settings together can get wrong; InvalidInput naming the field.

    With `sending.verp`, every address an envelope sender is made from must leave room for
    the token in its local part, and they must share one local part: the bounce mailbox
    scanner looks for `local+TOKEN@` under the local part of `verp_prefix()`.
    """
    if not values.get("sending.verp"):
        return
    locals_seen: dict[str, str] = {}
    for where, address in bounce_bases(values):
        local = address.rpartition("@")[0]
        if len(local.encode()) > MAX_PREFIX:
            raise InvalidInput(
                where,
                f"the local part of {address!r} is over {MAX_PREFIX} octets, too long for "
                "sending.verp's token",
            )
        locals_seen.setdefault(local.lower(), where)
    if len(locals_seen) > 1:
        first, *others = locals_seen.values()
        raise InvalidInput(
            others[0],
            f"with sending.verp every bounce address needs the same local part as {first}'s "
            "(the bounce mailbox scanner recognizes one)",
        )


def verp_prefix(values: Mapping[str, Any]) -> str:
    """The local part VERP tokens are made under ('' when no bounce address is set)."""
    try:
        bases = bounce_bases(values)
    except InvalidInput:
        bases = []
    return bases[0][1].rpartition("@")[0] if bases else ""


@dataclass(frozen=True)
class SendingConfig:
    """Everything the senders need besides the database and the SMTP transport."""

    root_url: str = "http://127.0.0.1:9000"
    from_email: str = _DEFAULTS.from_email
    bounce_address: str = ""
    verp: bool = False
    message_id_domain: str = ""
    unsubscribe_mailto: str = ""
    feedback_id_sender: str = _DEFAULTS.feedback_id_sender
    concurrency: int = _DEFAULTS.concurrency
    message_rate: float = 0.0
    batch_size: int = _DEFAULTS.batch_size
    max_send_errors: int = _DEFAULTS.max_send_errors
    soft_retries: int = _DEFAULTS.soft_retries
    retry_delay: float = 300.0
    smtp: list[SmtpServer] = field(default_factory=list)
    relay_sender_domains: tuple[str, ...] = ()
    # listmonk's sliding window: at most `window_rate` campaign messages per `window_seconds`
    # across the deployment (0: no window).
    window_seconds: float = 0.0
    window_rate: int = _DEFAULTS.sliding_window_rate

    @property
    def id_domain(self) -> str:
        """The domain Message-IDs are made on."""
        if self.message_id_domain:
            return self.message_id_domain
        bases = [self.bounce_address, *(s.return_path for s in self.smtp), self.from_email]
        for address in bases:
            domain = address.rpartition("@")[2].strip(" >").lower()
            if domain:
                return domain
        return "localhost"

    @property
    def server_return_paths(self) -> tuple[str, ...]:
        """The distinct Return-Path headers of the enabled servers."""
        return tuple(dict.fromkeys(s.return_path for s in self.smtp if s.return_path))

    @property
    def needs_default_sender(self) -> bool:
        """Whether some enabled server sets no Return-Path (its messages then go out from the
        bounce address or the From address)."""
        return not self.smtp or any(not s.return_path for s in self.smtp)

    @classmethod
    def from_settings(cls, values: Mapping[str, Any], root_url: str = "") -> SendingConfig:
        """The configuration from a mapping of setting keys to values (missing keys: defaults);
        InvalidInput naming the field when a stored value does not validate."""
        stored = stored_scalars(values)
        servers = enabled_servers(values)
        domains = values.get("relay.sender_domains")
        return cls(
            root_url=(stored.root_url or root_url or cls.root_url).rstrip("/"),
            from_email=stored.from_email,
            bounce_address=stored.bounce_address,
            verp=stored.verp,
            message_id_domain=stored.message_id_domain,
            unsubscribe_mailto=stored.unsubscribe_mailto,
            feedback_id_sender=stored.feedback_id_sender,
            concurrency=stored.concurrency,
            message_rate=stored.message_rate,
            batch_size=stored.batch_size,
            max_send_errors=stored.max_send_errors,
            soft_retries=stored.soft_retries,
            retry_delay=parse_duration(stored.retry_delay, 300.0),
            smtp=[server.runtime() for server in servers],
            relay_sender_domains=tuple(
                () if domains is None or domains == "" else _sender_domains(domains)
            ),
            window_seconds=(
                parse_duration(stored.sliding_window_duration, 3600.0)
                if stored.sliding_window
                else 0.0
            ),
            window_rate=stored.sliding_window_rate,
        )


def single_server(entry: Any) -> SmtpServer:
    """One server as `POST /api/settings/smtp/test` takes it: validated like an element of
    `smtp` (InvalidInput naming `smtp.<field>`), one connection, no second try."""
    server: SmtpServerSetting = _model(SmtpServerSetting, entry, "smtp")
    _check_server(server, "smtp")
    return replace(server.runtime(), max_conns=1, max_msg_retries=0, timeout=20.0)


def servers_from_settings(smtp: Sequence[Mapping[str, Any]]) -> list[SmtpServer]:
    """The enabled servers of listmonk's `smtp` setting; InvalidInput naming a bad field."""
    return [s.runtime() for s in enabled_servers({"smtp": list(smtp)})]


def server_from_setting(entry: Mapping[str, Any]) -> SmtpServer:
    """One element of listmonk's `smtp` list (enabled or not) as the pool uses it; InvalidInput
    naming the field (`smtp[0].<field>`) when it does not validate."""
    server: SmtpServerSetting = _model(SmtpServerSetting, {**entry, "enabled": True}, "smtp[0]")
    _check_server(server, "smtp[0]")
    return server.runtime()
