"""TOTP two-factor sign-in (RFC 6238, through pyotp) and its recovery codes.

The TOTP secret has to be readable to check codes, so it is stored encrypted (Fernet, with a key
derived from the server's secret key): a copy of the database alone does not give the codes
away. Losing the secret key therefore disables every enrolled authenticator; the recovery codes
(stored as salted hashes, each usable once) still sign in, and 2FA can be enrolled again.

A code is accepted for the current 30-second step or the one either side (clock drift), and
never for a step at or before the last one accepted, so an observed code cannot be replayed.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

import pyotp
import qrcode
import qrcode.image.svg
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from stmails.db.models import RecoveryCode, User
from stmails.db.types import utcnow
from stmails.services.users import hash_token, verify_token

ISSUER = "stmails"
RECOVERY_CODES = 10
# Crockford-like alphabet without look-alikes (no 0/O, 1/I/L).
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


class SecretBox:
    """Encrypts TOTP secrets at rest with a key derived from the server's secret key."""

    def __init__(self, server_key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"stmails totp secret"
        ).derive(server_key.encode("utf-8"))
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secret: str) -> str:
        """The stored form of a base32 TOTP secret."""
        return self._fernet.encrypt(secret.encode("ascii")).decode("ascii")

    def open(self, sealed: str | None) -> str | None:
        """The secret of a stored value; None when absent or not sealed with this key."""
        if not sealed:
            return None
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError, ValueError):
            return None


def new_secret() -> str:
    """A fresh random TOTP secret (base32, 160 bits)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, username: str, issuer: str = ISSUER) -> str:
    """The `otpauth://` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The QR code of `uri` as an SVG document (for an <img> through a data: URL)."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    svg: bytes = image.to_string()
    return svg.decode("utf-8")


def _normalize_code(code: str) -> str:
    return "".join(ch for ch in code if not ch.isspace() and ch != "-")


def matching_step(secret: str, code: str, *, after: int | None, now: datetime) -> int | None:
    """The time step `code` is valid for (now, or one step either side), if it is later than
    `after`; else None."""
    digits = _normalize_code(code)
    if len(digits) != 6 or not digits.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // totp.interval
    for step in (current - 1, current, current + 1):
        if after is not None and step <= after:
            continue
        if secrets.compare_digest(totp.generate_otp(step), digits):
            return step
    return None


def enable(session: Session, user: User, box: SecretBox, secret: str) -> list[str]:
    """Turns 2FA on for `user` with `secret` (already confirmed by a code) and returns fresh
    recovery codes, shown once. The caller commits."""
    user.totp_secret = box.seal(secret)
    user.totp_last_step = None
    return new_recovery_codes(session, user)


def disable(session: Session, user: User) -> None:
    """Turns 2FA off for `user` and deletes its recovery codes (the caller checked the
    password and commits)."""
    user.totp_secret = None
    user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def is_enabled(user: User) -> bool:
    """True when `user` signs in with a TOTP code after the password."""
    return bool(user.totp_secret)


def new_recovery_codes(session: Session, user: User) -> list[str]:
    """Replaces the recovery codes of `user` with RECOVERY_CODES new ones and returns them
    (only their hashes are kept)."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
        code = f"{raw[:5]}-{raw[5:]}"
        session.add(RecoveryCode(user_id=user.id, code_hash=hash_token(_normalize_code(code))))
        codes.append(code)
    session.flush()
    return codes


def remaining_recovery_codes(session: Session, user: User) -> int:
    """How many unused recovery codes `user` has."""
    rows = session.scalars(
        select(RecoveryCode.id).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
        )
    ).all()
    return len(rows)


def verify(
    session: Session, user: User, box: SecretBox, code: str, *, now: datetime | None = None
) -> str | None:
    """Checks a sign-in code of `user`: a TOTP code (its step is remembered) or an unused
    recovery code (marked used). Returns "totp" or "recovery", or None when it matches
    neither. The caller commits."""
    now = now or utcnow()
    secret = box.open(user.totp_secret)
    if secret is not None:
        step = matching_step(secret, code, after=user.totp_last_step, now=now)
        if step is not None:
            user.totp_last_step = step
            session.flush()
            return "totp"
    normalized = _normalize_code(code).lower()
    if len(normalized) != 10:
        return None
    unused = session.scalars(
        select(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        .with_for_update()
    ).all()
    for row in unused:
        if verify_token(normalized, row.code_hash):
            row.used_at = now
            session.flush()
            return "recovery"
    return None
