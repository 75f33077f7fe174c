"""What a detector reports before the reason rules and the record shape are applied."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Finding:
    """One recipient as a detector read it. `reason` is set only when the format itself
    states it (a complaint, an auto-reply); otherwise the reason rules decide."""

    recipient: str
    diagnostic: str = ""
    status: str = ""
    replycode: str = ""
    action: str = ""
    remote_mta: str = ""
    reporting_mta: str = ""
    timestamp: str = ""
    reason: str = ""
    feedback_type: str = ""
    # The SMTP command the failure answered: RCPT, MAIL, DATA, HELO, CONN or "".
    command: str = ""
    # The Diagnostic-Code type of a DSN ("smtp", "x-unix", ...).
    diagnostic_type: str = ""
    user_agent: str = ""
    # Extra text to consult for the reason when the diagnostic alone says nothing known.
    context_text: str = ""
