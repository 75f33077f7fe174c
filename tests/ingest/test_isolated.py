"""Classification in worker processes: same records, a budget per message, crashes and memory
limits contained, no orphan left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from stmails.core import classify
from stmails.ingest.isolated import (
    ClassificationTimeout,
    ClassifierClosed,
    ClassifierCrashed,
    IsolatedClassifier,
)

from .mailbox.hostile import (
    MARKER_ENV,
    alive,
    crashing_classify,
    hanging_classify,
    hanging_or_failing_classify,
    hostile_bounce,
    hungry_classify,
    process_id,
)
from .mailbox.messages import core_sample, dsn, human_reply

TESTS = Path(__file__).resolve().parents[1]


def test_records_are_those_of_the_classifier_made_in_other_processes() -> None:
    raws = [
        dsn("ann@dest.example"),
        core_sample("arf-abuse.eml"),
        core_sample("autoreply-rfc3834.eml"),
        human_reply(),
    ]
    with IsolatedClassifier() as isolated:
        outcomes = isolated.classify_many(raws, budget=30)
    assert outcomes == [classify(raw) for raw in raws]
    assert [r.recipient for r in outcomes[0]] == ["ann@dest.example"]  # type: ignore[union-attr]
    with IsolatedClassifier(classifier=process_id) as isolated:
        pids = {r[0].recipient for r in isolated.classify_many([b"x"] * 6, budget=30)}  # type: ignore[index]
    assert str(os.getpid()) not in pids


def test_a_message_over_its_budget_is_abandoned_while_the_caller_runs_on() -> None:
    gaps: list[float] = []
    done = threading.Event()

    def ticker() -> None:
        last = time.monotonic()
        while not done.is_set():
            time.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    with IsolatedClassifier(classifier=hanging_classify) as isolated:
        # Started before the clock runs: the first use starts the fork server.
        isolated.classify_many([b"warm-up"], budget=30)
        thread = threading.Thread(target=ticker)
        thread.start()
        started = time.monotonic()
        outcomes = isolated.classify_many(
            [dsn("a@dest.example"), hostile_bounce(), dsn("b@dest.example", message_id="b@x")],
            budget=1.5,
        )
        elapsed = time.monotonic() - started
        done.set()
        thread.join()
        again = isolated.classify_many([dsn("c@dest.example")], budget=30)
    assert isinstance(outcomes[1], ClassificationTimeout)
    assert "1.5 s" in str(outcomes[1])
    assert [r.recipient for r in outcomes[0]] == ["a@dest.example"]  # type: ignore[union-attr]
    assert [r.recipient for r in outcomes[2]] == ["b@dest.example"]  # type: ignore[union-attr]
    # The worker was killed at the budget (a hostile message never ends by itself)...
    assert 1.5 <= elapsed < 10
    # ...and the caller's threads ran all along: the regex engine held another interpreter.
    assert max(gaps) < 0.5
    assert [r.recipient for r in again[0]] == ["c@dest.example"]  # type: ignore[union-attr]


def test_each_of_many_messages_gets_its_own_outcome_in_order() -> None:
    raws = [dsn(f"u{i}@dest.example", message_id=f"{i}@x") for i in range(45)]
    raws[7] = b"X-Test-Bad: yes\r\n" + raws[7]
    raws[23] = hostile_bounce()
    with IsolatedClassifier(classifier=hanging_or_failing_classify) as isolated:
        outcomes = isolated.classify_many(raws, budget=2)
    assert isinstance(outcomes[7], ValueError)
    assert isinstance(outcomes[23], ClassificationTimeout)
    fine = [i for i in range(45) if i not in (7, 23)]
    assert [outcomes[i][0].recipient for i in fine] == [  # type: ignore[index]
        f"u{i}@dest.example" for i in fine
    ]


def test_closing_stops_a_classification_without_blaming_the_message() -> None:
    isolated = IsolatedClassifier(classifier=hanging_classify)
    isolated.classify_many([b"warm-up"], budget=30)
    closer = threading.Timer(1.0, isolated.close)
    closer.start()
    started = time.monotonic()
    with pytest.raises(ClassifierClosed):
        isolated.classify_many([hostile_bounce(), dsn("z@dest.example")], budget=300)
    assert time.monotonic() - started < 30
    closer.join()
    with pytest.raises(ClassifierClosed):
        isolated.classify_many([dsn("z@dest.example")], budget=30)


def test_closing_between_taking_the_pool_and_scheduling_is_a_close_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shutdown that stops the pool just after a scan took it (a race seen under load) is
    reported as ClassifierClosed, which the scanner treats as a shutdown, not as an error."""
    isolated = IsolatedClassifier(classifier=classify)
    take = isolated._pool_now

    def take_then_close() -> object:
        pool = take()
        isolated.close()
        return pool

    monkeypatch.setattr(isolated, "_pool_now", take_then_close)
    with pytest.raises(ClassifierClosed):
        isolated.classify_many([dsn("z@dest.example")], budget=30)


def test_a_worker_that_dies_is_reported_and_replaced() -> None:
    with IsolatedClassifier(classifier=crashing_classify) as isolated:
        outcomes = isolated.classify_many([hostile_bounce(), dsn("d@dest.example")], budget=30)
        assert isinstance(outcomes[0], ClassifierCrashed)
        assert [r.recipient for r in outcomes[1]] == ["d@dest.example"]  # type: ignore[union-attr]
        with pytest.raises(ClassifierCrashed):
            isolated(hostile_bounce(), budget=30)
        assert [r.recipient for r in isolated(dsn("e@dest.example"), budget=30)] == [
            "e@dest.example"
        ]


def test_a_worker_cannot_take_more_memory_than_its_limit() -> None:
    with IsolatedClassifier(classifier=hungry_classify, memory_limit=512 * 1024 * 1024) as iso:
        outcomes = iso.classify_many([hostile_bounce(), dsn("f@dest.example")], budget=30)
    assert isinstance(outcomes[0], MemoryError | ClassifierCrashed)
    assert [r.recipient for r in outcomes[1]] == ["f@dest.example"]  # type: ignore[union-attr]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and prctl")
def test_no_worker_outlives_a_killed_process(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    script = textwrap.dedent(
        """
        from ingest.mailbox.hostile import hanging_classify, hostile_bounce
        from stmails.ingest.isolated import IsolatedClassifier

        if __name__ == "__main__":
            IsolatedClassifier(classifier=hanging_classify).classify_many(
                [hostile_bounce()], budget=600
            )
        """
    )
    env = {**os.environ, MARKER_ENV: str(marker), "PYTHONPATH": str(TESTS)}
    # Its output goes to a file: the resource tracker of a killed process reports, rightly,
    # the semaphores it cleans up after it.
    log = (tmp_path / "killed.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() or not marker.read_text().strip():
            assert time.monotonic() < deadline, "the hostile message never started"
            assert process.poll() is None
            time.sleep(0.05)
        worker = int(marker.read_text().split()[0])
        assert alive(worker)
        process.kill()
        process.wait(10)
        deadline = time.monotonic() + 10
        while alive(worker):
            assert time.monotonic() < deadline, "the worker outlived the process that started it"
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.close()
