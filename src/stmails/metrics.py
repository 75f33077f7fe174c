"""The process's Prometheus metrics (prometheus-client), which any layer may count into.

Every metric is defined here, once, with its labels; the code that sees an event calls one of
the small functions below (`event_ingested`, `smtp_result`, `alert_raised`...), so that no
caller depends on prometheus-client itself. `GET /metrics` (web.metrics) exposes them.

Several processes: prometheus-client keeps each metric in the memory of the process that counts
it. When `PROMETHEUS_MULTIPROC_DIR` is set before this module is first imported (`stmails serve`
and `stmails worker` set it from `STMAILS_METRICS_DIR`, see `stmails.metrics_dir`), every process
writes its values to files in that directory and `/metrics` sums the files of all of them
(prometheus-client's multiprocess mode), so that one scrape of any server process of a host
reports the whole host. Without it, each process reports its own values.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

from stmails.metrics_dir import MULTIPROC_ENV

__all__ = ["MULTIPROC_ENV"]

EVENTS_INGESTED = Counter(
    "stmails_events_ingested",
    "Bounce, complaint and delivery events received, by source (mailbox, webhook provider, "
    "native API, smtp) and outcome (stored, duplicate, refused), counted once committed.",
    ["source", "outcome"],
)
CLASSIFICATION_SECONDS = Histogram(
    "stmails_classification_seconds",
    "Time to classify one raw bounce message (core.classify).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
SMTP_MESSAGES = Counter(
    "stmails_smtp_messages",
    "Messages handed to an upstream SMTP server, by server (host:port) and outcome: sent, "
    "deferred (4xx), failed (5xx or an error before the data), in_doubt (connection lost after "
    "the data).",
    ["server", "outcome"],
)
MAILBOX_LAST_SCAN = Gauge(
    "stmails_mailbox_last_scan_timestamp_seconds",
    "When a bounce mailbox was last scanned to the end (Unix time); the scan lag is "
    "time() minus this.",
    ["mailbox"],
    multiprocess_mode="max",
)
MAILBOX_SCAN_SECONDS = Histogram(
    "stmails_mailbox_scan_seconds",
    "Duration of one scan of a bounce mailbox.",
    ["mailbox"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
ALERTS_RAISED = Counter(
    "stmails_alerts_raised",
    "Alerts raised (automatic pauses, failing settings, thresholds crossed), by kind.",
    ["kind"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "stmails_http_request_seconds",
    "HTTP request latency, by method, route template and status class (2xx...).",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# SendResult outcomes -> the outcome label of SMTP_MESSAGES.
_SMTP_OUTCOMES = {
    "sent": "sent",
    "soft": "deferred",
    "hard": "failed",
    "error": "failed",
    "in_doubt": "in_doubt",
}


def event_ingested(source: str, outcome: str, count: int = 1) -> None:
    """Counts `count` events of `source` with `outcome` (stored, duplicate, refused)."""
    if count:
        EVENTS_INGESTED.labels(source=source[:40] or "unknown", outcome=outcome).inc(count)


def smtp_result(server: str, outcome: str) -> None:
    """Counts one message's final SMTP outcome (a SendResult outcome) at `server`."""
    label = _SMTP_OUTCOMES.get(outcome)
    if label is not None:
        SMTP_MESSAGES.labels(server=server, outcome=label).inc()


def alert_raised(kind: str) -> None:
    """Counts one alert of `kind` (a short fixed word such as `campaign_paused`)."""
    ALERTS_RAISED.labels(kind=kind).inc()


def mailbox_scanned(mailbox: str, started: float, finished: float) -> None:
    """Notes a complete scan of `mailbox` that ran from `started` to `finished` (time.time())."""
    MAILBOX_LAST_SCAN.labels(mailbox=mailbox).set(finished)
    MAILBOX_SCAN_SECONDS.labels(mailbox=mailbox).observe(max(0.0, finished - started))


@contextmanager
def classifying() -> Iterator[None]:
    """Times the block as one classification."""
    started = time.perf_counter()
    try:
        yield
    finally:
        CLASSIFICATION_SECONDS.observe(time.perf_counter() - started)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Notes one HTTP request's latency under its route template."""
    HTTP_REQUEST_SECONDS.labels(method=method, route=route, status=f"{status // 100}xx").observe(
        seconds
    )
