"""Rows to results: the row shape both database backends store, and the items and leases it describes.

Both backends select the same :data:`COLUMNS` in the same order (every time
in integer microseconds UTC), so one conversion turns a row into a
:class:`~litecoord.types.WorkItem`. It runs for every item read, three times
per lease cycle, hence its care for speed. Kept apart from the checks,
refusals and splits of :mod:`.common` (which re-exports every name here) so
that each file holds one concern.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from ..times import _DATETIMES
from ..types import WorkItem, WorkItemAndDuration, WorkItemStatus, from_micros, new_frozen

__all__ = ["COLUMNS", "EXPIRY", "RANGE_START", "item_from_row", "lease_from_row"]

#: The columns every item-returning statement selects, in this order.
COLUMNS = (
    "work_item_id", "status", "index_name", "shard_number", "document_count",
    "total_size_bytes", "worker_id", "lease_expiry", "documents_processed",
    "bytes_processed", "last_progress_update", "created_at", "started_at",
    "completed_at", "lease_epoch", "failure_count", "last_error", "parent_id",
    "successor_ids", "last_heartbeat", "progress_changed_at", "lease_micros", "leased_at", "next_attempt_at",
    "range_start", "range_end", "split_requested_at",
)  # fmt: skip
EXPIRY = COLUMNS.index("lease_expiry")
RANGE_START = COLUMNS.index("range_start")

_STATUS = {member.value: member for member in WorkItemStatus}


def item_from_row(session: str, row: Sequence[Any], now: int) -> WorkItem:
    """The item a :data:`COLUMNS` row describes, as seen at ``now`` (microseconds)."""
    status = row[1]
    if status == "assigned" and row[EXPIRY] <= now:
        status = "pending"  # a lapsed lease reads as pending, as in the console API
    # Times in one row are mostly the same instant (a lease sets four of
    # them to `now`), so each distinct value is converted once.
    times: dict[int | None, Any] = {None: None}
    for value in (row[7], row[10], row[11], row[12], row[13], row[19], row[20], row[22], row[23]):
        if value not in times:
            times[value] = _DATETIMES.get(value) or from_micros(value)  # a cached time without the call
    # Every field is set here from a row the schema already constrains, so the
    # dataclass __init__ (one frozen setattr per field: about half the cost of
    # this function, run three times per lease cycle) is skipped.
    return new_frozen(
        WorkItem,
        {
            "work_item_id": row[0],
            "session_name": session,
            "status": _STATUS[status],
            "index_name": row[2],
            "shard_number": row[3],
            "document_count": row[4],
            "total_size_bytes": row[5],
            "worker_id": row[6],
            "lease_expiry": times[row[7]],
            "documents_processed": row[8],
            "bytes_processed": row[9],
            "last_progress_update": times[row[10]],
            "created_at": times[row[11]],
            "started_at": times[row[12]],
            "completed_at": times[row[13]],
            "lease_epoch": row[14],
            "attempts": row[14],
            "failure_count": row[15],
            "last_error": row[16],
            "parent_id": row[17],
            "successor_ids": tuple(row[18].split(",")) if row[18] else (),
            "last_heartbeat": times[row[19]],
            "progress_changed_at": times[row[20]],
            "lease_duration": None if row[21] is None else timedelta(0, 0, row[21]),
            "leased_at": times[row[22]],
            "next_attempt_at": times[row[23]],
            "range_start": row[24],
            "range_end": row[25],
            "split_requested_at": row[26],
        },
    )


def lease_from_row(session: str, row: Sequence[Any], now: int) -> WorkItemAndDuration:
    item = item_from_row(session, row, now)
    # A leased row always has both; the item already carries them converted.
    return WorkItemAndDuration(item, item.lease_expiry, item.lease_duration)  # type: ignore[arg-type]
