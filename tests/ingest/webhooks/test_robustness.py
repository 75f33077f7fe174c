"""No body, however odd, makes an adapter raise anything but its own PayloadError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stmails.ingest.webhooks import PayloadError, default_registry

from .contract import DATA

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)

REGISTRY = default_registry()
PROVIDERS = sorted(REGISTRY)


def mutations(document: object) -> st.SearchStrategy[object]:
    """The sample with one value replaced by an arbitrary JSON value, at any depth."""

    def replace(doc: object, path: list[int], value: object) -> object:
        if not path or not isinstance(doc, (dict, list)) or not doc:
            return value
        keys = list(doc) if isinstance(doc, dict) else list(range(len(doc)))
        key = keys[path[0] % len(keys)]
        copy = dict(doc) if isinstance(doc, dict) else list(doc)
        copy[key] = replace(doc[key], path[1:], value)  # type: ignore[index, call-overload]
        return copy

    return st.builds(
        replace, st.just(document), st.lists(st.integers(0, 50), max_size=4), json_values
    )


@pytest.mark.parametrize("name", PROVIDERS)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_parse_never_crashes(name: str, data: st.DataObject) -> None:
    provider = REGISTRY[name]
    samples = sorted(DATA.glob(f"{name}_*.json"))
    document = json.loads(data.draw(st.sampled_from(samples)).read_text())
    if name == "ses":
        # SES bodies are SNS envelopes around the notification.
        document = {"Type": "Notification", "Message": json.dumps(data.draw(mutations(document)))}
    else:
        document = data.draw(mutations(document))
    try:
        events = provider.parse(json.dumps(document).encode())
    except PayloadError:
        return
    assert isinstance(events, list)
