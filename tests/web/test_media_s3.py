"""The media library on the S3 provider, against a real S3-compatible server on loopback (moto's
standalone server, spoken to over HTTP by boto3 as any S3 server would be): settings tried when
saved, upload, list, get, delete, public and private (presigned) links, files served through
/uploads, get_media_content, and a store that fails after it was configured."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import boto3
import httpx
import moto.settings
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer
from mypy_boto3_s3 import S3Client
from sqlalchemy.orm import Session, sessionmaker

import mediafiles
from stmails.db.models import Media
from stmails.services.errors import NotFound
from stmails.services.media import get_media_content
from stmails.services.settings import MASK

REGION = "eu-west-1"
# moto accepts any credentials until its access control is switched on (see `enforced`).
KEY_ID, SECRET = "AKIAMEDIATESTS000001", "media-test-secret-key"


@pytest.fixture(scope="session")
def s3_url() -> Iterator[str]:
    """The URL of an S3-compatible server on a free loopback port, for the whole session."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_client(url: str, key_id: str = KEY_ID, secret: str = SECRET) -> S3Client:
    client: S3Client = boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
    return client


@pytest.fixture
def bucket(s3_url: str) -> str:
    """A new, empty bucket."""
    name = f"media-{uuid.uuid4().hex[:12]}"
    s3_client(s3_url).create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return name


def s3_settings(url: str, bucket: str, **changes: Any) -> dict[str, Any]:
    """The upload settings an admin saves to use `bucket` on `url`."""
    values = {
        "upload.provider": "s3",
        "upload.s3.url": url,
        "upload.s3.bucket": bucket,
        "upload.s3.bucket_path": "/newsletter/images",
        "upload.s3.aws_access_key_id": KEY_ID,
        "upload.s3.aws_secret_access_key": SECRET,
        "upload.s3.aws_default_region": REGION,
        "upload.s3.bucket_type": "public",
    }
    values.update({f"upload.s3.{k}" if "." not in k else k: v for k, v in changes.items()})
    return values


def configure(client: TestClient, values: dict[str, Any]) -> None:
    answer = client.put("/api/settings", json=values)
    assert answer.status_code == 200, answer.text


def keys_in(url: str, bucket: str) -> list[str]:
    listed = s3_client(url).list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def upload(client: TestClient, name: str, content: bytes) -> dict[str, Any]:
    answer = client.post("/api/media", files={"file": (name, content, "application/pdf")})
    assert answer.status_code == 200, answer.text
    item: dict[str, Any] = answer.json()["data"]
    return item


def test_upload_list_get_and_delete_on_a_public_bucket(
    client: TestClient, s3_url: str, bucket: str
) -> None:
    configure(client, s3_settings(s3_url, bucket))
    photo = mediafiles.image("PNG", 640, 480)
    item = upload(client, "Team Photo.png", photo)
    assert item["provider"] == "s3"
    assert item["meta"] == {"width": 640, "height": 480}
    prefix = f"{s3_url}/{bucket}/newsletter/images"
    assert item["url"] == f"{prefix}/Team-Photo.png"
    assert item["thumb_url"] == f"{prefix}/thumb_Team-Photo.png"
    assert keys_in(s3_url, bucket) == [
        "newsletter/images/Team-Photo.png",
        "newsletter/images/thumb_Team-Photo.png",
    ]
    stored = s3_client(s3_url).get_object(Bucket=bucket, Key="newsletter/images/Team-Photo.png")
    assert stored["ContentType"] == "image/png" and stored["Body"].read() == photo
    # The link works as a mail client would follow it.
    assert httpx.get(item["url"]).content == photo

    again = upload(client, "Team Photo.png", photo)
    assert again["filename"].startswith("Team-Photo_")
    listed = client.get("/api/media").json()["data"]
    assert [r["id"] for r in listed["results"]] == [again["id"], item["id"]]
    assert client.get(f"/api/media/{item['id']}").json()["data"] == item

    assert client.delete(f"/api/media/{item['id']}").json() == {"data": True}
    assert client.delete(f"/api/media/{again['id']}").json() == {"data": True}
    assert keys_in(s3_url, bucket) == []
    assert client.get("/api/media").json()["data"]["total"] == 0


