"""The `upload.*` settings: each value's shape, what they say together, the masked S3 secret,
and the configuration a settings change would make."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from stmails.services import settings
from stmails.services.errors import InvalidInput
from stmails.services.media.config import (
    DEFAULTS,
    check_together,
    parse_duration,
    proposed_config,
    validate_setting,
)
from stmails.services.settings import MASK, SettingsError


def test_defaults_are_listmonks() -> None:
    assert DEFAULTS["upload.extensions"] == ["jpg", "jpeg", "png", "gif", "svg", "*"]
    assert DEFAULTS["upload.max_file_size"] == 5000
    assert DEFAULTS["upload.s3.expiry"] == "167h"
    for key, value in DEFAULTS.items():
        assert validate_setting(key, value) == value, key


@pytest.mark.parametrize(
    ("key", "given", "stored"),
    [
        ("upload.extensions", [".PNG", " jpg ", "png", "*"], ["png", "jpg", "*"]),
        ("upload.filesystem.upload_uri", "/uploads/", "/uploads"),
        ("upload.filesystem.upload_uri", "https://cdn.example.org/u/", "https://cdn.example.org/u"),
        ("upload.s3.url", "http://127.0.0.1:9100/", "http://127.0.0.1:9100"),
        ("upload.s3.url", "", ""),
        ("upload.s3.public_url", "/uploads", "/uploads"),
        ("upload.s3.bucket_path", "media//2026/", "/media/2026"),
        ("upload.s3.bucket_path", "", "/"),
        ("upload.s3.expiry", "1h30m", "1h30m"),
        ("upload.max_file_size", 102_400, 102_400),
    ],
)
def test_values_are_normalised(key: str, given: Any, stored: Any) -> None:
    assert validate_setting(key, given) == stored


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("upload.provider", "ftp", "one of filesystem, s3"),
        ("upload.max_file_size", 0, "between 1 and 102400"),
        ("upload.max_file_size", "5000", "number of kilobytes"),
        ("upload.max_file_size", True, "number of kilobytes"),
        ("upload.extensions", [], "1 to 200 extensions"),
        ("upload.extensions", ["html"], "html files are never accepted"),
        ("upload.extensions", ["j p g"], "is not an extension"),
        ("upload.filesystem.upload_path", "", "must name a folder"),
        ("upload.filesystem.upload_path", "up\x00loads", "printable"),
        ("upload.filesystem.upload_uri", "/media", "http(s) URL or /uploads"),
        ("upload.s3.url", "ftp://s3.example.org", "http(s) URL"),
        ("upload.s3.url", "https://key:secret@s3.example.org", "no credentials"),
        ("upload.s3.public_url", "/files", "or /uploads"),
        ("upload.s3.bucket_type", "secret", "one of public, private"),
        ("upload.s3.expiry", "7d", "not a duration"),
        ("upload.s3.expiry", "169h", "between 1s and 168h"),
        ("upload.s3.bucket", "a/b", "bucket name"),
        ("upload.s3.bucket_path", "a/../b", "no . or .."),
        ("upload.s3.aws_default_region", "EU West", "region name"),
    ],
)
def test_bad_values_are_refused_naming_the_key(key: str, value: Any, words: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_setting(key, value)
    assert refused.value.field == key
    assert words in refused.value.message
    # Through the settings service, as PUT /api/settings stores it: the same refusal.
    with pytest.raises(SettingsError, match=f"^{key}: "):
        settings.validate(key, value)


def test_durations() -> None:
    assert parse_duration("167h") == 167 * 3600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90s") == 90
    for bad in ("", "h", "1d", "1.5h", "-1h", "1h 30m"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_the_s3_provider_needs_a_bucket_and_whole_credentials() -> None:
    s3 = {**DEFAULTS, "upload.provider": "s3"}
    with pytest.raises(InvalidInput, match=r"upload\.s3\.bucket: the s3 provider needs a bucket"):
        check_together(s3)
    check_together({**s3, "upload.s3.bucket": "media"})
    with pytest.raises(InvalidInput, match=r"upload\.s3\.aws_secret_access_key: give both"):
        check_together({**s3, "upload.s3.bucket": "media", "upload.s3.aws_access_key_id": "AK"})
    # The filesystem provider does not care about S3's settings.
    check_together({**DEFAULTS, "upload.s3.aws_access_key_id": "AK"})


def test_the_s3_secret_is_masked_and_kept(session: Session) -> None:
    settings.update(
        session,
        {
            "upload.s3.aws_access_key_id": "AKIDEXAMPLE",
            "upload.s3.aws_secret_access_key": "wJalrXUtnFEMI",
        },
    )
    shown = settings.masked(settings.get_all(session))
    assert shown["upload.s3.aws_secret_access_key"] == MASK
    assert shown["upload.s3.aws_access_key_id"] == "AKIDEXAMPLE"
    settings.update(session, shown)
    assert settings.get(session, "upload.s3.aws_secret_access_key") == "wJalrXUtnFEMI"
    with pytest.raises(SettingsError, match=r"^upload\.s3\.bucket: "):
        settings.update(session, {"upload.provider": "s3"})
    assert settings.get(session, "upload.provider") == "filesystem"


def test_proposed_config_is_none_without_a_change() -> None:
    current = {**DEFAULTS, "upload.s3.aws_secret_access_key": "stored-secret"}
    assert proposed_config(current, {"bounce.enabled": True}) is None
    assert proposed_config(current, dict(current)) is None
    changed = proposed_config(
        current,
        {
            "upload.provider": "s3",
            "upload.s3.bucket": "media",
            "upload.s3.aws_access_key_id": "AK",
            "upload.s3.aws_secret_access_key": MASK,
            "upload.s3.expiry": "2h",
        },
    )
    assert changed is not None
    assert changed.provider == "s3" and changed.s3.secret_access_key == "stored-secret"
    assert changed.s3.expiry_seconds == 7200
    assert changed.s3.key_of("a.png") == "a.png"
    with pytest.raises(InvalidInput, match=r"upload\.provider"):
        proposed_config(current, {"upload.provider": "nfs"})
