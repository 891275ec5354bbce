"""Wire shapes of times and results: what the Java client parses."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from litecoord import FakeClock
from litecoord.types import format_time, from_micros, parse_time, to_micros


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2025, 1, 19, 20, 35, tzinfo=timezone.utc), "2025-01-19T20:35:00Z"),
        (datetime(2025, 1, 19, 20, 35, 0, 120000, tzinfo=timezone.utc), "2025-01-19T20:35:00.120000Z"),
        (datetime(2025, 1, 19, 21, 35, tzinfo=timezone(timedelta(hours=1))), "2025-01-19T20:35:00Z"),
    ],
)
def test_times_are_rfc3339_utc_with_z(value, text):
    assert format_time(value) == text
    assert parse_time(text) == value


def test_parse_accepts_offsets_and_lowercase_z():
    assert parse_time("2025-01-19T22:35:00+02:00") == datetime(2025, 1, 19, 20, 35, tzinfo=timezone.utc)
    assert parse_time("2025-01-19T20:35:00z") == datetime(2025, 1, 19, 20, 35, tzinfo=timezone.utc)
    assert format_time(None) is None and parse_time(None) is None


def test_micros_round_trip_exactly():
    for micros in (0, 1, 1_737_318_900_123_456, 4_102_444_800_000_001):
        assert to_micros(from_micros(micros)) == micros
    assert to_micros(1.5) == 1_500_000


def test_fake_clock_moves_only_when_told():
    clock = FakeClock(datetime(2025, 1, 19, 20, 30, tzinfo=timezone.utc))
    assert clock() == clock()
    assert clock.advance(minutes=6) == datetime(2025, 1, 19, 20, 36, tzinfo=timezone.utc)
    assert clock.advance(1.5) == datetime(2025, 1, 19, 20, 36, 1, 500000, tzinfo=timezone.utc)
    clock.set(0)
    assert clock() == datetime(1970, 1, 1, tzinfo=timezone.utc)
