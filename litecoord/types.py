"""Result types: small frozen dataclasses and ``str`` enums.

Every type here turns into JSON with ``to_dict()`` using the console API's
field names, and back with ``from_dict()``, so the embedded backend, the
REST layer and the HTTP client all speak exactly the same shapes.

Times are aware ``datetime`` objects in UTC. On the wire they are RFC 3339
strings with a trailing ``Z`` (``2025-01-19T20:35:00Z``, microseconds when
non-zero), which is what ``java.time.Instant.parse`` accepts (the conversions
are in :mod:`litecoord.times`; the progress reports in :mod:`litecoord.reports`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, TypeVar

# The time conversions and the progress reports are modules of their own; every
# name of theirs stays importable from here, the public entry point (tests read
# the caches types._DATETIMES and types._SECOND_TEXT; the docs list what is here).
from .reports import IndexProgress, ProgressSample, WorkQueueStatus  # noqa: F401
from .times import (  # noqa: F401
    _DATETIMES,
    _DATETIMES_LIMIT,
    _EPOCH,
    _SECOND_TEXT,
    _SECOND_TEXT_LIMIT,
    _TEXT,
    Clock,
    FakeClock,
    format_time,
    from_micros,
    json_seconds,
    micros_of,
    parse_time,
    to_micros,
    wall_clock,
)

__all__ = [
    "Clock",
    "FakeClock",
    "WorkItemStatus",
    "LeaseMode",
    "AcquireOrder",
    "WorkItem",
    "WorkItemAndDuration",
    "NoAvailableWorkToBeDone",
    "AlreadyCompleted",
    "AcquisitionOutcome",
    "LeaseOutcome",
    "WorkQueueStatus",
    "SessionInfo",
    "format_time",
    "parse_time",
    "json_seconds",
    "DEFAULT_SPLIT_MIN_DOCUMENTS",
    "KEEP",
    "Keep",
]


class Keep(enum.Enum):
    """The type of :data:`KEEP`."""

    KEEP = "keep"


#: A ``setup()`` argument left out: keep what is stored (for options where ``None`` means "off").
KEEP = Keep.KEEP

#: A new session's ``split_min_documents``: idle workers ask a holder to split
#: only an item with at least twice this many documents left.
DEFAULT_SPLIT_MIN_DOCUMENTS = 10_000

_T = TypeVar("_T")


def new_frozen(cls: type[_T], fields: dict[str, Any]) -> _T:
    """An instance of the frozen dataclass ``cls`` holding ``fields``, built without ``__init__``.

    For hot paths only: the caller gives every field, from values it already
    trusts (a row the schema constrains). A frozen ``__init__`` pays one
    ``object.__setattr__`` per field; this pays one dict update.
    """
    obj = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


class WorkItemStatus(str, enum.Enum):
    """Where an item stands. An assigned item whose lease lapsed reads as pending."""

    PENDING = "pending"
    ASSIGNED = "assigned"
    COMPLETED = "completed"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class LeaseMode(str, enum.Enum):
    """How long each acquisition's lease is (a per-session setting)."""

    #: Every acquisition gets the requested duration; renewals extend it (console).
    FIXED = "fixed"
    #: The n-th re-acquisition of an item gets ``duration x 2^n`` (RFS).
    EXPONENTIAL = "exponential"

    def __str__(self) -> str:
        return self.value


