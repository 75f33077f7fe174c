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
from typing import Any, Literal

MailboxType = Literal["pop", "imap"]
TlsMode = Literal["tls", "starttls", "none"]

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
    auth_protocol: Literal["userpass", "xoauth2", "none"] = "userpass"
    username: str = ""
    password: str = ""
    oauth_token: str = ""
    folder: str = "INBOX"
    scan_interval: float = 900.0
    max_messages: int = 1000
    processed_action: Literal["delete", "move"] = "delete"
    processed_folder: str = "Processed"
    non_bounce_action: Literal["leave", "move"] = "leave"
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
        """A config from one `bounce.mailboxes` entry; `MailboxConfigError` when it is unusable."""
        kind = str(entry.get("type") or "pop").lower()
        if kind in ("pop3",):
            kind = "pop"
        if kind not in ("pop", "imap"):
            raise MailboxConfigError(f"mailbox type {kind!r} is not pop or imap")
        host = str(entry.get("host") or "")
        if not host:
            raise MailboxConfigError("mailbox host is not set")
        tls_mode = str(entry.get("tls_mode") or "").lower()
        if not tls_mode:
            tls_mode = "tls" if entry.get("tls_enabled", True) else "none"
        if tls_mode == "stls":
            tls_mode = "starttls"
        if tls_mode not in ("tls", "starttls", "none"):
            raise MailboxConfigError(f"tls_mode {tls_mode!r} is not tls, starttls or none")
        default_port = {("pop", True): 995, ("pop", False): 110}.get(
            (kind, tls_mode == "tls"), 993 if tls_mode == "tls" else 143
        )
        auth = str(entry.get("auth_protocol") or "userpass").lower()
        if auth == "login":
            auth = "userpass"
        if auth not in ("userpass", "xoauth2", "none"):
            raise MailboxConfigError(f"auth_protocol {auth!r} is not userpass, xoauth2 or none")
        if auth == "xoauth2" and kind != "imap":
            raise MailboxConfigError("XOAUTH2 is supported for IMAP mailboxes only")
        processed = str(entry.get("processed_action") or "delete").lower()
        non_bounce = str(entry.get("non_bounce_action") or "leave").lower()
        if processed not in ("delete", "move") or non_bounce not in ("leave", "move"):
            raise MailboxConfigError(
                "processed_action is delete or move; non_bounce_action is leave or move"
            )
        if kind == "pop" and "move" in (processed, non_bounce):
            raise MailboxConfigError("POP3 has no folders: messages can only be deleted or left")
        port = int(entry.get("port") or default_port)
        classify_timeout = _seconds(entry.get("classify_timeout"), 10.0)
        if not 0 < classify_timeout <= MAX_CLASSIFY_TIMEOUT:
            raise MailboxConfigError(
                f"classify_timeout is a number of seconds, over 0 and at most "
                f"{MAX_CLASSIFY_TIMEOUT:g}"
            )
        name = str(entry.get("name") or entry.get("uuid") or f"{kind}-{index}:{host}:{port}")
        return cls(
            name=name,
            type=kind,  # type: ignore[arg-type]
            host=host,
            port=port,
            tls_mode=tls_mode,  # type: ignore[arg-type]
            tls_skip_verify=bool(entry.get("tls_skip_verify", False)),
            ca_file=str(entry.get("ca_file") or ""),
            auth_protocol=auth,  # type: ignore[arg-type]
            username=str(entry.get("username") or ""),
            password=str(entry.get("password") or ""),
            oauth_token=str(entry.get("oauth_token") or ""),
            folder=str(entry.get("folder") or "INBOX"),
            scan_interval=parse_interval(entry.get("scan_interval")),
            max_messages=max(int(entry.get("max_messages") or 1000), 1),
            processed_action=processed,  # type: ignore[arg-type]
            processed_folder=str(entry.get("processed_folder") or "Processed"),
            non_bounce_action=non_bounce,  # type: ignore[arg-type]
            non_bounce_folder=str(entry.get("non_bounce_folder") or "Not-bounces"),
            quarantine_folder=str(entry.get("quarantine_folder") or "Quarantine"),
            max_tries=max(int(entry.get("max_tries") or 3), 1),
            max_message_bytes=int(entry.get("max_message_bytes") or 10 * 1024 * 1024),
            timeout=float(entry.get("timeout") or 30.0),
            enabled=bool(entry.get("enabled", True)),
            classify_timeout=classify_timeout,
        )


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
