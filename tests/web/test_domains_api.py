"""Sending domains over HTTP against a real DNS server on loopback: DKIM keys from generation to
rotation (activation refused until DNS publishes the key), and the domain check's advice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dnslib import MX, PTR, TXT, A
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dnszone import Zone, serve, sync_resolver
from stmails.web.api.domains import DNS_RESOLVER


@pytest.fixture
def zone(app: FastAPI) -> Iterator[Zone]:
    """A loopback DNS server the app's domain routes ask."""
    zone = Zone()
    with serve(zone) as port:
        app.state.stmails.extras[DNS_RESOLVER] = lambda: sync_resolver(port)
        yield zone


def publish(zone: Zone, record: dict[str, Any]) -> None:
    zone.replace(record["name"], "TXT", TXT([c.encode() for c in record["chunks"]]))


def checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def test_dkim_key_life_through_the_api(client: TestClient, zone: Zone) -> None:
    made = client.post("/api/domains/Example.org/dkim", json={"selector": "s1", "bits": 1024})
    assert made.status_code == 200, made.text
    key = made.json()["data"]
    assert (key["domain"], key["selector"], key["status"]) == ("example.org", "s1", "pending")
    assert "private" not in " ".join(key) and "BEGIN" not in made.text
    record = key["dns_record"]
    assert record["name"] == "s1._domainkey.example.org" and record["type"] == "TXT"
    assert record["value"].startswith("v=DKIM1; k=rsa; p=")

    # Not published yet: activation is refused with the record to publish.
    refused = client.put("/api/domains/example.org/dkim/s1", json={"status": "active"})
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("status: s1._domainkey.example.org has no DKIM")
    assert record["value"] in refused.json()["message"]
    # Another key published there: refused too.
    zone.replace(record["name"], "TXT", TXT("v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCB"))
    refused = client.put("/api/domains/example.org/dkim/s1", json={"status": "active"})
    assert refused.status_code == 400 and "publishes another key" in refused.json()["message"]

    publish(zone, record)
    active = client.put("/api/domains/example.org/dkim/s1", json={"status": "active"})
    assert active.status_code == 200, active.text
    assert [k["status"] for k in active.json()["data"]] == ["active"]

    # Rotation: a second key, published beside the first, then activated.
    second = client.post("/api/domains/example.org/dkim", json={"selector": "s2", "bits": 1024})
    publish(zone, second.json()["data"]["dns_record"])
    rotated = client.put("/api/domains/example.org/dkim/s2", json={"status": "active"})
    assert {k["selector"]: k["status"] for k in rotated.json()["data"]} == {
        "s2": "active",
        "s1": "retiring",
    }
    listed = client.get("/api/domains").json()["data"]
    assert [(d["domain"], [k["status"] for k in d["keys"]]) for d in listed] == [
        ("example.org", ["retiring", "active"])
    ]
    assert client.delete("/api/domains/example.org/dkim/s2").status_code == 409
    retired = client.put("/api/domains/example.org/dkim/s1", json={"status": "retired"})
    assert retired.json()["data"][0]["status"] == "retired"
    assert client.delete("/api/domains/example.org/dkim/s1").json() == {"data": True}
    assert [k["selector"] for k in client.get("/api/domains/example.org/dkim").json()["data"]] == [
        "s2"
    ]


def test_key_requests_that_cannot_work_are_refused(client: TestClient, zone: Zone) -> None:
    for path, body, status, word in [
        ("/api/domains/example.org/dkim", {}, 400, "selector"),
        ("/api/domains/example.org/dkim", {"selector": "a b"}, 400, "selector"),
        ("/api/domains/example.org/dkim", {"selector": "s", "bits": 512}, 400, "bits"),
        ("/api/domains/example.org/dkim", {"selector": "s", "bits": "x"}, 400, "bits"),
        ("/api/domains/localhost/dkim", {"selector": "s"}, 400, "domain"),
        ("/api/domains/example.org/dkim", {"selector": "s", "private_key": "x"}, 400, "private"),
    ]:
        response = client.post(path, json=body)
        assert response.status_code == status, (body, response.text)
        assert word in response.json()["message"], response.text
    assert (
        client.put("/api/domains/example.org/dkim/none", json={"status": "active"}).status_code
        == 404
    )
    bad = client.put("/api/domains/example.org/dkim/none", json={"status": "on"})
    assert bad.status_code == 400 and "status" in bad.json()["message"]
    client.post("/api/domains/example.org/dkim", json={"selector": "dup", "bits": 1024})
    again = client.post("/api/domains/example.org/dkim", json={"selector": "dup", "bits": 1024})
    assert again.status_code == 409
    # DNS that does not answer is our trouble, not the caller's: 503, retry.
    zone.servfail.add("dup._domainkey.example.org")
    busy = client.put("/api/domains/example.org/dkim/dup", json={"status": "active"})
    assert busy.status_code == 503 and busy.headers["retry-after"] == "60"


