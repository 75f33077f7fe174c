"""listmonk's import takes a ZIP archive of a CSV file as well as the CSV file itself: the
first `.csv` member is imported, decompressed as it is read and capped."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stmails.services import imports
from stmails.services.errors import InvalidInput

from .test_imports_api import _wait

CSV = "email,name,attributes\nann@example.org,Ann,\nbob@example.org,Bob,\n"


def _zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _upload(client: TestClient, name: str, content: bytes, lists: list[int]) -> Any:
    params = {"mode": "subscribe", "delim": ",", "lists": lists}
    return client.post(
        "/api/import/subscribers",
        data={"params": json.dumps(params)},
        files={"file": (name, content, "application/zip")},
    )


def test_the_first_csv_of_a_zip_is_imported(client: TestClient) -> None:
    list_id = client.post("/api/lists", json={"name": "Zipped"}).json()["data"]["id"]
    archive = _zip({"readme.txt": "not this", "dir/subscribers.CSV": CSV,
                    "later.csv": "email\nnever@example.org\n"})  # fmt: skip
    started = _upload(client, "export.zip", archive, [list_id])
    assert started.status_code == 200, started.text
    status = _wait(client)
    assert (status["status"], status["total"], status["imported"]) == ("finished", 2, 2)
    assert status["name"] == "dir/subscribers.CSV"
    subs = client.get("/api/subscribers", params={"list_id": list_id}).json()["data"]["results"]
    assert sorted(s["email"] for s in subs) == ["ann@example.org", "bob@example.org"]


def test_a_zip_without_csv_or_broken_is_refused(client: TestClient) -> None:
    list_id = client.post("/api/lists", json={"name": "Zipped"}).json()["data"]["id"]
    refused = _upload(client, "export.zip", _zip({"a.txt": "x"}), [list_id])
    assert refused.status_code == 400 and "no .csv" in refused.json()["message"]
    broken = _upload(client, "export.zip", b"PK\x03\x04" + b"\x00" * 100, [list_id])
    assert broken.status_code == 400 and "ZIP" in broken.json()["message"]
    # Nothing started: the slot is free for the next import.
    assert client.get("/api/import/subscribers").json()["data"]["status"] == "none"


def test_the_unzipped_size_is_capped(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    list_id = client.post("/api/lists", json={"name": "Zipped"}).json()["data"]["id"]
    monkeypatch.setattr(imports, "MAX_UNZIPPED_BYTES", 20)
    # The archive says how large its file is: refused before anything starts.
    refused = _upload(client, "big.zip", _zip({"a.csv": CSV}), [list_id])
    assert refused.status_code == 400 and "larger" in refused.json()["message"]
    # A member larger than it says is stopped while it is read.
    capped = imports._Capped(io.BytesIO(b"x" * 50), 20)
    with pytest.raises(InvalidInput):
        io.BufferedReader(capped).read()
    assert io.BufferedReader(imports._Capped(io.BytesIO(b"x" * 20), 20)).read() == b"x" * 20
