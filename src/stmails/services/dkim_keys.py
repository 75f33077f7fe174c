"""DKIM keys of the sending domains: generation, import, encrypted storage, rotation, signing.

Keys are RSA (rsa-sha256, RFC 6376 with RFC 8301's minimum of 1024 bits; 2048 by default).
The private key is kept encrypted (AES-256-GCM under a key derived with HKDF-SHA256 from the
app's secret key; the domain and selector are bound to the ciphertext as associated data, so a
row copied to another domain does not decrypt). The public key is what the DNS TXT record
`selector._domainkey.domain` publishes: `v=DKIM1; k=rsa; p=<base64>`.

Rotation keeps two keys published at once: a new key is made `pending` and published while the
old one signs; activating the new one (once its record is visible in DNS: the web layer checks)
turns the old one `retiring`, still published so that mail already signed with it verifies;
retiring it later says its record may go. `sign(message, domain)` signs with the domain's one
active key (dkimpy).
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Any

import dkim
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from stmails.db.models import DkimKey
from stmails.db.types import utcnow
from stmails.services.errors import Conflict, InvalidInput, NotFound
from stmails.verify.syntax import Policy, check_domain

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BITS",
    "SIGNED_HEADERS",
    "DkimError",
    "DnsRecord",
    "Signer",
    "activate",
    "delete_key",
    "dns_record",
    "find_key",
    "from_domain",
    "generate_key",
    "get_key",
    "import_key",
    "keys_of",
    "load_signer",
    "normalize_domain",
    "private_key_pem",
    "retire",
    "sign",
]

DEFAULT_BITS = 2048
ALLOWED_BITS = (1024, 2048, 3072, 4096)
MAX_PEM_CHARS = 20_000
# Headers signed when present; From is required, and RFC 8058 asks for both List-Unsubscribe
# headers to be signed so that one-click unsubscription can be trusted.
SIGNED_HEADERS = (
    "From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "MIME-Version",
    "Content-Type", "Content-Transfer-Encoding", "List-Unsubscribe", "List-Unsubscribe-Post",
    "List-Id", "Feedback-ID",
)  # fmt: skip
# One label of a selector (RFC 6376 section 3.1: dot-separated LDH labels).
_LABEL = re.compile(r"[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9]")
_HKDF_INFO = b"stmails dkim private key v1"
_TOKEN_PREFIX = "v1."
# The TXT character-string limit: longer values are published as several strings.
TXT_CHUNK = 255


class _OpenSslKey(dict[str, Any]):
    """dkimpy's parsed private key (the dict its signer reads) carrying the same key loaded
    in OpenSSL."""

    openssl: rsa.RSAPrivateKey


_DKIMPY_PARSE = dkim.parse_pem_private_key
_DKIMPY_SIGN = dkim.RSASSA_PKCS1_v1_5_sign
_DIGESTS: dict[str, hashes.HashAlgorithm] = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1()}


@functools.lru_cache(maxsize=64)
def _parse_pem_once(data: bytes) -> _OpenSslKey:
    key = _OpenSslKey(_DKIMPY_PARSE(data))
    loaded = serialization.load_pem_private_key(data, password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise dkim.KeyFormatError("not an RSA key")
    key.openssl = loaded
    return key


def _sign_with_openssl(hash: Any, private_key: Any) -> bytes:
    if isinstance(private_key, _OpenSslKey) and hash.name.lower() in _DIGESTS:
        algorithm = _DIGESTS[hash.name.lower()]
        return private_key.openssl.sign(hash.digest(), padding.PKCS1v15(), Prehashed(algorithm))
    return bytes(_DKIMPY_SIGN(hash, private_key))


def _accelerate_dkimpy() -> None:
    """Makes dkimpy's signing fast: it parses the PEM key with a pure-Python ASN.1 reader and
    computes the RSA signature with Python integers, for every message (tens of milliseconds
    each: a campaign would crawl). The two steps are swapped for OpenSSL's (cryptography): the
    parsed key is cached by its PEM bytes, and the signature comes from OpenSSL. RSASSA-PKCS1
    v1.5 is deterministic, so the bytes are exactly dkimpy's own (tests/services/
    test_dkim_keys.py compares them); everything else (canonicalization, the header) is still
    dkimpy's."""
    dkim.parse_pem_private_key = _parse_pem_once
    dkim.RSASSA_PKCS1_v1_5_sign = _sign_with_openssl


_accelerate_dkimpy()


class DkimError(RuntimeError):
    """A key that cannot be used (it does not decrypt under the current secret, or dkimpy
    refused it); the message says which key and why."""


