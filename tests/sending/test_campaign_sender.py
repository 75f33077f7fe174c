"""The campaign sender against a real aiosmtpd server: headers, suppression, exactly-once.

Every test drives the path production takes (`CampaignRunner` over an `SmtpPool`, whose
connections one thread multiplexes); faults come from the server (refusals, dropped
connections, a pause or a suppression committed while it receives) or from killing the
sender's process."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Bounce, Campaign, CampaignSend, Subscriber, SubscriberList
from stmails.services.bounces import record as record_bounce
from stmails.services.sending.campaigns import (
    IN_DOUBT,
    IN_FLIGHT,
    SHARE_SIZE,
    CampaignError,
    CampaignRunner,
    campaign_stats,
    change_status,
)
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.messages import Message
from stmails.services.sending.runtime import return_path_for
from stmails.services.sending.smtp import SmtpPool, SmtpServer, connect
from stmails.services.suppression import parse_entry, upsert_many

from .conftest import Captured, Sink, World, add_subscriber, free_port, make_world, start

# Runs a campaign in a process of its own, for the test that kills it.
SENDER_PROCESS = Path(__file__).with_name("sender_process.py")


def settings_for(sink: Sink, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "smtp": sink.smtp_settings(),
        "app.root_url": "https://lists.example.org",
        "sending.bounce_address": "bounces@mail.example.org",
        "sending.unsubscribe_mailto": "unsubscribe@mail.example.org",
        "app.concurrency": 2,
        "app.batch_size": 3,
        "sending.retry_delay": 0,
    }
    values.update(overrides)
    return values


def config_for(sink: Sink, **overrides: Any) -> SendingConfig:
    return SendingConfig.from_settings(settings_for(sink, **overrides))


def runner_for(world: World, config: SendingConfig) -> tuple[CampaignRunner, SmtpPool]:
    pool = SmtpPool(config.smtp)
    runner = CampaignRunner(
        world.factory,
        pool,
        config,
        record_bounce,
        return_path_for(config, None),
        sleep=lambda _: None,
    )
    return runner, pool


def test_campaign_reaches_every_subscriber_once_with_headers(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=5)
    config = config_for(smtp_sink)
    start(world, config)
    runner, pool = runner_for(world, config)
    report = runner.run(world.campaign_id)
    pool.close()

    assert report.finished and report.sent == 5
    assert sorted(smtp_sink.handler.recipients()) == sorted(world.subscriber_ids)
    captured = smtp_sink.handler.by_recipient("user1@example.com")[0]
    msg = captured.message
    with world.factory() as session:
        campaign = session.get(Campaign, world.campaign_id)
        subscriber = session.get(Subscriber, world.subscriber_ids["user1@example.com"])
        assert campaign is not None and subscriber is not None
        assert campaign.status == "finished" and campaign.sent == 5
    # The bounce address is the envelope sender; the receiving server writes Return-Path.
    assert captured.mail_from == "bounces@mail.example.org"
    assert "Return-Path" not in msg
    assert msg["X-Stmails-Campaign"] == campaign.uuid
    assert msg["X-Stmails-Subscriber"] == subscriber.uuid
    assert msg["Message-ID"].endswith("@mail.example.org>")
    unsubscribe = f"https://lists.example.org/subscription/{campaign.uuid}/{subscriber.uuid}"
    assert msg["List-Unsubscribe"] == f"<mailto:unsubscribe@mail.example.org>, <{unsubscribe}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert campaign.uuid[:8] in msg["Feedback-ID"]
    assert msg["Subject"] == "News for User1 Last"
    assert msg.get_content_type() == "multipart/alternative"
    text_part, html_part = msg.iter_parts()
    text, html = text_part.get_content(), html_part.get_content()
    assert "<h1>Hello User1</h1>" in html and "Hi User1 Last from Paris" in html
    assert unsubscribe in html
    assert "Hi User1 Last from Paris" in text and "<p>" not in text


def test_suppressed_disabled_and_unsubscribed_are_skipped_with_reasons(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=6)
    with world.factory() as session, session.begin():
        upsert_many(
            session,
            [
                parse_entry({"recipient": "USER0@example.com", "reason": "hard_bounce"}),
                parse_entry({"recipient": "user1@example.com", "list_id": world.list_id}),
                parse_entry({"recipient": "user2@example.com", "list_id": 999}),
            ],
        )
        sub3 = session.get(Subscriber, world.subscriber_ids["user3@example.com"])
        assert sub3 is not None
        sub3.status = "blocklisted"
        link = session.get(
            SubscriberList, (world.subscriber_ids["user4@example.com"], world.list_id)
        )
        assert link is not None
        link.status = "unsubscribed"
        add_subscriber(
            session, "pending@other.example", lists={world.double_list_id: "unconfirmed"}
        )
        add_subscriber(session, "anyone@blocked.example", lists={world.list_id: "confirmed"})
        upsert_many(session, [parse_entry({"domain": "blocked.example", "reason": "manual"})])
    config = config_for(smtp_sink)
    start(world, config)
    runner, pool = runner_for(world, config)
    report = runner.run(world.campaign_id)
    pool.close()

    # user2's list entry is for another list, user5 is clean.
    assert sorted(smtp_sink.handler.recipients()) == ["user2@example.com", "user5@example.com"]
    assert report.sent == 2
    with world.factory() as session:
        stats = campaign_stats(session, world.campaign_id)
    assert stats["sent"] == 2
    assert stats["skipped_by_reason"] == {
        "suppressed:address": 1,
        "suppressed:list": 1,
        "suppressed:domain": 1,
        "subscriber_blocklisted": 1,
        "unsubscribed": 1,
    }


def test_recipient_whose_message_cannot_be_rendered_is_skipped_and_others_sent(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=4)
    with world.factory() as session, session.begin():
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        campaign.body = "<p>{{ 100 // subscriber.attribs.share }} per cent</p>"
        for i, share in enumerate([4, 0, 5, 10]):
            sub = session.get(Subscriber, world.subscriber_ids[f"user{i}@example.com"])
            assert sub is not None
            sub.attribs = {"share": share}
    config = config_for(smtp_sink)
    start(world, config)
    runner, pool = runner_for(world, config)
    report = runner.run(world.campaign_id)
    pool.close()

    # user1's share is 0: the division fails for them alone, in the thread that sends it.
    assert report.finished and report.sent == 3 and report.skipped == 1
    assert sorted(smtp_sink.handler.recipients()) == [
        "user0@example.com",
        "user2@example.com",
        "user3@example.com",
    ]
    assert "25 per cent" in str(smtp_sink.handler.by_recipient("user0@example.com")[0].message)
    with world.factory() as session:
        row = session.scalar(
            select(CampaignSend).where(
                CampaignSend.subscriber_id == world.subscriber_ids["user1@example.com"]
            )
        )
        campaign = session.get(Campaign, world.campaign_id)
        assert row is not None and campaign is not None
        assert row.status == "skipped" and row.reason.startswith("render_error: template error")
        assert (campaign.sent, campaign.skipped) == (3, 1)


def test_double_opt_in_list_needs_confirmation(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=0)
    with world.factory() as session, session.begin():
        add_subscriber(session, "confirmed@x.example", lists={world.double_list_id: "confirmed"})
        add_subscriber(session, "pending@x.example", lists={world.double_list_id: "unconfirmed"})
        session.execute(
            CampaignSend.__table__.delete().where(CampaignSend.campaign_id == world.campaign_id)
        )
        from stmails.db.models import CampaignList

        session.add(CampaignList(campaign_id=world.campaign_id, list_id=world.double_list_id))
    config = config_for(smtp_sink)
    start(world, config)
    runner, pool = runner_for(world, config)
    runner.run(world.campaign_id)
    pool.close()
    assert smtp_sink.handler.recipients() == ["confirmed@x.example"]


def test_rejection_at_rcpt_is_recorded_as_bounce_and_suppresses_later_sends(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=4)
    smtp_sink.handler.rcpt_replies["user2@example.com"] = (
        "550 5.1.1 <user2@example.com>: user unknown"
    )
    smtp_sink.handler.data_replies["user3@example.com"] = "554 5.7.1 message refused as spam"
    config = config_for(smtp_sink)
    start(world, config)
    runner, pool = runner_for(world, config)
    report = runner.run(world.campaign_id)
    pool.close()

    assert report.hard == 2 and report.sent == 2
    with world.factory() as session:
        bounces = {b.email: b for b in session.scalars(select(Bounce))}
        assert set(bounces) == {"user2@example.com", "user3@example.com"}
        assert bounces["user2@example.com"].status == "5.1.1"
        assert bounces["user2@example.com"].reason == "userunknown"
        assert bounces["user2@example.com"].campaign_id == world.campaign_id
        stats = campaign_stats(session, world.campaign_id)
    assert stats["bounces"]["hard"] == 2 and stats["failed"] == 2

    # A second campaign to the same list skips the bounced addresses.
    with world.factory() as session, session.begin():
        from stmails.db.models import CampaignList

        second = Campaign(
            name="Again", subject="s", body="b", content_type="plain", from_email="a@b.c"
        )
        session.add(second)
        session.flush()
        session.add(CampaignList(campaign_id=second.id, list_id=world.list_id))
        change_status(session, second, "running", config)
        second_id = second.id
    smtp_sink.handler.messages.clear()
    runner, pool = runner_for(world, config)
    runner.run(second_id)
    pool.close()
    assert sorted(smtp_sink.handler.recipients()) == ["user0@example.com", "user1@example.com"]


def test_temporary_failure_is_retried_then_recorded_soft(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=2)
    smtp_sink.handler.rcpt_replies["user0@example.com"] = "451 4.7.1 try again later"
    config = config_for(smtp_sink, **{"sending.soft_retries": 2})
    start(world, config)
    runner, pool = runner_for(world, config)
    report = runner.run(world.campaign_id)
    pool.close()
    assert smtp_sink.handler.rcpt_attempts.count("user0@example.com") == 3
    assert report.soft == 1 and report.sent == 1 and report.finished
    with world.factory() as session:
        bounce = session.scalar(select(Bounce))
        assert bounce is not None and bounce.type == "soft"
        row = session.scalar(
            select(CampaignSend).where(
                CampaignSend.subscriber_id == world.subscriber_ids["user0@example.com"]
            )
        )
        assert row is not None and row.status == "failed" and row.reason.startswith("soft_bounce")


def test_pause_then_resume_sends_each_subscriber_once(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=9)
    config = config_for(smtp_sink)
    start(world, config)

    def pause_after_the_second(captured: Captured) -> None:
        # The admin pauses the campaign while the server receives its second message.
        if len(smtp_sink.handler.messages) == 2:
            with world.factory() as session, session.begin():
                campaign = session.get(Campaign, world.campaign_id)
                assert campaign is not None
                change_status(session, campaign, "paused", config)

    smtp_sink.handler.on_accept = pause_after_the_second
    runner, pool = runner_for(world, config)
    first = runner.run(world.campaign_id)
    assert first.stopped_because == "paused"
    delivered_before = len(smtp_sink.handler.recipients())
    assert 2 <= delivered_before < 9
    with world.factory() as session:
        assert not session.scalars(
            select(CampaignSend).where(CampaignSend.reason == IN_FLIGHT)
        ).all()
    smtp_sink.handler.on_accept = None
    with world.factory() as session, session.begin():
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        change_status(session, campaign, "running", config)
    second = runner.run(world.campaign_id)
    pool.close()
    assert second.finished
    recipients = smtp_sink.handler.recipients()
    assert sorted(recipients) == sorted(world.subscriber_ids)


def test_restart_after_the_sender_was_killed_never_resends(
    session_maker: sessionmaker[Session], smtp_sink: Sink, db_url: str
) -> None:
    world = make_world(session_maker, count=9)
    # One connection: when the process dies, the message being answered is the only one on
    # the wire, and the server has it.
    settings = settings_for(smtp_sink, **{"app.concurrency": 1})
    config = SendingConfig.from_settings(settings)
    start(world, config)
    process: list[subprocess.Popen[bytes]] = []

    def kill_at_the_fourth(captured: Captured) -> None:
        # The process dies after the server took the message and before the sender could
        # record the answer (SIGKILL: no cleanup of any kind).
        if len(smtp_sink.handler.messages) == 4:
            os.kill(process[0].pid, signal.SIGKILL)

    smtp_sink.handler.on_accept = kill_at_the_fourth
    src = str(Path(__file__).resolve().parents[2] / "src")
    process.append(
        subprocess.Popen(
            [sys.executable, str(SENDER_PROCESS), db_url, str(world.campaign_id)],
            stdin=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": src},
        )
    )
    process[0].communicate(json.dumps(settings).encode(), timeout=120)
    assert process[0].returncode == -signal.SIGKILL, "the sender was not killed mid-campaign"
    smtp_sink.handler.on_accept = None
    delivered_before = smtp_sink.handler.recipients()
    assert sorted(delivered_before) == [f"user{n}@example.com" for n in range(4)]

    restarted, pool = runner_for(world, config)
    report = restarted.run(world.campaign_id)
    pool.close()
    assert report.finished
    final = smtp_sink.handler.recipients()
    assert len(final) == len(set(final)), "someone got the campaign twice"
    with world.factory() as session:
        doubt = {
            row.subscriber_id
            for row in session.scalars(select(CampaignSend).where(CampaignSend.reason == IN_DOUBT))
        }
        stats = campaign_stats(session, world.campaign_id)
    ids = world.subscriber_ids
    # The claims in flight when the process died are in doubt: the fourth message (which the
    # server has) and the rest of the batches then claimed, which are never sent.
    assert ids["user3@example.com"] in doubt
    assert config.batch_size <= len(doubt) <= 2 * config.batch_size
    assert {ids[r] for r in final} | doubt == set(ids.values())
    assert not {ids[r] for r in final[4:]} & doubt
    assert stats["in_doubt"] == len(doubt) and stats["sent"] + stats["in_doubt"] == 9


def test_status_rules_follow_listmonk(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=1)
    config = config_for(smtp_sink)
    with world.factory() as session, session.begin():
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        with pytest.raises(CampaignError):
            change_status(session, campaign, "paused", config)
        with pytest.raises(CampaignError, match="send_at"):
            change_status(session, campaign, "scheduled", config)
        campaign.body = "{{ if .Subscriber.Name }}unclosed"
        with pytest.raises(CampaignError, match="unclosed"):
            change_status(session, campaign, "running", config)


def test_connection_refused_releases_claims_and_pauses_after_max_send_errors(
    session_maker: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world(session_maker, count=3)
    nobody = {"host": "127.0.0.1", "port": free_port(), "max_msg_retries": 1}
    config = SendingConfig.from_settings({"smtp": [nobody], "app.max_send_errors": 3})
    start(world, config)
    runner, pool = runner_for(world, config)
    report = runner.run(world.campaign_id)
    pool.close()
    assert report.stopped_because.startswith("3 send errors in a row (app.max_send_errors 3)")
    assert "connect: ConnectionRefusedError" in report.stopped_because
    assert report.sent == 0 and report.errors == 3
    with world.factory() as session:
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None and campaign.status == "paused"
        assert campaign.pause_reason == report.stopped_because
        assert (campaign.sent, campaign.send_errors) == (0, 3)
        assert [e["stage"] for e in campaign.last_errors] == ["connect"] * 3
        # Nothing was delivered, so nobody is claimed: a resumed campaign sends to all.
        assert session.scalars(select(CampaignSend)).all() == []
        stats = campaign_stats(session, world.campaign_id)
    assert (stats["sent"], stats["send_errors"]) == (0, 3)
    assert stats["pause_reason"] == report.stopped_because
    assert "paused: 3 send errors in a row" in caplog.text


def test_lost_connections_are_retried_before_the_data_and_in_doubt_after_it(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=5)
    # The first MAIL FROM loses its connection: nothing was sent, so a new one tries again.
    smtp_sink.handler.drop_at_mail = 1
    # user3's message is taken, then the connection drops before the answer.
    smtp_sink.handler.drop_after_data = {"user3@example.com"}
    config = config_for(smtp_sink, **{"app.concurrency": 1})
    start(world, config)
    runner, pool = runner_for(world, config)
    report = runner.run(world.campaign_id)
    assert report.finished and (report.sent, report.in_doubt, report.errors) == (4, 1, 1)
    # Run again: nothing is left to send, and user3 is not sent twice.
    with world.factory() as session, session.begin():
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        campaign.status = "running"
    assert runner.run(world.campaign_id).finished
    pool.close()
    assert sorted(smtp_sink.handler.recipients()) == sorted(world.subscriber_ids)
    with world.factory() as session:
        rows = {
            r.subscriber_id: (r.status, r.reason) for r in session.scalars(select(CampaignSend))
        }
        stats = campaign_stats(session, world.campaign_id)
    assert rows[world.subscriber_ids["user3@example.com"]] == ("sent", IN_DOUBT)
    assert sorted(rows.values()).count(("sent", "")) == 4
    assert (stats["sent"], stats["in_doubt"], stats["send_errors"]) == (4, 1, 1)
    (error,) = stats["last_errors"]
    assert (error["email"], error["outcome"], error["stage"]) == (
        "user3@example.com",
        "in_doubt",
        "data",
    )


def _suppress_when_user0_arrives(world: World, sink: Sink, entry: dict[str, str]) -> None:
    """Once the server took user0's message, `entry` is committed as another channel (a
    complaint webhook, say) would commit it mid-campaign."""

    def commit(captured: Captured) -> None:
        if "user0@example.com" in captured.rcpt_tos:
            with world.factory() as session, session.begin():
                upsert_many(session, [parse_entry(entry)])

    sink.handler.on_accept = commit


def test_suppression_committed_mid_campaign_stops_later_sends(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=8)
    config = config_for(smtp_sink)
    start(world, config)
    _suppress_when_user0_arrives(world, smtp_sink, {"recipient": "user7@example.com"})
    runner, pool = runner_for(world, config)
    report = runner.run(world.campaign_id)
    pool.close()
    assert report.finished
    assert "user7@example.com" not in smtp_sink.handler.recipients()
    assert len(smtp_sink.handler.recipients()) == 7
    assert report.skip_reasons == {"suppressed:address:manual": 1}


def test_suppression_committed_mid_batch_stops_sends_not_yet_handed_over(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    # One connection, so a chunk is SHARE_SIZE messages; the whole campaign is one batch.
    chunk = SHARE_SIZE
    world = make_world(session_maker, count=2 * chunk + 2)
    config = config_for(smtp_sink, **{"app.concurrency": 1, "app.batch_size": 1000})
    start(world, config)
    last = f"user{2 * chunk + 1}@example.com"
    _suppress_when_user0_arrives(world, smtp_sink, {"recipient": last, "reason": "complaint"})
    runner, pool = runner_for(world, config)
    report = runner.run(world.campaign_id)
    pool.close()
    # The third chunk is checked only once the first one has been sent.
    assert report.finished and report.sent == 2 * chunk + 1
    assert last not in smtp_sink.handler.recipients()
    assert report.skip_reasons == {"suppressed:address:complaint": 1}


def test_scheduled_campaign_starts_when_due(session_maker: sessionmaker[Session]) -> None:
    from datetime import timedelta

    from stmails.db.types import utcnow
    from stmails.services.sending.campaigns import start_due_campaigns

    world = make_world(session_maker, count=2)
    config = SendingConfig.from_settings({})
    with world.factory() as session, session.begin():
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        campaign.send_at = utcnow() + timedelta(hours=1)
        change_status(session, campaign, "scheduled", config)
        assert start_due_campaigns(session) == []
        assert start_due_campaigns(session, now=utcnow() + timedelta(hours=2)) == [campaign.id]
        assert campaign.status == "running" and campaign.to_send == 2


def test_smtp_exchange_dot_stuffs_and_keeps_the_session_after_refusals(smtp_sink: Sink) -> None:
    smtp_sink.handler.rcpt_replies["gone@example.com"] = "550 5.1.1 no such user"
    smtp_sink.handler.data_replies["spam@example.com"] = "554 5.7.1 refused"
    settings = smtp_sink.smtp_settings(max_conns=1)
    pool = SmtpPool(SendingConfig.from_settings({"smtp": settings}).smtp)
    data = b"Subject: dots\r\n\r\n.starts with a dot\r\n.\r\n..two\r\nend\r\n"

    def message(rcpt: str) -> Message:
        return Message("bounces@mail.example.org", rcpt, "<m@x>", data)

    answers = [pool.send(message(r)) for r in ("gone@example.com", "spam@example.com", "ok@a.b")]
    # Bare line ends (a relayed message, say) are sent as CRLF.
    bare = Message("bounces@mail.example.org", "bare@a.b", "<n@x>", data.replace(b"\r\n", b"\n"))
    answers.append(pool.send(bare))
    pool.close()
    assert [(a.outcome, a.code, a.stage) for a in answers] == [
        ("hard", 550, "rcpt"),
        ("hard", 554, "data"),
        ("sent", 250, "data"),
        ("sent", 250, "data"),
    ]
    # The refusals reset the transaction; the next message goes through, dots intact.
    (captured,) = smtp_sink.handler.by_recipient("ok@a.b")
    assert captured.data == data and captured.mail_from == "bounces@mail.example.org"
    assert smtp_sink.handler.by_recipient("bare@a.b")[0].data == data


def test_pool_reuses_connections_renews_idle_ones_and_bounds_them(smtp_sink: Sink) -> None:
    opened: list[smtplib.SMTP] = []
    entered, gate = threading.Event(), threading.Event()
    now = {"t": 0.0}

    def counting(server: SmtpServer) -> smtplib.SMTP:
        entered.set()
        gate.wait(5)
        opened.append(connect(server))
        return opened[-1]

    settings = smtp_sink.smtp_settings(max_conns=1, idle_timeout="10s", wait_timeout="10ms")
    servers = SendingConfig.from_settings({"smtp": settings}).smtp
    pool = SmtpPool(servers, connector=counting, clock=lambda: now["t"])

    def message(n: int) -> Message:
        return Message("b@mail.example.org", f"u{n}@a.b", f"<{n}@x>", b"Subject: x\r\n\r\nhi\r\n")

    # The only connection is being opened by one send: another finds none free.
    first = threading.Thread(target=pool.send, args=(message(0),))
    first.start()
    assert entered.wait(5)
    assert pool.send(message(1)).text == "no SMTP connection became free"
    gate.set()
    first.join(5)
    assert [pool.send(message(n)).outcome for n in (2, 3)] == ["sent", "sent"]
    assert len(opened) == 1
    # An idle connection older than idle_timeout is closed and a new one opened.
    now["t"] = 11.0
    assert pool.send(message(4)).outcome == "sent"
    assert len(opened) == 2 and opened[0].sock is None
    pool.close()
    assert opened[1].sock is None
    assert len(smtp_sink.handler.recipients()) == 4
