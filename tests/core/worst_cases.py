"""Adversarial messages from the issue, built in memory (shared by tests and benchmarks)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def cpu_seconds(run: Callable[[T], object], data: T, repeats: int = 3) -> float:
    """The least process CPU time of `repeats` calls of run(data): a measure a loaded machine
    does not inflate the way it does wall-clock time."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        run(data)
        best = min(best, time.process_time() - start)
    return best


HEAD = b"From: MAILER-DAEMON@mx.example\nTo: a@example.org\nSubject: Undelivered Mail\n"


def deep_nesting(levels: int = 1000) -> bytes:
    """1,000 nested multipart levels."""
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(levels)
    )
    closing = b"".join(b"\n--b%d--\n" % i for i in reversed(range(levels)))
    return HEAD + opening + b"Content-Type: text/plain\n\nuser unknown <x@y.example>\n" + closing


def encoded_subject(words: int = 30_000) -> bytes:
    """A Subject of 30,000 RFC 2047 encoded-words."""
    subject = b" ".join(b"=?utf-8?B?5Lit5paH?=" for _ in range(words))
    return b"From: MAILER-DAEMON@mx.example\nSubject: " + subject + b"\n\nhello\n"


def many_parameters(count: int = 30_000) -> bytes:
    """A Content-Type with 30,000 parameters."""
    params = b"".join(b"; p%d=v%d" % (i, i) for i in range(count))
    return (
        HEAD + b"Content-Type: multipart/report" + params + b'; boundary="x"\n\n--x\n\nhi\n--x--\n'
    )


def many_parts(count: int = 20_000) -> bytes:
    """20,000 tiny MIME parts."""
    parts = b"".join(
        b"--x\nContent-Type: text/plain\n\n<u%d@y.example>: 550 5.1.1\n" % i for i in range(count)
    )
    return HEAD + b'Content-Type: multipart/mixed; boundary="x"\n\n' + parts + b"--x--\n"


def long_line(size: int = 1_000_000) -> bytes:
    """A single 1 MB line."""
    return HEAD + b"\n" + b"<a@b.example> " * (size // 14)


def nul_bytes() -> bytes:
    """NUL bytes in headers and body."""
    return (
        HEAD.replace(b"Subject", b"Sub\x00ject")
        + b"\n\x00\x00550 5.1.1 <a@\x00b.example>\x00\n" * 1000
    )


def big_attachment(size: int = 30 * 1024 * 1024) -> bytes:
    """A 30 MB base64 attachment."""
    body = (b"QUJDRA==" * 9 + b"\n") * (size // 73)
    return (
        HEAD
        + b'Content-Type: multipart/mixed; boundary="x"\n\n--x\nContent-Type: text/plain\n\n'
        + b"<a@b.example>: 550 5.1.1 user unknown\n--x\nContent-Type: application/octet-stream\n"
        + b"Content-Transfer-Encoding: base64\n\n"
        + body
        + b"--x--\n"
    )


def unclosed_styles(count: int = 30_000) -> bytes:
    """An HTML report with 30,000 unclosed <style> tags."""
    return HEAD + b"Content-Type: text/html\n\n" + b"<style><p>user unknown <a@b.example>" * count


def nested_json(depth: int = 100_000) -> bytes:
    """A notification-looking JSON body nested 100,000 levels deep."""
    return HEAD + b'\n{"notificationType": ' + b"[" * depth + b"\n"


def dsn_report(text: bytes, blocks: bytes) -> bytes:
    """A multipart/report with `text` as its human part and `blocks` as recipient fields."""
    return (
        HEAD
        + b'Content-Type: multipart/report; boundary="b"\n\n--b\nContent-Type: text/plain\n\n'
        + text
        + b"\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n"
        + blocks
        + b"--b--\n"
    )


def many_dsn_recipients(count: int = 10_000) -> bytes:
    """A DSN naming 10,000 recipients without diagnostics, and a long human-readable part."""
    text = b"".join(b"<user%d@dest.example>: delivery failed\n" % i for i in range(2000))
    blocks = b"".join(
        b"Final-Recipient: rfc822; user%d@dest.example\nAction: failed\nStatus: 5.0.0\n\n" % i
        for i in range(count)
    )
    return dsn_report(text, blocks)


def dash_run(size: int = 32 * 1024) -> bytes:
    """A plain-text bounce: a recipient line, then a 32 KB line of dashes ending in another
    character (the report rule reader once backtracked cubically on it)."""
    return HEAD + b"\n<a@b.example>: 550 user unknown\n" + b"-" * size + b"x\n"


def continued_replies(count: int = 500, lines: int = 2000) -> bytes:
    """A DSN of 500 recipients whose Diagnostic-Codes open multi-line replies, over a
    2,000-line transcript the reader searches for the rest of each."""
    text = b"".join(b"<<< 550-5.1.1 line %d of a long reply\n" % i for i in range(lines))
    blocks = b"".join(
        b"Final-Recipient: rfc822; user%d@dest.example\nAction: failed\nStatus: 5.1.1\n"
        b"Diagnostic-Code: smtp; 550-5.1.1 line %d of a long reply\n\n" % (i, i)
        for i in range(count)
    )
    return dsn_report(text, blocks)


WORST_CASES: dict[str, Callable[[], bytes]] = {
    "1,000-level MIME nesting": deep_nesting,
    "Subject of 30,000 encoded-words": encoded_subject,
    "Content-Type with 30,000 parameters": many_parameters,
    "20,000 tiny parts": many_parts,
    "a single 1 MB line": long_line,
    "NUL bytes": nul_bytes,
    "a 30 MB attachment": big_attachment,
    "30,000 unclosed <style> tags": unclosed_styles,
    "JSON nested 100,000 deep": nested_json,
    "a DSN naming 10,000 recipients": many_dsn_recipients,
    "a 32 KB line of dashes after a recipient": dash_run,
    "500 multi-line replies, 2,000 transcript lines": continued_replies,
}
