"""DMARC aggregate reports over HTTP: uploaded as receivers send them (gzip body, zip file),
stored once, read back, summarized per domain and source, deleted; bad uploads refused."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stmails.services import roles, users
from stmails.web.api.dmarc import MAX_UPLOAD_BYTES

DATA = Path(__file__).resolve().parent.parent / "data" / "dmarc"
RECEIVER = (DATA / "rfc7489-receiver.xml").read_bytes()
NAMESPACED = (DATA / "dmarcbis-namespaced.xml").read_bytes()


def test_upload_read_summarize_and_delete(client: TestClient) -> None:
    sent = client.post(
        "/api/dmarc/reports",
        content=gzip.compress(RECEIVER),
        headers={"Content-Type": "application/gzip"},
    )
    assert sent.status_code == 200, sent.text
    first = sent.json()["data"]
    assert first["duplicate"] is False
    assert first["report"]["org_name"] == "receiver.example"
    assert first["report"]["begin_at"].startswith("2026-11-01T00:00:00")
    # The same report mailed again (here: as XML) is recognised, not stored twice.
    again = client.post("/api/dmarc/reports", content=RECEIVER)
    assert again.json()["data"] == {**first, "duplicate": True}

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "mailbox-provider.example!example.org!1793577600!1793663999.xml", NAMESPACED
        )
    as_file = client.post(
        "/api/dmarc/reports",
        files={"file": ("report.zip", buffer.getvalue(), "application/zip")},
    )
    assert as_file.status_code == 200, as_file.text

    listed = client.get("/api/dmarc/reports", params={"domain": "example.org"}).json()["data"]
    assert listed["total"] == 2
    assert [r["report_id"] for r in listed["results"]] == ["bis-7", "rpt-2026-11-01-example.org"]
    one = client.get(f"/api/dmarc/reports/{first['id']}").json()["data"]
    assert [(r["source_ip"], r["count"]) for r in one["records"]] == [
        ("198.51.100.7", 120), ("203.0.113.50", 15), ("192.0.2.66", 4),
    ]  # fmt: skip
    assert one["records"][2]["reasons"][0]["comment"] == "arrived at a spam trap"

    summary = client.get("/api/dmarc/summary").json()["data"]
    main = next(d for d in summary if d["domain"] == "example.org")
    assert (main["messages"], main["dmarc_pass"], main["dkim_failures"]) == (169, 165, 19)
    assert main["failing_sources"] == ["203.0.113.50", "192.0.2.66"]
    partner = next(s for s in main["sources"] if s["source_ip"] == "203.0.113.50")
    assert (partner["dkim_failures"], partner["spf_failures"], partner["dmarc_pass"]) == (15, 0, 15)
    news = client.get("/api/dmarc/summary", params={"domain": "news.example.org"}).json()["data"]
    assert [s["source_ip"] for s in news[0]["sources"]] == ["2001:db8::25"]
    first_day = client.get(
        "/api/dmarc/summary",
        params={"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"},
    ).json()["data"]
    assert [(d["domain"], d["messages"]) for d in first_day] == [("example.org", 139)]

    assert client.delete(f"/api/dmarc/reports/{first['id']}").json() == {"data": True}
    assert client.get(f"/api/dmarc/reports/{first['id']}").status_code == 404
    after = client.get("/api/dmarc/summary", params={"domain": "example.org"}).json()["data"]
    assert after[0]["messages"] == 30


def test_bad_uploads_are_refused_with_the_reason(client: TestClient) -> None:
    for body, words in [
        (b"", "empty"),
        (b"<feedback><record>", "well-formed"),
        (b"just text", "expected XML, gzip or zip"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><feedback/>', "safe XML"),
    ]:
        response = client.post("/api/dmarc/reports", content=body)
        assert response.status_code == 400, (body, response.text)
        assert words in response.json()["message"]
    too_big = client.post("/api/dmarc/reports", content=b"<" + b"x" * MAX_UPLOAD_BYTES)
    assert too_big.status_code == 413
    no_file = client.post("/api/dmarc/reports", files={"other": ("a.xml", RECEIVER)})
    assert no_file.status_code == 400 and "file" in no_file.json()["message"]
    bad_time = client.get("/api/dmarc/summary", params={"from": "last week"})
    assert bad_time.status_code == 400 and "from" in bad_time.json()["message"]
    reversed_range = client.get(
        "/api/dmarc/summary", params={"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}
    )
    assert reversed_range.status_code == 400
    assert client.get("/api/dmarc/reports/999").status_code == 404


def test_readers_cannot_upload_or_delete(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    with session_maker() as session:
        role = roles.create(session, "dmarc readers", ["domains:get"])
        _, token = users.create_api_user(session, "reader", role=role)
        session.commit()
    reader = ("reader", token)
    assert client.get("/api/dmarc/summary", auth=reader).status_code == 200
    denied = client.post("/api/dmarc/reports", content=RECEIVER, auth=reader)
    assert denied.status_code == 403 and "domains:manage" in denied.json()["message"]
    assert client.delete("/api/dmarc/reports/1", auth=reader).status_code == 403
