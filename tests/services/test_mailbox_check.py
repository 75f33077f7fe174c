"""services.mailbox_check without a server: which password a test uses, and refusals of
entries that cannot work; services.settings refusing such entries when saved. (The connection
itself is tested against Dovecot in tests/web/ui/test_settings_pages.py.)"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from stmails.services import mailbox_check
from stmails.services import settings as settings_service
from stmails.services.errors import InvalidInput

STORED: list[dict[str, Any]] = [
    {
        "uuid": "box-1",
        "name": "main",
        "type": "imap",
        "host": "imap.example.com",
        "port": 993,
        "tls_mode": "tls",
        "username": "bounces",
        "password": "stored-secret",
    }
]


@pytest.mark.parametrize(
    ("changes", "password"),
    [
        ({"password": settings_service.MASK}, "stored-secret"),
        ({"password": ""}, "stored-secret"),
        ({"uuid": "", "password": ""}, "stored-secret"),  # matched by name
        ({"password": "typed"}, "typed"),
        ({"host": "imap.attacker.example", "password": ""}, ""),
        ({"port": 143, "password": settings_service.MASK}, ""),
        ({"tls_mode": "none", "password": settings_service.MASK}, ""),
        ({"uuid": "other", "name": "other", "password": ""}, ""),
    ],
)
def test_a_masked_password_is_the_stored_one_only_for_the_same_server(
    changes: dict[str, Any], password: str
) -> None:
    entry = {**STORED[0], **changes}
    assert mailbox_check.with_stored_password(entry, STORED)["password"] == password


def test_an_entry_that_cannot_work_is_refused_before_connecting() -> None:
    for broken, words in (
        ({"type": "uucp"}, "uucp"),
        ({"host": ""}, "host is not set"),
        ({"type": "pop", "processed_action": "move"}, "POP3 has no folders"),
        ({"port": "many"}, "not a usable mailbox entry"),
    ):
        with pytest.raises(InvalidInput) as caught:
            mailbox_check.check_mailbox({**STORED[0], **broken}, STORED)
        assert words in caught.value.message


def test_a_closed_port_is_reported_not_raised() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on `port` now.
    result = mailbox_check.check_mailbox(
        {"type": "pop", "host": "127.0.0.1", "port": port, "tls_mode": "none", "password": "x"},
        [],
    )
    assert not result.ok and result.messages is None
    assert result.error.startswith(f"POP3 127.0.0.1:{port}:")
    assert result.as_dict()["ok"] is False


def test_saving_refuses_a_mailbox_that_cannot_work() -> None:
    with pytest.raises(settings_service.SettingsError) as caught:
        settings_service.validate("bounce.mailboxes", [STORED[0], {"type": "imap"}])
    assert caught.value.field == "bounce.mailboxes[1]"
    with pytest.raises(settings_service.SettingsError):
        settings_service.validate("bounce.mailboxes", {"not": "a list"})
    assert settings_service.validate("bounce.mailboxes", STORED) == STORED
