"""Wire shapes of times and results: what the Java client parses."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timedelta, timezone

import pytest

from litecoord import FakeClock
from litecoord.types import WorkItem, WorkItemStatus, format_time, from_micros, parse_time, to_micros


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


def test_a_work_item_on_the_wire_has_every_field_once_with_times_as_text():
    same = datetime(2025, 1, 19, 20, 35, 0, 5, tzinfo=timezone.utc)
    item = WorkItem(
        work_item_id="idx__0__0",
        session_name="s",
        status=WorkItemStatus.ASSIGNED,
        worker_id="w",
        lease_expiry=same + timedelta(minutes=5),
        created_at=datetime(2025, 1, 19, 20, 0, tzinfo=timezone(timedelta(hours=2))),
        started_at=same,
        last_heartbeat=same,
        leased_at=same,
        successor_ids=("a", "b"),
        lease_duration=timedelta(minutes=5),
    )
    wire = item.to_dict()
    names = {f.name for f in fields(WorkItem)} - {"lease_duration"} | {"lease_duration_seconds"}
    assert set(wire) == names
    assert wire["status"] == "assigned"
    assert wire["lease_expiry"] == "2025-01-19T20:40:00.000005Z"
    assert wire["started_at"] == wire["last_heartbeat"] == wire["leased_at"] == "2025-01-19T20:35:00.000005Z"
    assert wire["created_at"] == "2025-01-19T18:00:00Z"  # another offset is written in UTC
    assert wire["completed_at"] is None and wire["progress_changed_at"] is None
    assert wire["successor_ids"] == ["a", "b"] and wire["lease_duration_seconds"] == 300.0
    assert WorkItem.from_dict(wire) == item
    assert item.to_dict() == wire  # the item itself is unchanged


def test_whole_lease_durations_are_integers_in_json() -> None:
    from datetime import datetime, timedelta, timezone

    from litecoord.types import WorkItem, WorkItemAndDuration, WorkItemStatus

    when = datetime(2025, 1, 19, 20, 35, tzinfo=timezone.utc)
    item = WorkItem("a", "s", WorkItemStatus.ASSIGNED, lease_duration=timedelta(seconds=300), lease_expiry=when)
    lease = WorkItemAndDuration(item, when, timedelta(seconds=300))
    assert type(item.to_dict()["lease_duration_seconds"]) is int
    assert type(lease.to_dict()["lease_duration_seconds"]) is int
    assert WorkItemAndDuration(item, when, timedelta(seconds=1.5)).to_dict()["lease_duration_seconds"] == 1.5
    assert WorkItemAndDuration.from_dict(lease.to_dict()) == lease


def _isoformat_in_utc(value: datetime) -> str:
    """What format_time wrote before its fast path: isoformat() in UTC, "+00:00" as "Z"."""
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    return value.isoformat()[:-6] + "Z"


def test_format_time_writes_what_isoformat_does_for_every_datetime() -> None:
    import random

    import litecoord.types as types

    rng = random.Random(17)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    first, last = (to_micros(datetime(year, 1, 2, tzinfo=timezone.utc)) for year in (1, 9999))
    values = [datetime.min.replace(tzinfo=timezone.utc), datetime.max.replace(tzinfo=timezone.utc), epoch]
    for i in range(3 * types._SECOND_TEXT_LIMIT):  # past the cache's limit: it is emptied on the way
        micros = rng.randint(first, last) if i % 2 else 1_796_000_000_000_000 + rng.randint(-(10**7), 10**7)
        if i % 5 == 0:
            micros -= micros % 1_000_000  # whole seconds: no fraction written
        value = epoch + timedelta(microseconds=micros)
        if i % 7 == 0 and 2 <= value.year <= 9998:
            value = value.astimezone(timezone(timedelta(hours=5, minutes=30)))  # another offset
        values.append(value)
    values.append(datetime(2025, 1, 19, 20, 35, 0, 5))  # naive: local time, as before
    for value in values:
        assert format_time(value) == _isoformat_in_utc(value), value
        assert format_time(value) == _isoformat_in_utc(value), value  # its second now cached
    assert len(types._SECOND_TEXT) <= types._SECOND_TEXT_LIMIT


def test_format_time_lets_a_datetime_subclass_format_itself() -> None:
    class Nanos(datetime):  # a pandas-like time with more digits than a datetime holds
        def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
            return super().isoformat(sep, timespec).replace("+00:00", "789+00:00")

    value = Nanos(2025, 1, 19, 20, 35, 0, 123456, tzinfo=timezone.utc)
    assert format_time(value) == "2025-01-19T20:35:00.123456789Z"


def test_times_read_from_rows_are_converted_once_and_shared() -> None:
    import litecoord.types as types

    micros = 1_737_318_900_123_456
    assert from_micros(micros) is from_micros(micros)  # a datetime is immutable: one object serves all
    for offset in range(2 * types._DATETIMES_LIMIT):  # past the limit the cache starts again, still right
        assert to_micros(from_micros(micros + offset)) == micros + offset
    assert len(types._DATETIMES) <= types._DATETIMES_LIMIT
    assert from_micros(None) is None


def test_a_lease_writes_its_expiry_as_its_item_does_or_its_own() -> None:
    from litecoord.types import WorkItemAndDuration

    expiry = datetime(2025, 1, 19, 20, 40, 0, 5, tzinfo=timezone.utc)
    item = WorkItem("a", "s", WorkItemStatus.ASSIGNED, lease_expiry=expiry, lease_duration=timedelta(minutes=5))
    shared = WorkItemAndDuration(item, item.lease_expiry, timedelta(minutes=5)).to_dict()  # as read from a row
    assert shared["lease_expiry"] == shared["work_item"]["lease_expiry"] == "2025-01-19T20:40:00.000005Z"
    other = expiry + timedelta(seconds=1)  # a lease built with another expiry than its item's says its own
    assert WorkItemAndDuration(item, other, timedelta(minutes=5)).to_dict()["lease_expiry"] == (
        "2025-01-19T20:40:01.000005Z"
    )
