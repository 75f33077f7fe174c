"""VERP return-path tokens: made, verified, found in bounces; forgeries ignored."""

from __future__ import annotations

import pytest

from stmails.ingest.verp import VerpToken, find_token, make_address, make_token, verify_token

SECRET = b"instance-secret"
SUB = "0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e"
CAMP = "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"


def test_round_trip_with_and_without_campaign() -> None:
    assert verify_token(SECRET, make_token(SECRET, SUB, CAMP)) == VerpToken(SUB, CAMP)
    assert verify_token(SECRET, make_token(SECRET, SUB)) == VerpToken(SUB, "")


def test_tokens_are_lower_case_and_survive_upper_casing() -> None:
    token = make_token(SECRET, SUB, CAMP)
    assert token == token.lower() and len(token) == 64
    assert verify_token(SECRET, token.upper()) == VerpToken(SUB, CAMP)


def test_forged_and_mangled_tokens_are_refused() -> None:
    token = make_token(SECRET, SUB, CAMP)
    assert verify_token(b"another-secret", token) is None
    flipped = token[:10] + ("a" if token[10] != "a" else "b") + token[11:]
    assert verify_token(SECRET, flipped) is None
    assert verify_token(SECRET, token[:-1]) is None
    assert verify_token(b"", token) is None
    assert verify_token(SECRET, "!" * 64) is None


def test_addresses_and_finding_them_in_a_bounce() -> None:
    genuine = make_address(SECRET, "bounce.example.com", SUB, CAMP)
    assert genuine.startswith("bounce+") and genuine.endswith("@bounce.example.com")
    forged = make_address(b"attacker", "bounce.example.com", SUB, CAMP)
    raw = f"To: {forged}\r\nDelivered-To: {genuine}\r\n\r\nbody\r\n".encode()
    assert find_token(SECRET, raw) == VerpToken(SUB, CAMP)
    assert find_token(SECRET, f"To: {forged}\r\n\r\n".encode()) is None
    assert find_token(SECRET, f"To: x{genuine}\r\n\r\n".encode()) is None
    assert find_token(b"", raw) is None


def test_bad_input_to_make_token() -> None:
    with pytest.raises(ValueError):
        make_token(SECRET, "not-a-uuid")
    with pytest.raises(ValueError):
        make_token(b"", SUB)