@dataclass(frozen=True)
class DnsRecord:
    """The TXT record that publishes a key: its name, its value, and the value split into
    character-strings of at most 255 octets (how DNS servers take a long TXT value)."""

    name: str
    value: str

    @property
    def chunks(self) -> list[str]:
        """The value as TXT character-strings."""
        return [self.value[i : i + TXT_CHUNK] for i in range(0, len(self.value), TXT_CHUNK)]

    def to_dict(self) -> dict[str, object]:
        """The record as the API shows it."""
        return {"name": self.name, "type": "TXT", "value": self.value, "chunks": self.chunks}


def normalize_domain(domain: str) -> str:
    """The lower-case A-label form of a public hostname; InvalidInput("domain") otherwise."""
    verdict = check_domain(domain.strip().rstrip("."))
    error = verdict.error(Policy.MAILING)
    if error is not None:
        raise InvalidInput("domain", error)
    return verdict.ascii_domain


def _selector(selector: str) -> str:
    cleaned = selector.strip().lower()
    if not 0 < len(cleaned) <= 63 or not all(map(_LABEL.fullmatch, cleaned.split("."))):
        raise InvalidInput("selector", "must be letters, digits, inner hyphens and dots (63 max)")
    return cleaned


def _cipher(secret: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret)
    return AESGCM(key)


def _binding(domain: str, selector: str) -> bytes:
    return f"{domain}\n{selector}".encode("ascii")


def _encrypt(secret: bytes, domain: str, selector: str, pem: bytes) -> str:
    nonce = os.urandom(12)
    sealed = _cipher(secret).encrypt(nonce, pem, _binding(domain, selector))
    return _TOKEN_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def private_key_pem(secret: bytes, key: DkimKey) -> bytes:
    """The key's private key (PKCS#1 PEM), decrypted; DkimError when the secret is not the one
    it was stored under (or the row was altered)."""
    token = key.private_key
    if not token.startswith(_TOKEN_PREFIX):
        raise DkimError(f"the private key of {key.selector}._domainkey.{key.domain} is unreadable")
    raw = base64.urlsafe_b64decode(token[len(_TOKEN_PREFIX) :])
    try:
        return _cipher(secret).decrypt(raw[:12], raw[12:], _binding(key.domain, key.selector))
    except InvalidTag:
        raise DkimError(
            f"the private key of {key.selector}._domainkey.{key.domain} does not decrypt with "
            "the current secret key (was the secret key changed?)"
        ) from None


def _public_b64(private: rsa.RSAPrivateKey) -> str:
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def _store(
    session: Session,
    secret: bytes,
    domain: str,
    selector: str,
    private: rsa.RSAPrivateKey,
    source: str,
) -> DkimKey:
    domain = normalize_domain(domain)
    selector = _selector(selector)
    if find_key(session, domain, selector) is not None:
        raise Conflict("selector", f"{selector}._domainkey.{domain} already has a key")
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    key = DkimKey(
        domain=domain,
        selector=selector,
        algorithm="rsa-sha256",
        bits=private.key_size,
        public_key=_public_b64(private),
        private_key=_encrypt(secret, domain, selector, pem),
        source=source,
        status="pending",
    )
    session.add(key)
    session.flush()
    log.info("DKIM key %s._domainkey.%s %s (%d bits)", selector, domain, source, key.bits)
    return key


def generate_key(
    session: Session, secret: bytes, domain: str, selector: str, bits: int = DEFAULT_BITS
) -> DkimKey:
    """A new RSA key for `domain` under `selector`, `pending` until activated. InvalidInput
    for a bad domain, selector or size; Conflict when the selector is taken."""
    if bits not in ALLOWED_BITS:
        raise InvalidInput("bits", f"must be one of {', '.join(map(str, ALLOWED_BITS))}")
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return _store(session, secret, domain, selector, private, "generated")


def import_key(session: Session, secret: bytes, domain: str, selector: str, pem: str) -> DkimKey:
    """An existing RSA private key (PEM, PKCS#1 or PKCS#8, unencrypted) for `domain`.

    InvalidInput("private_key") for anything else, or a key under 1024 bits (RFC 8301).
    """
    if len(pem) > MAX_PEM_CHARS:
        raise InvalidInput("private_key", f"longer than {MAX_PEM_CHARS} characters")
    try:
        loaded = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        reason = "an encrypted key (remove the passphrase)" if isinstance(exc, TypeError) else exc
        raise InvalidInput("private_key", f"not a usable PEM private key: {reason}") from None
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise InvalidInput("private_key", "only RSA keys are supported (rsa-sha256)")
    if loaded.key_size < 1024:
        raise InvalidInput("private_key", "RSA keys under 1024 bits are not allowed (RFC 8301)")
    return _store(session, secret, domain, selector, loaded, "imported")


