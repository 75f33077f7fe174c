"""Mailbox settings: listmonk's entries read as they are, stmails' extensions validated."""

from __future__ import annotations

import pytest

from stmails.ingest.mailbox import MailboxConfig, MailboxConfigError, mailboxes_from_settings
from stmails.ingest.mailbox.config import parse_interval
from stmails.ingest.mailbox.imap import mailbox_name, quote, uid_sets

LISTMONK_ENTRY = {
    "uuid": "471fd0e9-8c33-4e4a-9183-c4679699faca",
    "enabled": True,
    "type": "pop",
    "host": "pop.gmail.com",
    "port": 995,
    "auth_protocol": "userpass",
    "return_path": "bounce@listmonk.yoursite.com",
    "username": "username",
    "password": "password",
    "tls_enabled": True,
    "tls_skip_verify": False,
    "scan_interval": "15m",
}


def test_a_listmonk_entry_is_read_as_it_is() -> None:
    config = MailboxConfig.from_setting(LISTMONK_ENTRY)
    assert (config.type, config.tls_mode, config.port, config.scan_interval) == (
        "pop",
        "tls",
        995,
        900.0,
    )
    assert config.name == LISTMONK_ENTRY["uuid"]
    assert "password" not in repr(config)


def test_defaults_follow_the_tls_mode() -> None:
    plain = MailboxConfig.from_setting({"type": "imap", "host": "h", "tls_enabled": False})
    assert (plain.tls_mode, plain.port) == ("none", 143)
    stls = MailboxConfig.from_setting({"type": "pop", "host": "h", "tls_mode": "stls"})
    assert (stls.tls_mode, stls.port) == ("starttls", 110)
    imaps = MailboxConfig.from_setting({"type": "imap", "host": "h"})
    assert imaps.port == 993


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "mbox", "host": "h"},
        {"type": "imap", "host": ""},
        {"type": "pop", "host": "h", "processed_action": "move"},
        {"type": "pop", "host": "h", "auth_protocol": "xoauth2"},
        {"type": "imap", "host": "h", "tls_mode": "ssl3"},
        {"type": "imap", "host": "h", "scan_interval": "soon"},
    ],
)
def test_unusable_entries_are_refused(entry: dict[str, object]) -> None:
    with pytest.raises(MailboxConfigError):
        MailboxConfig.from_setting(entry)


def test_disabled_mailboxes_are_left_out() -> None:
    entries = [LISTMONK_ENTRY, {**LISTMONK_ENTRY, "enabled": False, "uuid": "x"}, "junk"]
    assert [c.name for c in mailboxes_from_settings(entries)] == [LISTMONK_ENTRY["uuid"]]
    assert mailboxes_from_settings(None) == []


def test_intervals() -> None:
    assert [parse_interval(v) for v in ("30s", "1h", "90", 45)] == [30.0, 3600.0, 90.0, 45.0]


def test_uid_sets_are_compact_and_folder_names_quoted() -> None:
    assert uid_sets(["1", "2", "3", "7", "9", "10"]) == ["1:3,7,9:10"]
    assert uid_sets([]) == []
    assert len(uid_sets(str(n) for n in range(0, 2000, 2))) == 3
    assert quote('Not "bounces"') == '"Not \\"bounces\\""'


def test_folder_names_are_sent_in_modified_utf7() -> None:
    # The examples of RFC 3501 section 5.1.3.
    assert mailbox_name("~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e") == (
        "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    )
    assert mailbox_name("Bounces & co") == "Bounces &- co"
    assert mailbox_name("INBOX") == "INBOX"
    # A run ends at the next printable ASCII character; a tab is not printable.
    assert mailbox_name("a\tb") == "a&AAk-b"
    assert quote("Caf\u00e9") == '"Caf&AOk-"'


def test_one_bad_entry_does_not_hide_the_others() -> None:
    errors: list[str] = []
    configs = mailboxes_from_settings([{"type": "mbox", "host": "h"}, LISTMONK_ENTRY], errors)
    assert [c.type for c in configs] == ["pop"]
    assert errors and errors[0].startswith("bounce.mailboxes[0]")
    with pytest.raises(MailboxConfigError):
        mailboxes_from_settings([{"type": "mbox", "host": "h"}])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "mbox", "host": "h"}, "mailbox type 'mbox' is not pop or imap"),
        ({"type": "IMAP", "host": ""}, "mailbox host is not set"),
        (
            {"type": "imap", "host": "h", "tls_mode": "SSL3"},
            "tls_mode 'ssl3' is not tls, starttls or none",
        ),
        (
            {"type": "imap", "host": "h", "auth_protocol": "cram"},
            "auth_protocol 'cram' is not userpass, xoauth2 or none",
        ),
        (
            {"type": "pop", "host": "h", "auth_protocol": "xoauth2"},
            "XOAUTH2 is supported for IMAP mailboxes only",
        ),
        (
            {"type": "imap", "host": "h", "non_bounce_action": "bin"},
            "processed_action is delete or move; non_bounce_action is leave or move",
        ),
        (
            {"type": "pop", "host": "h", "non_bounce_action": "move"},
            "POP3 has no folders: messages can only be deleted or left",
        ),
        (
            {"type": "imap", "host": "h", "classify_timeout": "soon"},
            "classify_timeout is a number of seconds, over 0 and at most 600",
        ),
        (
            {"type": "imap", "host": "h", "scan_interval": "soon"},
            "scan_interval 'soon' is not like 15m, 30s or 1h",
        ),
        ({}, "mailbox host is not set"),
    ],
)
def test_each_refusal_says_what_is_wrong(entry: dict[str, object], message: str) -> None:
    with pytest.raises(MailboxConfigError) as caught:
        MailboxConfig.from_setting(entry)
    assert str(caught.value) == message


def test_a_number_that_is_not_one_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="many") as caught:
        MailboxConfig.from_setting({"type": "imap", "host": "h", "port": "many"})
    assert not isinstance(caught.value, MailboxConfigError)


def test_listmonk_spellings_and_empty_values_read_as_defaults() -> None:
    config = MailboxConfig.from_setting(
        {
            "type": "POP3",
            "host": "h",
            "tls_mode": "STLS",
            "auth_protocol": "LOGIN",
            "max_messages": 0,
            "max_tries": -4,
            "folder": "",
            "enabled": 0,
            "uuid": "u-1",
        }
    )
    assert (config.type, config.tls_mode, config.auth_protocol, config.port) == (
        "pop",
        "starttls",
        "userpass",
        110,
    )
    assert (config.max_messages, config.max_tries, config.folder) == (1000, 1, "INBOX")
    assert (config.enabled, config.name) == (False, "u-1")
    assert MailboxConfig.from_setting({"type": "imap", "host": "h"}, 2).name == "imap-2:h:993"
