"""The media library's settings: listmonk's `upload.*` keys, their defaults and their checks.

`upload.provider` (`filesystem` | `s3`), `upload.max_file_size` (kilobytes), `upload.extensions`
(`*` admits any extension that is not denied), `upload.filesystem.upload_path` (relative: under
`data_dir`) and `upload_uri` (`/uploads`, served by stmails, or a full URL), and `upload.s3.*`:
`url`, `public_url`, `aws_access_key_id`, `aws_secret_access_key` (a secret, masked),
`aws_default_region`, `bucket`, `bucket_path`, `bucket_type` (`public` | `private`: presigned
links) and `expiry`. docs/media.md describes each one.

`validate_setting` checks one value's shape when it is saved, `check_together` what only the
values together say (an S3 provider needs a bucket); whether the folder is writable and the
bucket reachable with the credentials is checked by `services.media.storage.check_settings`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from stmails.services.errors import InvalidInput
from stmails.services.media.checks import DENIED_EXTENSIONS

Provider = Literal["filesystem", "s3"]
PROVIDERS: tuple[Provider, ...] = ("filesystem", "s3")
BUCKET_TYPES = ("public", "private")
# The path stmails serves uploaded files under (web.api.media).
SERVED_PREFIX = "/uploads"
# Largest allowed `upload.max_file_size`: 100 MB.
MAX_FILE_SIZE_KB = 102_400
# S3 refuses presigned links that last longer than 7 days.
MAX_EXPIRY_SECONDS = 7 * 24 * 3600

DEFAULTS: dict[str, Any] = {
    "upload.provider": "filesystem",
    "upload.max_file_size": 5000,
    "upload.extensions": ["jpg", "jpeg", "png", "gif", "svg", "*"],
    "upload.filesystem.upload_path": "uploads",
    "upload.filesystem.upload_uri": SERVED_PREFIX,
    "upload.s3.url": "https://ap-south-1.s3.amazonaws.com",
    "upload.s3.public_url": "",
    "upload.s3.aws_access_key_id": "",
    "upload.s3.aws_secret_access_key": "",
    "upload.s3.aws_default_region": "ap-south-1",
    "upload.s3.bucket": "",
    "upload.s3.bucket_path": "/",
    "upload.s3.bucket_type": "public",
    "upload.s3.expiry": "167h",
}
SECRET_KEYS = frozenset({"upload.s3.aws_secret_access_key"})

_EXTENSION = re.compile(r"[a-z0-9]{1,16}")
_DURATION = re.compile(r"(?:(\d{1,6})h)?(?:(\d{1,7})m)?(?:(\d{1,9})s)?")
_REGION = re.compile(r"[a-z0-9-]{1,64}")
# Bucket names as S3 and its compatible servers accept them (dots and underscores included).
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")


def parse_duration(value: str) -> int:
    """Seconds in a Go duration made of hours, minutes and seconds ("167h", "1h30m", "90s")."""
    match = _DURATION.fullmatch(value.strip())
    if match is None or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration such as 167h, 30m or 90s")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _text(key: str, value: Any, limit: int = 2048) -> str:
    if not isinstance(value, str):
        raise InvalidInput(key, "must be a string")
    if len(value) > limit or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(key, f"must be at most {limit} printable characters")
    return value.strip()


def _url(key: str, value: str, *, paths: tuple[str, ...] = ()) -> str:
    """`value` as a URL prefix: http(s)://host[/path], or one of `paths`; no trailing slash."""
    value = value.rstrip("/")
    if value in paths:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        also = f" or {' or '.join(paths)}" if paths else ""
        raise InvalidInput(key, f"must be an http(s) URL{also}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidInput(key, "must be a plain URL (no credentials, query or fragment)")
    return value


def _extensions(key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not value or len(value) > 200:
        raise InvalidInput(key, "must be a list of 1 to 200 extensions")
    out: list[str] = []
    for item in value:
        ext = _text(key, item, 20).lstrip(".").lower()
        if ext != "*" and not _EXTENSION.fullmatch(ext):
            raise InvalidInput(key, f"{item!r} is not an extension (letters and digits) or *")
        if ext in DENIED_EXTENSIONS:
            raise InvalidInput(key, f"{ext} files are never accepted (a browser would run them)")
        out.append(ext)
    return list(dict.fromkeys(out))


def validate_setting(key: str, value: Any) -> Any:
    """The value to store for the `upload.*` setting `key`; InvalidInput naming it otherwise."""
    if key == "upload.provider":
        if value not in PROVIDERS:
            raise InvalidInput(key, f"one of {', '.join(PROVIDERS)}")
        return value
    if key == "upload.max_file_size":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(key, "must be a number of kilobytes")
        if not 1 <= value <= MAX_FILE_SIZE_KB:
            raise InvalidInput(key, f"must be between 1 and {MAX_FILE_SIZE_KB} (kilobytes)")
        return value
    if key == "upload.extensions":
        return _extensions(key, value)
    if key == "upload.s3.bucket_type":
        if value not in BUCKET_TYPES:
            raise InvalidInput(key, f"one of {', '.join(BUCKET_TYPES)}")
        return value
    text = _text(key, value)
    if key == "upload.filesystem.upload_path":
        if not text:
            raise InvalidInput(key, "must name a folder")
        return text
    if key == "upload.filesystem.upload_uri":
        return _url(key, text, paths=(SERVED_PREFIX,))
    if key == "upload.s3.url":
        return _url(key, text) if text else ""
    if key == "upload.s3.public_url":
        return _url(key, text, paths=(SERVED_PREFIX,)) if text else ""
    if key == "upload.s3.expiry":
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            raise InvalidInput(key, str(exc)) from None
        if not 1 <= seconds <= MAX_EXPIRY_SECONDS:
            raise InvalidInput(key, "must be between 1s and 168h (S3's limit)")
        return text
    if key == "upload.s3.aws_default_region":
        if text and not _REGION.fullmatch(text):
            raise InvalidInput(key, "must be a region name such as eu-west-1")
        return text
    if key == "upload.s3.bucket":
        if text and not _BUCKET.fullmatch(text):
            raise InvalidInput(key, "must be a bucket name (letters, digits, . _ -)")
        return text
    if key == "upload.s3.bucket_path":
        parts = [p for p in text.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise InvalidInput(key, "must be a folder inside the bucket (no . or ..)")
        return "/" + "/".join(parts)
    return text


def check_together(values: Mapping[str, Any]) -> None:
    """What the `upload.*` values say together (all settings, as they would be stored)."""
    if values.get("upload.provider") != "s3":
        return
    if not values.get("upload.s3.bucket"):
        raise InvalidInput("upload.s3.bucket", "the s3 provider needs a bucket")
    if not values.get("upload.s3.url") and not values.get("upload.s3.aws_default_region"):
        raise InvalidInput("upload.s3.url", "the s3 provider needs a URL or a region")
    if bool(values.get("upload.s3.aws_access_key_id")) != bool(
        values.get("upload.s3.aws_secret_access_key")
    ):
        raise InvalidInput(
            "upload.s3.aws_secret_access_key",
            "give both the access key id and the secret, or neither (to use an instance role)",
        )


@dataclass(frozen=True, slots=True)
class S3Config:
    """Where and how the S3 provider stores objects."""

    url: str
    public_url: str
    access_key_id: str
    secret_access_key: str
    region: str
    bucket: str
    bucket_path: str
    bucket_type: str
    expiry_seconds: int

    def key_of(self, name: str) -> str:
        """The object key of the stored file `name` (inside `bucket_path`, no leading slash)."""
        folder = self.bucket_path.strip("/")
        return f"{folder}/{name}" if folder else name


@dataclass(frozen=True, slots=True)
class UploadConfig:
    """The `upload.*` settings in force, typed."""

    provider: Provider
    max_file_size_kb: int
    extensions: tuple[str, ...]
    upload_path: str
    upload_uri: str
    s3: S3Config

    @property
    def max_bytes(self) -> int:
        """The largest accepted upload, in bytes."""
        return self.max_file_size_kb * 1024

    def folder(self, data_dir: Path) -> Path:
        """The filesystem provider's folder (a relative `upload_path` is under `data_dir`)."""
        return data_dir / Path(self.upload_path).expanduser()

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> UploadConfig:
        """The config of already validated settings (keys missing from `values` read as
        their defaults)."""

        def get(key: str) -> Any:
            return values.get(key, DEFAULTS[key])

        return cls(
            provider=get("upload.provider"),
            max_file_size_kb=int(get("upload.max_file_size")),
            extensions=tuple(get("upload.extensions")),
            upload_path=get("upload.filesystem.upload_path"),
            upload_uri=get("upload.filesystem.upload_uri"),
            s3=S3Config(
                url=get("upload.s3.url"),
                public_url=get("upload.s3.public_url"),
                access_key_id=get("upload.s3.aws_access_key_id"),
                secret_access_key=get("upload.s3.aws_secret_access_key"),
                region=get("upload.s3.aws_default_region"),
                bucket=get("upload.s3.bucket"),
                bucket_path=get("upload.s3.bucket_path"),
                bucket_type=get("upload.s3.bucket_type"),
                expiry_seconds=parse_duration(get("upload.s3.expiry")),
            ),
        )


def is_kept_secret(value: Any) -> bool:
    """True for what a client sends to keep a stored secret: "" or the mask (listmonk's
    convention, services.settings.MASK)."""
    return isinstance(value, str) and set(value) <= {"•"}


def proposed_config(current: Mapping[str, Any], incoming: Mapping[str, Any]) -> UploadConfig | None:
    """The upload configuration that storing `incoming` over the settings `current` would
    make, or None when `incoming` changes no `upload.*` setting. InvalidInput naming the
    setting when a value is invalid."""
    values = dict(current)
    changed = False
    for key, value in incoming.items():
        if key not in DEFAULTS:
            continue
        if key in SECRET_KEYS and is_kept_secret(value):
            value = current.get(key, "")
        value = validate_setting(key, value)
        changed = changed or value != current.get(key, DEFAULTS[key])
        values[key] = value
    if not changed:
        return None
    check_together(values)
    return UploadConfig.from_values(values)
