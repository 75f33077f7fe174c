"""Process settings: environment, TOML file, the persisted secret key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stmails.config import Settings


@pytest.fixture(autouse=True)
def _no_stmails_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own STMAILS_* variables must not change what these tests see.
    for name in list(os.environ):
        if name.startswith("STMAILS_"):
            monkeypatch.delenv(name)


def test_defaults_are_the_documented_ones(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert (s.host, s.port, s.database_url) == ("127.0.0.1", 9000, "sqlite:///./stmails.db")
    assert s.max_body_bytes == 1024 * 1024
    assert s.is_sqlite


def test_environment_overrides_the_toml_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    toml = tmp_path / "conf.toml"
    toml.write_text('port = 9100\nhost = "0.0.0.0"\n', encoding="utf-8")
    monkeypatch.setenv("STMAILS_CONFIG", str(toml))
    monkeypatch.setenv("STMAILS_PORT", "9200")
    s = Settings()
    assert (s.host, s.port) == ("0.0.0.0", 9200)


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).resolved_secret_key()
    assert len(first) >= 40
    assert Settings(data_dir=tmp_path).resolved_secret_key() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert Settings(data_dir=tmp_path, secret_key="given").resolved_secret_key() == "given"
