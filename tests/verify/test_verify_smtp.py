"""The SMTP probe against real aiosmtpd servers on loopback with scripted RCPT replies."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from stmails.verify import (
    MailDomainResolver,
    Reason,
    SmtpProber,
    SmtpReply,
    Verdict,
    Verifier,
    classify_rcpt_reply,
)
from stmails.verify.smtp import SmtpConnection, is_public_address, open_smtp_connection


class ScriptedHandler:
    """Answers RCPT from a script: the reply for a local part, else ``default``.

    Records every RCPT, the options of every MAIL FROM, and the most sessions that were ever
    inside RCPT at once.
    """

    def __init__(self, script: dict[str, str], default: str = "250 2.1.5 OK") -> None:
        self.script = script
        self.default = default
        self.rcpts: list[str] = []
        self.mail_options: list[list[str]] = []
        self.delay = 0.0
        self.active = 0
        self.most_active = 0

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.mail_options.append(list(options))
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.rcpts.append(address)
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.active -= 1
        reply = self.script.get(address.partition("@")[0], self.default)
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., tuple[ScriptedHandler, int]]]:
    """Starts scripted aiosmtpd servers on loopback; all are stopped after the test."""
    controllers: list[Controller] = []

    def start(
        script: dict[str, str], default: str = "250 2.1.5 OK", **server_options: Any
    ) -> tuple[ScriptedHandler, int]:
        handler = ScriptedHandler(script, default)
        controller = Controller(handler, hostname="127.0.0.1", port=_free_port(), **server_options)
        controller.start()
        controllers.append(controller)
        return handler, controller.port

    yield start
    for controller in controllers:
        controller.stop()


def _prober(port: int, **options: Any) -> SmtpProber:
    settings: dict[str, Any] = {
        "helo_name": "verify.stmails.test",
        "mail_from": "probe@stmails.test",
        "port": port,
        "connect_timeout": 1.0,
        "command_timeout": 1.0,
        "total_timeout": 3.0,
        # The test servers listen on loopback, which a prober refuses unless allowed.
        "allow_private_targets": True,
    }
    settings.update(options)
    return SmtpProber(**settings)


def _probe(prober: SmtpProber, address: str, hosts: tuple[str, ...] = ("127.0.0.1",)) -> Any:
    domain = address.partition("@")[2]
    return asyncio.run(prober.probe(address, domain, hosts))


SCRIPT = {
    "gone": "550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown",
    "plain550": "550 Requested action not taken: mailbox unavailable",
    "grey": "451 4.7.1 Greylisted, please try again in 120 seconds",
    "later": "450 4.2.0 Mailbox busy",
    "blocked": "554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org",
    "full": "552 5.2.2 Mailbox full",
    "disabled": "550 5.2.1 This mailbox has been disabled",
}


def test_replies_map_to_verdict_reasons(smtp_server: Callable[..., Any]) -> None:
    handler, port = smtp_server(SCRIPT, default="550 5.1.1 User unknown")
    prober = _prober(port)
    outcomes = {local: _probe(prober, f"{local}@example.net") for local in SCRIPT}
    assert {k: v.reasons for k, v in outcomes.items()} == {
        "gone": (Reason.MAILBOX_NOT_FOUND,),
        "plain550": (Reason.MAILBOX_NOT_FOUND,),
        "grey": (Reason.GREYLISTED,),
        "later": (Reason.GREYLISTED,),
        "blocked": (Reason.BLOCKED,),
        "full": (Reason.MAILBOX_FULL,),
        "disabled": (Reason.DISABLED,),
    }
    assert outcomes["grey"].retry_after == 120
    assert outcomes["later"].retry_after == 300
    assert outcomes["gone"].reply.startswith("550 5.1.1")
    # A probe never delivers: every session ended before DATA.
    assert all(r.partition("@")[0] in SCRIPT for r in handler.rcpts)


def test_an_accepting_server_that_accepts_anything_is_a_catch_all_tested_once(
    smtp_server: Callable[..., Any],
) -> None:
    handler, port = smtp_server({})
    prober = _prober(port)
    first = _probe(prober, "jane@catchall.example")
    second = _probe(prober, "john@catchall.example")
    assert first.accepted and first.reasons == (Reason.CATCH_ALL,)
    assert second.reasons == (Reason.CATCH_ALL,)
    random_probes = [r for r in handler.rcpts if r.startswith("stmails-probe-")]
    assert len(random_probes) == 1
    assert prober.is_catch_all("catchall.example") is True


def test_a_server_that_rejects_unknown_users_is_not_a_catch_all(
    smtp_server: Callable[..., Any],
) -> None:
    _, port = smtp_server({"jane": "250 2.1.5 OK"}, default="550 5.1.1 User unknown")
    prober = _prober(port)
    outcome = _probe(prober, "jane@strict.example")
    assert outcome.accepted and outcome.reasons == ()
    assert prober.is_catch_all("strict.example") is False


def test_a_silent_server_times_out_as_unknown(smtp_server: Callable[..., Any]) -> None:
    handler, port = smtp_server({})
    handler.delay = 2.0
    outcome = _probe(_prober(port, command_timeout=0.2, total_timeout=1.0), "jane@slow.example")
    assert outcome.reasons == (Reason.TIMEOUT,)
    assert not outcome.accepted


def test_an_unreachable_host_falls_back_to_the_next_mx(smtp_server: Callable[..., Any]) -> None:
    _, port = smtp_server({})
    closed = _free_port()

    async def connect(host: str, _port: int, timeout: float) -> SmtpConnection:
        # The first host's port is closed; the second is the real server.
        return await open_smtp_connection("127.0.0.1", closed if host == "mx1" else port, timeout)

    prober = _prober(port, connection_factory=connect)
    outcome = _probe(prober, "jane@fallback.example", hosts=("mx1", "mx2"))
    assert outcome.accepted


def test_sessions_per_host_are_limited(smtp_server: Callable[..., Any]) -> None:
    handler, port = smtp_server({}, default="550 5.1.1 User unknown")
    handler.delay = 0.05
    prober = _prober(port, per_host=1)

    async def run() -> None:
        await asyncio.gather(
            *(prober.probe(f"u{i}@d{i}.example", f"d{i}.example", ("127.0.0.1",)) for i in range(5))
        )

    asyncio.run(run())
    assert len(handler.rcpts) == 5
    assert handler.most_active == 1


def test_the_pipeline_probes_the_mx_from_dns(
    smtp_server: Callable[..., Any], dns_zone: tuple[Any, Any]
) -> None:
    handler, port = smtp_server({"gone": "550 5.1.1 User unknown", "grey": SCRIPT["grey"]})
    _, resolver = dns_zone
    hosts_asked: list[str] = []

    async def connect(host: str, _port: int, timeout: float) -> SmtpConnection:
        hosts_asked.append(host)
        return await open_smtp_connection("127.0.0.1", port, timeout)

    verifier = Verifier(
        dns=MailDomainResolver(resolver),
        smtp=_prober(port, connection_factory=connect),
    )

    async def run() -> list[Any]:
        return [
            await verifier.verify(f"{local}@mx.example.net", deadline=5)
            for local in ("gone", "grey", "jane")
        ]

    gone, grey, jane = asyncio.run(run())
    assert (gone.result, gone.reasons) == (Verdict.INVALID, (Reason.MAILBOX_NOT_FOUND,))
    assert gone.smtp_reply == "550 5.1.1 User unknown"
    assert (grey.result, grey.retry_after) == (Verdict.UNKNOWN, 120)
    # The server rejected an unknown user, so it is no catch-all and jane's mailbox is real.
    assert (jane.result, jane.reasons, jane.stages[-1]) == (Verdict.VALID, (), "smtp")
    assert not any(r.startswith("stmails-probe-") for r in handler.rcpts)
    assert set(hosts_asked) == {"mx1.example.net"}


@pytest.mark.parametrize(
    ("code", "text", "reason"),
    [
        (550, "5.1.10 RESOLVER.ADR.RecipientNotFound", Reason.MAILBOX_NOT_FOUND),
        (550, "5.7.1 Relaying denied", Reason.BLOCKED),
        (553, "5.1.8 Sender address rejected", Reason.BLOCKED),
        (421, "4.7.0 Too many connections from your IP (listed on dnsbl)", Reason.BLOCKED),
        (452, "4.2.2 Mailbox over quota", Reason.MAILBOX_FULL),
        (252, "2.1.5 Cannot VRFY user, but will accept message", Reason.ACCEPT_ALL),
        (554, "Transaction failed", Reason.BLOCKED),
    ],
)
def test_classification_table(code: int, text: str, reason: Reason) -> None:
    assert classify_rcpt_reply(SmtpReply(code, text)).reasons == (reason,)


def test_a_utf8_local_part_is_announced_with_smtputf8(smtp_server: Callable[..., Any]) -> None:
    handler, port = smtp_server({}, default="550 5.1.1 User unknown", enable_SMTPUTF8=True)
    outcome = _probe(_prober(port), "jöhn@utf8.example")
    assert handler.rcpts == ["jöhn@utf8.example"]
    assert handler.mail_options == [["SMTPUTF8"]]
    assert outcome.reasons == (Reason.MAILBOX_NOT_FOUND,)


# Issue 11: the prober reaches public addresses only, unless asked.


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("not an address", False),
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_the_default_prober_does_not_connect_to_loopback_or_private_hosts(
    smtp_server: Callable[..., Any],
) -> None:
    handler, port = smtp_server({}, default="550 5.1.1 User unknown")
    prober = _prober(port, allow_private_targets=False)
    outcome = _probe(prober, "someone@example.net", ("127.0.0.1", "localhost"))
    assert outcome.reasons == (Reason.TIMEOUT,)
    assert "not a public address" in outcome.detail
    assert handler.rcpts == []
    # Asked to, it does.
    allowed = _probe(_prober(port), "someone@example.net", ("localhost",))
    assert allowed.reasons == (Reason.MAILBOX_NOT_FOUND,)
    assert handler.rcpts == ["someone@example.net"]