class AcquireOrder(str, enum.Enum):
    """Which available item acquire hands out first (a per-session setting)."""

    #: Largest ``total_size_bytes`` first, then creation order.
    LARGEST_FIRST = "largest_first"
    #: Creation order.
    FIFO = "fifo"

    def __str__(self) -> str:
        return self.value


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class WorkItem:
    """One work item as stored, with the console API's field names."""

    work_item_id: str
    session_name: str
    status: WorkItemStatus
    index_name: str | None = None
    shard_number: int | None = None
    document_count: int | None = None
    total_size_bytes: int | None = None
    worker_id: str | None = None
    lease_expiry: datetime | None = None
    documents_processed: int = 0
    bytes_processed: int = 0
    last_progress_update: datetime | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    #: Grows with every acquisition; present it to fence stale lease holders.
    lease_epoch: int = 0
    #: How many times the item was acquired (same number as the epoch).
    attempts: int = 0
    #: Failures recorded since the last retry.
    failure_count: int = 0
    last_error: str | None = None
    #: The item whose split created this one, if any.
    parent_id: str | None = None
    #: Ids of the items this one was split into (set when it was completed by a split).
    successor_ids: tuple[str, ...] = ()
    #: Last renewal, with or without progress.
    last_heartbeat: datetime | None = None
    #: Last time the progress figures actually moved (a stall shows as heartbeats
    #: arriving while this stays behind).
    progress_changed_at: datetime | None = None
    #: Length of the current (or last) lease; renewals extend it by this much.
    lease_duration: timedelta | None = None
    #: When the current (or last) lease was granted.
    leased_at: datetime | None = None
    #: After a failure with a retry delay: acquire does not hand the item out
    #: before this time (``None`` once it is leased again, or without a delay).
    next_attempt_at: datetime | None = None
    #: The half-open range ``[range_start, range_end)`` of document positions
    #: within the shard that this item covers (``range_end`` ``None``: up to the
    #: shard's end). The holder's position is ``range_start + documents_processed``.
    range_start: int = 0
    range_end: int | None = None
    #: A split request: an idle worker proposes that the holder give away
    #: ``[split_requested_at, range_end)`` with :meth:`~litecoord.protocol.Coordinator.split_work_item`.
    split_requested_at: int | None = None

    @property
    def position(self) -> int:
        """Where the holder has got to: ``range_start + documents_processed``."""
        return self.range_start + self.documents_processed

    def to_dict(self) -> dict[str, Any]:
        # Every response of a server carries one or two of these, so this copies the
        # fields and converts in place; format_time remembers the text of each time.
        data = dict(self.__dict__)
        for name in _TIME_FIELDS:
            value = data[name]
            if value is not None:
                # A time format_time wrote before is one lookup (what format_time does first).
                data[name] = (type(value) is datetime and _TEXT.get(value)) or format_time(value)
        data["status"] = self.status.value
        data["successor_ids"] = list(self.successor_ids)
        del data["lease_duration"]
        data["lease_duration_seconds"] = None if self.lease_duration is None else json_seconds(self.lease_duration)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkItem:
        return cls(
            work_item_id=data["work_item_id"],
            session_name=data["session_name"],
            status=WorkItemStatus(data["status"]),
            index_name=data.get("index_name"),
            shard_number=_opt_int(data.get("shard_number")),
            document_count=_opt_int(data.get("document_count")),
            total_size_bytes=_opt_int(data.get("total_size_bytes")),
            worker_id=data.get("worker_id"),
            lease_expiry=parse_time(data.get("lease_expiry")),
            documents_processed=int(data.get("documents_processed") or 0),
            bytes_processed=int(data.get("bytes_processed") or 0),
            last_progress_update=parse_time(data.get("last_progress_update")),
            created_at=parse_time(data.get("created_at")),
            started_at=parse_time(data.get("started_at")),
            completed_at=parse_time(data.get("completed_at")),
            lease_epoch=int(data.get("lease_epoch") or 0),
            attempts=int(data.get("attempts") or 0),
            failure_count=int(data.get("failure_count") or 0),
            last_error=data.get("last_error"),
            parent_id=data.get("parent_id"),
            successor_ids=tuple(data.get("successor_ids") or ()),
            last_heartbeat=parse_time(data.get("last_heartbeat")),
            progress_changed_at=parse_time(data.get("progress_changed_at")),
            lease_duration=None
            if data.get("lease_duration_seconds") is None
            else timedelta(seconds=float(data["lease_duration_seconds"])),
            leased_at=parse_time(data.get("leased_at")),
            next_attempt_at=parse_time(data.get("next_attempt_at")),
            range_start=int(data.get("range_start") or 0),
            range_end=_opt_int(data.get("range_end")),
            split_requested_at=_opt_int(data.get("split_requested_at")),
        )


