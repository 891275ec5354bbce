"""What an operator's console reads beyond the status: each item's attempts, the workers, failures by error.

The types here are what :meth:`~litecoord.protocol.Coordinator.work_item_history`,
:meth:`~litecoord.protocol.Coordinator.list_workers` and
:meth:`~litecoord.protocol.Coordinator.failure_groups` return on every backend,
and the functions that turn a backend's rows into them are written once:

* an :class:`Attempt` is one lease of an item, from its grant to how it
  ended (see :class:`AttemptOutcome`);
* a :class:`WorkerInfo` sums one worker's attempts in the session, with the
  lease it holds now;
* a :class:`FailureGroup` gathers failed and retrying items whose last errors
  read the same once ids, numbers and quoted values are masked
  (:func:`error_pattern`): "shard 52 failed: 429" and "shard 7 failed: 429"
  are one group.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .types import format_time, from_micros, parse_time

__all__ = [
    "AttemptOutcome",
    "Attempt",
    "WorkerInfo",
    "FailureGroup",
    "error_pattern",
    "group_of",
    "attempt_from_row",
    "workers_from",
    "failure_groups_from",
    "EXAMPLE_IDS",
]


class AttemptOutcome(str, enum.Enum):
    """How one attempt (one lease of an item) ended."""

    #: The lease is held now (or lapsed, and nobody took the item over yet).
    RUNNING = "running"
    #: The holder completed the item.
    COMPLETED = "completed"
    #: The holder recorded a failure (``error`` says which).
    FAILED = "failed"
    #: The holder gave the item back unfinished.
    RELEASED = "released"
    #: The lease expired and another lease (usually another worker's) took the item over.
    LAPSED = "lapsed"
    #: The holder split the item: it ended in successor items (RFS), or a live split cut it.
    SPLIT = "split"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Attempt:
    """One lease of a work item, from its grant to its end.

    ``documents_processed`` and ``bytes_processed`` are the item's figures
    when the attempt ended (absolute totals for the item, as a renewal
    reports them); while it runs they read as when it began. ``error`` is set
    for a failed attempt.
    """

    work_item_id: str
    lease_epoch: int
    worker_id: str
    leased_at: datetime
    ended_at: datetime | None
    outcome: AttemptOutcome
    documents_processed: int = 0
    bytes_processed: int = 0
    error: str | None = None

    @property
    def duration(self) -> timedelta | None:
        """How long the attempt ran (``None`` while it runs)."""
        return None if self.ended_at is None else self.ended_at - self.leased_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "work_item_id": self.work_item_id,
            "lease_epoch": self.lease_epoch,
            "worker_id": self.worker_id,
            "leased_at": format_time(self.leased_at),
            "ended_at": format_time(self.ended_at),
            "outcome": self.outcome.value,
            "documents_processed": self.documents_processed,
            "bytes_processed": self.bytes_processed,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        leased = parse_time(data["leased_at"])
        assert leased is not None
        return cls(
            work_item_id=data["work_item_id"],
            lease_epoch=int(data["lease_epoch"]),
            worker_id=data["worker_id"],
            leased_at=leased,
            ended_at=parse_time(data.get("ended_at")),
            outcome=AttemptOutcome(data["outcome"]),
            documents_processed=int(data.get("documents_processed") or 0),
            bytes_processed=int(data.get("bytes_processed") or 0),
            error=data.get("error"),
        )


#: The columns of an attempt row both databases return, in this order (times in microseconds).
ATTEMPT_COLUMNS = (
    "lease_epoch", "worker_id", "leased_at", "ended_at", "outcome", "documents_processed", "bytes_processed", "error",
)  # fmt: skip


def attempt_from_row(work_item_id: str, row: Sequence[Any]) -> Attempt:
    """An :class:`Attempt` from a row in :data:`ATTEMPT_COLUMNS` order."""
    leased = from_micros(row[2])
    assert leased is not None
    return Attempt(
        work_item_id=work_item_id,
        lease_epoch=int(row[0]),
        worker_id=row[1],
        leased_at=leased,
        ended_at=from_micros(row[3]),
        outcome=AttemptOutcome(row[4]),
        documents_processed=int(row[5]),
        bytes_processed=int(row[6]),
        error=row[7],
    )


@dataclass(frozen=True)
class WorkerInfo:
    """One worker seen in a session: what it holds now and what its attempts came to.

    ``current_work_item_id`` is the item it holds a lease on (``lease_live``
    False when that lease lapsed); ``last_heartbeat`` is its latest sign of
    life: the last renewal of its lease, else the end or start of its latest
    attempt. ``documents_per_second`` is its mean rate: the documents of the
    items it completed over the time its attempts ran; ``items_per_hour``
    counts completed items over the same time.
    """

    worker_id: str
    current_work_item_id: str | None
    lease_live: bool
    last_heartbeat: datetime | None
    first_seen: datetime | None
    attempts: int = 0
    completed: int = 0
    failed: int = 0
    released: int = 0
    lapsed: int = 0
    documents_processed: int = 0
    busy_seconds: float = 0.0
    documents_per_second: float | None = None
    items_per_hour: float | None = None
    #: Holds a live lease whose heartbeats stopped for longer than a third of the lease.
    silent: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["last_heartbeat"] = format_time(self.last_heartbeat)
        data["first_seen"] = format_time(self.first_seen)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerInfo:
        def opt(key: str) -> float | None:
            return None if data.get(key) is None else float(data[key])

        return cls(
            worker_id=data["worker_id"],
            current_work_item_id=data.get("current_work_item_id"),
            lease_live=bool(data.get("lease_live")),
            last_heartbeat=parse_time(data.get("last_heartbeat")),
            first_seen=parse_time(data.get("first_seen")),
            **{k: int(data.get(k) or 0) for k in ("attempts", "completed", "failed", "released", "lapsed")},
            documents_processed=int(data.get("documents_processed") or 0),
            busy_seconds=float(data.get("busy_seconds") or 0.0),
            documents_per_second=opt("documents_per_second"),
            items_per_hour=opt("items_per_hour"),
            silent=bool(data.get("silent")),
        )


def workers_from(
    attempt_rows: Iterable[Sequence[Any]], lease_rows: Iterable[Sequence[Any]], now: int
) -> list[WorkerInfo]:
    """The workers of a session, by worker id, from its rows.

    ``attempt_rows``: per worker ``(worker_id, attempts, completed, failed,
    released, lapsed, first leased_at, last activity, busy micros, documents
    of completed attempts)``; ``lease_rows``: items under a lease ``(worker_id,
    work_item_id, lease_expiry, last_heartbeat, leased_at, lease_micros)``.
    """
    leases: dict[str, Sequence[Any]] = {}
    for row in lease_rows:
        held = leases.get(row[0])
        # A worker holds at most one live lease; a lapsed one it left behind counts only without it.
        if held is None or (held[2] <= now < row[2]):
            leases[row[0]] = row
    workers: list[WorkerInfo] = []
    for row in attempt_rows:
        worker, attempts, completed, failed, released, lapsed, first, last, busy, docs = row
        busy = max(0, int(busy or 0)) / 1e6
        lease = leases.get(worker)
        heartbeat = last
        live = silent = False
        current = None
        if lease is not None:
            current = lease[1]
            live = lease[2] > now
            beat = lease[3] if lease[3] is not None else lease[4]
            heartbeat = max(heartbeat or 0, beat or 0) or None
            silent = live and beat is not None and lease[5] is not None and now - beat > lease[5] / 3
        completed = int(completed or 0)
        workers.append(
            WorkerInfo(
                worker_id=worker,
                current_work_item_id=current,
                lease_live=live,
                last_heartbeat=from_micros(heartbeat),
                first_seen=from_micros(first),
                attempts=int(attempts),
                completed=completed,
                failed=int(failed or 0),
                released=int(released or 0),
                lapsed=int(lapsed or 0),
                documents_processed=int(docs or 0),
                busy_seconds=busy,
                documents_per_second=int(docs or 0) / busy if busy > 0 else None,
                items_per_hour=completed * 3600 / busy if busy > 0 else None,
                silent=silent,
            )
        )
    return sorted(workers, key=lambda w: w.worker_id)


# -- failure groups -------------------------------------------------------------------------

#: How many example ids a failure group carries.
EXAMPLE_IDS = 5

# What varies between two reports of the same failure, masked in this order:
# quoted values, then long hexadecimal or UUID-like ids, then any number
# (with its sign, decimals and exponent). The mask keeps the quotes so the
# pattern still reads as the message did.
_MASKS = (
    (re.compile(r"'[^'\n]*'"), "'?'"),
    (re.compile(r'"[^"\n]*"'), '"?"'),
    (re.compile(r"`[^`\n]*`"), "`?`"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<id>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{12,}\b"), "<id>"),
    (re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"), "N"),
)
#: A line longer than this is cut before masking (the groups stay readable and cheap).
_LINE_LIMIT = 300


def _mask(line: str) -> str:
    text = line[:_LINE_LIMIT]
    for regex, mask in _MASKS:
        text = regex.sub(mask, text)
    return " ".join(text.split())


def error_pattern(error: str | None) -> str:
    """The error with ids, numbers and quoted values masked: what makes failures one group.

    A multi-line error (a command's output, a stack trace) is grouped by its
    first and last lines, which say what failed and how; the lines between
    say where, and vary.

    >>> error_pattern("shard 52 failed: 429")
    'shard N failed: N'
    >>> error_pattern("index 'logs-2024' missing")
    "index '?' missing"
    >>> error_pattern("command exited with code 1\nstderr:\n  at line 7\nValueError: bad doc 12")
    'command exited with code N … ValueError: bad doc N'
    """
    lines = [line for line in (error or "").split("\n") if line.strip()]
    if not lines:
        return ""
    if len(lines) == 1:
        return _mask(lines[0])
    return f"{_mask(lines[0])} … {_mask(lines[-1])}"


def group_of(error: str | None) -> str:
    """The group an error belongs to: its pattern. A group is named by its pattern or by any
    error of it alike, since masking a pattern changes nothing."""
    return error_pattern(error)


@dataclass(frozen=True)
class FailureGroup:
    """Failed and retrying items whose last errors share one :func:`error_pattern`.

    ``failed`` items are parked (they wait for a retry); ``retrying`` ones
    failed fewer than ``max_attempts`` times and come back by themselves.
    ``example_work_item_ids`` holds the first few ids in creation order,
    ``example_error`` the first one's full error.
    """

    error_pattern: str
    count: int
    failed: int
    retrying: int
    example_error: str | None
    example_work_item_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "error_pattern": self.error_pattern,
            "count": self.count,
            "failed": self.failed,
            "retrying": self.retrying,
            "example_error": self.example_error,
            "example_work_item_ids": list(self.example_work_item_ids),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FailureGroup:
        return cls(
            error_pattern=data["error_pattern"],
            count=int(data["count"]),
            failed=int(data.get("failed") or 0),
            retrying=int(data.get("retrying") or 0),
            example_error=data.get("example_error"),
            example_work_item_ids=tuple(data.get("example_work_item_ids") or ()),
        )


def failure_groups_from(rows: Iterable[Sequence[Any]]) -> list[FailureGroup]:
    """Groups from ``(work_item_id, status, last_error)`` rows in creation order; largest group first."""
    groups: dict[str, dict[str, Any]] = {}
    for work_item_id, status, error in rows:
        key = error_pattern(error)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {"failed": 0, "retrying": 0, "example": error, "ids": []}
        group["failed" if status == "failed" else "retrying"] += 1
        if len(group["ids"]) < EXAMPLE_IDS:
            group["ids"].append(work_item_id)
    made = [
        FailureGroup(key, g["failed"] + g["retrying"], g["failed"], g["retrying"], g["example"], tuple(g["ids"]))
        for key, g in groups.items()
    ]
    return sorted(made, key=lambda g: (-g.count, g.error_pattern))
