"""The sending figures of `/metrics` move as the campaign sender works against a real aiosmtpd
server: messages by SMTP server and outcome, bounces ingested from SMTP refusals, and the
alert an automatic pause raises."""

from __future__ import annotations

from prometheus_client import REGISTRY
from sqlalchemy.orm import Session, sessionmaker

from stmails.services.sending.config import SendingConfig

from .conftest import Sink, free_port, make_world, start
from .test_campaign_sender import config_for, runner_for


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_messages_are_counted_per_server_and_outcome(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    server = f"{smtp_sink.host}:{smtp_sink.port}"
    name = "stmails_smtp_messages_total"
    before = {o: sample(name, server=server, outcome=o) for o in ("sent", "failed", "deferred")}
    smtp_bounces = sample("stmails_events_ingested_total", source="smtp", outcome="stored")
    world = make_world(session_maker, count=5)
    smtp_sink.handler.rcpt_replies["user1@example.com"] = "550 5.1.1 user unknown"
    smtp_sink.handler.rcpt_replies["user2@example.com"] = "451 4.7.1 try again later"
    config = config_for(smtp_sink, **{"sending.soft_retries": 1})
    start(world, config)
    runner, pool = runner_for(world, config)
    report = runner.run(world.campaign_id)
    pool.close()
    assert report.finished and report.sent == 3
    moved = {o: sample(name, server=server, outcome=o) - before[o] for o in before}
    # The 4xx is deferred once, then tried again (soft_retries 1) and recorded as a soft bounce.
    assert moved == {"sent": 3, "failed": 1, "deferred": 2}
    # Both refusals were stored as bounces (source smtp), counted once committed.
    stored = sample("stmails_events_ingested_total", source="smtp", outcome="stored")
    assert stored - smtp_bounces == 2


def test_an_automatic_pause_raises_an_alert(session_maker: sessionmaker[Session]) -> None:
    before = sample("stmails_alerts_raised_total", kind="campaign_paused")
    world = make_world(session_maker, count=3)
    nobody = {"host": "127.0.0.1", "port": free_port(), "max_msg_retries": 1}
    config = SendingConfig.from_settings({"smtp": [nobody], "app.max_send_errors": 2})
    start(world, config)
    runner, pool = runner_for(world, config)
    report = runner.run(world.campaign_id)
    pool.close()
    assert report.stopped_because.startswith("2 send errors in a row")
    assert sample("stmails_alerts_raised_total", kind="campaign_paused") - before == 1
    server = f"127.0.0.1:{nobody['port']}"
    # Each of the three claimed messages was tried once (the pause comes after the batch).
    assert sample("stmails_smtp_messages_total", server=server, outcome="failed") == 3
