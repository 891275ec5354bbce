"""What every database backend shares: argument checks, rows to results, refusals, status arithmetic.

A backend owns its SQL, its connections and its transactions; everything
here is independent of them. Both database backends store the same row
shape (:data:`COLUMNS`, every time in integer microseconds UTC), so one
conversion turns a row into a :class:`~litecoord.types.WorkItem` (:mod:`.rows`), one
function explains why a holder-only statement matched nothing, and one
computes the status summary from the session's totals (:mod:`.status`).
"""

from __future__ import annotations

import os
import random
import re
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from .. import validation as check
from ..coverage import CoverageReport, coverage_of
from ..errors import (
    LeaseConflictError,
    LeaseExpiredError,
    SessionNotFoundError,
    SuccessorConflictError,
    ValidationError,
    WorkItemNotFoundError,
)
from ..ranges import SplitCandidate, SplitPlan, default_range, split_plan, successor_ranges
from ..types import (
    KEEP,
    AcquireOrder,
    AlreadyCompleted,
    Keep,
    LeaseMode,
    LeaseOutcome,
    WorkItem,
    WorkItemPage,
    WorkItemStatus,
    format_time,
    from_micros,
    micros_of,
)

# The row shape and its conversion, and the status arithmetic, are modules of
# their own; every name of theirs stays importable from here, where the backends
# and the REST layer import them.
from .rows import _STATUS, COLUMNS, EXPIRY, RANGE_START, item_from_row, lease_from_row  # noqa: F401
from .status import _MAX_MICROS, THROUGHPUT_WINDOW, _completion_at, status_from  # noqa: F401

__all__ = [
    "COLUMNS",
    "session_not_found",
    "EXPIRY",
    "THROUGHPUT_WINDOW",
    "default_worker_id",
    "item_from_row",
    "lease_from_row",
    "DatabaseCalls",
    "completed_by",
    "named_lease",
    "not_found",
    "page_of",
    "parse_cursor",
    "split_children",
    "Successors",
    "successor_exists",
    "live_split",
    "split_candidates",
    "range_params",
    "RANGE_START",
    "refusal",
    "setup_settings",
    "shares",
    "status_from",
    "successor_ids",
]

def default_worker_id() -> str:
    """``<hostname>-<pid>``: recomputed at each call, so a forked child gets its own."""
    return f"{socket.gethostname()}-{os.getpid()}"


def not_found(session: str, work_item_id: str) -> WorkItemNotFoundError:
    return WorkItemNotFoundError(
        f"work item {work_item_id!r} not found in session {session!r}", work_item_id=work_item_id
    )


def refusal(
    session: str, row: Sequence[Any] | None, work_item_id: str, worker: str, now: int, epoch: int | None
) -> Exception:
    """The error that explains why a holder-only statement matched no row (``row``: the item now)."""
    if row is None:
        return not_found(session, work_item_id)
    status, holder, expiry, item_epoch = row[1], row[6], row[EXPIRY], row[14]
    facts = {"work_item_id": work_item_id, "worker_id": worker}
    if status == "completed":
        return LeaseConflictError(f"work item {work_item_id!r} is already completed", **facts)
    if status == "failed":
        return LeaseConflictError(f"work item {work_item_id!r} is parked as failed; retry it first", **facts)
    if holder != worker:
        if holder is None or status != "assigned":
            return LeaseConflictError(f"work item {work_item_id!r} is not leased by {worker!r}", **facts)
        return LeaseConflictError(f"work item {work_item_id!r} is leased by another worker", holder=holder, **facts)
    if epoch is not None and epoch != item_epoch:
        return LeaseConflictError(
            f"lease epoch {epoch} of work item {work_item_id!r} is stale (current: {item_epoch})",
            lease_epoch=item_epoch,
            **facts,
        )
    if status == "pending" or expiry <= now:
        return LeaseExpiredError(
            f"the lease of {worker!r} on work item {work_item_id!r} expired",
            lease_expiry=format_time(from_micros(expiry)),
            **facts,
        )
    return LeaseConflictError(f"work item {work_item_id!r} is not leased by {worker!r}", **facts)


