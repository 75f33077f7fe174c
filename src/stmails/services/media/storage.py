"""Where media files are kept: a folder on the filesystem, or an S3-compatible bucket (boto3).

Both backends store a file under a name chosen by `services.media.library`, never overwrite an
existing file (the filesystem creates with O_EXCL, S3 puts with `If-None-Match: *`), read it
back, delete it, and say at which URL it is found. `check_settings` tries a configuration the
way uploads will use it (write a probe file, delete it) so that a configuration that cannot
work is refused when it is saved.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Protocol
from urllib.parse import quote

from stmails.services.errors import InvalidInput
from stmails.services.media.config import SERVED_PREFIX, S3Config, UploadConfig

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("stmails.media")

CHUNK = 64 * 1024
# Seconds to wait for an S3 server: connecting, then each read.
S3_CONNECT_TIMEOUT = 5
S3_READ_TIMEOUT = 30
_PROBE_PREFIX = ".stmails-write-check-"


class NameTaken(Exception):
    """A file of that name already exists in the store."""


class StorageError(Exception):
    """The store failed (unreachable, refused, full): our fault, not the caller's."""


class NotStored(StorageError):
    """The file the database names is not in the store."""


class Storage(Protocol):
    """One place media files are kept."""

    provider: str

    def put_new(self, name: str, file: BinaryIO, content_type: str) -> None:
        """Stores `file` (from its current position) as `name`; NameTaken when that exists."""

    def open(self, name: str) -> tuple[IO[bytes], int]:
        """The stored file `name` for reading, and its size; NotStored when it is absent."""

    def delete(self, name: str) -> None:
        """Removes `name` (nothing happens when it is absent)."""

    def url(self, name: str, root_url: str) -> str:
        """The URL at which `name` is fetched (`root_url`: stmails' public base URL)."""


def read_all(storage: Storage, name: str, limit: int) -> bytes:
    """The content of `name`; StorageError when it is longer than `limit` bytes."""
    stream, size = storage.open(name)
    with contextlib.closing(stream):
        if size > limit:
            raise StorageError(f"{name} is {size} bytes, more than {limit}")
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise StorageError(f"{name} is more than {limit} bytes")
    return data


def chunks(stream: IO[bytes]) -> Iterator[bytes]:
    """The content of `stream` in pieces of CHUNK bytes; closes it at the end."""
    with contextlib.closing(stream):
        while piece := stream.read(CHUNK):
            yield piece


def _served_url(root_url: str, name: str) -> str:
    return f"{root_url.rstrip('/')}{SERVED_PREFIX}/{quote(name)}"


