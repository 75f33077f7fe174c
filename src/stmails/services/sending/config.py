"""Sending settings, read from the run-time `settings` table (listmonk's keys where they exist).

listmonk keys used: `smtp` (list of servers), `app.root_url`, `app.from_email`,
`app.concurrency`, `app.message_rate`, `app.batch_size`, `app.max_send_errors`.
stmails' own keys, all under `sending.`:

- `sending.bounce_address`: the envelope sender (Return-Path) of every message, e.g.
  `bounce@mail.example.com`; empty means the From address.
- `sending.verp`: true to send from `bounce+TOKEN@domain` (an HMAC token naming campaign and
  subscriber), which the mailbox scanner verifies.
- `sending.message_id_domain`: the domain of Message-IDs (default: the bounce address's domain).
- `sending.unsubscribe_mailto`: the mailto target of List-Unsubscribe (default: none).
- `sending.feedback_id_sender`: the last field of Feedback-ID (default `stmails`).
- `sending.soft_retries`, `sending.retry_delay`: how often and how long after a 4xx answer a
  message is tried again before it is recorded as a soft bounce.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stmails.services.sending.smtp import SmtpServer, parse_duration, servers_from_settings


@dataclass(frozen=True)
class SendingConfig:
    """Everything the senders need besides the database and the SMTP transport."""

    root_url: str = "http://127.0.0.1:9000"
    from_email: str = "stmails <noreply@localhost>"
    bounce_address: str = ""
    verp: bool = False
    message_id_domain: str = ""
    unsubscribe_mailto: str = ""
    feedback_id_sender: str = "stmails"
    concurrency: int = 4
    message_rate: float = 0.0
    batch_size: int = 500
    max_send_errors: int = 1000
    soft_retries: int = 2
    retry_delay: float = 300.0
    smtp: list[SmtpServer] = field(default_factory=list)

    @property
    def id_domain(self) -> str:
        """The domain Message-IDs are made on."""
        if self.message_id_domain:
            return self.message_id_domain
        for address in (self.bounce_address, self.from_email):
            domain = address.rpartition("@")[2].strip(" >").lower()
            if domain:
                return domain
        return "localhost"

    @classmethod
    def from_settings(cls, values: Mapping[str, Any], root_url: str = "") -> SendingConfig:
        """The configuration from a mapping of setting keys to values (missing keys: defaults)."""
        defaults = cls()

        def get(key: str, default: Any) -> Any:
            value = values.get(key)
            return default if value is None or value == "" else value

        return cls(
            root_url=str(get("app.root_url", root_url or defaults.root_url)).rstrip("/"),
            from_email=str(get("app.from_email", defaults.from_email)),
            bounce_address=str(get("sending.bounce_address", "")),
            verp=bool(get("sending.verp", False)),
            message_id_domain=str(get("sending.message_id_domain", "")),
            unsubscribe_mailto=str(get("sending.unsubscribe_mailto", "")),
            feedback_id_sender=str(get("sending.feedback_id_sender", "stmails")),
            concurrency=max(1, int(get("app.concurrency", defaults.concurrency))),
            message_rate=max(0.0, float(get("app.message_rate", 0.0))),
            batch_size=max(1, min(5000, int(get("app.batch_size", defaults.batch_size)))),
            max_send_errors=max(1, int(get("app.max_send_errors", defaults.max_send_errors))),
            soft_retries=max(0, int(get("sending.soft_retries", defaults.soft_retries))),
            retry_delay=parse_duration(get("sending.retry_delay", defaults.retry_delay), 300.0),
            smtp=servers_from_settings(list(get("smtp", []))),
        )
