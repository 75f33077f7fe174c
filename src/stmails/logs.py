"""Log records as text lines or JSON objects, each carrying the id of the request it belongs to.

`configure(format, level)` sets up the root logger of a process (the server, `stmails worker`,
`stmails relay`); `dictconfig(format, level)` is the same configuration as the dictionary that
uvicorn applies in each of its worker processes. Records of every logger, uvicorn's included,
go to standard error through one handler.

The request id lives in the context variable `REQUEST_ID` (set by the server's request-id
middleware for the length of one request, see `stmails.web.request_id`), so every record made
while a request is handled carries it, on the event loop and in the threads its handlers run in.

What a record may hold is bounded: a message is cut at `MAX_MESSAGE_CHARS` and a traceback at
`MAX_TRACEBACK_CHARS`, and an access record (uvicorn's `uvicorn.access`) shows the path without
its query string, which may carry tokens. In text lines, line breaks inside a message are
escaped, so that text from the internet cannot forge a line of its own; JSON escapes them anyway.
Standard library only, so that any layer may log through it.

`RECENT` keeps the last `RECENT_LINES` records of this process as text lines (the admin Logs
page and `GET /api/logs`); `dictconfig` attaches it next to standard error, and
`install_recent()` attaches it to a process configured otherwise (tests, embedding).
"""

from __future__ import annotations

import json
import logging
import logging.config
import threading
import time
from collections import deque
from contextvars import ContextVar
from typing import Any

# The id of the request being handled in this context (None outside a request).
REQUEST_ID: ContextVar[str | None] = ContextVar("stmails_request_id", default=None)

MAX_MESSAGE_CHARS = 4000
MAX_TRACEBACK_CHARS = 16000
# Fields passed with `extra=` that a JSON record keeps (when their value is a plain scalar); the
# attributes every LogRecord has are not extras, nor uvicorn's copy of a message with colours.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "color_message",
}
ACCESS_LOGGER = "uvicorn.access"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more characters]"


def _access_fields(record: logging.LogRecord) -> dict[str, Any] | None:
    """client, method, path (without the query string), http_version and status of a uvicorn
    access record; None for any other record."""
    if record.name != ACCESS_LOGGER or not isinstance(record.args, tuple):
        return None
    if len(record.args) != 5:
        return None
    client, method, path, http_version, status = record.args
    return {
        "client": _cut(str(client), 200),
        "method": _cut(str(method), 20),
        "path": _cut(str(path).partition("?")[0], 1000),
        "http_version": str(http_version),
        "status": status,
    }


def message_of(record: logging.LogRecord) -> str:
    """The record's message, bounded; an access record's without the query string."""
    access = _access_fields(record)
    if access is not None:
        return (
            f'{access["client"]} - "{access["method"]} {access["path"]} '
            f'HTTP/{access["http_version"]}" {access["status"]}'
        )
    return _cut(record.getMessage(), MAX_MESSAGE_CHARS)


class RequestIdFilter(logging.Filter):
    """Sets `record.request_id` from `REQUEST_ID` (`-` outside a request); lets every record
    through. It sits on the handler, so records of every logger get it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get() or "-"
        return True


class TextFormatter(logging.Formatter):
    """`time level logger [request id] message`, one line per record (tracebacks follow)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = message_of(record).replace("\r", "\\r").replace("\n", "\\n")
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get() or "-"
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return _cut(super().formatException(ei), MAX_TRACEBACK_CHARS)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: `time` (UTC, ISO 8601 with milliseconds), `level`, `logger`,
    `message`, `request_id` (inside a request), the fields of an access record, scalar fields
    given with `extra=`, and `exception` (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.gmtime(record.created)
        millis = int(record.msecs)
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{millis:03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message_of(record),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id and request_id != "-":
            out["request_id"] = request_id
        access = _access_fields(record)
        if access is not None:
            out.update(access)
        for key, value in vars(record).items():
            if key in _RECORD_ATTRIBUTES or key in out:
                continue
            if isinstance(value, str):
                out[key] = _cut(value, MAX_MESSAGE_CHARS)
            elif value is None or isinstance(value, bool | int | float):
                out[key] = value
        if record.exc_info:
            out["exception"] = _cut(self.formatException(record.exc_info), MAX_TRACEBACK_CHARS)
        elif record.exc_text:
            out["exception"] = _cut(record.exc_text, MAX_TRACEBACK_CHARS)
        return json.dumps(out, ensure_ascii=False, default=str)


RECENT_LINES = 1000


class RecentLines(logging.Handler):
    """The last `capacity` records of this process, each kept as its level and its text line
    (TextFormatter: line breaks in a message escaped; a traceback follows on its own lines)."""

    def __init__(self, capacity: int = RECENT_LINES) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(TextFormatter())
        self.addFilter(RequestIdFilter())
        self._lines: deque[tuple[int, str]] = deque(maxlen=capacity)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted must not break the logging call
            self.handleError(record)
            return
        with self._guard:
            self._lines.append((record.levelno, line))

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        # Always text lines, whatever format standard error uses.
        super().setFormatter(fmt if isinstance(fmt, TextFormatter) else TextFormatter())

    def lines(self, min_level: int = logging.NOTSET, limit: int = RECENT_LINES) -> list[str]:
        """The most recent `limit` lines at `min_level` or above, oldest first."""
        with self._guard:
            kept = [line for level, line in self._lines if level >= min_level]
        return kept[-limit:] if limit > 0 else []

    def clear(self) -> None:
        with self._guard:
            self._lines.clear()


RECENT = RecentLines()


def recent_handler() -> RecentLines:
    """The process's `RECENT` handler (the factory `dictconfig` names)."""
    return RECENT


def install_recent() -> None:
    """Attaches `RECENT` to the root logger unless it is there already."""
    root = logging.getLogger()
    if RECENT not in root.handlers:
        root.addHandler(RECENT)


def dictconfig(log_format: str, level: str) -> dict[str, Any]:
    """The `logging.config.dictConfig` dictionary: one standard-error handler on the root
    logger with the formatter of `log_format` (`text` or `json`) and the request-id filter;
    uvicorn's loggers hand their records to it."""
    formatter = "json" if log_format == "json" else "text"
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {
            "text": {"()": f"{__name__}.TextFormatter"},
            "json": {"()": f"{__name__}.JsonFormatter"},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": formatter,
                "filters": ["request_id"],
            },
            "recent": {"()": f"{__name__}.recent_handler"},
        },
        "root": {"level": level, "handlers": ["stderr", "recent"]},
        "loggers": {
            name: {"level": level, "handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", ACCESS_LOGGER)
        },
    }


def configure(log_format: str, level: str) -> None:
    """Applies `dictconfig(log_format, level)` to this process."""
    logging.config.dictConfig(dictconfig(log_format, level))