class FilesystemStorage:
    """Files in one folder (created on first use), named as the library chose."""

    provider = "filesystem"

    def __init__(self, folder: Path, upload_uri: str = SERVED_PREFIX) -> None:
        self.folder = folder
        self.upload_uri = upload_uri

    def _path(self, name: str) -> Path:
        # Names come from checks.safe_filename; this refuses anything else that could leave
        # the folder.
        if not name or "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
            raise ValueError(f"not a stored file name: {name!r}")
        return self.folder / name

    def put_new(self, name: str, file: BinaryIO, content_type: str) -> None:
        path = self._path(name)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            raise NameTaken(name) from None
        except OSError as exc:
            raise StorageError(f"cannot create {path}: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(file, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise StorageError(f"cannot write {path}: {exc.strerror}") from exc

    def open(self, name: str) -> tuple[IO[bytes], int]:
        try:
            fd = os.open(self._path(name), os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise NotStored(name) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NotStored(name) from None
            raise StorageError(f"cannot read {name}: {exc.strerror}") from exc
        stream = os.fdopen(fd, "rb")
        return stream, os.fstat(fd).st_size

    def delete(self, name: str) -> None:
        try:
            self._path(name).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {name}: {exc.strerror}") from exc

    def url(self, name: str, root_url: str) -> str:
        if self.upload_uri == SERVED_PREFIX:
            return _served_url(root_url, name)
        return f"{self.upload_uri}/{quote(name)}"

    def check(self) -> None:
        """InvalidInput naming `upload.filesystem.upload_path` when files cannot be written."""
        probe = self.folder / f"{_PROBE_PREFIX}{secrets.token_hex(6)}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            probe.unlink()
        except OSError as exc:
            raise InvalidInput(
                "upload.filesystem.upload_path",
                f"cannot write files in {self.folder}: {exc.strerror}",
            ) from None


@functools.lru_cache(maxsize=8)
def _s3_client(
    url: str, region: str, access_key_id: str, secret_access_key: str, attempts: int
) -> S3Client:
    # boto3 is imported here: only processes that use S3 pay for loading it.
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=S3_CONNECT_TIMEOUT,
        read_timeout=S3_READ_TIMEOUT,
        retries={"max_attempts": attempts, "mode": "standard"},
        # Path-style addressing works on AWS and on every S3-compatible server.
        s3={"addressing_style": "path"},
        signature_version="s3v4",
        # Checksums only where S3 requires them: several compatible servers reject the
        # newer checksum headers.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    credentials: dict[str, Any] = {}
    if access_key_id:
        credentials = {
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
        }
    session = boto3.session.Session()
    client: S3Client = session.client(
        "s3",
        endpoint_url=url or None,
        region_name=region or None,
        config=config,
        **credentials,
    )
    return client


class S3Storage:
    """Objects in an S3 bucket, under `bucket_path`."""

    provider = "s3"

    def __init__(self, config: S3Config, *, attempts: int = 3) -> None:
        self.config = config
        self.client = _s3_client(
            config.url, config.region, config.access_key_id, config.secret_access_key, attempts
        )

    def _put(self, name: str, file: BinaryIO, content_type: str) -> None:
        """put_new without the translation of boto3's errors (ClientError, BotoCoreError)."""
        from botocore.exceptions import ClientError

        start = file.tell()
        # A public bucket's objects are made readable by everybody (listmonk does the same),
        # unless the bucket refuses ACLs (AWS's default since 2023): its policy decides then.
        acl = ["public-read"] if self.config.bucket_type == "public" else []
        while True:
            extra: dict[str, Any] = {"ACL": acl[0]} if acl else {}
            try:
                self.client.put_object(
                    Bucket=self.config.bucket,
                    Key=self.config.key_of(name),
                    Body=file,
                    ContentType=content_type,
                    IfNoneMatch="*",
                    **extra,
                )
                return
            except ClientError as exc:
                code = _code(exc)
                if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                    raise NameTaken(name) from None
                if not acl or code != "AccessControlListNotSupported":
                    raise
                acl = []
                file.seek(start)

    def put_new(self, name: str, file: BinaryIO, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._put(name, file, content_type)
        except ClientError as exc:
            raise StorageError(f"S3 refused to store {name}: {_describe(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 is unreachable: {exc}") from exc

    def open(self, name: str) -> tuple[IO[bytes], int]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            found = self.client.get_object(Bucket=self.config.bucket, Key=self.config.key_of(name))
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                raise NotStored(name) from None
            raise StorageError(f"S3 refused to read {name}: {_describe(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 is unreachable: {exc}") from exc
        body: IO[bytes] = found["Body"]  # type: ignore[assignment]
        return body, int(found["ContentLength"])

    def delete(self, name: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.config.bucket, Key=self.config.key_of(name))
        except ClientError as exc:
            raise StorageError(f"S3 refused to delete {name}: {_describe(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 is unreachable: {exc}") from exc

    def url(self, name: str, root_url: str) -> str:
        config = self.config
        key = config.key_of(name)
        if config.public_url == SERVED_PREFIX:
            return _served_url(root_url, name)
        if config.public_url:
            return f"{config.public_url}/{quote(key)}"
        if config.bucket_type == "private":
            # Signing is local: no request is made.
            return self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": config.bucket, "Key": key},
                ExpiresIn=config.expiry_seconds,
            )
        endpoint = self.client.meta.endpoint_url.rstrip("/")
        return f"{endpoint}/{quote(config.bucket)}/{quote(key)}"

    def check(self) -> None:
        """InvalidInput naming the setting at fault when the bucket cannot be written with
        these settings: writes an empty probe object and deletes it."""
        from botocore.exceptions import BotoCoreError, ClientError

        probe = f"{_PROBE_PREFIX}{secrets.token_hex(6)}"
        key = self.config.key_of(probe)
        # A PUT as uploads make it, rather than HEAD Bucket: S3 answers a HEAD without a
        # body, so its errors would not say which setting is wrong.
        try:
            self._put(probe, io.BytesIO(b""), "application/octet-stream")
            self.client.delete_object(Bucket=self.config.bucket, Key=key)
        except ClientError as exc:
            field, message = _blame(exc, self.config)
            raise InvalidInput(field, message) from None
        except BotoCoreError as exc:
            where = self.config.url or "AWS"
            raise InvalidInput("upload.s3.url", f"cannot reach {where}: {exc}") from None


def _code(exc: Any) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def _describe(exc: Any) -> str:
    error = exc.response.get("Error", {})
    return f"{_code(exc)} {error.get('Message', '')}".strip()


# S3 error codes and the setting each one points at.
_BLAME = {
    "InvalidAccessKeyId": "upload.s3.aws_access_key_id",
    "SignatureDoesNotMatch": "upload.s3.aws_secret_access_key",
    "NoSuchBucket": "upload.s3.bucket",
    "404": "upload.s3.bucket",
    "AuthorizationHeaderMalformed": "upload.s3.aws_default_region",
    "PermanentRedirect": "upload.s3.aws_default_region",
    "301": "upload.s3.aws_default_region",
    "IllegalLocationConstraintException": "upload.s3.aws_default_region",
}


def _blame(exc: Any, config: S3Config) -> tuple[str, str]:
    code = _code(exc)
    field = _BLAME.get(code)
    if field == "upload.s3.bucket":
        return field, f"there is no bucket {config.bucket!r} at {config.url or 'AWS'}"
    if field is not None:
        return field, f"S3 refused the request: {_describe(exc)}"
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        return (
            "upload.s3.aws_access_key_id",
            f"these credentials may not write to bucket {config.bucket!r} ({_describe(exc)})",
        )
    return "upload.s3.url", f"S3 answered {_describe(exc)}"


def storage_for(config: UploadConfig, data_dir: Path, provider: str | None = None) -> Storage:
    """The store of `provider` (default: the configured one) under the settings `config`."""
    if (provider or config.provider) == "s3":
        return S3Storage(config.s3)
    return FilesystemStorage(config.folder(data_dir), config.upload_uri)


def check_settings(config: UploadConfig, data_dir: Path) -> None:
    """InvalidInput naming the setting at fault when the configured provider cannot store
    files (the folder is not writable; the bucket is missing, unreachable, or refuses the
    credentials). One attempt, within the S3 timeouts."""
    if config.provider == "s3":
        S3Storage(config.s3, attempts=1).check()
    else:
        FilesystemStorage(config.folder(data_dir), config.upload_uri).check()