def test_a_private_bucket_gets_presigned_links_that_expire(
    client: TestClient, s3_url: str, bucket: str
) -> None:
    configure(client, s3_settings(s3_url, bucket, bucket_type="private", expiry="2h"))
    item = upload(client, "terms.pdf", mediafiles.PDF)
    link = httpx.URL(item["url"])
    assert link.path == f"/{bucket}/newsletter/images/terms.pdf"
    assert link.params["X-Amz-Expires"] == "7200"
    assert link.params["X-Amz-Credential"].startswith(f"{KEY_ID}/")
    assert httpx.get(item["url"]).content == mediafiles.PDF


def test_files_are_served_through_uploads_when_the_public_url_says_so(
    client: TestClient, s3_url: str, bucket: str
) -> None:
    configure(client, s3_settings(s3_url, bucket, bucket_type="private", public_url="/uploads"))
    item = upload(client, "logo.svg", mediafiles.SVG)
    assert item["url"] == "http://127.0.0.1:9000/uploads/logo.svg"
    served = client.get("/uploads/logo.svg", auth=None)
    assert served.status_code == 200 and served.content == mediafiles.SVG
    assert served.headers["content-type"] == "image/svg+xml"
    assert served.headers["content-disposition"].startswith("attachment")
    assert served.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert served.headers["x-content-type-options"] == "nosniff"


