"""DKIM keys: encrypted storage, import rules, rotation, and signatures that dkimpy's verifier
accepts against the record served by a real DNS server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import dkim
import dns.resolver
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from dnslib import TXT
from sqlalchemy.orm import Session

from dnszone import Zone, serve, sync_resolver
from stmails.db.models import DkimKey
from stmails.services import dkim_keys
from stmails.services.errors import Conflict, InvalidInput, NotFound

SECRET = b"app-secret-for-tests"
MESSAGE = (
    b"From: News <news@example.org>\r\n"
    b"To: jane@example.net\r\n"
    b"Subject: October news\r\n"
    b"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"List-Unsubscribe: <https://lists.example.org/u/1>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello Jane,\r\nthe news.\r\n"
)


@pytest.fixture(scope="module")
def zone() -> Iterator[tuple[Zone, int]]:
    zone = Zone()
    with serve(zone) as port:
        yield zone, port


def publish(zone: Zone, key: DkimKey) -> None:
    """Publishes the key's record the way a DNS host takes it: 255-octet strings."""
    record = dkim_keys.dns_record(key)
    zone.replace(record.name, "TXT", TXT([c.encode() for c in record.chunks]))


def verify(message: bytes, port: int) -> bool:
    resolver = sync_resolver(port)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        # dkimpy's contract: the TXT value, or nothing when there is none.
        try:
            answer = resolver.resolve(name.decode().rstrip("."), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return b""
        return b"".join(next(iter(answer)).strings)  # type: ignore[attr-defined]

    return bool(dkim.verify(message, dnsfunc=dnsfunc))


def test_a_generated_key_is_stored_encrypted_and_bound_to_its_name(session: Session) -> None:
    key = dkim_keys.generate_key(session, SECRET, "Example.ORG", "s2026")
    assert (key.domain, key.selector, key.status, key.bits) == (
        "example.org",
        "s2026",
        "pending",
        2048,
    )
    assert "PRIVATE KEY" not in key.private_key and key.private_key.startswith("v1.")
    pem = dkim_keys.private_key_pem(SECRET, key)
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    with pytest.raises(dkim_keys.DkimError, match="secret key"):
        dkim_keys.private_key_pem(b"another secret", key)
    # The ciphertext moved to another selector does not decrypt there.
    copy = DkimKey(domain=key.domain, selector="s2027", private_key=key.private_key)
    with pytest.raises(dkim_keys.DkimError):
        dkim_keys.private_key_pem(SECRET, copy)
    record = dkim_keys.dns_record(key)
    assert record.name == "s2026._domainkey.example.org"
    assert record.value == f"v=DKIM1; k=rsa; p={key.public_key}"
    assert "".join(record.chunks) == record.value and max(map(len, record.chunks)) <= 255


def test_import_rules(session: Session) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pkcs8 = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key = dkim_keys.import_key(session, SECRET, "example.org", "old", pkcs8)
    assert (key.source, key.bits) == ("imported", 1024)
    loaded = serialization.load_pem_private_key(dkim_keys.private_key_pem(SECRET, key), None)
    assert isinstance(loaded, rsa.RSAPrivateKey)
    assert loaded.private_numbers() == private.private_numbers()
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    locked = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass"),
    ).decode()
    for pem, words in [(ec_pem, "only RSA"), (locked, "encrypted"), ("junk", "PEM")]:
        with pytest.raises(InvalidInput, match=words) as caught:
            dkim_keys.import_key(session, SECRET, "example.org", "x", pem)
        assert caught.value.field == "private_key"
    with pytest.raises(Conflict):
        dkim_keys.import_key(session, SECRET, "example.org", "old", pkcs8)
    for domain, selector, field in [
        ("localhost", "s1", "domain"),
        ("example.org", "bad_selector", "selector"),
        ("example.org", "-s", "selector"),
        ("example.org", "", "selector"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            dkim_keys.generate_key(session, SECRET, domain, selector, 1024)
        assert caught.value.field == field
    with pytest.raises(InvalidInput, match="bits"):
        dkim_keys.generate_key(session, SECRET, "example.org", "s9", 512)
    with pytest.raises(NotFound):
        dkim_keys.get_key(session, "example.org", "nope")


def test_sign_verifies_through_dns_and_rotation_keeps_both_keys_valid(
    session: Session, zone: tuple[Zone, int]
) -> None:
    dns_zone, port = zone
    # No active key: the message goes out unchanged.
    first = dkim_keys.generate_key(session, SECRET, "example.org", "jan", 1024)
    assert dkim_keys.sign(session, SECRET, MESSAGE, "example.org") == MESSAGE
    publish(dns_zone, first)
    dkim_keys.activate(session, first)
    signed_by_first = dkim_keys.sign(session, SECRET, MESSAGE, "example.org")
    assert signed_by_first.startswith(b"DKIM-Signature:") and b"s=jan;" in signed_by_first
    header = signed_by_first.split(b"\r\n\r\n", 1)[0].lower()
    assert b"list-unsubscribe-post" in header and b"d=example.org" in header
    assert verify(signed_by_first, port)
    # A changed body or header no longer verifies.
    assert not verify(signed_by_first.replace(b"the news", b"the NEWS"), port)
    assert not verify(signed_by_first.replace(b"October news", b"Winner!!"), port)

    # Rotation: the second key is published beside the first, then activated.
    second = dkim_keys.generate_key(session, SECRET, "example.org", "feb", 1024)
    publish(dns_zone, second)
    changed = dkim_keys.activate(session, second, actor="admin")
    assert {k.selector: k.status for k in changed} == {"feb": "active", "jan": "retiring"}
    signed_by_second = dkim_keys.sign(session, SECRET, MESSAGE, "example.org")
    assert b"s=feb;" in signed_by_second
    # Mail signed before the switch still verifies: both records are published.
    assert verify(signed_by_second, port) and verify(signed_by_first, port)
    # Once the old key is retired and its record gone, only its old mail fails.
    dkim_keys.retire(session, first)
    dns_zone.records.pop(("jan._domainkey.example.org", "TXT"))
    assert verify(signed_by_second, port) and not verify(signed_by_first, port)
    with pytest.raises(Conflict):
        dkim_keys.delete_key(session, second)
    dkim_keys.delete_key(session, first)
    session.flush()
    assert [k.selector for k in dkim_keys.keys_of(session, "example.org")] == ["feb"]


def test_a_key_under_a_changed_secret_fails_loudly(session: Session) -> None:
    key = dkim_keys.generate_key(session, SECRET, "example.org", "s1", 1024)
    dkim_keys.activate(session, key)
    with pytest.raises(dkim_keys.DkimError, match="secret key"):
        dkim_keys.sign(session, b"rotated secret", MESSAGE, "example.org")
    # A message without From cannot be signed (DKIM requires it).
    with pytest.raises(dkim_keys.DkimError):
        dkim_keys.sign(session, SECRET, b"Subject: x\r\n\r\nbody\r\n", "example.org")
