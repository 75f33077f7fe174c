"""Phrases that state `expired`: delivery was retried until the queue lifetime ran out."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "connection timed out",
    "could not find a gateway for",
    "delivery attempts will continue to be",
    "delivery expired",
    "delivery time expired",
    "failed to deliver to domain ",
    "giving up on",
    "have been failing for a long time",
    "has been delayed",
    "it has not been collected after",
    "message expired after sitting in queue for",
    "message expired, cannot connect to remote server",
    "message expired, connection refulsed",
    "message timed out",
    "retry time not reached for any host after a long failure period",
    "server did not respond",
    "this message has been in the queue too long",
    "unable to deliver message after multiple retries",
    "was not reachable within the allowed queue period",
    "your message could not be delivered for more than",
    "could not deliver for the last",
    "did not accept our requests to connect",
    "has been failing for a long time",
    "message expired",
    "message has been in the queue too long",
    "not delivered within",
    "queue too long",
    "queue.expired",
    "retry timeout exceeded",
)

# Fragments that state the reason when they all occur, in this order.
SEQUENCES: Final[tuple[tuple[str, ...], ...]] = (("could not be delivered for", " days"),)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = (
    "could not be delivered for",
    "expired",
    "remote host is not responding",
)