def _good_zone(zone: Zone) -> None:
    zone.add("example.org", "TXT", TXT("v=spf1 include:_spf.example.org -all"))
    zone.add("_spf.example.org", "TXT", TXT("v=spf1 ip4:198.51.100.7 -all"))
    zone.add("example.org", "MX", MX("mx.example.org", 10))
    zone.add("mx.example.org", "A", A("198.51.100.25"))
    zone.add("_dmarc.example.org", "TXT", TXT("v=DMARC1; p=reject; rua=mailto:d@example.org"))
    zone.add("smtp.example.org", "A", A("198.51.100.7"))
    zone.add("7.100.51.198.in-addr.arpa", "PTR", PTR("smtp.example.org"))


def test_the_domain_check_passes_a_well_set_domain(client: TestClient, zone: Zone) -> None:
    _good_zone(zone)
    settings = {
        "smtp": [{"enabled": True, "host": "smtp.example.org", "port": 2525}],
        "sending.bounce_address": "bounces@example.org",
    }
    assert client.put("/api/settings", json=settings).status_code == 200
    key = client.post("/api/domains/example.org/dkim", json={"selector": "s1", "bits": 1024})
    publish(zone, key.json()["data"]["dns_record"])
    assert (
        client.put("/api/domains/example.org/dkim/s1", json={"status": "active"}).status_code == 200
    )
    report = client.get("/api/domains/example.org/check")
    assert report.status_code == 200, report.text
    found = checks(report.json()["data"])
    assert {name: c["status"] for name, c in found.items()} == {
        "spf": "pass", "dkim": "pass", "dmarc": "pass", "alignment": "pass", "mx": "pass",
        "ptr": "pass",
    }  # fmt: skip
    assert report.json()["data"]["status"] == "pass"
    assert found["spf"]["facts"]["dns_lookups"] == 1
    assert found["dmarc"]["facts"]["policy"]["p"] == "reject"
    assert found["ptr"]["facts"]["addresses"][0] == {
        "host": "smtp.example.org", "ip": "198.51.100.7", "ptr": "smtp.example.org",
        "forward_confirmed": True,
    }  # fmt: skip


def test_each_failure_comes_with_the_record_to_publish(client: TestClient, zone: Zone) -> None:
    # Eleven lookups through an include chain; no DMARC; no MX; a PTR that does not confirm.
    chain = " ".join(f"include:s{i}.example.com" for i in range(11))
    spf = f"v=spf1 {chain} -all".encode()
    zone.add("example.com", "TXT", TXT([spf[:200], spf[200:]]))
    for i in range(11):
        zone.add(f"s{i}.example.com", "TXT", TXT(f"v=spf1 ip4:198.51.100.{i} -all"))
    zone.add("smtp.example.com", "A", A("198.51.100.9"))
    zone.add("9.100.51.198.in-addr.arpa", "PTR", PTR("elsewhere.example.net"))
    zone.add("elsewhere.example.net", "A", A("198.51.100.99"))
    settings = {"smtp": [{"enabled": True, "host": "smtp.example.com", "port": 2525}]}
    assert client.put("/api/settings", json=settings).status_code == 200
    report = client.get(
        "/api/domains/example.com/check", params={"envelope_domain": "bounce.example.net"}
    ).json()["data"]
    found = checks(report)
    assert report["status"] == "fail"
    assert (
        found["spf"]["status"] == "fail" and found["spf"]["facts"]["domain"] == "bounce.example.net"
    )
    assert 'bounce.example.net TXT "v=spf1 mx ip4:198.51.100.9 ~all"' in found["spf"]["advice"][0]
    assert found["dkim"]["status"] == "fail"
    assert "POST /api/domains/example.com/dkim" in found["dkim"]["advice"][0]
    assert found["dmarc"]["status"] == "fail"
    assert (
        '_dmarc.example.com TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com"'
        in (found["dmarc"]["advice"][0])
    )
    assert found["alignment"]["status"] == "fail"
    assert found["alignment"]["facts"]["spf_aligned"] is False
    assert found["mx"]["status"] == "fail" and len(found["mx"]["advice"]) == 2
    assert found["ptr"]["status"] == "fail"
    assert 'elsewhere.example.net A "198.51.100.9"' in found["ptr"]["advice"][0]

    # The SPF record of the From domain itself: more than ten lookups.
    own = checks(
        client.get(
            "/api/domains/example.com/check", params={"envelope_domain": "example.com"}
        ).json()["data"]
    )
    assert own["spf"]["status"] == "fail"
    assert "more than 10 DNS lookups" in own["spf"]["advice"][0]
    bad = client.get("/api/domains/example.com/check", params={"envelope_domain": "x y"})
    assert bad.status_code == 400 and "envelope_domain" in bad.json()["message"]


def test_dns_trouble_is_unknown_not_a_failure(client: TestClient, zone: Zone) -> None:
    zone.servfail.update({"example.info", "_dmarc.example.info"})
    report = client.get("/api/domains/example.info/check").json()["data"]
    found = checks(report)
    assert found["dmarc"]["status"] == "unknown"
    assert found["mx"]["status"] == "unknown"