def dns_record(key: DkimKey) -> DnsRecord:
    """The TXT record that publishes `key`."""
    return DnsRecord(
        f"{key.selector}._domainkey.{key.domain}", f"v=DKIM1; k=rsa; p={key.public_key}"
    )


def keys_of(session: Session, domain: str | None = None) -> list[DkimKey]:
    """The keys of `domain` (every domain when None), by domain then creation."""
    query = select(DkimKey).order_by(DkimKey.domain, DkimKey.created_at, DkimKey.id)
    if domain is not None:
        query = query.where(DkimKey.domain == normalize_domain(domain))
    return list(session.scalars(query))


def find_key(session: Session, domain: str, selector: str) -> DkimKey | None:
    """The key of `domain` under `selector`, or None."""
    return session.scalar(
        select(DkimKey).where(
            DkimKey.domain == normalize_domain(domain), DkimKey.selector == _selector(selector)
        )
    )


def get_key(session: Session, domain: str, selector: str) -> DkimKey:
    """The key of `domain` under `selector`; NotFound without."""
    key = find_key(session, domain, selector)
    if key is None:
        raise NotFound(f"no DKIM key {selector}._domainkey.{domain}")
    return key


def activate(session: Session, key: DkimKey, *, actor: str = "") -> list[DkimKey]:
    """Makes `key` the domain's signing key; the key it replaces becomes `retiring` (still
    published). Returns the keys that changed. The caller checks DNS first and commits."""
    changed = [key]
    if key.status == "active":
        return []
    for other in keys_of(session, key.domain):
        if other.id != key.id and other.status == "active":
            other.status = "retiring"
            changed.append(other)
            log.info(
                "DKIM key %s._domainkey.%s retiring: replaced by %s (by %s)",
                other.selector, other.domain, key.selector, actor or "?",
            )  # fmt: skip
    key.status = "active"
    key.activated_at = utcnow()
    key.retired_at = None
    log.info("DKIM key %s._domainkey.%s active (by %s)", key.selector, key.domain, actor or "?")
    return changed


def retire(session: Session, key: DkimKey, *, actor: str = "") -> DkimKey:
    """Retires `key`: it no longer signs and its DNS record may be removed. Retiring the active
    key leaves the domain unsigned (logged as a warning)."""
    if key.status == "retired":
        return key
    if key.status == "active":
        log.warning(
            "DKIM key %s._domainkey.%s retired while active: %s is no longer signed (by %s)",
            key.selector, key.domain, key.domain, actor or "?",
        )  # fmt: skip
    key.status = "retired"
    key.retired_at = utcnow()
    log.info("DKIM key %s._domainkey.%s retired (by %s)", key.selector, key.domain, actor or "?")
    return key


def delete_key(session: Session, key: DkimKey) -> None:
    """Deletes a `pending` or `retired` key; Conflict for one that signs or may still verify."""
    if key.status not in {"pending", "retired"}:
        raise Conflict("status", f"a {key.status} key cannot be deleted; retire it first")
    session.delete(key)
    log.info("DKIM key %s._domainkey.%s deleted", key.selector, key.domain)


def _active(session: Session, domain: str) -> DkimKey | None:
    return session.scalar(
        select(DkimKey).where(DkimKey.domain == domain, DkimKey.status == "active")
    )


def sign(
    session: Session,
    secret: bytes,
    message: bytes,
    domain: str,
    headers: Sequence[str] = SIGNED_HEADERS,
) -> bytes:
    """`message` (RFC 5322 bytes) with a DKIM-Signature by `domain`'s active key prepended;
    unchanged when the domain has no active key. DkimError when the key cannot be used."""
    key = _active(session, normalize_domain(domain))
    if key is None:
        return message
    pem = private_key_pem(secret, key)
    present = {h.split(b":", 1)[0].strip().lower() for h in _header_lines(message)}
    include = [h.encode("ascii") for h in headers if h.lower().encode("ascii") in present]
    try:
        signature = dkim.sign(
            message,
            key.selector.encode("ascii"),
            key.domain.encode("ascii"),
            pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include,
        )
    except dkim.DKIMException as exc:
        raise DkimError(
            f"signing with {key.selector}._domainkey.{key.domain} failed: {exc}"
        ) from exc
    return bytes(signature) + message


