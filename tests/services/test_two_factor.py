"""TOTP two-factor: sealed secrets, codes with drift and no replay, single-use recovery codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from stmails.db.models import RecoveryCode
from stmails.services import two_factor, users
from stmails.services.two_factor import SecretBox

NOW = datetime(2026, 12, 6, 12, 0, 15, tzinfo=UTC)


def test_the_secret_is_sealed_with_the_server_key() -> None:
    box = SecretBox("server-key-1")
    secret = two_factor.new_secret()
    sealed = box.seal(secret)
    assert secret not in sealed
    assert box.open(sealed) == secret
    assert SecretBox("another-key").open(sealed) is None
    assert box.open("garbage") is None and box.open(None) is None


def test_codes_allow_one_step_of_drift_and_are_never_replayed() -> None:
    secret = two_factor.new_secret()
    totp = pyotp.TOTP(secret)
    step = int(NOW.timestamp()) // 30
    now_code = totp.at(NOW)
    assert two_factor.matching_step(secret, now_code, after=None, now=NOW) == step
    assert (
        two_factor.matching_step(
            secret, " " + now_code[:3] + " " + now_code[3:], after=None, now=NOW
        )
        == step
    )
    previous = totp.at(NOW - timedelta(seconds=30))
    assert two_factor.matching_step(secret, previous, after=None, now=NOW) == step - 1
    too_old = totp.at(NOW - timedelta(seconds=90))
    assert two_factor.matching_step(secret, too_old, after=None, now=NOW) in (None, step)
    assert two_factor.matching_step(secret, now_code, after=step, now=NOW) is None
    assert two_factor.matching_step(secret, "12345", after=None, now=NOW) is None
    assert two_factor.matching_step(secret, "abcdef", after=None, now=NOW) is None


def test_enable_verify_and_recovery_codes(session: Session) -> None:
    box = SecretBox("server-key")
    user = users.create_admin(session, "erin", "password-1234")
    session.flush()
    secret = two_factor.new_secret()
    codes = two_factor.enable(session, user, box, secret)
    assert two_factor.is_enabled(user) and len(codes) == two_factor.RECOVERY_CODES
    stored = session.scalars(select(RecoveryCode.code_hash)).all()
    assert not any(code.replace("-", "") in h for code in codes for h in stored)
    code = pyotp.TOTP(secret).at(NOW)
    assert two_factor.verify(session, user, box, code, now=NOW) == "totp"
    # The same code again is a replay.
    assert two_factor.verify(session, user, box, code, now=NOW) is None
    assert two_factor.verify(session, user, box, codes[3].upper(), now=NOW) == "recovery"
    assert two_factor.verify(session, user, box, codes[3], now=NOW) is None
    assert two_factor.remaining_recovery_codes(session, user) == two_factor.RECOVERY_CODES - 1
    fresh = two_factor.new_recovery_codes(session, user)
    assert two_factor.verify(session, user, box, codes[4], now=NOW) is None
    assert two_factor.verify(session, user, box, fresh[0], now=NOW) == "recovery"
    two_factor.disable(session, user)
    assert not two_factor.is_enabled(user)
    assert two_factor.remaining_recovery_codes(session, user) == 0


def test_qr_code_is_an_svg_of_the_provisioning_uri() -> None:
    uri = two_factor.provisioning_uri(two_factor.new_secret(), "erin")
    assert uri.startswith("otpauth://totp/stmails:erin?") and "issuer=stmails" in uri
    svg = two_factor.qr_svg(uri)
    assert svg.startswith("<svg") and "<path" in svg and "<script" not in svg