def test_get_media_content_reads_from_the_bucket(
    client: TestClient,
    s3_url: str,
    bucket: str,
    session_maker: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    configure(client, s3_settings(s3_url, bucket))
    item = upload(client, "terms.pdf", mediafiles.PDF)
    with session_maker() as session:
        found = get_media_content(session, item["id"], data_dir=tmp_path)
        assert found == ("terms.pdf", "application/pdf", mediafiles.PDF)
        s3_client(s3_url).delete_object(Bucket=bucket, Key="newsletter/images/terms.pdf")
        with pytest.raises(NotFound, match="is missing"):
            get_media_content(session, item["id"], data_dir=tmp_path)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_s3_settings_that_cannot_work_are_refused_when_saved(
    client: TestClient, s3_url: str, bucket: str
) -> None:
    before = client.get("/api/settings").json()["data"]
    for values, field, words in [
        (s3_settings(s3_url, "no-such-bucket"), "upload.s3.bucket", "there is no bucket"),
        (
            s3_settings(f"http://127.0.0.1:{_closed_port()}", bucket),
            "upload.s3.url",
            "cannot reach",
        ),
        (s3_settings(s3_url, bucket, bucket_type="shared"), "upload.s3.bucket_type", "one of"),
        (s3_settings(s3_url, ""), "upload.s3.bucket", "needs a bucket"),
    ]:
        refused = client.put("/api/settings", json=values)
        assert refused.status_code == 400, refused.text
        message = refused.json()["message"]
        assert message.startswith(f"{field}: ") and words in message, message
    assert client.get("/api/settings").json()["data"] == before
    # Uploads still go to the filesystem.
    assert upload(client, "a.pdf", mediafiles.PDF)["provider"] == "filesystem"


@pytest.fixture
def enforced(s3_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Access control switched on in the S3 server, with one user allowed to use S3; returns
    that user's (key id, secret)."""
    iam = boto3.client(
        "iam",
        endpoint_url=s3_url,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )
    user = f"stmails-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    # From now on the server checks every request's signature and the signer's permissions.
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    return key["AccessKeyId"], key["SecretAccessKey"]


def test_refused_credentials_are_named_when_saved(
    client: TestClient, s3_url: str, bucket: str, enforced: tuple[str, str]
) -> None:
    key_id, secret = enforced
    unknown = s3_settings(s3_url, bucket, aws_access_key_id="AKIAUNKNOWN000000000")
    refused = client.put("/api/settings", json=unknown)
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("upload.s3.aws_access_key_id: ")
    assert "InvalidAccessKeyId" in refused.json()["message"]
    wrong_secret = s3_settings(
        s3_url, bucket, aws_access_key_id=key_id, aws_secret_access_key="not-the-secret"
    )
    refused = client.put("/api/settings", json=wrong_secret)
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("upload.s3.aws_secret_access_key: ")
    good = s3_settings(s3_url, bucket, aws_access_key_id=key_id, aws_secret_access_key=secret)
    configure(client, good)
    shown = client.get("/api/settings").json()["data"]
    assert shown["upload.s3.aws_secret_access_key"] == MASK
    # Saving the settings back as read (secret masked) keeps and uses the stored secret.
    configure(client, {**shown, "upload.s3.bucket_path": "/elsewhere"})
    item = upload(client, "a.pdf", mediafiles.PDF)
    assert item["url"].endswith(f"/{bucket}/elsewhere/a.pdf")


def test_a_store_that_fails_after_it_was_configured_is_a_503_and_stores_nothing(
    client: TestClient, s3_url: str, bucket: str, session_maker: sessionmaker[Session]
) -> None:
    configure(client, s3_settings(s3_url, bucket))
    s3_client(s3_url).delete_bucket(Bucket=bucket)
    failed = client.post("/api/media", files={"file": ("a.pdf", mediafiles.PDF, "x/y")})
    assert failed.status_code == 503
    assert failed.json()["message"].startswith("the media store failed: S3 refused to store")
    assert failed.headers["retry-after"]
    with session_maker() as session:
        assert session.query(Media).count() == 0


class _AclRefusingProxy(http.server.BaseHTTPRequestHandler):
    """Forwards every request to the S3 server, but answers a PUT that sets an ACL the way AWS
    answers for a bucket whose ACLs are disabled (its default since 2023)."""

    upstream = ""
    refused: ClassVar[list[str]] = []

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.command == "PUT" and "x-amz-acl" in self.headers:
            self.refused.append(self.path)
            error = (
                b"<?xml version='1.0' encoding='UTF-8'?><Error>"
                b"<Code>AccessControlListNotSupported</Code>"
                b"<Message>The bucket does not allow ACLs</Message></Error>"
            )
            self._answer(400, {"Content-Type": "application/xml"}, error)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
        answer = httpx.request(
            self.command, self.upstream + self.path, headers=headers, content=body
        )
        passed = {"Content-Type", "ETag", "Content-Length"}
        self._answer(
            answer.status_code,
            {k: v for k, v in answer.headers.items() if k.title() in passed},
            answer.content,
        )

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in {k.title() for k in headers}:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def acl_refusing(s3_url: str) -> Iterator[tuple[str, list[str]]]:
    """An S3 server whose buckets refuse ACLs (a proxy in front of `s3_url`): its URL, and the
    paths of the PUTs it refused for asking for an ACL."""
    refused: list[str] = []
    handler = type("Handler", (_AclRefusingProxy,), {"upstream": s3_url, "refused": refused})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", refused
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_public_bucket_without_acls_still_takes_uploads(
    client: TestClient, acl_refusing: tuple[str, list[str]], s3_url: str, bucket: str
) -> None:
    url, refused = acl_refusing
    configure(client, s3_settings(url, bucket, bucket_type="public"))
    item = upload(client, "terms.pdf", mediafiles.PDF)
    assert item["url"] == f"{url}/{bucket}/newsletter/images/terms.pdf"
    assert keys_in(s3_url, bucket) == ["newsletter/images/terms.pdf"]
    assert httpx.get(f"{s3_url}/{bucket}/newsletter/images/terms.pdf").status_code == 403
    # The probe when the settings were saved, then the upload: each asked for an ACL first.
    assert len(refused) == 2 and refused[1] == f"/{bucket}/newsletter/images/terms.pdf"