def _header_lines(message: bytes) -> list[bytes]:
    """The header fields of `message` (continuation lines are not fields)."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        end = message.find(b"\n\n")
    head = message[: end if end >= 0 else len(message)]
    return [line for line in head.splitlines() if line and line[:1] not in (b" ", b"\t")]


@dataclass(frozen=True)
class _SigningKey:
    """An active key ready to sign: its decrypted PEM, or why it cannot sign."""

    domain: str
    selector: str
    pem: bytes = b""
    error: str = ""


class Signer:
    """The active keys of every domain, decrypted once (per campaign pass or request), which
    sign outgoing messages by their From domain.

    A message whose From domain (or a parent domain of it, which DMARC's relaxed alignment
    accepts) has an active key is signed with it; one without a key goes out unsigned. A key
    that cannot be used raises DkimError for the messages it should sign: mail that should be
    signed never leaves unsigned.
    """

    def __init__(self, keys: Mapping[str, _SigningKey]) -> None:
        self._keys = dict(keys)

    @property
    def domains(self) -> list[str]:
        """The domains with an active key."""
        return sorted(self._keys)

    def key_for(self, domain: str) -> tuple[str, str] | None:
        """(d=, s=) that would sign mail from `domain`, or None."""
        found = self._find(domain)
        return None if found is None else (found.domain, found.selector)

    def check(self, domain: str) -> None:
        """DkimError when `domain`'s mail should be signed by a key that cannot be used."""
        found = self._find(domain) if domain else None
        if found is not None and found.error:
            raise DkimError(found.error)

    def _find(self, domain: str) -> _SigningKey | None:
        labels = domain.strip().lower().rstrip(".").split(".")
        # The domain itself first, then its parents down to two labels (never a bare TLD).
        for start in range(max(len(labels) - 1, 1)):
            found = self._keys.get(".".join(labels[start:]))
            if found is not None:
                return found
        return None

    def sign(
        self, message: bytes, domain: str = "", headers: Sequence[str] = SIGNED_HEADERS
    ) -> bytes:
        """`message` with a DKIM-Signature prepended when `domain` (default: the domain of
        the first From address) has an active key; unchanged otherwise. DkimError when the
        key cannot be used."""
        domain = domain or from_domain(message)
        if not domain or not self._keys:
            return message
        key = self._find(domain)
        if key is None:
            return message
        if key.error:
            raise DkimError(key.error)
        present = {h.split(b":", 1)[0].strip().lower() for h in _header_lines(message)}
        include = [h.encode("ascii") for h in headers if h.lower().encode("ascii") in present]
        try:
            signature = dkim.sign(
                message,
                key.selector.encode("ascii"),
                key.domain.encode("ascii"),
                key.pem,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=include,
            )
        except dkim.DKIMException as exc:
            raise DkimError(
                f"signing with {key.selector}._domainkey.{key.domain} failed: {exc}"
            ) from exc
        return bytes(signature) + message


def load_signer(session: Session, secret: bytes | None) -> Signer:
    """A Signer over the active keys as stored now. A key that does not decrypt (or no secret
    given) is kept with its error, so that its domain's mail fails loudly instead of leaving
    unsigned."""
    keys: dict[str, _SigningKey] = {}
    for key in session.scalars(select(DkimKey).where(DkimKey.status == "active")):
        if secret is None:
            error = f"no secret key to decrypt {key.selector}._domainkey.{key.domain}"
            keys[key.domain] = _SigningKey(key.domain, key.selector, error=error)
            continue
        try:
            pem = private_key_pem(secret, key)
        except DkimError as exc:
            keys[key.domain] = _SigningKey(key.domain, key.selector, error=str(exc))
            continue
        keys[key.domain] = _SigningKey(key.domain, key.selector, pem)
    return Signer(keys)


def from_domain(message: bytes) -> str:
    """The lower-case domain of the first From address of `message` ('' when none)."""
    for line in _unfolded_fields(message):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"from":
            addresses = getaddresses([value.decode("utf-8", "replace")])
            for _, address in addresses:
                if "@" in address:
                    return address.rpartition("@")[2].strip().lower().rstrip(".")
            return ""
    return ""


def _unfolded_fields(message: bytes) -> list[bytes]:
    """The header fields of `message` with their continuation lines joined."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        end = message.find(b"\n\n")
    head = message[: end if end >= 0 else len(message)]
    fields: list[bytes] = []
    for line in head.splitlines():
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b" " + line.strip()
        elif line:
            fields.append(line)
    return fields
