"""`multiplex.send_all`: several SMTP connections driven from one thread, against real servers.

The engine must answer exactly as the per-message path (`SmtpPool.send`) does, so most tests
send the same messages both ways and compare. Failure modes (a connection lost mid-exchange, a
server that stops answering, 421, replies split across packets, an overlong line) come from a
small scripted SMTP server on loopback.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller

from stmails.services.sending.config import SendingConfig
from stmails.services.sending.messages import Message
from stmails.services.sending.multiplex import send_all
from stmails.services.sending.smtp import (
    NOT_ATTEMPTED,
    SENT,
    SendResult,
    SmtpPool,
    SmtpServer,
    connect,
)

from .conftest import Sink, SinkHandler, free_port

DATA = b"Subject: test\r\n\r\n.a line with a leading dot\r\n..two\r\nlast line\r\n"


def message(rcpt: str, data: bytes = DATA) -> Message:
    return Message("bounces@mail.example.org", rcpt, f"<{rcpt}>", data)


def pool_for(sink: Sink, **extra: object) -> SmtpPool:
    return SmtpPool(SendingConfig.from_settings({"smtp": sink.smtp_settings(**extra)}).smtp)


def test_results_match_the_per_message_path(smtp_sink: Sink) -> None:
    smtp_sink.handler.rcpt_replies["gone@example.com"] = "550 5.1.1 no such user"
    smtp_sink.handler.rcpt_replies["busy@example.com"] = "451 4.3.0 try later"
    smtp_sink.handler.data_replies["spam@example.com"] = "554 5.7.1 refused"
    recipients = [f"ok{n}@example.com" for n in range(12)]
    recipients[3], recipients[5], recipients[8] = "gone@example.com", "busy@example.com", "skip"
    recipients[10] = "spam@example.com"
    messages = [None if r == "skip" else message(r) for r in recipients]
    produced: list[int] = []

    def produce(index: int) -> Message | None:
        produced.append(index)
        return messages[index]

    pool = pool_for(smtp_sink, max_conns=3)
    results = send_all(pool, len(messages), produce, connections=3)
    multiplexed = list(smtp_sink.handler.messages)
    smtp_sink.handler.messages.clear()
    one_by_one = [None if m is None else pool.send(m) for m in messages]
    pool.close()

    assert produced == list(range(len(messages)))
    assert results == one_by_one
    assert results[3] == SendResult("hard", 550, "5.1.1 no such user", "rcpt")
    assert results[5] == SendResult("soft", 451, "4.3.0 try later", "rcpt")
    assert results[8] is None and results[10] == SendResult("hard", 554, "5.7.1 refused", "data")
    # The same messages arrived both ways, dots intact, each once.
    assert sorted((c.rcpt_tos[0], c.data) for c in multiplexed) == sorted(
        (c.rcpt_tos[0], c.data) for c in smtp_sink.handler.messages
    )
    assert len(multiplexed) == 8 and all(c.data == DATA for c in multiplexed)


def test_connections_go_back_to_the_pool_ready_for_the_per_message_path(smtp_sink: Sink) -> None:
    opened: list[smtplib.SMTP] = []

    def counting(server: SmtpServer) -> smtplib.SMTP:
        opened.append(connect(server))
        return opened[-1]

    servers = SendingConfig.from_settings({"smtp": smtp_sink.smtp_settings(max_conns=2)}).smtp
    pool = SmtpPool(servers, connector=counting)
    batch = [message(f"user{n}@example.com") for n in range(10)]
    assert (
        send_all(pool, 10, batch.__getitem__, connections=2)
        == [SendResult("sent", 250, "accepted", "data")] * 10
    )
    # Back in blocking mode and reused: no new connection for the next sends.
    assert pool.send(message("after@example.com")).outcome == "sent"
    assert send_all(pool, 2, [message("a@x.example"), message("b@x.example")].__getitem__, 2)
    pool.close()
    assert len(opened) == 2
    assert all(c.sock is None for c in opened)  # closed (QUIT) by pool.close()
    assert len(smtp_sink.handler.recipients()) == 13


# -- a scripted server for the failure modes -----------------------------------------------------


@dataclass
class Script:
    """Replies of a minimal SMTP server; `answer(session, command)` may return bytes to send,
    None to stay silent, or "close" to drop the connection."""

    answer: Callable[[int, str], bytes | str | None]
    sessions: int = 0
    accepted: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _default(command: str) -> bytes:
    verb = command.split(" ", 1)[0].split(":", 1)[0].upper()
    return {
        "EHLO": b"250-scripted\r\n250 SIZE 1000000\r\n",
        "MAIL": b"250 sender ok\r\n",
        "RCPT": b"250 recipient ok\r\n",
        "DATA": b"354 go ahead\r\n",
        "RSET": b"250 reset\r\n",
        "QUIT": b"221 bye\r\n",
    }.get(verb, b"500 unknown\r\n")


def _serve(listener: socket.socket, script: Script) -> None:
    while True:
        try:
            sock, _ = listener.accept()
        except OSError:
            return
        with script.lock:
            script.sessions += 1
            number = script.sessions
        threading.Thread(target=_session, args=(sock, number, script), daemon=True).start()


def _session(sock: socket.socket, number: int, script: Script) -> None:
    reader = sock.makefile("rb")
    try:
        sock.sendall(b"220 scripted ready\r\n")
        in_data = False
        rcpt = ""
        while line := reader.readline():
            text = line.decode().rstrip("\r\n")
            if in_data:
                if text != ".":
                    continue
                in_data, text = False, "."
            answer = script.answer(number, text)
            if answer == "close":
                return
            if text.upper().startswith("RCPT"):
                rcpt = text[8:].strip("<>")
            if text == "." and isinstance(answer, bytes) and answer.startswith(b"250"):
                with script.lock:
                    script.accepted.append(rcpt)
            if text.upper() == "DATA" and isinstance(answer, bytes) and answer.startswith(b"354"):
                in_data = True
            if isinstance(answer, bytes):
                sock.sendall(answer)
            if text.upper() == "QUIT":
                return
    except OSError:
        pass
    finally:
        reader.close()
        sock.close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., tuple[SmtpPool, Script]]]:
    listeners: list[socket.socket] = []
    pools: list[SmtpPool] = []

    def start(
        answer: Callable[[int, str], bytes | str | None], retries: int = 1, timeout: float = 30.0
    ) -> tuple[SmtpPool, Script]:
        script = Script(answer)
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)
        threading.Thread(target=_serve, args=(listener, script), daemon=True).start()
        server = SmtpServer(
            host="127.0.0.1",
            port=listener.getsockname()[1],
            max_conns=2,
            max_msg_retries=retries,
            timeout=timeout,
        )
        pools.append(SmtpPool([server]))
        return pools[-1], script

    yield start
    for pool in pools:
        pool.close()
    for listener in listeners:
        listener.close()


def _reply(command: str) -> bytes:
    return b"250 accepted\r\n" if command == "." else _default(command)


def test_connection_lost_mid_exchange_is_retried_on_a_new_one(
    scripted: Callable[..., tuple[SmtpPool, Script]],
) -> None:
    # The first session drops the line when the first message's MAIL FROM arrives.
    pool, script = scripted(
        lambda n, c: "close" if n == 1 and c.startswith("MAIL") else _reply(c), retries=1
    )
    batch = [message("first@example.com"), message("second@example.com")]
    results = send_all(pool, 2, batch.__getitem__, connections=1)
    assert [r.outcome for r in results if r] == ["sent", "sent"]
    assert script.accepted == ["first@example.com", "second@example.com"]
    assert script.sessions == 2


def test_connection_lost_without_retries_left_is_an_error(
    scripted: Callable[..., tuple[SmtpPool, Script]],
) -> None:
    pool, script = scripted(lambda n, c: "close" if c.startswith("RCPT") else _reply(c), retries=0)
    (result,) = send_all(pool, 1, [message("first@example.com")].__getitem__, connections=1)
    # Lost while waiting for the answer to RCPT TO: nothing was delivered.
    assert result == SendResult("error", 0, "Connection unexpectedly closed", "rcpt")
    assert script.sessions == 1 and script.accepted == []
    assert result == pool.send(message("first@example.com"))


def test_a_server_silent_before_the_data_times_out_and_the_message_moves_on(
    scripted: Callable[..., tuple[SmtpPool, Script]],
) -> None:
    # The first session never answers RCPT TO.
    pool, script = scripted(
        lambda n, c: None if n == 1 and c.startswith("RCPT") else _reply(c), retries=1, timeout=0.5
    )
    started = time.monotonic()
    (result,) = send_all(pool, 1, [message("slow@example.com")].__getitem__, connections=1)
    assert result is not None and result.outcome == "sent"
    assert time.monotonic() - started < 5
    assert script.accepted == ["slow@example.com"] and script.sessions == 2


def test_no_answer_after_the_data_is_in_doubt_and_not_sent_again(
    scripted: Callable[..., tuple[SmtpPool, Script]],
) -> None:
    # Every session takes the whole message, then never answers the final dot: the server
    # may have accepted it, so neither path tries a second time.
    pool, script = scripted(lambda n, c: None if c == "." else _reply(c), retries=2, timeout=0.5)
    (result,) = send_all(pool, 1, [message("slow@example.com")].__getitem__, connections=1)
    assert result is not None and (result.outcome, result.stage) == ("in_doubt", "data")
    assert "Connection unexpectedly closed: timed out" in result.text
    assert script.sessions == 1
    assert pool.send(message("slow@example.com")) == result
    assert script.sessions == 2


def test_a_server_that_never_greets_costs_a_few_timeouts_not_one_per_message() -> None:
    # The kernel completes the TCP handshake, but nobody ever answers.
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        server = SmtpServer(
            host="127.0.0.1",
            port=silent.getsockname()[1],
            max_conns=2,
            max_msg_retries=1,
            timeout=0.3,
        )
        pool = SmtpPool([server])
        batch = [message(f"user{n}@example.com") for n in range(20)]
        started = time.monotonic()
        results = send_all(pool, 20, batch.__getitem__, connections=2)
        elapsed = time.monotonic() - started
        pool.close()
    # Each link gives up after its server's attempts (2 x 2 sessions of 0.3 s), and every
    # message is a send error at the connect stage: nothing was sent.
    assert elapsed < 3, elapsed
    assert all(r is not None and (r.outcome, r.stage) == ("error", "connect") for r in results)
    assert sum("no session could be opened" in r.text for r in results if r) >= 16


def test_a_refused_sender_stops_the_sending_as_the_settings_are_wrong(
    scripted: Callable[..., tuple[SmtpPool, Script]],
) -> None:
    refuse = b"553 5.7.1 sender not owned by user\r\n"
    pool, script = scripted(lambda n, c: refuse if c.startswith("MAIL") else _reply(c), retries=2)
    batch = [message(f"user{n}@example.com") for n in range(5)]
    produced: list[int] = []

    def produce(index: int) -> Message:
        produced.append(index)
        return batch[index]

    results = send_all(pool, 5, produce, connections=2)
    refused = SendResult("error", 553, "5.7.1 sender not owned by user", "mail", fatal=True)
    # The first refusal is final (no second session for it); nothing else is started, and
    # what was not rendered yet is not rendered at all.
    assert refused in results
    assert all(r in (refused, NOT_ATTEMPTED) for r in results)
    assert len(produced) < 5 and script.sessions <= 2
    assert pool.send(batch[0]) == refused


def test_a_refusal_to_relay_is_our_error_not_a_bounce(
    scripted: Callable[..., tuple[SmtpPool, Script]],
) -> None:
    pool, _ = scripted(
        lambda n, c: (
            b"554 5.7.1 <a@example.com>: Relay access denied\r\n"
            if c.startswith("RCPT")
            else _reply(c)
        )
    )
    (result,) = send_all(pool, 1, [message("a@example.com")].__getitem__, connections=1)
    assert result is not None
    assert (result.outcome, result.fatal, result.code) == ("error", True, 554)
    assert result == pool.send(message("a@example.com"))


def test_a_bug_while_rendering_leaves_no_message_unaccounted_for(smtp_sink: Sink) -> None:
    batch = [message(f"user{n}@example.com") for n in range(6)]

    def produce(index: int) -> Message:
        if index == 3:
            raise KeyError("a bug")
        return batch[index]

    pool = pool_for(smtp_sink, max_conns=1)
    results = send_all(pool, 6, produce, connections=1)
    pool.close()
    delivered = set(smtp_sink.handler.recipients())
    for item, result in zip(batch, results, strict=True):
        # Each message either went out (and says so) or failed fatally without going out.
        assert result is not None
        if item.recipient in delivered:
            assert result.outcome == "sent"
        else:
            assert (result.outcome, result.fatal) == ("error", True)
            assert "internal error: KeyError" in result.text
    assert "user3@example.com" not in delivered


def test_the_servers_return_path_and_headers_apply_on_both_paths(smtp_sink: Sink) -> None:
    settings = smtp_sink.smtp_settings(
        email_headers=[{"Return-Path": "bounces@mail.example.org"}, {"X-Mailer": "stmails"}]
    )
    pool = SmtpPool(SendingConfig.from_settings({"smtp": settings}).smtp)
    own = Message(
        "news@sender.example",
        "own@example.com",
        "<own@x>",
        b"X-Mailer: mine\r\nSubject: s\r\n\r\nbody\r\n",
        own_return_path=True,
        header_names=frozenset({"x-mailer"}),
    )
    plain = Message("news@sender.example", "plain@example.com", "<plain@x>", DATA)
    verp = Message(
        "news@sender.example",
        "verp@example.com",
        "<verp@x>",
        DATA,
        server_senders=(("bounces@mail.example.org", "bounces+tok@mail.example.org"),),
    )
    assert send_all(pool, 3, [own, plain, verp].__getitem__, connections=2) == [SENT] * 3
    assert pool.send(plain) == SENT
    pool.close()
    got = {c.rcpt_tos[0]: c for c in smtp_sink.handler.messages}
    # A message that chose its own envelope sender keeps it, and its own X-Mailer.
    assert got["own@example.com"].mail_from == "news@sender.example"
    assert got["own@example.com"].message.get_all("X-Mailer") == ["mine"]
    # Otherwise the server's Return-Path is MAIL FROM (VERP-encoded where the message says
    # how), its headers are added, and no Return-Path header is written.
    assert got["verp@example.com"].mail_from == "bounces+tok@mail.example.org"
    for captured in smtp_sink.handler.by_recipient("plain@example.com"):
        assert captured.mail_from == "bounces@mail.example.org"
        assert captured.message.get_all("X-Mailer") == ["stmails"]
        assert "Return-Path" not in captured.message
        assert captured.data == b"X-Mailer: stmails\r\n" + DATA


def test_421_closes_the_session_and_the_next_message_opens_a_new_one(
    scripted: Callable[..., tuple[SmtpPool, Script]],
) -> None:
    def answer(n: int, c: str) -> bytes | str | None:
        if n == 1 and c.startswith("RCPT"):
            return b"421 4.3.2 shutting down\r\n"
        return _reply(c)

    pool, script = scripted(answer)
    batch = [message("first@example.com"), message("second@example.com")]
    results = send_all(pool, 2, batch.__getitem__, connections=1)
    assert results == [
        SendResult("soft", 421, "4.3.2 shutting down", "rcpt"),
        SendResult("sent", 250, "accepted", "data"),
    ]
    assert script.accepted == ["second@example.com"] and script.sessions == 2


def test_multiline_replies_split_across_packets_read_as_smtplib_reads_them(
    scripted: Callable[..., tuple[SmtpPool, Script]],
) -> None:
    def answer(n: int, c: str) -> bytes | str | None:
        if c.startswith("RCPT") and "gone" in c:
            return b"550-5.1.1 the mailbox\r\n550-does not\r\n550 exist\r\n"
        return _reply(c)

    pool, _ = scripted(answer)
    batch = [message("gone@example.com"), message("here@example.com")]
    results = send_all(pool, 2, batch.__getitem__, connections=1)
    assert results == [pool.send(m) for m in batch]
    assert results[0] == SendResult("hard", 550, "5.1.1 the mailbox\ndoes not\nexist", "rcpt")


def test_an_overlong_reply_line_ends_the_session_as_smtplib_does(
    scripted: Callable[..., tuple[SmtpPool, Script]],
) -> None:
    pool, _ = scripted(
        lambda n, c: b"250 " + b"x" * 9000 + b"\r\n" if c.startswith("MAIL") else _reply(c),
        retries=0,
    )
    (result,) = send_all(pool, 1, [message("a@example.com")].__getitem__, connections=1)
    assert result == pool.send(message("a@example.com"))
    assert result == SendResult("error", 500, "Line too long.", "session")


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_sessions_over_tls(mode: str, certificate: tuple[str, str]) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    handler = SinkHandler()
    port = free_port()
    options: dict[str, object] = (
        {"tls_context": context, "require_starttls": True}
        if mode == "starttls"
        else {"ssl_context": context}
    )
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        sink = Sink("127.0.0.1", port, handler)
        pool = pool_for(sink, tls_type=mode, tls_skip_verify=True, max_conns=2)
        batch = [message(f"user{n}@example.com") for n in range(8)]
        # A big message too: the data takes more than one TLS record.
        batch.append(message("big@example.com", DATA + b"line of text\r\n" * 20_000))
        results = send_all(pool, len(batch), batch.__getitem__, connections=2)
        pool.close()
    finally:
        controller.stop()
    assert [r.outcome for r in results if r] == ["sent"] * 9
    assert sorted(handler.recipients()) == sorted(m.recipient for m in batch)
    assert {c.data for c in handler.messages} == {m.data for m in batch}


def test_halt_stops_the_messages_not_yet_started(smtp_sink: Sink) -> None:
    recipients = [f"ok{n}@example.com" for n in range(40)]
    asked: list[int] = []
    produced: list[int] = []

    def halt() -> bool:
        # The campaign is paused after the tenth question.
        asked.append(len(asked))
        return len(asked) > 10

    def produce(index: int) -> Message:
        produced.append(index)
        return message(recipients[index])

    pool = pool_for(smtp_sink, max_conns=2)
    results = send_all(pool, len(recipients), produce, connections=2, halt=halt)
    pool.close()
    # Messages started before the pause went out; the rest (a message rendered ahead and
    # waiting for a connection included) were not sent; nothing after it was even rendered.
    sent = sum(1 for r in results if r == SENT)
    assert 5 <= sent <= len(produced) <= 10
    assert results == [SENT] * sent + [NOT_ATTEMPTED] * (40 - sent)
    assert len(smtp_sink.handler.messages) == sent
