"""Phrases that state `expired`: delivery was retried until the queue lifetime ran out."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "connection timed out",
    "could not find a gateway for",
    "delivery attempts will continue to be made for",
    "delivery time expired",
    "failed to deliver to domain ",
    "giving up on",
    "has been delayed",
    "it has not been collected after",
    "message expired after sitting in queue for",
    "message expired, connection refulsed",
    "message has been in the queue too long",
    "message timed out",
    "retry time not reached for any host after a long failure period",
    "server did not respond",
    "this message has been in the queue too long",
    "unable to deliver message after multiple retries",
    "was not reachable within the allowed queue period",
    "your message could not be delivered for more than",
    "queue too long",
    "retry timeout exceeded",
    "could not be delivered for",
    "expired",
    "message expired",
    "could not deliver for the last",
    "has been failing for a long time",
    "did not accept our requests to connect",
    "have been failing for a long time",
    "not delivered within",
    "remote host is not responding",
    "queue.expired",
)
