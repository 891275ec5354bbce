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
