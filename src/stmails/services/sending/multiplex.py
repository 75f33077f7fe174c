"""Many messages over several SMTP connections from one thread: `send_all()`.

The campaign sender's connections spend most of their time waiting for the server. With one
thread per connection, each answer has to win the interpreter lock back from the other
threads (and from the thread that prepares the next batch) before the next command can go out,
and every wait costs a thread switch. Here one thread drives every connection through a
selector: it writes a command, and while the servers answer it renders the messages to come.

The exchange is the one `smtp.transact` makes (MAIL FROM with SIZE, RCPT TO, DATA, the
dot-stuffed data, with the server's Return-Path and custom headers applied: `smtp.outgoing`),
and every answer ends in the same `SendResult` that `SmtpPool.send` gives:

- the session cannot be opened (connect, TLS, AUTH), MAIL FROM refused, or the connection lost
  or silent past the timeout before the whole data was sent: `error`, nothing delivered (the
  session is closed and the message tried again on a new one, up to the server's
  `max_msg_retries`, unless the error is `fatal`: the settings are wrong, so no further
  message is started and the rest come back `NOT_ATTEMPTED`);
- the connection lost or silent after the whole data was sent: `in_doubt`, not tried again;
- RCPT TO, DATA or the data refused: `hard` (5xx) or `soft` (anything else), then RSET so the
  session carries the next message (a 421 closes it instead); a refusal to relay for us is a
  fatal `error` instead (see `smtp.refusal`);
- accepted: `sent`.

Connections come from the pool (`SmtpPool.lease`), are opened there (TLS and AUTH included) by
smtplib, and go back to it afterwards. Envelopes that need SMTPUTF8 are sent by smtplib itself
on the same connection. A bug in this loop or in `produce` does not lose track of the
messages: each gets the result that matches how far it went, and the rest `fatal` errors.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import smtplib
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from stmails import metrics
from stmails.services.sending.messages import Message
from stmails.services.sending.smtp import (
    NO_CONNECTION,
    NOT_ATTEMPTED,
    SENT,
    Lease,
    RateLimiter,
    SendResult,
    SmtpPool,
    Stage,
    dot_stuffed,
    lost,
    outgoing,
    refusal,
    server_label,
    transact,
)

log = logging.getLogger("stmails.sender")

# smtplib's limit on one reply line, and what it raises past it.
MAX_REPLY_LINE = 8192
_TOO_LONG = smtplib.SMTPResponseException(500, "Line too long.")
_WANT_IO = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)

# What a connection waits for: the answer to MAIL, RCPT, DATA, the data, or RSET.
_MAIL, _RCPT, _DATA, _BODY, _RSET = "mail", "rcpt", "data", "body", "rset"
# The stage a wait belongs to, as the results name it.
_STAGES: dict[str, Stage] = {
    _MAIL: "mail",
    _RCPT: "rcpt",
    _DATA: "data",
    _BODY: "data",
    _RSET: "session",
}


@dataclass
class _Link:
    """One leased connection and the message it is busy with."""

    lease: Lease
    index: int = -1
    message: Message | None = None
    # The data of `message` as it goes through this link's server (`smtp.outgoing`).
    data: bytes = b""
    waiting: str = ""
    inbox: bytes = b""
    outbox: bytes = b""
    deadline: float = 0.0
    # Sessions that could not be opened in a row, and the last such failure once they reach
    # the server's attempts: the link then takes no further message.
    open_failures: int = 0
    down: SendResult | None = None
    # The socket registered with the selector and its events (None: not registered), so that
    # the per-command `_watch` needs no selector lookup.
    watched: tuple[socket.socket, int] | None = None

    @property
    def busy(self) -> bool:
        return bool(self.waiting)


def send_all(
    pool: SmtpPool,
    count: int,
    produce: Callable[[int], Message | None],
    connections: int,
    limiter: RateLimiter | None = None,
    clock: Callable[[], float] = time.monotonic,
    halt: Callable[[], bool] | None = None,
) -> list[SendResult | None]:
    """Sends messages 0 .. count-1 over up to `connections` connections of `pool`.

    `produce(i)` renders message i (None: nothing to send, its result stays None); it is called
    at most once per message, in order, often ahead of time while the servers are answering.
    `halt()`, asked before each message is produced, stops the sending when True: messages
    under way are finished, the others are not sent (`NOT_ATTEMPTED`).
    Returns each message's result; a message never produced (no connection could be had, or
    a fatal error stopped the sending) gets `NO_CONNECTION` or `NOT_ATTEMPTED`.
    """
    multiplexer = _Multiplexer(pool, count, produce, max(1, connections), limiter, clock)
    multiplexer.halt = halt
    return multiplexer.run()


class _Multiplexer:
    def __init__(
        self,
        pool: SmtpPool,
        count: int,
        produce: Callable[[int], Message | None],
        connections: int,
        limiter: RateLimiter | None,
        clock: Callable[[], float],
    ) -> None:
        self.pool = pool
        self.count = count
        self.produce = produce
        self.limiter = limiter
        self.clock = clock
        self.results: list[SendResult | None] = [None] * count
        self.next_index = 0
        # Rendered messages not yet started, and messages to try again (first, once the time
        # their server's `msg_retry_delay` sets has come: the first element).
        self.ready: deque[tuple[int, Message]] = deque()
        self.again: deque[tuple[float, int, Message]] = deque()
        self.tries: dict[int, int] = {}
        self.selector = selectors.DefaultSelector()
        self.links: list[_Link] = []
        self.connections = connections
        # The first fatal error: no further message is started once it is set.
        self.fatal: SendResult | None = None
        # The message `produce` is rendering (-1: none), for `_abort`.
        self.producing = -1
        # Asked before each message is produced; True stops the sending (see `send_all`).
        self.halt: Callable[[], bool] | None = None

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> list[SendResult | None]:
        try:
            self._loop()
        except Exception as exc:
            # A bug: every message gets the result that matches how far it went, and the
            # campaign is stopped (fatal) rather than left with claims nobody answers.
            log.exception("SMTP engine failed")
            self._abort(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            for link in self.links:
                self._release(link)
            self.selector.close()
        return self.results

    def _loop(self) -> None:
        self._lease()
        while True:
            for link in self.links:
                if not link.waiting and link.down is None and self.fatal is None:
                    self._start_next(link)
            # (`waiting` rather than the `busy` property: this runs a few times per message.)
            busy = [link for link in self.links if link.waiting]
            retry_at = self._retry_at()
            if not busy:
                if self.fatal is None and retry_at is not None and self._usable():
                    # Only messages waiting for their retry delay: wait for the first (a sleep:
                    # the idle sockets' events do not matter now).
                    time.sleep(min(max(0.0, retry_at - self.clock()), 1.0))
                    continue
                if self.fatal is not None:
                    self._fail_remaining(NOT_ATTEMPTED)
                elif self._has_work():
                    self._fail_remaining(self._unreachable())
                return
            # Render ahead while every connection waits, one message per turn.
            prepare = (
                self.fatal is None
                and len(self.ready) < len(self.links)
                and self.next_index < self.count
            )
            wake = min(k.deadline for k in busy)
            if retry_at is not None and self._usable(idle=True):
                # An idle link takes the retry when its delay is over.
                wake = min(wake, retry_at)
            timeout = 0.0 if prepare else max(0.0, wake - self.clock())
            events = self.selector.select(timeout)
            if not events:
                if prepare:
                    self._render_ahead()
                else:
                    self._expire(busy)
                continue
            for key, mask in events:
                ready: _Link = key.data
                if mask & selectors.EVENT_WRITE and ready.outbox:
                    self._flush(ready)
                if mask & selectors.EVENT_READ and ready.waiting:
                    self._read(ready)

    def _abort(self, text: str) -> None:
        failure = SendResult("error", 0, text[:1000], "session", fatal=True)
        for link in self.links:
            if link.message is not None and self.results[link.index] is None:
                in_doubt = link.waiting == _BODY and not link.outbox
                self.results[link.index] = (
                    lost("data", text, in_doubt=True) if in_doubt else failure
                )
            if link.busy:
                # Mid-exchange: the session is in an unknown state.
                link.lease.reusable = False
            link.waiting = ""
        if self.producing >= 0:
            self.results[self.producing] = failure
        self._fail_remaining(failure)

    def _lease(self) -> None:
        for number in range(min(self.connections, self.count)):
            lease = self.pool.lease(wait=number == 0)
            if lease is None:
                break
            self.links.append(_Link(lease))

    def _unreachable(self) -> SendResult:
        """The result of the messages left when no link can take them: the pool's answer when
        no connection could be leased; when every server failed to open sessions, its failure
        (nothing was sent, and each of them would have met it: they count as send errors, so
        that a server that is down pauses the campaign after `app.max_send_errors` messages,
        not after that many connection attempts)."""
        down = [link.down for link in self.links if link.down is not None]
        if not down:
            return NO_CONNECTION
        last = down[-1]
        text = f"no session could be opened: {last.text}"[:1000]
        return SendResult(last.outcome, last.code, text, last.stage)

    def _retry_at(self) -> float | None:
        """When the first message waiting for its retry delay may be tried (None: none is,
        or one may be tried now)."""
        if not self.again:
            return None
        first = min(due for due, _, _ in self.again)
        return first if first > self.clock() else None

    def _usable(self, idle: bool = False) -> bool:
        """Whether a link can still take messages (and, with `idle`, is free now)."""
        return any(k.down is None and not (idle and k.busy) for k in self.links)

    def _has_work(self) -> bool:
        return bool(self.again or self.ready or self.next_index < self.count)

    def _render_ahead(self) -> bool:
        while self.next_index < self.count:
            if self.halt is not None and self.halt():
                # Not sent at all: rendered messages waiting for a connection included.
                self._fail_remaining(NOT_ATTEMPTED)
                return False
            index = self.next_index
            self.next_index += 1
            self.producing = index
            message = self.produce(index)
            self.producing = -1
            if message is not None:
                self.ready.append((index, message))
                return True
        return False

    def _next_message(self) -> tuple[int, Message] | None:
        now = self.clock()
        for position, (due, index, message) in enumerate(self.again):
            if due <= now:
                del self.again[position]
                return index, message
        if self.ready or self._render_ahead():
            return self.ready.popleft()
        return None

    def _fail_remaining(self, result: SendResult) -> None:
        # Without rendering what was not rendered yet: those messages were never sent.
        for index in [index for _, index, _ in self.again] + [index for index, _ in self.ready]:
            self.results[index] = result
        self.again.clear()
        self.ready.clear()
        while self.next_index < self.count:
            self.results[self.next_index] = result
            self.next_index += 1

    # -- one message on one connection ------------------------------------------------------

    def _start_next(self, link: _Link) -> None:
        while (
            self.fatal is None and link.down is None and (item := self._next_message()) is not None
        ):
            index, message = item
            if self.limiter is not None:
                self.limiter.acquire()
            if self._start(link, index, message):
                return

    def _start(self, link: _Link, index: int, message: Message) -> bool:
        """Starts `message` on `link`; False when it already has its result (or went back to
        the queue) and the link is free for the next one."""
        self.tries[index] = self.tries.get(index, 0) + 1
        try:
            conn = link.lease.open()
        except Exception as exc:
            # `connect` words every failure of its own; anything else is a connector's bug,
            # and nothing was sent either way.
            result = link.lease.failed(exc)
            link.open_failures += 1
            if link.open_failures >= link.lease.attempts:
                # The server does not let this link in: it stops here instead of spending a
                # connection timeout on every message left.
                link.down = result
            self._finish(link, index, message, result)
            return False
        link.open_failures = 0
        sender, data = outgoing(link.lease.server, message)
        recipient = message.recipient
        if not (sender.isascii() and recipient.isascii()) or "\n" in sender + recipient:
            self._send_with_smtplib(link, conn, index, message)
            return False
        sock = conn.sock
        assert sock is not None
        if sock.gettimeout() != 0.0:
            sock.setblocking(False)
        self._watch(link, sock)
        size = f" SIZE={len(data)}" if conn.does_esmtp and conn.has_extn("size") else ""
        link.index, link.message, link.data = index, message, data
        self._command(link, f"MAIL FROM:<{sender}>{size}\r\n".encode("ascii"), _MAIL)
        return True

    def _send_with_smtplib(
        self, link: _Link, conn: smtplib.SMTP, index: int, message: Message
    ) -> None:
        self._unwatch(link)
        sock = conn.sock
        assert sock is not None
        sock.settimeout(link.lease.server.timeout)
        try:
            transact(conn, message, link.lease.server)
        except (smtplib.SMTPException, OSError) as exc:
            self._finish(link, index, message, link.lease.failed(exc))
            return
        self._finish(link, index, message, SENT)

    def _command(self, link: _Link, line: bytes, waiting: str) -> None:
        link.waiting = waiting
        link.deadline = self.clock() + link.lease.server.timeout
        link.outbox = line
        self._flush(link)

    def _flush(self, link: _Link) -> None:
        conn = link.lease.conn
        sock = conn.sock if conn is not None else None
        if sock is None:
            return
        try:
            while link.outbox:
                sent = sock.send(link.outbox)
                link.outbox = link.outbox[sent:]
        except _WANT_IO:
            pass
        except OSError as exc:
            self._lost(link, exc)
            return
        self._watch(link, sock)

    def _read(self, link: _Link) -> None:
        conn = link.lease.conn
        sock = conn.sock if conn is not None else None
        if sock is None:
            return
        try:
            chunk = sock.recv(65536)
            if isinstance(sock, ssl.SSLSocket):
                while sock.pending():
                    chunk += sock.recv(sock.pending())
        except _WANT_IO:
            return
        except OSError as exc:
            self._lost(link, exc)
            return
        if not chunk:
            self._lost(link, None)
            return
        link.inbox += chunk
        while link.waiting and link.inbox:
            reply = self._reply(link)
            if reply is None:
                return
            self._answer(link, *reply)

    def _reply(self, link: _Link) -> tuple[int, bytes] | None:
        """The first complete reply in the link's inbox (as smtplib's getreply returns it)."""
        lines: list[bytes] = []
        start = 0
        inbox = link.inbox
        while True:
            end = inbox.find(b"\n", start)
            if end < 0:
                if len(inbox) - start > MAX_REPLY_LINE:
                    self._lost(link, _TOO_LONG)
                return None
            line = inbox[start : end + 1]
            if len(line) > MAX_REPLY_LINE:
                self._lost(link, _TOO_LONG)
                return None
            start = end + 1
            lines.append(line[4:].strip(b" \t\r\n"))
            try:
                code = int(line[:3])
            except ValueError:
                code = -1
                break
            if line[3:4] != b"-":
                break
        link.inbox = inbox[start:]
        return code, b"\n".join(lines)

    def _answer(self, link: _Link, code: int, text: bytes) -> None:
        message = link.message
        assert message is not None
        waiting = link.waiting
        if waiting == _RSET:
            # The answer to RSET does not matter: the transaction is over either way.
            self._done(link)
            return
        if waiting == _MAIL and code == 250:
            self._command(link, f"RCPT TO:<{message.recipient}>\r\n".encode("ascii"), _RCPT)
            return
        if waiting == _RCPT and code in (250, 251):
            self._command(link, b"DATA\r\n", _DATA)
            return
        if waiting == _DATA and code == 354:
            self._command(link, dot_stuffed(link.data) + b".\r\n", _BODY)
            return
        if waiting == _BODY and code == 250:
            self._finish(link, link.index, message, SENT)
            self._done(link)
            return
        # Classified as smtplib's path classifies the same answer (smtp.refusal).
        result = refusal(_STAGES[waiting], code, text)
        self._finish(link, link.index, message, result)
        if result.outcome == "error" or code == 421:
            # A refused sender, a refusal to relay (the session is suspect, as smtplib's path
            # closes it), or a server closing with 421.
            self._close(link)
            self._done(link)
            return
        # The result is final; the session carries on after RSET.
        self._command(link, b"RSET\r\n", _RSET)

    def _finish(self, link: _Link, index: int, message: Message, result: SendResult) -> None:
        """Records `result`, or queues the message again after an error that may pass while
        tries remain. A fatal error stops the starting of further messages."""
        if result.fatal:
            self.fatal = self.fatal or result
        elif result.outcome == "error" and self.tries.get(index, 0) < link.lease.attempts:
            # Tried again on a new session once the server's msg_retry_delay has passed;
            # the other connections carry on meanwhile.
            due = self.clock() + link.lease.server.msg_retry_delay
            self.again.append((due, index, message))
            return
        self.results[index] = result
        metrics.smtp_result(server_label(link.lease.server), result.outcome)

    def _done(self, link: _Link) -> None:
        link.index, link.message, link.waiting = -1, None, ""
        link.inbox = link.outbox = link.data = b""

    def _lost(self, link: _Link, exc: BaseException | None) -> None:
        """The session ends with `exc` (a connection closed or reset, a line too long, a
        timeout): it is closed; its message is in doubt if the whole data had been sent, else
        tried again while tries remain."""
        message, index, waiting = link.message, link.index, link.waiting
        in_doubt = waiting == _BODY and not link.outbox
        self._close(link)
        if message is not None and waiting != _RSET:
            if isinstance(exc, smtplib.SMTPResponseException) and not in_doubt:
                result = SendResult("error", exc.smtp_code, _text(exc.smtp_error), "session")
            else:
                detail: object | None = exc
                if isinstance(exc, smtplib.SMTPResponseException):
                    detail = f"{exc.smtp_code} {_text(exc.smtp_error)}"
                result = lost(_STAGES[waiting], detail, in_doubt)
            self._finish(link, index, message, result)
        self._done(link)

    def _expire(self, busy: list[_Link]) -> None:
        now = self.clock()
        for link in busy:
            if link.deadline <= now:
                self._lost(link, TimeoutError("timed out"))

    # -- sockets ----------------------------------------------------------------------------

    def _watch(self, link: _Link, sock: socket.socket) -> None:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if link.outbox else 0)
        watched = link.watched
        if watched is not None and watched[0] is sock:
            if watched[1] != events:
                self.selector.modify(sock, events, link)
                link.watched = (sock, events)
            return
        try:
            key = self.selector.get_key(sock)
        except KeyError:
            self.selector.register(sock, events, link)
        else:
            if key.events != events:
                self.selector.modify(sock, events, link)
        link.watched = (sock, events)

    def _unwatch(self, link: _Link) -> None:
        link.watched = None
        conn = link.lease.conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(sock)

    def _close(self, link: _Link) -> None:
        self._unwatch(link)
        conn, link.lease.conn = link.lease.conn, None
        if conn is not None:
            conn.close()

    def _release(self, link: _Link) -> None:
        self._unwatch(link)
        conn = link.lease.conn
        if link.busy or conn is None or conn.sock is None:
            link.lease.reusable = False
        else:
            conn.sock.settimeout(link.lease.server.timeout)
        self.pool.give_back(link.lease)


def _text(raw: bytes | str) -> str:
    return (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))[:1000]
