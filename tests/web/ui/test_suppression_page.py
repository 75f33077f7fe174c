"""The Suppression list page over HTTP: search, add one, paste many, upload a CSV, remove; the
API's rules (one bad line refuses the batch, nothing written); permissions re-checked on POST."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from web.ui.helpers import ORIGIN, flash_texts, make_user, post_form, sign_in


@pytest.fixture
def browser(app: FastAPI, client: TestClient) -> TestClient:
    """A browser-like client (cookies, no credentials) of the app `client` runs."""
    return TestClient(app, raise_server_exceptions=False, base_url=ORIGIN)


def _entries(api: TestClient, **params: str) -> list[dict[str, object]]:
    found = api.get("/api/suppressions", params={"per_page": "all", **params})
    assert found.status_code == 200, found.text
    results: list[dict[str, object]] = found.json()["data"]["results"]
    return results


def _suppressed(api: TestClient, email: str) -> bool:
    answer = api.get(f"/api/suppressions/{email}")
    return answer.status_code == 200 and bool(answer.json()["data"]["suppressed"])


def test_add_one_address_and_a_domain_then_remove(client: TestClient, browser: TestClient) -> None:
    token = sign_in(browser)
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    added = post_form(
        browser,
        "/admin/suppression/add",
        token,
        {"target": "Someone@Example.org", "reason": "complaint", "expires": tomorrow},
    )
    assert added.status_code == 303, added.text
    assert flash_texts(browser.get(added.headers["location"]).text) == [
        "Entries added or updated: 1."
    ]
    [entry] = _entries(client, kind="address")
    assert entry["recipient"] == "someone@example.org"
    assert entry["reason"] == "complaint" and entry["source"] == "admin"
    assert str(entry["expires_at"]).startswith(tomorrow)
    assert _suppressed(client, "someone@example.org")

    assert post_form(browser, "/admin/suppression/add", token, {"target": "@spam.example"})
    [domain] = _entries(client, kind="domain")
    assert domain["domain"] == "spam.example" and domain["reason"] == "manual"
    assert _suppressed(client, "anyone@spam.example")

    page = browser.get("/admin/suppression", params={"query": "spam"})
    assert "spam.example" in page.text and "someone@example.org" not in page.text
    removed = post_form(browser, f"/admin/suppression/{domain['id']}/remove", token)
    assert removed.status_code == 303
    assert not _suppressed(client, "anyone@spam.example")
    assert post_form(browser, f"/admin/suppression/{domain['id']}/remove", token).status_code == 303
    assert "That entry no longer exists." in flash_texts(browser.get("/admin/suppression").text)


def test_bad_entries_are_refused_with_the_reason_and_nothing_is_written(
    client: TestClient, browser: TestClient
) -> None:
    token = sign_in(browser)
    cases = [
        ("/admin/suppression/add", {"target": "not an address"}, "domain: not a domain name"),
        ("/admin/suppression/add", {"target": "a@b.example", "expires": "2000-01-01"}, "Expiry"),
        ("/admin/suppression/add", {"target": "a@b.example", "reason": "x"}, "Reason"),
        (
            "/admin/suppression/bulk",
            {"targets": "good@example.org\nbad@@example.org\n"},
            "Line 2: recipient",
        ),
    ]
    for path, form, message in cases:
        refused = post_form(browser, path, token, form)
        assert refused.status_code == 400, (path, form)
        assert message in refused.text.replace("&#39;", "'"), (message, refused.text[-3000:])
    assert _entries(client) == []


def test_bulk_paste_and_csv_upload(client: TestClient, browser: TestClient) -> None:
    token = sign_in(browser)
    pasted = post_form(
        browser,
        "/admin/suppression/bulk",
        token,
        {"targets": "one@example.org\ntwo@example.org, three@example.org\n\nbulk.example\n"},
    )
    assert pasted.status_code == 303
    assert _suppressed(client, "two@example.org") and _suppressed(client, "x@bulk.example")
    assert len(_entries(client)) == 4

    csv_text = "email,reason,description\nfour@example.org,,from the old system\n"
    csv_text += "five@example.org,hard_bounce,<b>x</b>\n"
    uploaded = post_form(
        browser,
        "/admin/suppression/upload",
        token,
        {"reason": "import"},
        files={"file": ("old.csv", csv_text.encode(), "text/csv")},
    )
    assert uploaded.status_code == 303, uploaded.text
    by_address = {e["recipient"]: e for e in _entries(client, kind="address")}
    assert by_address["four@example.org"]["reason"] == "import"
    assert by_address["five@example.org"]["reason"] == "hard_bounce"
    page = browser.get("/admin/suppression")
    assert "&lt;b&gt;x&lt;/b&gt;" in page.text and "<b>x</b>" not in page.text

    bad = post_form(
        browser,
        "/admin/suppression/upload",
        token,
        files={"file": ("bad.csv", b"email\nsix@example.org\nnope\n", "text/csv")},
    )
    assert bad.status_code == 400 and "Row 3: recipient" in bad.text
    no_header = post_form(
        browser,
        "/admin/suppression/upload",
        token,
        files={"file": ("bad.csv", b"name\nx\n", "text/csv")},
    )
    assert no_header.status_code == 400 and "header row" in no_header.text
    assert not _suppressed(client, "six@example.org")


def test_the_api_csv_export_uploads_again(client: TestClient, browser: TestClient) -> None:
    # One CSV format (services.suppression_csv): what GET /api/suppressions?format=csv wrote,
    # address beside its hash, list scope and all, is taken as it is by the upload.
    entries = [
        {"recipient": "round@trip.example", "reason": "complaint"},
        {"domain": "whole.example", "reason": "hard_bounce"},
        {"recipient": "listed@trip.example", "list_id": 4, "reason": "unsubscribe"},
    ]
    assert client.put("/api/suppressions", json=entries).status_code == 200
    exported = client.get("/api/suppressions", params={"format": "csv"})
    assert exported.status_code == 200 and exported.text.startswith("recipient,email_hash,")
    for target in ("round@trip.example", "whole.example", "listed@trip.example"):
        assert client.delete(f"/api/suppressions/{target}").status_code == 200
    assert _entries(client) == []
    token = sign_in(browser)
    uploaded = post_form(
        browser,
        "/admin/suppression/upload",
        token,
        {"reason": "manual"},
        files={"file": ("export.csv", exported.content, "text/csv")},
    )
    assert uploaded.status_code == 303, uploaded.text
    again = {
        (e["recipient"] or e["domain"], e["scope"], e["list_id"], e["reason"])
        for e in _entries(client)
    }
    assert again == {
        ("round@trip.example", "global", None, "complaint"),
        ("whole.example", "global", None, "hard_bounce"),
        ("listed@trip.example", "list", 4, "unsubscribe"),
    }


def test_paging_and_permissions(client: TestClient, browser: TestClient) -> None:
    entries = [{"recipient": f"u{n}@paged.example"} for n in range(60)]
    assert client.put("/api/suppressions", json=entries).status_code == 200
    make_user(client, "viewer", "suppressions:get")
    token = sign_in(browser, "viewer", "a-good-password-1")
    first = browser.get("/admin/suppression", params={"query": "paged"})
    assert first.status_code == 200
    assert len(re.findall(r"u\d+@paged\.example</td>", first.text)) == 50
    assert 'href="/admin/suppression?query=paged&amp;page=2"' in first.text
    assert "/remove" not in first.text and 'action="/admin/suppression/add"' not in first.text
    second = browser.get("/admin/suppression", params={"query": "paged", "page": "2"})
    assert len(re.findall(r"u\d+@paged\.example</td>", second.text)) == 10
    for path, form in (
        ("/admin/suppression/add", {"target": "x@example.org"}),
        ("/admin/suppression/bulk", {"targets": "x@example.org"}),
        ("/admin/suppression/1/remove", {}),
    ):
        assert post_form(browser, path, token, form).status_code == 403
    assert not _suppressed(client, "x@example.org")


def test_a_large_csv_within_the_upload_cap_is_taken(
    client: TestClient, browser: TestClient
) -> None:
    """A CSV larger than the server's default body cap (1 MiB) but within the page's 2 MB."""
    token = sign_in(browser)
    note = "x" * 150
    rows = "".join(f"big{n}@large.example,{note}\n" for n in range(8000))
    body = ("email,description\n" + rows).encode()
    assert 1_048_576 < len(body) < 2_000_000
    taken = post_form(
        browser,
        "/admin/suppression/upload",
        token,
        files={"file": ("big.csv", body, "text/csv")},
    )
    assert taken.status_code == 303, taken.text[-500:]
    assert _suppressed(client, "big7999@large.example")
    too_big = post_form(
        browser,
        "/admin/suppression/upload",
        token,
        files={"file": ("huge.csv", body * 2, "text/csv")},
    )
    assert too_big.status_code in (400, 413)
    assert not _suppressed(client, "nobody@large.example")
