"""A hostile bounce and a classifier that hangs on it the way a backtracking pattern does.

The classifier is the one seam these tests replace: the real pattern that backtracked (issue
11, H1) is being fixed in `stmails.core`, so a test cannot rely on any real message staying
slow. `hanging_classify` stands for it faithfully: on a hostile message it runs a regular
expression that backtracks for seconds per call, inside the regex engine, where the
interpreter lock is never released; on any other message it is `stmails.core.classify`.
It lives in a module of its own so that worker processes can import it by name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from stmails.core import BounceRecord, classify

from .messages import dsn

HOSTILE_HEADER = b"X-Test-Hostile: yes"
# Exponential backtracking: each extra "a" multiplies the time by about 1.6; 38 of them take
# seconds, in one call of the C regex engine.
_BACKTRACKING = re.compile(r"(?:a|aa)+b")
# Where `hanging_classify` notes each hostile message it starts on (set by the tests).
MARKER_ENV = "STMAILS_TEST_HOSTILE_MARKER"


def hostile_bounce(recipient: str = "victim@dest.example", subject: str = "hostile") -> bytes:
    """A bounce report that `hanging_classify` never finishes."""
    return HOSTILE_HEADER + b"\r\n" + dsn(recipient, subject=subject, message_id="h@x")


def hold_the_interpreter() -> None:
    """One call of the regex engine that backtracks for seconds."""
    _BACKTRACKING.fullmatch("a" * 38)


def hanging_classify(raw: bytes) -> list[BounceRecord]:
    """`classify`, except that a hostile message never returns."""
    if raw.startswith(HOSTILE_HEADER):
        marker = os.environ.get(MARKER_ENV)
        if marker:
            with Path(marker).open("a") as handle:
                handle.write(f"{os.getpid()}\n")
        while True:
            hold_the_interpreter()
    return classify(raw)


def hanging_or_failing_classify(raw: bytes) -> list[BounceRecord]:
    """`hanging_classify`, except that a message starting with "X-Test-Bad:" raises."""
    if raw.startswith(b"X-Test-Bad:"):
        raise ValueError("the classifier failed on this message")
    return hanging_classify(raw)


def process_id(raw: bytes) -> list[BounceRecord]:
    """One record whose recipient is the id of the process that classified `raw`."""
    return [BounceRecord(recipient=str(os.getpid()), reason="undefined")]


def crashing_classify(raw: bytes) -> list[BounceRecord]:
    """`classify`, except that a hostile message kills the process classifying it."""
    if raw.startswith(HOSTILE_HEADER):
        os._exit(3)
    return classify(raw)


def hungry_classify(raw: bytes) -> list[BounceRecord]:
    """`classify`, except that a hostile message wants far more memory than a worker has."""
    if raw.startswith(HOSTILE_HEADER):
        hoard = [bytearray(64 * 1024 * 1024) for _ in range(64)]
        return [BounceRecord(recipient=str(len(hoard)), reason="undefined")]
    return classify(raw)


def alive(pid: int) -> bool:
    """True while process `pid` runs (a zombie waiting to be reaped counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")
