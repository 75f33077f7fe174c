"""The media library over HTTP on the filesystem provider, the way listmonk's clients use it:
upload, list, get, delete; thumbnails; /uploads with its safe headers; every refusal; the
permissions; the upload settings refused when they cannot work; get_media_content."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

import mediafiles
from stmails.db.models import Media
from stmails.services import roles, users
from stmails.services.errors import NotFound
from stmails.services.media import get_media_content


def upload(client: TestClient, name: str, content: bytes, **kwargs: Any) -> httpx.Response:
    """POST /api/media as listmonk's clients send it (the claimed type is a lie on purpose:
    stmails never believes it)."""
    return client.post("/api/media", files={"file": (name, content, "image/png")}, **kwargs)


def uploaded(client: TestClient, name: str, content: bytes) -> dict[str, Any]:
    answer = upload(client, name, content)
    assert answer.status_code == 200, answer.text
    item: dict[str, Any] = answer.json()["data"]
    return item


def format_and_size(source: Path | bytes) -> tuple[str | None, tuple[int, int]]:
    """The image format and size of a file or of bytes."""
    with Image.open(source if isinstance(source, Path) else io.BytesIO(source)) as shown:
        return shown.format, shown.size


def path_of(url: str) -> str:
    return httpx.URL(url).raw_path.decode()


def test_upload_list_get_and_delete_an_image(client: TestClient, tmp_path: Path) -> None:
    photo = mediafiles.image("JPEG", 1200, 800)
    item = uploaded(client, "Summer Party.jpg", photo)
    assert item["filename"] == "Summer-Party.jpg"
    assert item["content_type"] == "image/jpeg"
    assert item["provider"] == "filesystem"
    assert item["meta"] == {"width": 1200, "height": 800}
    assert item["url"] == "http://127.0.0.1:9000/uploads/Summer-Party.jpg"
    assert item["thumb_url"] == "http://127.0.0.1:9000/uploads/thumb_Summer-Party.jpg"
    assert set(item) == {
        "id", "uuid", "filename", "content_type", "created_at", "thumb_url", "provider", "meta",
        "url",
    }  # fmt: skip
    # Stored under the data folder, the thumbnail beside the original.
    folder = tmp_path / "uploads"
    assert (folder / "Summer-Party.jpg").read_bytes() == photo
    assert format_and_size(folder / "thumb_Summer-Party.jpg") == ("JPEG", (250, 167))

    served = client.get(path_of(item["url"]), auth=None)
    assert served.status_code == 200 and served.content == photo
    served_thumb = client.get(path_of(item["thumb_url"]), auth=None)
    assert format_and_size(served_thumb.content) == ("JPEG", (250, 167))

    notes = uploaded(client, "notes.pdf", mediafiles.PDF)
    assert notes["thumb_url"] is None and notes["meta"] == {}
    listed = client.get("/api/media").json()["data"]
    assert [r["filename"] for r in listed["results"]] == ["notes.pdf", "Summer-Party.jpg"]
    assert (listed["total"], listed["page"], listed["per_page"]) == (2, 1, 20)
    assert listed["results"][1] == item
    found = client.get("/api/media", params={"query": "PARTY"}).json()["data"]
    assert [r["id"] for r in found["results"]] == [item["id"]]
    assert found["query"] == "PARTY"
    paged = client.get("/api/media", params={"per_page": 1, "page": 2}).json()["data"]
    assert [r["id"] for r in paged["results"]] == [item["id"]] and paged["total"] == 2
    assert client.get(f"/api/media/{item['id']}").json() == {"data": item}

    assert client.delete(f"/api/media/{item['id']}").json() == {"data": True}
    assert not (folder / "Summer-Party.jpg").exists()
    assert not (folder / "thumb_Summer-Party.jpg").exists()
    assert client.get(f"/api/media/{item['id']}").status_code == 404
    assert client.get(path_of(item["url"])).status_code == 404
    assert client.delete(f"/api/media/{item['id']}").status_code == 404
    assert [r["id"] for r in client.get("/api/media").json()["data"]["results"]] == [notes["id"]]


def test_the_same_name_twice_gets_a_unique_name(client: TestClient, tmp_path: Path) -> None:
    first = uploaded(client, "logo.png", mediafiles.image("PNG", 100, 100))
    second = uploaded(client, "logo.png", mediafiles.image("PNG", 200, 100))
    assert first["filename"] == "logo.png"
    stem, ext = second["filename"].rsplit(".", 1)
    assert ext == "png" and stem.startswith("logo_") and len(stem) == len("logo_") + 6
    assert second["meta"] == {"width": 200, "height": 100}
    # A file called like another's thumbnail does not replace it.
    third = uploaded(client, "thumb_logo.png", mediafiles.image("PNG", 50, 50))
    assert third["filename"].startswith("thumb_logo_")
    assert format_and_size(tmp_path / "uploads" / "thumb_logo.png") == ("PNG", (100, 100))
    # A file already in the folder (not uploaded through stmails) is never overwritten.
    (tmp_path / "uploads" / "manual.gif").write_bytes(b"kept")
    fourth = uploaded(client, "manual.gif", mediafiles.image("GIF", 10, 10))
    assert fourth["filename"].startswith("manual_")
    assert (tmp_path / "uploads" / "manual.gif").read_bytes() == b"kept"


def raw_upload(client: TestClient, filename: bytes, content: bytes) -> httpx.Response:
    """POST /api/media with a multipart body written by hand, so that the filename reaches the
    server byte for byte (HTTP clients escape some characters in it)."""
    boundary = b"b0undary7MA4YWxkTrZu0gW"
    body = b"".join(
        [
            b"--" + boundary + b"\r\n",
            b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n',
            b"Content-Type: image/png\r\n\r\n",
            content,
            b"\r\n--" + boundary + b"--\r\n",
        ]
    )
    return client.post(
        "/api/media",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=" + boundary.decode()},
    )


def test_path_traversal_and_control_characters_in_names_stay_in_the_folder(
    client: TestClient, tmp_path: Path
) -> None:
    for given, stored in [
        ("../../../etc/cron.d/evil.png", "evil.png"),
        ("..\\..\\stmails.png", "stmails.png"),
        ("\x01\x1b[31m\tX-Injected: 1.png", "31mX-Injected-1.png"),
        ("cat\u202egnp.exe.png", "catgnp.exe.png"),
        ("/", None),
    ]:
        answer = raw_upload(client, given.encode(), mediafiles.image("PNG", 20, 20))
        assert answer.status_code == 200, answer.text
        item = answer.json()["data"]
        if stored is None:
            # Nothing left of the name: a random one, with no extension.
            assert len(item["filename"]) == 10
            continue
        assert item["filename"] == stored, given
        assert (tmp_path / "uploads" / stored).is_file()
    assert [p.name for p in tmp_path.rglob("*.png") if p.parent.name != "uploads"] == []


def test_uploads_are_served_with_safe_headers(client: TestClient, tmp_path: Path) -> None:
    client.put("/api/settings", json={"upload.extensions": ["*", "png"]})
    expected = {
        "photo.png": ("image/png", "inline"),
        "terms.pdf": ("application/pdf", "inline"),
        "logo.svg": ("image/svg+xml", "attachment"),
        "notes.txt": ("text/plain", "attachment"),
        "invite.ics": ("application/octet-stream", "attachment"),
    }
    contents = {
        "photo.png": mediafiles.image("PNG", 30, 30),
        "terms.pdf": mediafiles.PDF,
        "logo.svg": mediafiles.SVG_WITH_SCRIPT,
        "notes.txt": b"plain words\n",
        "invite.ics": b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
    }
    for name, content in contents.items():
        item = uploaded(client, name, content)
        for method in ("GET", "HEAD"):
            served = client.request(method, path_of(item["url"]), auth=None)
            assert served.status_code == 200, (name, served.text)
            content_type, disposition = expected[name]
            assert served.headers["content-type"].split(";")[0] == content_type, name
            assert served.headers["content-disposition"].startswith(disposition), name
            assert served.headers["x-content-type-options"] == "nosniff"
            assert served.headers["content-security-policy"] == "sandbox; default-src 'none'"
            assert served.headers["content-length"] == str(len(content))
            assert served.content == (content if method == "GET" else b"")
    # An SVG is its own thumbnail, shown in <img> (where no script runs) and downloaded
    # when opened.
    svg = client.get("/api/media", params={"query": "logo"}).json()["data"]["results"][0]
    assert svg["thumb_url"] == svg["url"]
    # A name with characters outside ASCII reaches the browser whole (RFC 6266).
    named = uploaded(client, "报告 2026.pdf", mediafiles.PDF)
    served = client.get(path_of(named["url"]))
    assert served.status_code == 200
    assert "filename*=UTF-8''%E6%8A%A5%E5%91%8A-2026.pdf" in served.headers["content-disposition"]


def test_only_recorded_files_are_served(client: TestClient, tmp_path: Path) -> None:
    uploaded(client, "a.png", mediafiles.image("PNG", 10, 10))
    folder = tmp_path / "uploads"
    (folder / "secret.txt").write_text("not uploaded")
    (tmp_path / "stmails.db").write_text("database")
    for path in (
        "/uploads/secret.txt",
        "/uploads/../stmails.db",
        "/uploads/%2e%2e/stmails.db",
        "/uploads/..%2fstmails.db",
        "/uploads/",
    ):
        answer = client.get(path, auth=None)
        assert answer.status_code == 404, (path, answer.text)
    # A recorded file that disappeared from the folder is a 404 too (and is logged).
    (folder / "a.png").unlink()
    assert client.get("/uploads/a.png").status_code == 404


@pytest.mark.parametrize(
    ("name", "content", "status", "words"),
    [
        ("cat.png", mediafiles.HTML, 400, "HTML or script content is not accepted"),
        ("cat.jpg", mediafiles.TEXT_WITH_SCRIPT, 400, "HTML or script content is not accepted"),
        ("page.html", b"hello", 400, ".html files are never accepted"),
        ("cat.png", mediafiles.image("JPEG", 10, 10), 400, "the content is image/jpeg"),
        ("cat.gif", mediafiles.SVG, 400, "the content is image/svg+xml"),
        ("bomb.png", mediafiles.png_declaring(60_000, 60_000), 400, "pixels allowed"),
        ("cut.png", mediafiles.image("PNG", 300, 300)[:300], 400, "cannot be decoded"),
        ("empty.png", b"", 400, "the file is empty"),
    ],
)
def test_refused_uploads_store_nothing(
    client: TestClient,
    tmp_path: Path,
    session_maker: sessionmaker[Session],
    name: str,
    content: bytes,
    status: int,
    words: str,
) -> None:
    refused = upload(client, name, content)
    assert refused.status_code == status, refused.text
    message = refused.json()["message"]
    assert message.startswith("file: ") and words in message, message
    folder = tmp_path / "uploads"
    assert not folder.exists() or list(folder.iterdir()) == []
    with session_maker() as session:
        assert session.query(Media).count() == 0


def test_the_extension_allowlist_and_the_size_limit_are_settings(
    client: TestClient, tmp_path: Path
) -> None:
    assert client.put("/api/settings", json={"upload.extensions": ["png", "jpg"]}).is_success
    refused = upload(client, "terms.pdf", mediafiles.PDF)
    assert refused.status_code == 400
    assert refused.json()["message"] == (
        "file: .pdf is not among the allowed extensions (png, jpg)"
    )
    assert client.put("/api/settings", json={"upload.max_file_size": 1}).is_success
    noise = Image.frombytes("RGB", (64, 64), random.Random(7).randbytes(64 * 64 * 3))
    out = io.BytesIO()
    noise.save(out, format="PNG")
    big = out.getvalue()
    assert len(big) > 1024
    too_large = upload(client, "big.png", big)
    assert too_large.status_code == 413
    assert too_large.json() == {"message": "file: larger than upload.max_file_size (1 KB)"}
    # A body sent without a length (chunked) is cut off at the limit as it is read.
    form = httpx.Request(
        "POST", "http://x/api/media", files={"file": ("big.png", big, "image/png")}
    )
    body = form.read()

    def chunked() -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    streamed = client.post(
        "/api/media",
        content=chunked(),
        headers={"Content-Type": form.headers["Content-Type"]},
    )
    assert streamed.status_code == 413, streamed.text
    assert uploaded(client, "tiny.png", mediafiles.image("PNG", 4, 4))["filename"] == "tiny.png"
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == [
        "thumb_tiny.png",
        "tiny.png",
    ]


def test_bad_requests_say_what_is_wrong(client: TestClient) -> None:
    as_json = client.post("/api/media", json={"file": "x"})
    assert as_json.status_code == 400
    assert "multipart/form-data" in as_json.json()["message"]
    no_file = client.post("/api/media", files={"other": ("a.png", b"x", "image/png")})
    assert no_file.json()["message"] == "file: required (the multipart field `file`)"
    assert client.get("/api/media", params={"page": "x"}).status_code == 400


def test_media_permissions(
    client: TestClient, session_maker: sessionmaker[Session], tmp_path: Path
) -> None:
    with session_maker() as session:
        reader = roles.create(session, "media reader", ["media:get"])
        manager = roles.create(session, "media manager", ["media:manage"])
        _, reader_token = users.create_api_user(session, "reader", role=reader)
        _, manager_token = users.create_api_user(session, "manager", role=manager)
        session.commit()
    as_reader, as_manager = ("reader", reader_token), ("manager", manager_token)
    item = uploaded(client, "a.png", mediafiles.image("PNG", 10, 10))
    assert client.get("/api/media", auth=as_reader).status_code == 200
    assert client.get(f"/api/media/{item['id']}", auth=as_reader).status_code == 200
    for answer in (
        upload(client, "b.png", mediafiles.image("PNG", 10, 10), auth=as_reader),
        client.delete(f"/api/media/{item['id']}", auth=as_reader),
    ):
        assert answer.status_code == 403
        assert answer.json()["message"] == "permission denied: media:manage required"
    assert client.get("/api/media", auth=as_manager).json()["message"] == (
        "permission denied: media:get required"
    )
    assert upload(client, "b.png", mediafiles.image("PNG", 10, 10), auth=as_manager).is_success
    assert client.delete(f"/api/media/{item['id']}", auth=as_manager).json() == {"data": True}
    assert client.post("/api/media", auth=None).status_code == 401


def test_upload_settings_that_cannot_work_are_refused_when_saved(
    client: TestClient, tmp_path: Path
) -> None:
    shown = client.get("/api/settings").json()["data"]
    assert shown["upload.provider"] == "filesystem"
    assert shown["upload.extensions"] == ["jpg", "jpeg", "png", "gif", "svg", "*"]
    (tmp_path / "a-file").write_text("not a folder")
    for body, field in [
        ({"upload.filesystem.upload_path": str(tmp_path / "a-file" / "media")}, "upload_path"),
        ({"upload.filesystem.upload_path": "a-file"}, "upload_path"),
        ({"upload.provider": "s3"}, "upload.s3.bucket"),
        ({"upload.extensions": ["svg", "xhtml"]}, "upload.extensions"),
        ({"upload.max_file_size": 10**9}, "upload.max_file_size"),
    ]:
        refused = client.put("/api/settings", json=body)
        assert refused.status_code == 400, (body, refused.text)
        assert field in refused.json()["message"].split(":")[0], refused.json()
    after = client.get("/api/settings").json()["data"]
    assert {k: v for k, v in after.items() if k.startswith("upload.")} == {
        k: v for k, v in shown.items() if k.startswith("upload.")
    }
    # A folder that can be made is made and used, absolute or relative to the data folder.
    elsewhere = tmp_path / "elsewhere" / "media"
    assert client.put(
        "/api/settings", json={"upload.filesystem.upload_path": str(elsewhere)}
    ).is_success
    item = uploaded(client, "a.png", mediafiles.image("PNG", 10, 10))
    assert (elsewhere / "a.png").is_file()
    assert client.get(path_of(item["url"])).status_code == 200


def test_a_cdn_in_front_gets_absolute_urls(client: TestClient) -> None:
    cdn = {"upload.filesystem.upload_uri": "https://cdn.example.org/media/"}
    assert client.put("/api/settings", json=cdn).is_success
    item = uploaded(client, "a b.png", mediafiles.image("PNG", 10, 10))
    assert item["url"] == "https://cdn.example.org/media/a-b.png"
    # The CDN fetches from stmails' /uploads.
    assert client.get("/uploads/a-b.png", auth=None).status_code == 200


def test_get_media_content_returns_the_stored_file(
    client: TestClient, session_maker: sessionmaker[Session], tmp_path: Path
) -> None:
    item = uploaded(client, "terms.pdf", mediafiles.PDF)
    with session_maker() as session:
        name, content_type, content = get_media_content(session, item["id"], data_dir=tmp_path)
        assert (name, content_type, content) == ("terms.pdf", "application/pdf", mediafiles.PDF)
        with pytest.raises(NotFound):
            get_media_content(session, item["id"] + 1, data_dir=tmp_path)
        (tmp_path / "uploads" / "terms.pdf").unlink()
        with pytest.raises(NotFound, match="is missing"):
            get_media_content(session, item["id"], data_dir=tmp_path)
