"""The login throttle (per address and user name) and the cap on concurrent password hashing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from stmails.db.types import utcnow
from stmails.services import login_guard
from stmails.services.login_guard import HashingGate, Policy, Throttled


def test_policy_is_free_then_doubles_up_to_the_ceiling() -> None:
    policy = Policy(free=3, base=10, ceiling=60)
    assert [policy.lock_after(n) for n in range(1, 8)] == [0, 0, 10, 20, 40, 60, 60]


def test_a_user_name_is_locked_after_its_free_failures(session: Session) -> None:
    now = utcnow()
    for n in range(login_guard.USER_POLICY.free - 1):
        assert login_guard.record_failure(session, "192.0.2.1", "Alice", now=now) == 0, n
        login_guard.check(session, "192.0.2.1", "alice", now=now)
    locked = login_guard.record_failure(session, "192.0.2.2", "alice", now=now)
    assert locked == login_guard.USER_POLICY.base
    # Names are compared case-insensitively, whichever address tries next.
    with pytest.raises(Throttled) as refused:
        login_guard.check(session, "203.0.113.9", "ALICE", now=now + timedelta(seconds=1))
    assert refused.value.retry_after == 29
    assert "retry in 29 s" in str(refused.value)
    login_guard.check(session, "203.0.113.9", "bob", now=now)
    # The lock ends by itself; the next failure doubles it.
    later = now + timedelta(seconds=31)
    login_guard.check(session, None, "alice", now=later)
    assert login_guard.record_failure(session, None, "alice", now=later) == 60


def test_attempts_while_locked_do_not_lengthen_the_lock(session: Session) -> None:
    now = utcnow()
    for _ in range(login_guard.USER_POLICY.free):
        login_guard.record_failure(session, None, "carol", now=now)
    assert login_guard.failures(session, username="carol") == login_guard.USER_POLICY.free
    assert login_guard.record_failure(session, None, "carol", now=now + timedelta(seconds=5)) == 25
    assert login_guard.failures(session, username="carol") == login_guard.USER_POLICY.free


def test_an_address_is_locked_after_failures_on_many_names(session: Session) -> None:
    now = utcnow()
    for n in range(login_guard.ADDRESS_POLICY.free):
        login_guard.record_failure(session, "198.51.100.7", f"user{n}", now=now)
    with pytest.raises(Throttled):
        login_guard.check(session, "198.51.100.7", "someone-new", now=now)
    login_guard.check(session, "198.51.100.8", "someone-new", now=now)


def test_counts_are_forgotten_after_the_window_and_cleared_by_success(session: Session) -> None:
    now = utcnow()
    for _ in range(3):
        login_guard.record_failure(session, "192.0.2.1", "dave", now=now)
    login_guard.record_success(session, "dave")
    assert login_guard.failures(session, username="dave") == 0
    # Success does not clear the address: a valid account cannot launder guesses.
    assert login_guard.failures(session, address="192.0.2.1") == 3
    later = now + timedelta(seconds=login_guard.ADDRESS_POLICY.window + 1)
    login_guard.record_failure(session, "192.0.2.1", "dave", now=later)
    assert login_guard.failures(session, address="192.0.2.1") == 1


def test_the_hashing_gate_refuses_when_every_slot_is_taken() -> None:
    gate = HashingGate(2, wait=0.05)
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with gate.hold():
            held.set()
            release.wait(5)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        held.wait(5)
        # Both slots taken: a third check is refused rather than queued.
        while gate._slots._value:  # type: ignore[attr-defined]
            pass
        with pytest.raises(login_guard.Busy), gate.hold():
            pass
    finally:
        release.set()
        for thread in threads:
            thread.join()
    with gate.hold():
        pass
