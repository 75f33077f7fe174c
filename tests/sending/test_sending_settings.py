"""Sending settings that cannot work are refused when saved (`PUT /api/settings`: 400 naming the
field, nothing stored); what is accepted is normalized; and the envelope sender follows one
precedence on every path (`services.sending.envelope`)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from stmails.core import verp
from stmails.services.sending.envelope import ReturnPaths, verp_maker
from stmails.services.sending.smtp import SendResult, classify_error, refusal

SERVER: dict[str, Any] = {"host": "smtp.example.com", "port": 587, "tls_type": "STARTTLS"}
LOGIN = {"auth_protocol": "login", "username": "mailer", "password": "secret"}


def smtp(**fields: Any) -> list[dict[str, Any]]:
    return [{**SERVER, **fields}]


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"smtp": smtp(tls_type="SSL")}, "smtp[0].tls_type", "'none', 'STARTTLS' or 'TLS'"),
    ({"smtp": smtp(auth_protocol="xoauth2")}, "smtp[0].auth_protocol", "'cram'"),
    ({"smtp": smtp(auth_protocol="login")}, "smtp[0].username", "required with auth_protocol"),
    ({"smtp": smtp(**{**LOGIN, "password": ""})}, "smtp[0].password", "required"),
    ({"smtp": smtp(**{**LOGIN, "password": "pässword"})}, "smtp[0].password", "ASCII"),
    ({"smtp": smtp(port=0)}, "smtp[0].port", "greater than or equal to 1"),
    ({"smtp": smtp(port=70000)}, "smtp[0].port", "less than or equal to 65535"),
    ({"smtp": smtp(port="587")}, "smtp[0].port", "valid integer"),
    ({"smtp": smtp(port=True)}, "smtp[0].port", "valid integer"),
    ({"smtp": smtp(host="")}, "smtp[0].host", "needs a host"),
    ({"smtp": smtp(host="smtp://mail.example.com")}, "smtp[0].host", "not a host name"),
    ({"smtp": smtp(max_conns=0)}, "smtp[0].max_conns", "greater than or equal to 1"),
    ({"smtp": smtp(idle_timeout="forever")}, "smtp[0].idle_timeout", "duration"),
    ({"smtp": smtp(wait_timeout="0s")}, "smtp[0].wait_timeout", "more than 0s"),
    ({"smtp": smtp(tls_typo="TLS")}, "smtp[0].tls_typo", "Extra inputs"),
    ({"smtp": smtp(from_addresses=["not an address"])}, "smtp[0].from_addresses[0]", "address"),
    ({"smtp": smtp(email_headers="Return-Path: x")}, "smtp[0].email_headers", "valid list"),
    ({"smtp": smtp(email_headers=[{"Bad Name": "x"}])}, "smtp[0].email_headers[0]", "name"),
    (
        {"smtp": smtp(email_headers=[{"From": "a@b.example"}])},
        "smtp[0].email_headers[0]",
        "by stmails",
    ),
    (
        {"smtp": smtp(email_headers=[{"List-Unsubscribe": "<x>"}])},
        "smtp[0].email_headers[0]",
        "written by stmails",
    ),
    (
        {"smtp": smtp(email_headers=[{"X-A": "1"}, {"X-Mailer": "a\r\nBcc: v@x.example"}])},
        "smtp[0].email_headers[1]",
        "one line",
    ),
    (
        {"smtp": smtp(email_headers=[{"Return-Path": "your bounce inbox"}])},
        "smtp[0].email_headers[0]",
        "Return-Path",
    ),
    ({"smtp": [SERVER, {**SERVER, "uuid": "a"}, {**SERVER, "uuid": "a"}]}, "smtp[2].uuid", "same"),
    ({"smtp": {"host": "x"}}, "smtp", "list of SMTP servers"),
    ({"app.from_email": "nobody"}, "app.from_email", "there is no @ sign"),
    ({"app.from_email": "News <news@>"}, "app.from_email", "not an e-mail address"),
    ({"app.root_url": "ftp://lists.example.org"}, "app.root_url", "http(s) URL"),
    ({"app.concurrency": 0}, "app.concurrency", "greater than or equal to 1"),
    ({"app.concurrency": "4"}, "app.concurrency", "valid integer"),
    ({"app.batch_size": 10_000}, "app.batch_size", "less than or equal to 5000"),
    ({"app.max_send_errors": -1}, "app.max_send_errors", "greater than or equal to 0"),
    ({"app.message_rate": -2.5}, "app.message_rate", "greater than or equal to 0"),
    ({"sending.bounce_address": "bounces"}, "sending.bounce_address", "no @ sign"),
    ({"sending.verp": "yes"}, "sending.verp", "valid boolean"),
    ({"sending.message_id_domain": "not a domain"}, "sending.message_id_domain", "domain"),
    ({"sending.unsubscribe_mailto": "@x"}, "sending.unsubscribe_mailto", "local part is empty"),
    ({"sending.feedback_id_sender": "a:b"}, "sending.feedback_id_sender", "pattern"),
    ({"sending.soft_retries": 100}, "sending.soft_retries", "less than or equal to 20"),
    ({"sending.retry_delay": "soon"}, "sending.retry_delay", "duration"),
    ({"relay.sender_domains": ["ok.example", "not ok"]}, "relay.sender_domains[1]", "domain"),
    ({"relay.sender_domains": "example.org"}, "relay.sender_domains", "list of domain"),
    (
        {"sending.verp": True, "sending.bounce_address": "b" * 40 + "@mail.example.org"},
        "sending.bounce_address",
        "too long for sending.verp",
    ),
    (
        {
            "sending.verp": True,
            "sending.bounce_address": "bounces@mail.example.org",
            "smtp": [
                {**SERVER, "email_headers": [{"Return-Path": "returns@mail.example.org"}]},
                {**SERVER, "host": "backup.example.com"},
            ],
        },
        "sending.bounce_address",
        "same local part",
    ),
]


@pytest.mark.parametrize(
    ("body", "field", "words"), BAD, ids=[f"{b[1]}-{n}" for n, b in enumerate(BAD)]
)
def test_settings_that_cannot_work_are_refused_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str, words: str
) -> None:
    before = client.get("/api/settings").json()["data"]
    response = client.put("/api/settings", json={"app.concurrency": 7, **body})
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert message.startswith(f"{field}: "), message
    assert words in message
    # Nothing of the request was stored, the good key included.
    assert client.get("/api/settings").json()["data"] == before


def test_accepted_settings_are_normalized(client: TestClient) -> None:
    body = {
        "smtp": [
            {
                **SERVER,
                "tls_type": "starttls",
                "auth_protocol": "",
                "email_headers": [{"Return-Path": "<bounces@mail.example.org>"}],
            }
        ],
        "sending.bounce_address": " <bounces@mail.example.org> ",
        "app.root_url": "https://lists.example.org/",
        "relay.sender_domains": ["Example.ORG.", "example.org"],
    }
    assert client.put("/api/settings", json=body).status_code == 200
    stored = client.get("/api/settings").json()["data"]
    (server,) = stored["smtp"]
    assert (server["tls_type"], server["auth_protocol"]) == ("STARTTLS", "none")
    assert len(server["uuid"]) == 36 and server["email_headers"] == body["smtp"][0]["email_headers"]
    assert stored["sending.bounce_address"] == "bounces@mail.example.org"
    assert stored["app.root_url"] == "https://lists.example.org"
    assert stored["relay.sender_domains"] == ["example.org"]
    # listmonk's keys read back with their defaults when never set.
    assert (stored["app.max_send_errors"], stored["app.concurrency"]) == (1000, 4)


# -- the envelope sender -------------------------------------------------------------------------


def test_the_envelope_sender_follows_one_precedence_with_verp_on_the_chosen_address() -> None:
    secret = b"k"
    make = verp_maker(secret)
    paths = ReturnPaths(
        bounce_address="bounces@mail.example.org",
        server_return_paths=("returns@mail.example.org",),
        needs_default=True,
        verp=make,
    )
    # 1. The message's own Return-Path decides (VERP applied to it).
    own = paths.senders(7, 42, own="tx@mail.example.org")
    assert own.own and own.servers == ()
    assert own.default == make("tx@mail.example.org", 7, 42)
    # 2. and 3. A server's Return-Path for mail through it, else the bounce address.
    senders = paths.senders(7, 42)
    assert not senders.own
    assert senders.servers == (
        ("returns@mail.example.org", make("returns@mail.example.org", 7, 42)),
    )
    assert senders.default == make("bounces@mail.example.org", 7, 42)
    token = verp.find_token(secret, senders.default.encode(), "bounces")
    assert token == verp.VerpToken(subscriber_id=42, campaign_id=7)
    # 4. Nothing set: '' (the builder then uses the From address). No subscriber: no token.
    assert ReturnPaths()(7, 42) == "" and paths(7, 0) == "bounces@mail.example.org"
    # Every server sets one: the bounce address is not even made.
    assert (
        ReturnPaths("b@x.example", ("r@x.example",), needs_default=False).senders(1, 2).default
        == ""
    )


def test_refusals_are_classified_by_stage() -> None:
    assert refusal("rcpt", 550, b"5.1.1 no such user") == SendResult(
        "hard", 550, "5.1.1 no such user", "rcpt"
    )
    assert refusal("data", 451, b"later").outcome == "soft"
    # Our sender refused with 5xx: the settings are wrong; a 4xx may pass.
    assert refusal("mail", 553, b"not yours").fatal and not refusal("mail", 451, b"busy").fatal
    # A relay that wants AUTH or does not relay for us: our error, not a bounce.
    for code, text in [
        (554, b"5.7.1 Relay access denied"),
        (530, b"5.7.0 Authentication required"),
    ]:
        result = refusal("rcpt", code, text)
        assert (result.outcome, result.fatal) == ("error", True)
    assert classify_error(ConnectionRefusedError()).outcome == "error"


def test_stored_settings_build_the_config_or_are_refused_naming_the_key() -> None:
    from stmails.services.errors import InvalidInput
    from stmails.services.sending.config import SendingConfig
    from stmails.services.sending.smtp import SmtpServer

    config = SendingConfig.from_settings(
        {
            "app.root_url": "https://mail.example.com/",
            "app.message_rate": 5,
            "app.concurrency": "",
            "sending.retry_delay": "2m",
            "app.message_sliding_window": True,
            "app.message_sliding_window_duration": "30m",
            "relay.sender_domains": ["Example.COM."],
            "smtp": [{"host": "a.example.com", "enabled": False}, {"host": "b.example.com"}],
        }
    )
    assert config.root_url == "https://mail.example.com"
    assert config.message_rate == 5.0 and isinstance(config.message_rate, float)
    assert config.concurrency == 4
    assert (config.retry_delay, config.window_seconds) == (120.0, 1800.0)
    assert config.relay_sender_domains == ("example.com",)
    assert [server.host for server in config.smtp] == ["b.example.com"]
    assert SendingConfig.from_settings({}, "http://x/").root_url == "http://x"
    # Stored JSON is read strictly: a number written as text is refused, naming the key.
    with pytest.raises(InvalidInput) as refused:
        SendingConfig.from_settings({"app.batch_size": "500"})
    assert refused.value.field == "app.batch_size"
    with pytest.raises(InvalidInput) as refused:
        SendingConfig.from_settings({"sending.retry_delay": "soon"})
    assert refused.value.field == "sending.retry_delay"
    with pytest.raises(InvalidInput) as refused:
        SendingConfig.from_settings({"smtp": [{"host": "a.example.com", "port": 0}]})
    assert refused.value.field == "smtp[0].port"
    # One server alone is checked like an element of the list, enabled or not.
    with pytest.raises(InvalidInput) as refused:
        SmtpServer.from_settings({"host": "a", "enabled": False, "auth_protocol": "login"})
    assert refused.value.field == "smtp[0].username"
