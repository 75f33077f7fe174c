"""The contract every webhook adapter honours, written once and reused by each provider's tests.

A provider's test module describes its adapter with a `Case` (how to sign a request, a
captured sample and the events it must give) and subclasses `WebhookContract` with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from stmails.core import REASONS
from stmails.core.event import EVENT_TYPES
from stmails.ingest.webhooks import (
    PayloadError,
    Provider,
    SignatureError,
    WebhookError,
    WebhookRequest,
)
from stmails.ingest.webhooks.base import SIGNATURE_FAILED

DATA = Path(__file__).resolve().parents[2] / "data" / "webhooks"

CAMPAIGN = "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"
SUBSCRIBER = "0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e"


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


@dataclass
class Case:
    """How to exercise one adapter.

    `sign(body)` makes an authentic request; `forge(body)` one signed with the wrong secret;
    `expected` lists (email, type) of the sample's events in order; `unknown_event` is a body in
    the provider's format whose only record has a type the adapter does not know;
    `signs_body` is False for providers authenticated by credentials alone (Basic auth).
    """

    provider: Callable[[], Provider]
    config: Mapping[str, Any]
    sign: Callable[[bytes], WebhookRequest]
    forge: Callable[[bytes], WebhookRequest]
    sample: str
    expected: list[tuple[str, str]]
    unknown_event: Any
    signs_body: bool = True
    attributed: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


class WebhookContract:
    case: ClassVar[Case]

    def run(self, request: WebhookRequest, config: Mapping[str, Any] | None = None) -> Any:
        return self.case.provider().handle(request, self.case.config if config is None else config)

    def test_sample_gives_the_documented_events(self) -> None:
        provider = self.case.provider()
        result = provider.handle(self.case.sign(sample(self.case.sample)), self.case.config)
        assert [(e.email, e.type) for e in result.events] == self.case.expected
        for event in result.events:
            assert event.source == provider.name
            assert event.type in EVENT_TYPES
            assert event.reason in REASONS
            assert event.event_id, "the provider's event id is the dedup key"
        keys = [e.dedup_key() for e in result.events]
        assert len(set(keys)) == len(keys)

    def test_event_types_table_maps_to_our_types(self) -> None:
        """`Provider.event_types` is the table parse() classifies by: every mapped value is
        one of ours, and every event of the sample is of a kind the table maps to."""
        provider = self.case.provider()
        mapped = {v for v in provider.event_types.values() if v is not None}
        assert mapped and mapped <= set(EVENT_TYPES)
        assert all(isinstance(k, str) and k for k in provider.event_types)
        result = provider.handle(self.case.sign(sample(self.case.sample)), self.case.config)
        # A bounce type may be refined to hard or soft by the record's own flags.
        bounces = {"hard", "soft"} if mapped & {"hard", "soft"} else set()
        assert {e.type for e in result.events} <= mapped | bounces

    def test_campaign_and_subscriber_are_recovered(self) -> None:
        if not self.case.attributed:
            pytest.skip("this provider echoes no metadata")
        result = self.run(self.case.sign(sample(self.case.sample)))
        first = result.events[0]
        assert (first.campaign_uuid, first.subscriber_uuid) == (CAMPAIGN, SUBSCRIBER)

    def test_the_same_delivery_twice_has_the_same_dedup_keys(self) -> None:
        body = sample(self.case.sample)
        first = self.run(self.case.sign(body)).events
        second = self.run(self.case.sign(body)).events
        assert [e.dedup_key() for e in first] == [e.dedup_key() for e in second]

    def test_a_forged_signature_is_refused_tersely(self) -> None:
        with pytest.raises(SignatureError) as caught:
            self.run(self.case.forge(sample(self.case.sample)))
        assert str(caught.value) == SIGNATURE_FAILED
        assert caught.value.status == 401

    def test_an_unsigned_request_is_refused_tersely(self) -> None:
        with pytest.raises(SignatureError) as caught:
            self.run(WebhookRequest(body=sample(self.case.sample)))
        assert str(caught.value) == SIGNATURE_FAILED

    def test_a_tampered_body_is_refused(self) -> None:
        if not self.case.signs_body:
            pytest.skip("credentials, not a body signature, authenticate this provider")
        body = sample(self.case.sample)
        request = self.case.sign(body)
        tampered = WebhookRequest(
            body=body.replace(b"example", b"exampl3", 1),
            headers=request.headers,
            query=request.query,
        )
        with pytest.raises(SignatureError):
            self.run(tampered)

    def test_unknown_event_types_are_acknowledged_and_ignored(self) -> None:
        body = json.dumps(self.case.unknown_event).encode()
        assert self.run(self.case.sign(body)).events == []

    def test_malformed_bodies_are_the_callers_fault(self) -> None:
        with pytest.raises(WebhookError) as caught:
            self.run(self.case.sign(b'{"truncated": '))
        assert 400 <= caught.value.status < 500
        with pytest.raises((PayloadError, SignatureError)):
            self.run(WebhookRequest(body=b"\xff\xfe not json"))

    def test_without_its_secret_the_provider_accepts_nothing(self) -> None:
        with pytest.raises(WebhookError) as caught:
            self.run(self.case.sign(sample(self.case.sample)), config={})
        # NotConfigured is our configuration fault (503, as the route answers); else 401.
        assert caught.value.status in (401, 503)
