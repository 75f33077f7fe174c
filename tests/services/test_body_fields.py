"""The campaign and list fields of listmonk's create/update bodies, checked by the services'
models (`campaign_records.body_fields`, `lists.body_fields`) with the API's messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from stmails.services import campaign_records, lists
from stmails.services.errors import InvalidInput


def test_campaign_fields_present_are_read_and_nulls_take_defaults() -> None:
    fields = campaign_records.body_fields(
        {
            "name": "n",
            "body": None,
            "altbody": None,
            "tags": None,
            "send_at": "2030-01-01T00:00:00Z",
            "template_id": 0,
            "headers": "",
            "attribs": None,
            "lists": [1],
        }
    )
    assert fields == {
        "name": "n",
        "altbody": None,
        "tags": [],
        "send_at": datetime(2030, 1, 1, tzinfo=UTC),
        "template_id": None,
        "headers": [],
        "attribs": {},
    }
    assert campaign_records.body_fields({}) == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": 5}, "name: must be a string"),
        ({"subject": "s" * 5_000_001}, "subject: longer than 5000000 characters"),
        ({"tags": ["a", 1]}, "tags: must be an array of strings"),
        ({"tags": ""}, "tags: must be an array of strings"),
        ({"send_at": 5}, "send_at: must be an ISO 8601 timestamp"),
        ({"send_at": "soon"}, "send_at: not an ISO 8601 timestamp"),
        ({"template_id": True}, "template_id: must be a template id"),
        (
            {"headers": [{"X-A": 1}]},
            'headers: must be an array of objects like [{"X-Name": "value"}]',
        ),
        ({"attribs": []}, "attribs: must be a JSON object"),
        ({"body_source": 1}, "body_source: must be a string"),
        # The first field in the model's order is the one named.
        ({"attribs": [], "name": 5}, "name: must be a string"),
    ],
)
def test_campaign_fields_refused(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        campaign_records.body_fields(body)
    assert str(refused.value).startswith(message)


def test_list_fields_sent_empty_are_kept_as_they_are() -> None:
    body = {"name": "", "type": None, "optin": "double", "tags": None, "description": "d"}
    assert lists.body_fields(body) == {"optin": "double", "tags": [], "description": "d"}
    with pytest.raises(InvalidInput, match=r"^status: must be a string$"):
        lists.body_fields({"status": 1})
    with pytest.raises(InvalidInput, match=r"^name: longer than 10000 characters$"):
        lists.body_fields({"name": "n" * 10_001})
    with pytest.raises(InvalidInput, match=r"^tags: must be an array of strings$"):
        lists.body_fields({"tags": [None]})
