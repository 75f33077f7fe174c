"""The package imports and its command line answers."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import stmails
from stmails.core.event import Event


def test_version_is_set() -> None:
    assert stmails.__version__.count(".") == 2


def test_cli_help_lists_the_program() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "stmails", "--help"], capture_output=True, text=True, check=True
    )
    assert "stmails" in out.stdout


def test_event_dedup_key_prefers_provider_id_and_is_stable() -> None:
    when = datetime(2026, 1, 2, tzinfo=UTC)
    a = Event(source="ses", type="hard", email="A@x.org", event_id="abc", occurred_at=when)
    assert a.dedup_key() == "ses:abc"
    b = Event(source="api", type="soft", email="a@x.org", occurred_at=when)
    c = Event(source="api", type="soft", email="A@X.ORG", occurred_at=when)
    assert b.dedup_key() == b.dedup_key()
    assert b.dedup_key().startswith("api:sha256:")
    # The address is compared case-insensitively; a different type is a different event.
    assert (
        c.dedup_key()
        == Event(source="api", type="soft", email="a@x.org", occurred_at=when).dedup_key()
    )
    assert (
        Event(source="api", type="hard", email="a@x.org", occurred_at=when).dedup_key()
        != b.dedup_key()
    )