def setup_settings(
    lease_mode: str | None,
    acquire_order: str | None,
    max_attempts: int | None,
    retry_delay: timedelta | float | None = None,
    max_retry_delay: timedelta | float | None = None,
    split_min_documents: int | None | Keep = KEEP,
) -> dict[str, Any]:
    """The checked session settings of ``setup()`` by column (``None``: keep what is stored).

    ``split_min_documents`` is there only when given, and then ``None`` means
    "split requests off" (its key's presence, not its value, says to write it).
    """
    settings = {
        "lease_mode": None if lease_mode is None else check.choice("lease_mode", lease_mode, LeaseMode).value,
        "acquire_order": None
        if acquire_order is None
        else check.choice("acquire_order", acquire_order, AcquireOrder).value,
        "max_attempts": None if max_attempts is None else check.count("max_attempts", max_attempts),
    }
    if settings["max_attempts"] == 0:
        raise ValidationError("max_attempts", "must be at least 1")
    for column, field, value in (
        ("retry_delay_micros", "retry_delay", retry_delay),
        ("max_retry_delay_micros", "max_retry_delay", max_retry_delay),
    ):
        settings[column] = None if value is None else micros_of(check.delay(value, field))
    if split_min_documents is not KEEP:
        settings["split_min_documents"] = check.count("split_min_documents", split_min_documents)
    return settings


def successor_ids(work_item_id: str, successor_work_item_ids: Any) -> list[str]:
    """The checked, de-duplicated successor ids of a split of ``work_item_id``."""
    if isinstance(successor_work_item_ids, (str, bytes)) or not isinstance(successor_work_item_ids, Sequence):
        raise ValidationError("successor_work_item_ids", "must be a list of work item ids")
    successors: list[str] = []
    for i, name in enumerate(successor_work_item_ids):
        name = check.text(f"successor_work_item_ids[{i}]", name, check.MAX_WORK_ITEM_ID_LENGTH, allow_comma=False)
        if name == work_item_id:
            raise ValidationError(f"successor_work_item_ids[{i}]", "an item cannot be its own successor")
        if name not in successors:
            successors.append(name)
    if not successors:
        raise ValidationError("successor_work_item_ids", "must name at least one successor")
    return successors


