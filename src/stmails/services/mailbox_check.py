"""Trying a bounce mailbox's settings before they are saved: connect, log in, count messages.

`POST /api/settings/bounces/mailbox/test` and the Settings → Bounces page's "Test connection"
button call `check_mailbox()`. A masked (or empty) password or OAuth token means the stored one
of the same mailbox (matched by `uuid`, else by `name`), kept only while the entry still points
at the same server (`settings.SECRET_TARGETS`), as saving does: nobody can send the stored
password to a server of their own by testing.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from stmails.ingest.mailbox import MailboxConfig, MailboxConfigError, MailboxError, connect
from stmails.services import settings as settings_service
from stmails.services.errors import InvalidInput

log = logging.getLogger("stmails.settings")

KEY = "bounce.mailboxes"
# A test answers within this many seconds per network step, whatever the entry's timeout.
MAX_TEST_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class MailboxTestResult:
    """What the server answered: `ok` with the number of messages waiting, or the error."""

    ok: bool
    host: str
    port: int
    type: str
    tls_mode: str
    messages: int | None
    error: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "host": self.host,
            "port": self.port,
            "type": self.type,
            "tls_mode": self.tls_mode,
            "messages": self.messages,
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }


def _stored_entry(entry: Mapping[str, Any], stored: Any) -> Mapping[str, Any] | None:
    if not isinstance(stored, list):
        return None
    items = [s for s in stored if isinstance(s, Mapping)]
    for field in ("uuid", "name"):
        wanted = entry.get(field)
        if wanted:
            found = next((s for s in items if s.get(field) == wanted), None)
            if found is not None:
                return found
    return None


def with_stored_password(entry: Mapping[str, Any], stored: Any) -> dict[str, Any]:
    """`entry` with its masked or empty secrets taken from the stored mailbox it names, while
    that one points at the same server; otherwise they stay empty."""
    filled = copy.deepcopy(dict(entry))
    previous = _stored_entry(filled, stored)
    if previous is not None and not settings_service.same_target(KEY, filled, previous):
        previous = None
    for name in settings_service.SECRET_FIELDS[KEY]:
        value = filled.get(name)
        if isinstance(value, str) and (value == "" or set(value) == {"•"}):
            filled[name] = str(previous.get(name) or "") if previous is not None else ""
    return filled


def mailbox_config(entry: Mapping[str, Any]) -> MailboxConfig:
    """The validated config of one entry; InvalidInput naming the problem when unusable."""
    try:
        config = MailboxConfig.from_setting(entry)
    except MailboxConfigError as exc:
        raise InvalidInput(KEY, str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise InvalidInput(KEY, f"not a usable mailbox entry ({exc})") from None
    return config


def check_mailbox(entry: Mapping[str, Any], stored: Any) -> MailboxTestResult:
    """Connect to the mailbox `entry` describes, log in, select its folder and count what is
    waiting; nothing is changed on the server. Runs blocking network I/O (call it in a
    thread). InvalidInput when the entry cannot work at all."""
    config = mailbox_config(with_stored_password(entry, stored))
    if config.timeout > MAX_TEST_TIMEOUT or config.timeout <= 0:
        config = _with_timeout(config, MAX_TEST_TIMEOUT)
    started = time.monotonic()
    messages: int | None = None
    error = ""
    try:
        client = connect(config)
        try:
            messages = len(client.list_messages())
        finally:
            client.abandon()
    except MailboxError as exc:
        error = str(exc)
    except OSError as exc:
        error = f"{config.host}:{config.port}: {exc}"
    result = MailboxTestResult(
        ok=not error,
        host=config.host,
        port=config.port,
        type=config.type,
        tls_mode=config.tls_mode,
        messages=messages,
        error=error,
        seconds=time.monotonic() - started,
    )
    if error:
        log.info("bounce mailbox test of %s:%s failed: %s", config.host, config.port, error)
    else:
        log.info("bounce mailbox test of %s:%s succeeded", config.host, config.port)
    return result


def _with_timeout(config: MailboxConfig, seconds: float) -> MailboxConfig:
    return replace(config, timeout=seconds)
