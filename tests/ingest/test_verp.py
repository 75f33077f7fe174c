"""VERP return-path tokens: made, verified, found in bounces; forgeries ignored; old tokens kept."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stmails.core.verp import (
    MAX_CAMPAIGN_ID,
    MAX_LOCAL_PART,
    MAX_PREFIX,
    MAX_SUBSCRIBER_ID,
    TOKEN_LENGTH,
    VerpToken,
    find_token,
    make_address,
    make_token,
    verify_token,
)
from stmails.ingest.mailbox.scanner import message_events

from .mailbox.messages import dsn

SECRET = b"instance-secret"
SUB = "0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e"
CAMP = "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"
# The characters RFC 5322's dot-atom allows in a local part, besides "+" (our separator).
ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*-/=?^_`{|}~"


def format1_token(secret: bytes, subscriber_uuid: str, campaign_uuid: str = "") -> str:
    """A token as stmails made them before format 2 (uuids and an 8-byte tag), as found in
    bounces of mail sent then."""
    payload = uuid.UUID(subscriber_uuid).bytes
    if campaign_uuid:
        payload += uuid.UUID(campaign_uuid).bytes
    tag = hmac.new(secret, b"stmails-verp-v1\x00" + payload, hashlib.sha256).digest()[:8]
    return base64.b32encode(payload + tag).decode("ascii").rstrip("=").lower()


def test_round_trip_with_and_without_campaign() -> None:
    assert verify_token(SECRET, make_token(SECRET, 42, 7)) == VerpToken(
        subscriber_id=42, campaign_id=7
    )
    assert verify_token(SECRET, make_token(SECRET, 42)) == VerpToken(subscriber_id=42)
    largest = make_token(SECRET, MAX_SUBSCRIBER_ID, MAX_CAMPAIGN_ID)
    assert verify_token(SECRET, largest) == VerpToken(
        subscriber_id=MAX_SUBSCRIBER_ID, campaign_id=MAX_CAMPAIGN_ID
    )


def test_tokens_are_short_lower_case_and_survive_any_letter_case() -> None:
    token = make_token(SECRET, 123456, 99)
    assert token == token.lower() and len(token) == TOKEN_LENGTH
    assert set(token) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert verify_token(SECRET, token.upper()) == VerpToken(subscriber_id=123456, campaign_id=99)
    address = make_address(SECRET, "bounce.example.com", 123456, 99)
    assert len(address.split("@")[0]) == len("bounce+") + TOKEN_LENGTH <= MAX_LOCAL_PART


def test_forged_and_mangled_tokens_are_refused() -> None:
    token = make_token(SECRET, 42, 7)
    assert verify_token(b"another-secret", token) is None
    for position in range(TOKEN_LENGTH):
        flipped = (
            token[:position] + ("a" if token[position] != "a" else "b") + token[position + 1 :]
        )
        assert verify_token(SECRET, flipped) is None
    assert verify_token(SECRET, token[:-1]) is None
    assert verify_token(SECRET, token + "a") is None
    assert verify_token(b"", token) is None
    assert verify_token(SECRET, "!" * TOKEN_LENGTH) is None
    assert verify_token(SECRET, "1" * TOKEN_LENGTH) is None


def test_tokens_made_before_format_2_are_still_verified() -> None:
    with_campaign = format1_token(SECRET, SUB, CAMP)
    alone = format1_token(SECRET, SUB)
    assert (len(with_campaign), len(alone)) == (64, 39)
    assert verify_token(SECRET, with_campaign) == VerpToken(SUB, CAMP)
    assert verify_token(SECRET, alone.upper()) == VerpToken(SUB, "")
    assert verify_token(b"another-secret", with_campaign) is None
    raw = f"Delivered-To: bounce+{with_campaign}@bounce.example.com\r\n\r\n".encode()
    assert find_token(SECRET, raw) == VerpToken(SUB, CAMP)


def test_addresses_and_finding_them_in_a_bounce() -> None:
    genuine = make_address(SECRET, "bounce.example.com", 42, 7)
    assert genuine.startswith("bounce+") and genuine.endswith("@bounce.example.com")
    forged = make_address(b"attacker", "bounce.example.com", 43, 7)
    raw = f"To: {forged}\r\nDelivered-To: {genuine}\r\n\r\nbody\r\n".encode()
    assert find_token(SECRET, raw) == VerpToken(subscriber_id=42, campaign_id=7)
    assert find_token(SECRET, f"To: {forged}\r\n\r\n".encode()) is None
    assert find_token(SECRET, f"To: x{genuine}\r\n\r\n".encode()) is None
    assert find_token(b"", raw) is None
    # Some MTAs lower-case the local part; others upper-case whole headers.
    assert find_token(SECRET, raw.upper()) == VerpToken(subscriber_id=42, campaign_id=7)
    custom = make_address(SECRET, "x.example", 42, prefix="returns")
    assert find_token(SECRET, f"To: <{custom}>\r\n".encode(), prefix="returns") == VerpToken(
        subscriber_id=42
    )


def test_bad_input_to_make_token_and_make_address() -> None:
    for subscriber, campaign in ((0, 1), (-1, 0), (MAX_SUBSCRIBER_ID + 1, 0), (1, -1)):
        with pytest.raises(ValueError):
            make_token(SECRET, subscriber, campaign)
    with pytest.raises(ValueError):
        make_token(SECRET, 1, MAX_CAMPAIGN_ID + 1)
    with pytest.raises(ValueError):
        make_token(b"", 1)
    with pytest.raises(ValueError):
        make_address(SECRET, "x.example", 1, prefix="p" * (MAX_PREFIX + 1))


@given(
    subscriber=st.integers(1, MAX_SUBSCRIBER_ID),
    campaign=st.integers(0, MAX_CAMPAIGN_ID),
    prefix=st.text(ATEXT, min_size=1, max_size=MAX_PREFIX),
    lower=st.booleans(),
)
def test_every_local_part_fits_rfc_5321_and_round_trips(
    subscriber: int, campaign: int, prefix: str, lower: bool
) -> None:
    address = make_address(SECRET, "bounce.example.com", subscriber, campaign, prefix=prefix)
    local = address.rpartition("@")[0]
    assert len(local.encode()) <= MAX_LOCAL_PART
    # The longest allowed prefix fills the local part exactly.
    assert len(local) == len(prefix) + 1 + TOKEN_LENGTH
    seen = address.lower() if lower else address
    found = find_token(SECRET, f"To: <{seen}>\r\n".encode(), prefix=seen.rpartition("+")[0])
    assert found == VerpToken(subscriber_id=subscriber, campaign_id=campaign)


def test_the_scanner_maps_the_ids_of_a_token_through_its_resolver() -> None:
    raw = dsn("gina@dest.example", to=make_address(SECRET, "b.example", 42, 7), subscriber="")
    asked: list[VerpToken] = []

    def resolver(token: VerpToken) -> VerpToken | None:
        asked.append(token)
        return VerpToken(SUB, CAMP, token.subscriber_id, token.campaign_id)

    [event] = message_events(raw, verp_secret=SECRET, verp_resolver=resolver)
    assert asked == [VerpToken(subscriber_id=42, campaign_id=7)]
    assert (event.subscriber_uuid, event.campaign_uuid) == (SUB, CAMP)
    assert event.meta["attribution"] == "verp"
    # Without the database (no resolver), or for a subscriber since deleted, the token names
    # nobody and the report's own data attributes the bounce.
    for unresolved in (None, lambda token: None):
        [event] = message_events(raw, verp_secret=SECRET, verp_resolver=unresolved)
        assert event.subscriber_uuid == "" and event.meta["attribution"] == "address"