def shares(total: int | None, done: int, parts: int) -> list[int | None]:
    """Split what is left of ``total`` into ``parts`` whole shares (the first ones take the remainder)."""
    if total is None:
        return [None] * parts
    left = max(0, total - done)
    base, extra = divmod(left, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def session_not_found(session: str) -> SessionNotFoundError:
    """The error for a session nothing created: a mistyped name is not an empty queue."""
    return SessionNotFoundError(
        f"session {session!r} not found: nothing was ever created in it (check the name)", session=session
    )


def parse_cursor(after: str | None, parts: int) -> tuple[int, ...]:
    """The position a ``next_cursor`` of a database backend names (before everything when ``None``).

    Cursors are ``parts`` integers joined by dots: ``<expiry>.<seq>`` for
    leases, ``<seq>`` for failed items.
    """
    if after is None:
        return (-(2**63),) * parts
    if not isinstance(after, str) or not _CURSOR.match(after):
        raise ValidationError("after", f"is not a cursor: {after!r} (one or two integers joined by a dot)")
    pieces = [int(p) for p in after.split(".")]
    # The OpenAPI document states one shape for every listing (its pattern is _CURSOR's): the
    # last `parts` numbers count, and a missing leading one reads as the very start.
    pieces = [-(2**63)] * (parts - len(pieces)) + pieces[-parts:]
    return tuple(pieces)


#: One or two integers of at most 18 digits (every position fits 64 bits), ASCII only.
_CURSOR = re.compile(r"-?[0-9]{1,18}(\.-?[0-9]{1,18})?\Z")


def completed_by(row: Sequence[Any] | None, worker: str, epoch: int | None) -> bool:
    """Whether ``row`` is an item this worker (at this epoch, if given) already completed:
    completing it again is a no-op that returns it."""
    return row is not None and row[1] == "completed" and row[6] == worker and epoch in (None, row[14])


def named_lease(session: str, row: Sequence[Any], worker: str, now: int) -> LeaseOutcome | None:
    """What the named lease (RFS's createOrUpdateLease) answers for an existing item,
    or ``None`` when the caller is to take the lease now."""
    work_item_id, status, holder = row[0], row[1], row[6]
    if status == "completed":
        return AlreadyCompleted(item_from_row(session, row, now))
    if status == "failed":
        raise LeaseConflictError(
            f"work item {work_item_id!r} is parked as failed; retry it first", work_item_id=work_item_id
        )
    if status == "assigned" and row[EXPIRY] > now:
        if holder == worker:
            return lease_from_row(session, row, now)  # re-asking returns the live lease unchanged
        raise LeaseConflictError(
            f"work item {work_item_id!r} is leased by another worker", work_item_id=work_item_id, holder=holder
        )
    return None


@dataclass(frozen=True)
class Successors:
    """What an RFS split writes: each successor ``(id, documents, bytes, range_start, range_end)``
    (none counts in the session's totals: they re-count part of their parent), and the parent's
    new ``range_end`` and ``documents_processed`` (it covered up to the first successor)."""

    children: list[tuple[str, int | None, int | None, int, int | None]]
    parent_end: int | None
    parent_processed: int
    #: RFS successors partitioning the range (an id that exists already is then refused).
    verifiable: bool = True


def successor_exists(name: str) -> ValidationError:
    return ValidationError("successor_work_item_ids", f"work item {name!r} already exists: it cannot take a range")


def split_children(
    session: str,
    work_item_id: str,
    row: Sequence[Any] | None,
    successors: list[str],
    worker: str,
    now: int,
    epoch: int | None,
) -> WorkItem | Successors:
    """The split of the item ``row`` (read in the split's transaction) into ``successors``.

    Returns the item itself when this exact split was already made (a repeat
    is a no-op), else what to write (:class:`Successors`). RFS successors
    partition what the parent had left (:func:`litecoord.ranges.successor_ranges`)
    and take their range's length as their documents estimate; other ids share
    what the parent had left, as before ranges. Raises ``SuccessorConflictError``
    for a completed item or another split, the holder's refusal when the caller
    does not hold the item, and ``ValidationError`` for a successor outside the range.
    """
    if row is None:
        raise not_found(session, work_item_id)
    recorded = row[18].split(",") if row[18] else None
    if recorded is not None or row[1] == "completed":
        if recorded is not None and set(recorded) == set(successors):
            return item_from_row(session, row, now)  # the same split again: idempotent
        raise SuccessorConflictError(
            f"work item {work_item_id!r} is already completed"
            + (f" with successors {','.join(recorded)}" if recorded else " without successors"),
            work_item_id=work_item_id,
        )
    if row[1] not in ("assigned", "pending") or row[6] != worker or epoch not in (None, row[14]):
        raise refusal(session, row, work_item_id, worker, now, epoch)
    start, end, processed = row[RANGE_START], row[RANGE_START + 1], row[8]
    ranges = successor_ranges(work_item_id, start, end, processed, successors)
    docs = shares(row[4], row[8], len(successors))
    sizes = shares(row[5], row[9], len(successors))
    children = []
    for name, share, size in zip(successors, docs, sizes, strict=True):
        low, high = ranges.ranges[name]
        if ranges.verifiable and high is not None:
            share = high - low
        children.append((name, share, size, low, high))
    parent_processed = processed
    if ranges.verifiable and ranges.parent_end is not None:
        parent_processed = max(processed, ranges.parent_end - start)
    return Successors(children, ranges.parent_end, parent_processed, ranges.verifiable)


def live_split(
    session: str,
    work_item_id: str,
    row: Sequence[Any] | None,
    child: Sequence[Any] | None,
    at: int,
    worker: str,
    now: int,
    epoch: int | None,
) -> tuple[WorkItem, WorkItem] | SplitPlan:
    """The live split of the item ``row`` at ``at`` (``child``: the row of the id it would
    create, if one exists), both read in the split's transaction.

    Returns the pair when this split was already made (a repeat returns it),
    else the :class:`~litecoord.ranges.SplitPlan` to write. Raises the holder's
    refusal (``LeaseConflictError``, ``LeaseExpiredError``) unless the caller
    holds a live lease at this epoch, and ``ValidationError`` for a bad ``at``.
    """
    if row is None:
        raise not_found(session, work_item_id)
    holder = row[6] == worker and epoch in (None, row[14])
    if holder and child is not None and child[17] == work_item_id and child[RANGE_START] == at:
        return item_from_row(session, row, now), item_from_row(session, child, now)
    if row[1] != "assigned" or not holder or row[EXPIRY] <= now:
        raise refusal(session, row, work_item_id, worker, now, epoch)
    plan = split_plan(work_item_id, at, row[RANGE_START], row[RANGE_START + 1], row[8], row[4], row[5])
    if child is not None:
        raise ValidationError("at", f"the item a split at {at} would create, {plan.new_id!r}, already exists")
    return plan


def range_params(work_item_id: str, document_count: int | None) -> dict[str, int | None]:
    """A new item's default range as statement parameters ``start`` and ``end``."""
    start, end = default_range(work_item_id, document_count)
    return {"start": start, "end": end}


def split_candidates(rows: Iterable[Sequence[Any]]) -> list[SplitCandidate]:
    """Live leases as :class:`~litecoord.ranges.SplitCandidate` from rows of
    (key, range_start, range_end, documents_processed, split_requested_at, started_at, last_progress_update)."""
    return [SplitCandidate(*row) for row in rows]


def page_of(session: str, rows: list[Any], total: int, limit: int, leased: bool, now: int) -> WorkItemPage:
    """A page of ``list_attention_items`` from up to ``limit + 1`` rows (each ending in ``seq``)."""
    cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        cursor = f"{last[EXPIRY]}.{last[-1]}" if leased else str(last[-1])
    return WorkItemPage(tuple(item_from_row(session, r, now) for r in rows), int(total), cursor)


_D = TypeVar("_D", bound="DatabaseCalls")


class DatabaseCalls:
    """The calls whose body is the same on every database backend: check the
    arguments, then hand them to the backend's own step (``_insert``,
    ``_holder_params``/``_holder_write`` with its ``_RENEW`` statement)."""

    session: str
    _worker_id: str | None
    _clock: Any
    _store: Any
    _session_id: Any
    _RENEW: str

    def _identity(self, session: str, worker_id: str | None, clock: Any) -> None:
        """Check and keep who this coordinator is (``clock``: ``None`` or a callable)."""
        self.session = check.session_name(session)
        self._worker_id = None if worker_id is None else check.worker_id(worker_id)
        if clock is not None and not callable(clock):
            raise ValidationError("clock", "must be a callable returning the current time")
        self._session_id = None
        #: Draws the jitter of retry delays, in [0, 1) (replaceable for tests).
        self._random: Callable[[], float] = random.random

    def bind(self: _D, session: str | None = None, worker_id: str | None = None) -> _D:
        """A coordinator for ``session``/``worker_id`` sharing this one's store (connections) and clock."""
        return type(self)(  # type: ignore[call-arg]
            self._store,
            session=self.session if session is None else session,
            worker_id=self._worker_id if worker_id is None else worker_id,
            clock=self._clock,
        )

    def _insert(self, specs: list[dict[str, Any]]) -> list[WorkItem]:
        raise NotImplementedError

    def _holder_params(self, work_item_id: str, lease_epoch: int | None) -> dict[str, Any]:
        raise NotImplementedError

    def _holder_write(self, sql: str, params: dict[str, Any]) -> WorkItem:
        raise NotImplementedError

    def _completion_params(
        self, work_item_id: str, lease_epoch: int | None, documents: int | None, size: int | None
    ) -> dict[str, Any]:
        """The holder's parameters plus the final figures it states (``None``: counted in full)."""
        params = self._holder_params(work_item_id, lease_epoch)
        params["docs"] = check.count("documents_processed", documents)
        params["bytes"] = check.count("bytes_processed", size)
        return params

    def close(self) -> None:
        raise NotImplementedError

    def num_work_items_not_yet_complete(self) -> int:
        raise NotImplementedError

    @property
    def worker_id(self) -> str:
        return self._worker_id or default_worker_id()

    def __enter__(self: _D) -> _D:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_unassigned_work_item(self, work_item_id: str) -> bool:
        return bool(self._insert([check.item_spec({"work_item_id": work_item_id})]))

    def create_work_item_with_metadata(
        self,
        work_item_id: str,
        index_name: str | None,
        shard_number: int | None,
        document_count: int | None,
        total_size_bytes: int | None,
    ) -> bool:
        spec = {
            "work_item_id": work_item_id,
            "index_name": index_name,
            "shard_number": shard_number,
            "document_count": document_count,
            "total_size_bytes": total_size_bytes,
        }
        return bool(self._insert([check.item_spec(spec)]))

    def create_work_items(self, items: Iterable[Mapping[str, Any]]) -> list[WorkItem]:
        if isinstance(items, (str, bytes, Mapping)):
            raise ValidationError("items", "must be a list of work item objects")
        return self._insert([check.item_spec(item, f"items[{i}]") for i, item in enumerate(items)])

    def update_progress_and_renew_lease(
        self,
        work_item_id: str,
        documents_processed: int | None = None,
        bytes_processed: int | None = None,
        *,
        lease_duration: timedelta | None = None,
        lease_epoch: int | None = None,
    ) -> WorkItem:
        params = self._holder_params(work_item_id, lease_epoch)
        params["docs"] = check.count("documents_processed", documents_processed)
        params["bytes"] = check.count("bytes_processed", bytes_processed)
        params["duration"] = None if lease_duration is None else micros_of(check.duration(lease_duration))
        return self._holder_write(self._RENEW, params)

    def work_items_not_yet_complete(self) -> bool:
        return self.num_work_items_not_yet_complete() > 0

    def list_work_items(self, status: WorkItemStatus | str | None = None) -> list[WorkItem]:
        raise NotImplementedError

    def verify_coverage(self) -> CoverageReport:
        # One read of every item (list_work_items is one snapshot); the audit is Python, written once.
        return coverage_of(self.session, self.list_work_items())