#: The fields of a WorkItem that hold times (annotations are strings here: PEP 563).
_TIME_FIELDS = tuple(f.name for f in fields(WorkItem) if f.type == "datetime | None")


@dataclass(frozen=True)
class WorkItemAndDuration:
    """A lease: the item and when the lease ends (RFS's ``WorkItemAndDuration``)."""

    work_item: WorkItem
    lease_expiration_time: datetime
    #: Length of this lease (what the caller asked for, grown in exponential mode).
    lease_duration: timedelta

    @property
    def work_item_id(self) -> str:
        return self.work_item.work_item_id

    @property
    def lease_epoch(self) -> int:
        return self.work_item.lease_epoch

    def to_dict(self) -> dict[str, Any]:
        item = self.work_item.to_dict()
        # A lease read from its row shares the item's expiry (lease_from_row): formatted once.
        expiry = self.lease_expiration_time
        return {
            "work_item": item,
            "lease_duration_seconds": json_seconds(self.lease_duration),
            "lease_expiry": item["lease_expiry"] if expiry is self.work_item.lease_expiry else format_time(expiry),
            "lease_epoch": self.lease_epoch,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkItemAndDuration:
        item = WorkItem.from_dict(data["work_item"])
        expiry = parse_time(data.get("lease_expiry")) or item.lease_expiry
        if expiry is None:
            raise ValueError("a lease needs lease_expiry")
        return cls(item, expiry, timedelta(seconds=float(data["lease_duration_seconds"])))


@dataclass(frozen=True)
class NoAvailableWorkToBeDone:
    """Acquire found nothing to lease.

    ``remaining`` counts items not yet complete (each leased by a live worker
    or waiting out its retry delay when it is non-zero); ``failed`` counts
    items parked as failed, which are not handed out until retried;
    ``next_attempt_at`` is the earliest time an item waiting out its retry
    delay becomes available (``None`` when no item waits).
    """

    remaining: int = 0
    failed: int = 0
    next_attempt_at: datetime | None = None
    #: The session is paused: nothing is handed out until it is resumed (work may remain).
    paused: bool = False

    @property
    def all_work_done(self) -> bool:
        """True when no item is pending or leased (failed ones may remain)."""
        return self.remaining == 0

    @property
    def reason(self) -> str:
        if self.paused and self.remaining:
            return "paused"
        if self.remaining:
            return "all_leased" if self.next_attempt_at is None else "retry_wait"
        return "failed_remain" if self.failed else "none_remain"

    def to_dict(self) -> dict[str, Any]:
        if self.paused:
            detail = (
                f"No work available: the session is paused ({self.remaining} incomplete item(s) remain); "
                "nothing is handed out until it is resumed"
            )
        elif self.remaining and self.next_attempt_at is not None:
            detail = (
                f"No work available: {self.remaining} incomplete item(s) remain, leased or waiting out a retry"
                f" delay; the next retry is due at {format_time(self.next_attempt_at)}"
            )
        elif self.remaining:
            detail = f"No work available: {self.remaining} incomplete item(s) remain, all leased"
        elif self.failed:
            detail = f"No work available: nothing pending; {self.failed} failed item(s) await a retry"
        else:
            detail = "No work available: every work item is complete"
        return {
            "detail": detail,
            "code": "no_available_work",
            "reason": self.reason,
            "remaining_work_items": self.remaining,
            "failed_work_items": self.failed,
            "next_attempt_at": format_time(self.next_attempt_at),
            "paused": self.paused,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoAvailableWorkToBeDone:
        return cls(
            int(data.get("remaining_work_items") or 0),
            int(data.get("failed_work_items") or 0),
            parse_time(data.get("next_attempt_at")),
            bool(data.get("paused")) or data.get("reason") == "paused",
        )


@dataclass(frozen=True)
class AlreadyCompleted:
    """A named-item lease was asked for an item that is already complete."""

    work_item: WorkItem

    def to_dict(self) -> dict[str, Any]:
        return {"already_completed": True, "work_item": self.work_item.to_dict()}


AcquisitionOutcome = WorkItemAndDuration | NoAvailableWorkToBeDone
"""What ``acquire_next_work_item`` returns: a lease, or why there is none."""
LeaseOutcome = WorkItemAndDuration | AlreadyCompleted
"""What ``create_or_update_lease_for_work_item`` returns: a lease, or the item already completed."""


@dataclass(frozen=True)
class SessionInfo:
    """One session and its settings, as listed by ``list_sessions()``."""

    session_name: str
    created_at: datetime | None
    lease_mode: LeaseMode = LeaseMode.FIXED
    acquire_order: AcquireOrder = AcquireOrder.LARGEST_FIRST
    max_attempts: int = 3
    total_work_items: int = 0
    completed_work_items: int = 0
    #: Delay before the first retry of a failed item; it doubles with each
    #: further failure, up to ``max_retry_delay`` (each draw is jittered).
    retry_delay: timedelta = timedelta(seconds=10)
    max_retry_delay: timedelta = timedelta(minutes=10)
    #: Idle acquires ask a holder to split only items with at least twice this
    #: many documents left; ``None``: split requests are off.
    split_min_documents: int | None = DEFAULT_SPLIT_MIN_DOCUMENTS

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_name": self.session_name,
            "created_at": format_time(self.created_at),
            "lease_mode": self.lease_mode.value,
            "acquire_order": self.acquire_order.value,
            "max_attempts": self.max_attempts,
            "total_work_items": self.total_work_items,
            "completed_work_items": self.completed_work_items,
            "retry_delay_seconds": json_seconds(self.retry_delay),
            "max_retry_delay_seconds": json_seconds(self.max_retry_delay),
            "split_min_documents": self.split_min_documents,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionInfo:
        return cls(
            session_name=data["session_name"],
            created_at=parse_time(data.get("created_at")),
            lease_mode=LeaseMode(data.get("lease_mode") or "fixed"),
            acquire_order=AcquireOrder(data.get("acquire_order") or "largest_first"),
            max_attempts=int(data.get("max_attempts") or 3),
            total_work_items=int(data.get("total_work_items") or 0),
            completed_work_items=int(data.get("completed_work_items") or 0),
            retry_delay=timedelta(seconds=float(data.get("retry_delay_seconds", 10))),
            max_retry_delay=timedelta(seconds=float(data.get("max_retry_delay_seconds", 600))),
            split_min_documents=_opt_int(data.get("split_min_documents", DEFAULT_SPLIT_MIN_DOCUMENTS)),
        )


class AttentionKind(str, enum.Enum):
    """Which items ``list_attention_items`` pages through."""

    #: Items under a lease, live or lapsed, soonest expiry first (lapsed ones lead).
    LEASED = "leased"
    #: Items parked as failed, in creation order.
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class WorkItemPage:
    """One page of items; ``next_cursor`` fetches the next one (``None`` on the last page).

    ``total`` is how many items of the kind exist now (pages may shift while a
    backfill runs: renewing moves a lease later in the leased order).
    """

    items: tuple[WorkItem, ...]
    total: int
    next_cursor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"items": [item.to_dict() for item in self.items], "total": self.total, "next_cursor": self.next_cursor}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkItemPage:
        return cls(
            items=tuple(WorkItem.from_dict(item) for item in data["items"]),
            total=int(data["total"]),
            next_cursor=data.get("next_cursor"),
        )
