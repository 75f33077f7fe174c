"""Attachments on the messages the transactional path builds (the subscriber's data export):
a multipart/mixed message whose first part is the body and whose attachments decode to the
exact bytes given; names and types that would need quoting are refused."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from stmails.services.sending.messages import Attachment, MessageError, MessageSpec


def parsed(spec: MessageSpec) -> EmailMessage:
    message = message_from_bytes(spec.build().data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def spec(**extra: object) -> MessageSpec:
    return MessageSpec(
        from_address="News <news@sender.example>",
        to_address="ana@reader.example",
        subject="Your data",
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("bodies", [{"text": "Hi"}, {"html": "<p>Hi</p>", "text": "Hi"}])
def test_attachments_follow_the_body_and_decode_to_their_bytes(bodies: dict[str, str]) -> None:
    data = ('{"name": "Zoë", "lines": "' + "x=_y\r\n" * 40 + '"}').encode()
    binary = bytes(range(256)) * 3
    message = parsed(
        spec(
            **bodies,
            attachments=(
                Attachment("data.json", "application/json", data),
                Attachment("raw.bin", "application/octet-stream", binary),
            ),
        )
    )
    assert message.get_content_type() == "multipart/mixed"
    body = message.get_body(("plain",))
    assert body is not None and body.get_content().strip() == "Hi"
    if "html" in bodies:
        assert message.get_body(("html",)) is not None
    first, second = message.iter_attachments()
    assert first.get_filename() == "data.json" and first.get_content_type() == "application/json"
    assert first.get_payload(decode=True) == data
    assert second.get_payload(decode=True) == binary
    assert all(len(line) <= 78 for line in spec(text="x").build().data.split(b"\r\n"))


def test_without_attachments_the_message_is_unchanged() -> None:
    assert parsed(spec(text="Hi")).get_content_type() == "text/plain"


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ('a".json', "application/json"),
        ("a\r\nX-Evil: 1.json", "application/json"),
        ("données.json", "application/json"),
        ("data.json", "application/json\r\nX-Evil: 1"),
        ("data.json", "no-subtype"),
    ],
)
def test_names_and_types_that_need_quoting_are_refused(filename: str, content_type: str) -> None:
    with pytest.raises(MessageError):
        spec(text="Hi", attachments=(Attachment(filename, content_type, b"{}"),)).build()
