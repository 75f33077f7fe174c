"""The period a figure covers: `from`/`to` as the API takes them, in whole UTC hours.

The rollups count per hour (and per day for reasons and domains), so a period is a range of
whole hours: `from` and `to` are dates (`2026-11-01`; a `to` date includes that day) or RFC 3339
timestamps on a whole hour (`2026-11-01T06:00:00Z`; a `to` timestamp is excluded). Anything else
is refused rather than rounded, so that no figure covers a period other than the one asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from stmails.services.errors import InvalidInput

HOUR = 3600
# The earliest and latest hours a window may reach: 1970-01-01 and 2200-01-01, UTC.
FIRST_HOUR = 0
LAST_HOUR = int(datetime(2200, 1, 1, tzinfo=UTC).timestamp()) // HOUR


@dataclass(frozen=True, slots=True)
class Window:
    """Hours `first` (included) to `end` (excluded), counted from 1970-01-01T00:00Z."""

    first: int = FIRST_HOUR
    end: int = LAST_HOUR

    @property
    def start_time(self) -> datetime:
        return hour_time(self.first)

    @property
    def end_time(self) -> datetime:
        return hour_time(self.end)

    @property
    def first_day(self) -> int:
        return self.first // 24

    @property
    def end_day(self) -> int:
        """The first day after the window (a window of whole days ends at its start)."""
        return -(-self.end // 24)

    @property
    def whole_days(self) -> bool:
        return self.first % 24 == 0 and self.end % 24 == 0

    def require_whole_days(self, what: str) -> None:
        """InvalidInput naming `from` or `to` when the window does not start and end at
        midnight UTC (`what` says which figures need it)."""
        if self.first % 24:
            raise InvalidInput("from", f"{what} are counted per day: give a date")
        if self.end % 24:
            raise InvalidInput("to", f"{what} are counted per day: give a date")


def hour_time(hour: int) -> datetime:
    """The start of an hour (counted from 1970) as an aware UTC datetime."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=hour)


def hour_of(when: datetime) -> int:
    """The hour (counted from 1970) holding `when`."""
    return int(when.astimezone(UTC).timestamp() // HOUR)


def _parse(value: str, name: str, *, end: bool) -> int:
    text = value.strip()
    if len(text) > 40:
        raise InvalidInput(name, "not a date or timestamp")
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            return hour_of(day) + (24 if end else 0)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(name, "not a date (YYYY-MM-DD) or RFC 3339 timestamp") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = when.astimezone(UTC).timestamp()
    if seconds % HOUR:
        raise InvalidInput(name, "must be a date or a timestamp on a whole hour (UTC)")
    return int(seconds // HOUR)


def parse_window(start: str | None, end: str | None) -> Window:
    """The window of `from` (`start`) and `to` (`end`); either may be absent (all time on that
    side). InvalidInput naming the field when one is malformed or `to` is not after `from`."""
    first = _parse(start, "from", end=False) if start else FIRST_HOUR
    last = _parse(end, "to", end=True) if end else LAST_HOUR
    if not FIRST_HOUR <= first <= LAST_HOUR:
        raise InvalidInput("from", "out of range")
    if not FIRST_HOUR <= last <= LAST_HOUR:
        raise InvalidInput("to", "out of range")
    if last <= first:
        raise InvalidInput("to", "must be after from")
    return Window(first, last)


def month_window(month: str) -> Window:
    """The window of a calendar month given as `YYYY-MM` (InvalidInput naming `month`)."""
    try:
        start = datetime.strptime(month.strip(), "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput("month", "must be YYYY-MM") from None
    following = (start + timedelta(days=32)).replace(day=1)
    return Window(hour_of(start), hour_of(following))
