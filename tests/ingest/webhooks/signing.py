"""Test helpers that sign webhook requests the way each provider does, with our own keys.

They are written from the providers' documentation independently of the code under test, so
that the real verification path runs against an independent signer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ..certs import self_signed_certificate

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:stmails-bounces"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000.pem"


@dataclass(frozen=True)
class RsaSigner:
    """An RSA key and a self-signed certificate standing in for the SNS signing certificate."""

    key: rsa.RSAPrivateKey
    cert_pem: str

    def sign(self, data: bytes, version: str) -> str:
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        return base64.b64encode(self.key.sign(data, padding.PKCS1v15(), algorithm)).decode()


def self_signed(common_name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A fresh 2048-bit RSA key and a one-day self-signed certificate for `common_name`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, self_signed_certificate(key, common_name)


@cache
def sns_signer(name: str = "sns.us-east-1.amazonaws.com") -> RsaSigner:
    key, cert = self_signed(name)
    return RsaSigner(key, cert.public_bytes(serialization.Encoding.PEM).decode())


def sns_message(
    inner: dict[str, Any] | str,
    *,
    kind: str = "Notification",
    version: str = "2",
    topic: str = TOPIC_ARN,
    signer: RsaSigner | None = None,
    message_id: str = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
    subject: str | None = None,
    sent_at: datetime | None = None,
) -> dict[str, Any]:
    """An SNS HTTP message wrapping `inner` (a SES notification or plain text), signed, sent
    at `sent_at` (default: now)."""
    stamp = (sent_at or datetime.now(UTC)).isoformat(timespec="milliseconds")
    message = {
        "Type": kind,
        "MessageId": message_id,
        "TopicArn": topic,
        "Message": inner if isinstance(inner, str) else json.dumps(inner),
        "Timestamp": stamp.replace("+00:00", "Z"),
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
    }
    if subject is not None:
        message["Subject"] = subject
    if kind == "Notification":
        order = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        message["UnsubscribeURL"] = "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
    else:
        message["Token"] = "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768"
        message["SubscribeURL"] = (
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
            f"&TopicArn={topic}&Token=2336412f37fb687f"
        )
        order = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    canonical = "".join(f"{k}\n{message[k]}\n" for k in order if k in message)
    message["Signature"] = (signer or sns_signer()).sign(canonical.encode(), version)
    return message


@cache
def sendgrid_keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """An ECDSA P-256 key and its public half as SendGrid shows it (base64 DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, base64.b64encode(der).decode()


def sendgrid_headers(body: bytes, stamp: int, key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    signature = key.sign(str(stamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "x-twilio-email-event-webhook-signature": base64.b64encode(signature).decode(),
        "x-twilio-email-event-webhook-timestamp": str(stamp),
    }


def hmac_hex(key: str, data: bytes) -> str:
    return hmac.new(key.encode(), data, hashlib.sha256).hexdigest()


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def mailgun_sign(document: dict[str, Any], key: str, stamp: int, token: str) -> bytes:
    """`document` with a fresh Mailgun signature block, as JSON bytes."""
    signed = dict(document)
    signed["signature"] = {
        "timestamp": str(stamp),
        "token": token,
        "signature": hmac_hex(key, f"{stamp}{token}".encode()),
    }
    return json.dumps(signed).encode()


def svix_headers(secret: str, msg_id: str, stamp: int, body: bytes) -> dict[str, str]:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(stamp),
        "svix-signature": f"v1,{base64.b64encode(mac).decode()}",
    }
