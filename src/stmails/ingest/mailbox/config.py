"""One bounce mailbox's settings: listmonk's `bounce.mailboxes` entry, extended.

listmonk's keys are read as they are (`enabled`, `type` pop, `host`, `port`, `auth_protocol`,
`username`, `password`, `tls_enabled`, `tls_skip_verify`, `scan_interval` such as "15m");
stmails adds `name`, `type` imap, `tls_mode` ("tls" implicit, "starttls", "none"; derived
from `tls_enabled` when absent), `auth_protocol` "xoauth2" with `oauth_token` (IMAP),
`ca_file`, `folder`, `max_messages`, `processed_action` ("delete", or "move" to
`processed_folder`, IMAP), `non_bounce_action` ("leave", or "move" to `non_bounce_folder`,
IMAP), `quarantine_folder`, `max_tries`, `max_message_bytes`, `timeout` (seconds) and
`classify_timeout` (seconds one message may take to classify).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    model_validator,
)

MailboxType = Literal["pop", "imap"]
TlsMode = Literal["tls", "starttls", "none"]
AuthProtocol = Literal["userpass", "xoauth2", "none"]
ProcessedAction = Literal["delete", "move"]
NonBounceAction = Literal["leave", "move"]

# Matched on the stripped value: blanks on both sides of an optional unit could be split
# between two "\s*" in every way, which is quadratic on a long run of blanks.
_INTERVAL = re.compile(r"(\d{1,7})\s*(ms|s|m|h)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Bounds of `classify_timeout`: an ordinary bounce classifies in milliseconds, and a message
# may hold a scan (and one classifier process) for at most this long.
MAX_CLASSIFY_TIMEOUT = 600.0


class MailboxConfigError(ValueError):
    """A mailbox entry that cannot work (unknown type, move on POP3, missing host...)."""


def parse_interval(value: Any, default: float = 900.0) -> float:
    """Seconds from listmonk's duration strings ("15m", "30s", "1h") or a number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return max(float(value), 1.0)
    if not value:
        return default
    match = _INTERVAL.fullmatch(str(value).strip())
    if not match:
        raise MailboxConfigError(f"scan_interval {value!r} is not like 15m, 30s or 1h")
    return max(int(match.group(1)) * _UNITS[match.group(2) or "s"], 1.0)


@dataclass(frozen=True, slots=True)
class MailboxConfig:
    """A validated mailbox entry; see the module docstring for what each setting means."""

    name: str
    type: MailboxType
    host: str
    port: int
    tls_mode: TlsMode = "tls"
    tls_skip_verify: bool = False
    ca_file: str = ""
    auth_protocol: AuthProtocol = "userpass"
    username: str = ""
    password: str = ""
    oauth_token: str = ""
    folder: str = "INBOX"
    scan_interval: float = 900.0
    max_messages: int = 1000
    processed_action: ProcessedAction = "delete"
    processed_folder: str = "Processed"
    non_bounce_action: NonBounceAction = "leave"
    non_bounce_folder: str = "Not-bounces"
    quarantine_folder: str = "Quarantine"
    max_tries: int = 3
    max_message_bytes: int = 10 * 1024 * 1024
    timeout: float = 30.0
    enabled: bool = True
    classify_timeout: float = 10.0

    def __repr__(self) -> str:
        # Credentials never reach logs through a repr.
        return f"MailboxConfig(name={self.name!r}, type={self.type!r}, host={self.host!r})"

    @classmethod
    def from_setting(cls, entry: Mapping[str, Any], index: int = 0) -> MailboxConfig:
        """A config from one `bounce.mailboxes` entry; `MailboxConfigError` when it is unusable
        (ValueError when a number is not one)."""
        try:
            valid = _Entry.model_validate(entry)
        except ValidationError as exc:
            raise _refusal(exc) from None
        name = valid.name or f"{valid.type}-{index}:{valid.host}:{valid.port}"
        return cls(name=name, **valid.model_dump(exclude={"name"}))


def _seconds(value: Any, default: float) -> float:
    """A number of seconds from a number or a numeric string; NaN for anything else."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _text(default: str) -> Any:
    """A text setting: listmonk's empty value (or a missing one) means `default`."""
    return BeforeValidator(lambda value: str(value or default))


def _lower(default: str, aliases: Mapping[str, str] | None = None) -> Any:
    """A case-insensitive keyword, with listmonk's spellings (`aliases`) read as ours."""

    def read(value: Any) -> str:
        word = str(value or default).lower()
        return (aliases or {}).get(word, word)

    return BeforeValidator(read)


def _count(default: int, least: int | None = None) -> Any:
    def read(value: Any) -> int:
        number = int(value or default)
        return number if least is None else max(number, least)

    return BeforeValidator(read)


def _required_host(host: str) -> str:
    if not host:
        raise MailboxConfigError("mailbox host is not set")
    return host


_Flag = Annotated[bool, BeforeValidator(bool)]


