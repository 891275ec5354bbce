"""Time in litecoord: clocks, microseconds (how every time is stored) and RFC 3339 text (how JSON carries it).

Every stored time is an integer count of microseconds since the Unix epoch;
every time a caller sees is an aware ``datetime`` in UTC; on the wire it is an
RFC 3339 string with a trailing ``Z`` (``2025-01-19T20:35:00Z``, microseconds
when non-zero), which is what ``java.time.Instant.parse`` accepts. The
conversions run for every time of every item read or answered, hence their
caches. Kept apart from the result types (:mod:`litecoord.types`, which
re-exports every name here) so that each file holds one concern.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

__all__ = [
    "Clock",
    "FakeClock",
    "format_time",
    "parse_time",
    "json_seconds",
    "to_micros",
    "micros_of",
    "from_micros",
    "wall_clock",
]

Clock = Callable[[], float | int | datetime]
"""A clock is any zero-argument callable returning the current time, either
as seconds since the Unix epoch or as a datetime (naive means UTC). The
default reads ``time.time()`` at every call, so freezegun controls it."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_micros(value: float | int | datetime) -> int:
    """Microseconds since the epoch, the unit every stored time uses."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return micros_of(value - _EPOCH)
    return int(round(value * 1_000_000))


def micros_of(delta: timedelta) -> int:
    """A timedelta in whole microseconds."""
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


#: Recently converted times by their microseconds (see from_micros).
_DATETIMES: dict[int, datetime] = {}
#: When _DATETIMES is emptied: enough for the items a busy server has in hand at once.
_DATETIMES_LIMIT = 4096


def from_micros(value: int | None) -> datetime | None:
    if value is None:
        return None
    # This runs for every time field of every item read, and an item's times
    # mostly repeat those of the answers before it (its creation, the lease's
    # start and expiry, the last renewal): each is converted once, and shared
    # (a datetime is immutable).
    converted = _DATETIMES.get(value)
    if converted is None:
        if len(_DATETIMES) >= _DATETIMES_LIMIT:
            _DATETIMES.clear()  # threads may race here: each still converts its own value
        # Positional timedelta arguments: half the cost of microseconds=.
        converted = _DATETIMES[value] = _EPOCH + timedelta(0, 0, value)
    return converted


#: The text of recent whole seconds (``2025-01-19T20:35:00``) by seconds since the epoch (see format_time).
_SECOND_TEXT: dict[int, str] = {}
#: When _SECOND_TEXT is emptied: a server formats a few distinct seconds a request, mostly the same ones.
_SECOND_TEXT_LIMIT = 1024


#: The text of recently formatted times, by the time (see format_time).
_TEXT: dict[datetime, str] = {}
#: When _TEXT is emptied: as many times as _DATETIMES holds.
_TEXT_LIMIT = _DATETIMES_LIMIT


def format_time(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with ``Z``; fractions only when there are some."""
    if value is None:
        return None
    if type(value) is datetime:
        # The times a server answers with come from from_micros, which shares one object per
        # time, and a datetime keeps its hash: a repeated time costs one lookup. Equal aware
        # times are one instant, so one text; a naive time never equals an aware key.
        text = _TEXT.get(value)
        if text is not None:
            return text
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    if type(value) is not datetime:  # a subclass (freezegun's, pandas') formats itself
        return value.isoformat()[:-6] + "Z"
    # What isoformat()[:-6] + "Z" gives (fractions only when there are some), at a
    # third of the cost: this runs for every time of every item a server answers
    # with, and an aware isoformat() is the slow part. The times of one answer, and
    # of the answers around it, mostly fall in the same few seconds: each second's
    # text is formatted once (naive, so without the "+00:00").
    delta = value - _EPOCH
    second = delta.days * 86_400 + delta.seconds
    text = _SECOND_TEXT.get(second)
    if text is None:
        if len(_SECOND_TEXT) >= _SECOND_TEXT_LIMIT:
            _SECOND_TEXT.clear()  # request threads may race here: each still formats its own value
        text = _SECOND_TEXT[second] = value.replace(microsecond=0, tzinfo=None).isoformat()
    micro = value.microsecond
    text = f"{text}.{micro:06d}Z" if micro else text + "Z"
    if len(_TEXT) >= _TEXT_LIMIT:
        _TEXT.clear()  # request threads may race here: each still returns its own text
    _TEXT[value] = text  # aware, in UTC (converted above): the key of every equal instant
    return text


def parse_time(value: str | None) -> datetime | None:
    """Parse an RFC 3339 timestamp (``Z`` or an offset) into an aware UTC datetime."""
    if value is None:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def json_seconds(delta: timedelta) -> int | float:
    """A duration in seconds for JSON: an integer when whole (``300``, not ``300.0``).

    The console server's model declares lease durations as integers, and a
    strictly typed client rejects ``300.0``; fractions stay exact as floats.
    """
    seconds = delta.total_seconds()
    return int(seconds) if seconds.is_integer() else seconds


def wall_clock() -> float:
    # Looked up at call time (not bound at import) so freezegun's patch applies.
    return time.time()


class FakeClock:
    """A clock for tests: time stands still until you move it.

    >>> clock = FakeClock(datetime(2025, 1, 19, 20, 30, tzinfo=timezone.utc))
    >>> clock.advance(minutes=6)   # a 5-minute lease has now lapsed
    """

    def __init__(self, start: datetime | float | None = None) -> None:
        if start is None:
            start = datetime(2025, 1, 19, 20, 30, tzinfo=timezone.utc)
        self._micros = to_micros(start)

    def __call__(self) -> datetime:
        return from_micros(self._micros)  # type: ignore[return-value]

    def advance(self, delta: timedelta | float | None = None, **kwargs: float) -> datetime:
        """Move forward by a timedelta, by seconds, or by timedelta keyword arguments."""
        if delta is None:
            delta = timedelta(**kwargs)
        elif not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        self._micros += micros_of(delta)
        return self()

    def set(self, when: datetime | float) -> None:
        self._micros = to_micros(when)
