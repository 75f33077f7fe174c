"""The Bounces pages over HTTP: filters (the API's), paging with filters kept, the bounce page
showing mail and provider text inert, delete and blocklist with their permissions."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from web.ui.helpers import ORIGIN, flash_texts, make_user, post_form, sign_in

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def browser(app: FastAPI, client: TestClient) -> TestClient:
    """A browser-like client (cookies, no credentials) of the app `client` runs."""
    return TestClient(app, raise_server_exceptions=False, base_url=ORIGIN)


def _bounce(api: TestClient, **fields: object) -> None:
    body = {"source": "api", "type": "soft", **fields}
    answer = api.post("/webhooks/bounce", json=body)
    assert answer.status_code == 200, answer.text


def _seed(api: TestClient) -> dict[str, int]:
    list_id = api.post("/api/lists", json={"name": "L"}).json()["data"]["id"]
    sub = api.post("/api/subscribers", json={"email": "sub@example.org", "lists": [list_id]})
    campaign = api.post(
        "/api/campaigns", json={"name": "Spring sale", "subject": "s", "lists": [list_id]}
    ).json()["data"]
    _bounce(
        api,
        email="sub@example.org",
        campaign_uuid=campaign["uuid"],
        event_id="1",
        type="hard",
        reason="hostunknown",
        diagnostic=XSS,
        meta={"raw": XSS, "provider": "</pre><b>bold</b>"},
        created_at="2026-01-05T10:00:00Z",
    )
    _bounce(api, email="other@elsewhere.net", event_id="2", created_at="2026-02-05T10:00:00Z")
    _bounce(api, email="third@example.org", type="complaint", source="ses", event_id="3")
    return {"subscriber": sub.json()["data"]["id"], "campaign": campaign["id"]}


def _ids(html: str) -> list[str]:
    import re

    return re.findall(r'href="/admin/bounces/(\d+)"', html)


def test_filters_are_the_apis_and_paging_keeps_them(
    client: TestClient, browser: TestClient
) -> None:
    seeded = _seed(client)
    sign_in(browser)
    everything = browser.get("/admin/bounces")
    assert everything.status_code == 200
    assert len(_ids(everything.text)) == 3
    cases = [
        ({"type": "complaint"}, 1),
        ({"source": "ses"}, 1),
        ({"reason": "hostunknown"}, 1),
        ({"campaign_id": str(seeded["campaign"])}, 1),
        ({"domain": "example.org"}, 2),
        ({"domain": "elsewhere.net"}, 1),
        ({"from": "2026-01-01", "to": "2026-01-31"}, 1),
        ({"email": "OTHER@elsewhere.net"}, 1),
    ]
    for params, count in cases:
        page = browser.get("/admin/bounces", params=params)
        api = client.get("/api/bounces", params=params).json()["data"]
        assert len(_ids(page.text)) == count == api["total"], params
        assert sorted(_ids(page.text)) == sorted(str(r["id"]) for r in api["results"])
    # The campaign filter offers the campaign by name.
    assert "Spring sale" in everything.text
    # A bad filter is the caller's mistake, said on the page.
    bad = browser.get("/admin/bounces", params={"from": "yesterday"})
    assert bad.status_code == 400 and "from: not an ISO 8601" in bad.text
    # The export link is the API's CSV of the same filters.
    filtered = browser.get("/admin/bounces", params={"domain": "example.org"})
    assert 'href="/api/bounces?domain=example.org&amp;format=csv"' in filtered.text
    exported = browser.get("/api/bounces?domain=example.org&format=csv")
    assert exported.status_code == 200 and exported.text.count("\n") == 3


def test_paging_links_keep_the_filters(client: TestClient, browser: TestClient) -> None:
    for n in range(55):
        _bounce(client, email=f"p{n}@paged.example", event_id=f"p{n}")
    _bounce(client, email="x@other.example", event_id="x")
    sign_in(browser)
    first = browser.get("/admin/bounces", params={"domain": "paged.example"})
    assert len(_ids(first.text)) == 50
    assert 'href="/admin/bounces?domain=paged.example&amp;page=2"' in first.text
    second = browser.get("/admin/bounces", params={"domain": "paged.example", "page": "2"})
    assert len(_ids(second.text)) == 5
    assert "Page 2 of 2" in second.text
    assert browser.get("/admin/bounces", params={"page": "0"}).status_code == 400


def test_bounce_page_shows_mail_text_inert(client: TestClient, browser: TestClient) -> None:
    _seed(client)
    bounce = client.get("/api/bounces", params={"reason": "hostunknown"}).json()["data"]
    bounce_id = bounce["results"][0]["id"]
    sign_in(browser)
    listing = browser.get("/admin/bounces")
    shown = browser.get(f"/admin/bounces/{bounce_id}")
    for html in (listing.text, shown.text):
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    # The raw event is text in a <pre>, its own </pre> escaped.
    assert '<pre class="raw" tabindex="0">' in shown.text
    assert "&lt;/pre&gt;&lt;b&gt;bold&lt;/b&gt;" in shown.text and "<b>bold" not in shown.text
    for field in ("hostunknown", "hard", "Spring sale", "sub@example.org"):
        assert field in shown.text
    assert browser.get("/admin/bounces/999999").status_code == 404


def test_delete_and_blocklist_need_their_permissions(
    client: TestClient, browser: TestClient
) -> None:
    seeded = _seed(client)
    bounce = client.get("/api/bounces", params={"reason": "hostunknown"}).json()["data"]
    bounce_id = bounce["results"][0]["id"]
    make_user(client, "reader", "bounces:get")
    token = sign_in(browser, "reader", "a-good-password-1")
    page = browser.get(f"/admin/bounces/{bounce_id}")
    assert page.status_code == 200 and f"/admin/bounces/{bounce_id}/delete" not in page.text
    for action in ("delete", "blocklist"):
        refused = post_form(browser, f"/admin/bounces/{bounce_id}/{action}", token)
        assert refused.status_code == 403
    assert post_form(browser, "/admin/bounces/blocklist", token).status_code == 403
    assert client.get(f"/api/bounces/{bounce_id}").status_code == 200

    admin = TestClient(browser.app, base_url=ORIGIN)
    if True:
        token = sign_in(admin)
        page = admin.get(f"/admin/bounces/{bounce_id}")
        assert f"/admin/bounces/{bounce_id}/blocklist" in page.text
        done = post_form(admin, f"/admin/bounces/{bounce_id}/blocklist", token)
        assert done.status_code == 303
        status = client.get(f"/api/subscribers/{seeded['subscriber']}").json()["data"]["status"]
        assert status == "blocklisted"
        assert "sub@example.org is blocklisted." in flash_texts(
            admin.get(done.headers["location"]).text
        )
        gone = post_form(admin, f"/admin/bounces/{bounce_id}/delete", token)
        assert gone.status_code == 303 and gone.headers["location"] == "/admin/bounces"
        assert client.get(f"/api/bounces/{bounce_id}").status_code == 404
        assert f"Bounce {bounce_id} deleted." in flash_texts(admin.get("/admin/bounces").text)


def test_blocklist_all_bounced(client: TestClient, browser: TestClient) -> None:
    seeded = _seed(client)
    token = sign_in(browser)
    done = post_form(browser, "/admin/bounces/blocklist", token)
    assert done.status_code == 303
    status = client.get(f"/api/subscribers/{seeded['subscriber']}").json()["data"]["status"]
    assert status == "blocklisted"


def test_suppress_the_address_from_its_bounce(client: TestClient, browser: TestClient) -> None:
    _seed(client)
    found = client.get("/api/bounces", params={"type": "complaint"}).json()["data"]["results"]
    bounce_id = found[0]["id"]
    token = sign_in(browser)
    page = browser.get(f"/admin/bounces/{bounce_id}").text
    assert 'name="target" value="third@example.org"' in page
    assert 'name="reason" value="complaint"' in page
    form = {
        "target": "third@example.org",
        "reason": "complaint",
        "description": f"From bounce {bounce_id}",
        "next": f"/admin/bounces/{bounce_id}",
    }
    done = post_form(browser, "/admin/suppression/add", token, form)
    assert done.status_code == 303 and done.headers["location"] == f"/admin/bounces/{bounce_id}"
    entry = client.get("/api/suppressions/third@example.org").json()["data"]
    assert entry["suppressed"] and entry["results"][0]["reason"] == "complaint"
    # The way back stays on this site.
    elsewhere = post_form(
        browser, "/admin/suppression/add", token, {**form, "next": "//evil.example"}
    )
    assert elsewhere.headers["location"] == "/admin/"


def test_delete_selected_and_all(client: TestClient, browser: TestClient) -> None:
    _seed(client)
    rows = client.get("/api/bounces").json()["data"]["results"]
    token = sign_in(browser)
    page = browser.get("/admin/bounces", params={"type": "soft"}).text
    assert 'form="bulk-delete"' in page
    assert 'name="back" value="/admin/bounces?type=soft"' in page
    nothing = post_form(browser, "/admin/bounces/delete", token, {"back": "/admin/bounces"})
    assert nothing.status_code == 303
    assert len(client.get("/api/bounces").json()["data"]["results"]) == 3
    chosen = {"id": [str(rows[0]["id"]), str(rows[1]["id"])], "back": "/admin/bounces?type=soft"}
    done = post_form(browser, "/admin/bounces/delete", token, chosen)
    assert done.status_code == 303 and done.headers["location"] == "/admin/bounces?type=soft"
    left = client.get("/api/bounces").json()["data"]["results"]
    assert [r["id"] for r in left] == [rows[2]["id"]]
    everything = post_form(browser, "/admin/bounces/delete", token, {"all": "true"})
    assert everything.status_code == 303
    assert client.get("/api/bounces").json()["data"]["total"] == 0
    make_user(client, "reader2", "bounces:get")
    reader = TestClient(browser.app, base_url=ORIGIN)
    reader_token = sign_in(reader, "reader2", "a-good-password-1")
    assert 'form="bulk-delete"' not in reader.get("/admin/bounces").text
    refused = post_form(reader, "/admin/bounces/delete", reader_token, {"all": "true"})
    assert refused.status_code == 403