class _Entry(BaseModel):
    """One `bounce.mailboxes` entry, read as listmonk writes it (unknown keys ignored).

    Fields are validated in this order, and the first error is the one reported.
    """

    model_config = ConfigDict(extra="ignore", validate_default=True)

    type: Annotated[MailboxType, _lower("pop", {"pop3": "pop"})] = "pop"
    host: Annotated[str, _text(""), AfterValidator(_required_host)] = ""
    tls_mode: Annotated[TlsMode, _lower("tls", {"stls": "starttls"})] = "tls"
    auth_protocol: Annotated[AuthProtocol, _lower("userpass", {"login": "userpass"})] = "userpass"
    processed_action: Annotated[ProcessedAction, _lower("delete")] = "delete"
    non_bounce_action: Annotated[NonBounceAction, _lower("leave")] = "leave"
    port: Annotated[int, _count(0)] = 0
    classify_timeout: Annotated[float, BeforeValidator(lambda v: _seconds(v, 10.0))] = 10.0
    scan_interval: Annotated[float, BeforeValidator(parse_interval)] = 900.0
    name: Annotated[str, _text("")] = ""
    tls_skip_verify: _Flag = False
    ca_file: Annotated[str, _text("")] = ""
    username: Annotated[str, _text("")] = ""
    password: Annotated[str, _text("")] = ""
    oauth_token: Annotated[str, _text("")] = ""
    folder: Annotated[str, _text("INBOX")] = "INBOX"
    max_messages: Annotated[int, _count(1000, least=1)] = 1000
    processed_folder: Annotated[str, _text("Processed")] = "Processed"
    non_bounce_folder: Annotated[str, _text("Not-bounces")] = "Not-bounces"
    quarantine_folder: Annotated[str, _text("Quarantine")] = "Quarantine"
    max_tries: Annotated[int, _count(3, least=1)] = 3
    max_message_bytes: Annotated[int, _count(10 * 1024 * 1024)] = 10 * 1024 * 1024
    timeout: Annotated[float, BeforeValidator(lambda v: float(v or 30.0))] = 30.0
    enabled: _Flag = True

    @model_validator(mode="before")
    @classmethod
    def _listmonk_keys(cls, entry: Any) -> Any:
        """listmonk's `tls_enabled` gives the TLS mode when `tls_mode` is absent, and its
        `uuid` names the mailbox when `name` is."""
        if not isinstance(entry, Mapping):
            return entry
        values = dict(entry)
        if not values.get("tls_mode"):
            values["tls_mode"] = "tls" if values.get("tls_enabled", True) else "none"
        if not values.get("name"):
            values["name"] = values.get("uuid") or ""
        return values

    @model_validator(mode="after")
    def _usable(self) -> _Entry:
        if self.auth_protocol == "xoauth2" and self.type != "imap":
            raise MailboxConfigError("XOAUTH2 is supported for IMAP mailboxes only")
        if self.type == "pop" and "move" in (self.processed_action, self.non_bounce_action):
            raise MailboxConfigError("POP3 has no folders: messages can only be deleted or left")
        if not 0 < self.classify_timeout <= MAX_CLASSIFY_TIMEOUT:
            raise MailboxConfigError(
                f"classify_timeout is a number of seconds, over 0 and at most "
                f"{MAX_CLASSIFY_TIMEOUT:g}"
            )
        if not self.port:
            default = {("pop", True): 995, ("pop", False): 110}.get(
                (self.type, self.tls_mode == "tls"), 993 if self.tls_mode == "tls" else 143
            )
            self.port = default
        return self


# What a refused keyword says (the messages admins have always seen).
_KEYWORDS = {
    "type": "mailbox type {value!r} is not pop or imap",
    "tls_mode": "tls_mode {value!r} is not tls, starttls or none",
    "auth_protocol": "auth_protocol {value!r} is not userpass, xoauth2 or none",
    "processed_action": "processed_action is delete or move; non_bounce_action is leave or move",
    "non_bounce_action": "processed_action is delete or move; non_bounce_action is leave or move",
}


def _refusal(exc: ValidationError) -> ValueError:
    """The first error of a refused entry: `MailboxConfigError` for a rule it breaks, the
    plain ValueError of a value that is not a number where one is needed (as `int()` says)."""
    error = exc.errors()[0]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, MailboxConfigError):
        return cause
    field = str(error["loc"][0]) if error["loc"] else ""
    if field in _KEYWORDS and error["type"] == "literal_error":
        return MailboxConfigError(_KEYWORDS[field].format(value=error["input"]))
    if isinstance(cause, ValueError):
        return ValueError(str(cause))
    return ValueError(f"{field}: {error['msg']}")


def mailboxes_from_settings(entries: Any, errors: list[str] | None = None) -> list[MailboxConfig]:
    """Every enabled mailbox of a `bounce.mailboxes` list.

    An unusable entry raises `MailboxConfigError`, unless `errors` is given: then its message is
    appended there and the other mailboxes are still returned (one bad entry must not stop the
    scanning of the others).
    """
    if not isinstance(entries, list):
        return []
    configs = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            continue
        try:
            config = MailboxConfig.from_setting(entry, index)
        except MailboxConfigError as exc:
            if errors is None:
                raise
            errors.append(f"bounce.mailboxes[{index}]: {exc}")
            continue
        if config.enabled:
            configs.append(config)
    return configs
