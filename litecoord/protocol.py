"""The coordinator contract, written once.

:class:`Coordinator` is what every backend implements: :class:`~litecoord.backends.sqlite.SqliteCoordinator`
over a local SQLite file and :class:`~litecoord.backends.http.HttpCoordinator` over the
console REST API. Both return the same types and raise the same errors, so
code written against this protocol runs unchanged on either.

A coordinator is bound to one *session* (a namespace of work items, created
on first write) and one *worker id* (who holds leases). Every lease-holder
operation also accepts ``lease_epoch``: the number a lease was granted with
(``WorkItemAndDuration.lease_epoch``). When given, a call made on a stale
lease is refused even if the worker id matches, so a worker that lost its
lease without noticing can never act on a newer one. Without it, the worker
id alone decides, as in the console API.

Errors (see :mod:`litecoord.errors`): ``ValidationError`` for bad input
(nothing is written), ``WorkItemNotFoundError`` for an unknown id,
``LeaseConflictError`` when the caller does not hold the lease,
``LeaseExpiredError`` when its lease lapsed, ``DatabaseBusyError`` if the
store stayed locked past its deadline.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from .console import Attempt, FailureGroup, WorkerInfo
from .coverage import CoverageReport
from .transfer import ImportSummary
from .types import (
    DEFAULT_SPLIT_MIN_DOCUMENTS,
    KEEP,
    AcquisitionOutcome,
    AttentionKind,
    IndexProgress,
    Keep,
    LeaseOutcome,
    ProgressSample,
    SessionInfo,
    WorkItem,
    WorkItemPage,
    WorkItemStatus,
    WorkQueueStatus,
)

__all__ = [
    "Coordinator",
    "SessionTransfer",
    "DEFAULT_LEASE_DURATION",
    "DEFAULT_RETRY_DELAY",
    "DEFAULT_MAX_RETRY_DELAY",
    "DEFAULT_SPLIT_MIN_DOCUMENTS",
    "KEEP",
]

DEFAULT_LEASE_DURATION = timedelta(minutes=5)
"""The console API's lease length: what every acquire without a duration gets."""
#: A new session's delay before the first retry of a failed item (then 20 s, 40 s, ...).
DEFAULT_RETRY_DELAY = timedelta(seconds=10)
#: A new session's cap on the retry delay.
DEFAULT_MAX_RETRY_DELAY = timedelta(minutes=10)


@runtime_checkable
class Coordinator(Protocol):
    """The work-coordination contract shared by every backend."""

    session: str
    worker_id: str

    # -- lifecycle -------------------------------------------------------

    def setup(
        self,
        *,
        lease_mode: str | None = None,
        acquire_order: str | None = None,
        max_attempts: int | None = None,
        retry_delay: timedelta | float | None = None,
        max_retry_delay: timedelta | float | None = None,
        split_min_documents: int | None | Keep = KEEP,
    ) -> None:
        """Create the coordination state if missing; safe to call any number of times.

        Options given here are stored on the session (``None`` keeps what is
        stored, or the default for a new session): ``lease_mode`` is
        ``"fixed"`` (default, console) or ``"exponential"`` (RFS growth),
        ``acquire_order`` is ``"largest_first"`` (default) or ``"fifo"``,
        ``max_attempts`` (default 3) is how many failures park an item as failed.

        ``retry_delay`` (default 10 s; 0 retries at once) and
        ``max_retry_delay`` (default 10 min) set the backoff after a failure:
        the n-th failure makes the item wait ``d = min(max_retry_delay,
        retry_delay x 2^(n-1))``, jittered to a random time between ``d/2``
        and ``d`` so that items failing together do not come back together.

        ``split_min_documents`` (default :data:`DEFAULT_SPLIT_MIN_DOCUMENTS`,
        10,000; ``None`` turns split requests off; left out, the stored value
        stays): an acquire that finds nothing to hand out asks a holder to
        split only an item with at least twice this many documents left (see
        :meth:`split_work_item`).

        On a store whose schema is older than this litecoord's, ``setup``
        upgrades it (other calls refuse such a store with an error saying so).
        """

    def close(self) -> None:
        """Release connections held by this coordinator (it stays usable; they reopen)."""

    # -- creating work ---------------------------------------------------

    def create_unassigned_work_item(self, work_item_id: str) -> bool:
        """Create a pending item. True if created, False if the id already existed."""

    def create_work_item_with_metadata(
        self,
        work_item_id: str,
        index_name: str | None,
        shard_number: int | None,
        document_count: int | None,
        total_size_bytes: int | None,
    ) -> bool:
        """Create a pending item with the console's metadata. True if created."""

    def create_work_items(self, items: Iterable[Mapping[str, Any]]) -> list[WorkItem]:
        """Create many items in one transaction; return only the newly created ones.

        Each mapping has ``work_item_id`` and optionally ``index_name``,
        ``shard_number``, ``document_count``, ``total_size_bytes``. Existing
        ids (and repeats within the batch) are skipped. If any entry is
        invalid, ``ValidationError`` names it (``items[3].shard_number``) and
        nothing is created.
        """

    # -- leasing -----------------------------------------------------------

    def acquire_next_work_item(self, lease_duration: timedelta = DEFAULT_LEASE_DURATION) -> AcquisitionOutcome:
        """Lease one available item to this worker, atomically.

        If this worker already holds a live lease in the session, that lease
        is returned unchanged (a retried request never strands an item).
        Otherwise an item that is pending, or assigned with a lapsed lease,
        is leased: items whose lease lapsed come back first, then failed
        items whose retry delay has passed (earliest first), then pending
        items in the session's order. An item still waiting out its retry
        delay is not handed out, and nothing is while the session is paused
        (:meth:`pause`). Returns ``WorkItemAndDuration`` or
        ``NoAvailableWorkToBeDone`` (which says whether work remains leased,
        when the next retry is due, and whether the session is paused).
        """

    def create_or_update_lease_for_work_item(
        self, work_item_id: str, lease_duration: timedelta = DEFAULT_LEASE_DURATION
    ) -> LeaseOutcome:
        """Lease the named item, creating it if absent (RFS).

        Returns ``AlreadyCompleted`` for a completed item; the existing lease
        unchanged if this worker holds it live. Naming an item waives its
        retry delay (the caller asked for it explicitly). Raises ``LeaseConflictError``
        when another worker holds a live lease, or the item is parked as failed.
        """

    def update_progress_and_renew_lease(
        self,
        work_item_id: str,
        documents_processed: int | None = None,
        bytes_processed: int | None = None,
        *,
        lease_duration: timedelta | None = None,
        lease_epoch: int | None = None,
    ) -> WorkItem:
        """Renew the caller's live lease, recording absolute progress figures.

        The lease runs from now for ``lease_duration`` (default: the length
        it was acquired with). Progress values are absolute totals for the
        item (a retried call is harmless); ``None`` leaves a figure as it is.
        Raises ``WorkItemNotFoundError``, ``LeaseConflictError`` (another
        holder, not leased, stale epoch) or ``LeaseExpiredError`` (the
        caller's lease lapsed).
        """

    def complete_work_item(
        self,
        work_item_id: str,
        *,
        lease_epoch: int | None = None,
        documents_processed: int | None = None,
        bytes_processed: int | None = None,
    ) -> WorkItem:
        """Mark the item complete. Only the holder may; it need not be live.

        A holder whose lease lapsed but was not taken over may still complete
        (RFS). Completing again by the same worker is a no-op that returns
        the item. Raises ``LeaseConflictError`` for anyone else.

        ``documents_processed`` and ``bytes_processed`` are the holder's final
        figures (absolute, from ``range_start``), recorded as stated: an item
        completed with fewer documents than its range is *short*, and
        ``verify_coverage()`` reports it and the gap it leaves. Without them
        the holder is trusted to have done the whole item, which counts in
        full (its ``document_count`` and ``total_size_bytes``), as the Java
        client's completion (its worker id only) always is.
        """

    def complete_and_acquire_next(
        self,
        work_item_id: str,
        lease_duration: timedelta = DEFAULT_LEASE_DURATION,
        *,
        lease_epoch: int | None = None,
        documents_processed: int | None = None,
        bytes_processed: int | None = None,
    ) -> tuple[WorkItem, AcquisitionOutcome]:
        """``complete_work_item`` (with its final figures) then ``acquire_next_work_item``, atomically.

        One transaction (so one commit, one sync at full durability) per item
        for a worker that goes straight on to the next one. If the completion
        is refused, nothing is acquired. Returns the completed item and the
        acquisition outcome.
        """

    def release_work_item(self, work_item_id: str, *, lease_epoch: int | None = None) -> bool:
        """Give the item back unfinished. True if released; False (no-op) if the
        caller was not its holder or the item is complete. Unknown ids raise
        ``WorkItemNotFoundError``."""

    def fail_work_item(self, work_item_id: str, error: str, *, lease_epoch: int | None = None) -> WorkItem:
        """The holder records an error and gives the item back.

        The item waits out the session's retry delay (``next_attempt_at``)
        before acquire hands it out again. After the session's
        ``max_attempts`` failures it is parked as ``failed`` instead and no
        longer handed out until :meth:`retry_work_item`.
        Raises ``LeaseConflictError`` if the caller is not the holder.
        """

    def retry_work_item(self, work_item_id: str) -> WorkItem:
        """Return a failed item to pending with its failure count cleared, available at once.

        Any other item is returned unchanged (check its ``status``: only a
        failed item comes back as ``pending``).
        """

    def create_successor_work_items_and_mark_complete(
        self,
        work_item_id: str,
        successor_work_item_ids: Sequence[str],
        *,
        lease_epoch: int | None = None,
    ) -> WorkItem:
        """Split: record successors, create them pending, complete the item; one transaction.

        Successors inherit the item's index and shard. RFS successors (ids
        ``index__shard__N`` of the item's shard) partition the item's range:
        sorted by ``N`` they tile ``[first N, range_end)`` (each takes its
        range's length as its documents estimate), the item keeps
        ``[range_start, first N)`` and is recorded as having processed it.
        ``ValidationError`` (nothing written) when an ``N`` lies outside the
        item's range or behind its recorded position. Other ids share the
        item's remaining documents and bytes as estimates, as before ranges,
        and make the shard unverifiable in :meth:`verify_coverage`. Refused (``ValidationError``) if the
        list is empty, names the item itself or an id with a comma; refused
        (``SuccessorConflictError``) if the item already lists a different
        set. Repeating the same call is a no-op that returns the item.
        """

    def split_work_item(
        self, work_item_id: str, at: int, *, lease_epoch: int | None = None
    ) -> tuple[WorkItem, WorkItem]:
        """Live split: the holder gives away ``[at, range_end)`` of its item; one transaction.

        Every item covers the document positions ``[range_start, range_end)``
        of its shard (``range_end`` ``None``: to the shard's end); its
        holder's position is ``range_start + documents_processed``. The item
        keeps ``[range_start, at)``, its lease and its progress; a new pending
        item takes ``[at, range_end)``, with ``parent_id`` the item and id
        ``index__shard__at`` for an RFS id ``index__shard__N`` (else
        ``<id>@at``). The documents estimate moves with the range (the bytes
        estimate in proportion), so the session's totals do not change.
        Returns ``(the item as kept, the new item)``; repeating the same call
        returns the same pair.

        Refused with nothing written: ``LeaseConflictError`` when the caller
        does not hold the item or ``lease_epoch`` is stale,
        ``LeaseExpiredError`` when its lease lapsed, ``ValidationError`` when
        ``at`` is behind the recorded position or not before ``range_end``.

        Split requests: an acquire that finds nothing to hand out while items
        are leased sets ``split_requested_at`` on the live lease with the most
        work left (estimated time left at its own rate, documents left without
        one; only items with at least twice the session's
        ``split_min_documents`` left): a proposed ``at`` halfway through what
        is left. One request per item: an idle acquire that finds the chosen
        item already asked writes nothing. Every renewal returns the item, so
        the holder sees the request and answers with this call, at that
        position or a later one; the split, the end of the lease (release,
        failure, another worker's takeover) and completion clear it. A holder
        that never answers loses nothing: its item completes as before.
        """

    def verify_coverage(self) -> CoverageReport:
        """The coverage audit of the session (:class:`~litecoord.coverage.CoverageReport`).

        Per shard: its extent, the ranges completed items covered, ``gaps``
        (no completed item covered them), ``overlaps`` (covered twice), items
        completed short of their range, items not complete. ``ok`` only when
        every shard with a known extent is covered exactly and no item is left
        incomplete; shards without document counts, or split into non-RFS
        successor ids, are reported as unverifiable.
        """

    # -- reading -----------------------------------------------------------

    def get_work_item(self, work_item_id: str) -> WorkItem:
        """The item, or ``WorkItemNotFoundError``."""

    def list_work_items(self, status: WorkItemStatus | str | None = None) -> list[WorkItem]:
        """Items of the session in creation order, optionally of one (effective) status."""

    def num_work_items_not_yet_complete(self) -> int:
        """Items pending or leased (failed items wait for a retry and are not counted)."""

    def work_items_not_yet_complete(self) -> bool:
        """Whether any item is pending or leased."""

    def status(self) -> WorkQueueStatus:
        """The session summary (console ``/status`` plus progress, throughput, ETA)."""

    def list_sessions(self) -> list[SessionInfo]:
        """Every session in the store."""

    # -- monitoring (what the web page and the metrics read) ----------------------
    #
    # Each reads aggregates or one page, never every item: a session of
    # 100,000 items is watched at the cost of a few thousand.

    def index_progress(self) -> list[IndexProgress]:
        """Aggregates per index of the session, by index name (items without one last)."""

    def progress_samples(self) -> list[ProgressSample]:
        """The session's recent cumulative totals (at most one per 10 s, the last hour), oldest first."""

    def list_attention_items(
        self, kind: AttentionKind | str, *, limit: int = 50, after: str | None = None
    ) -> WorkItemPage:
        """One page of the items an operator watches, ``limit`` (1 to 1000) at most.

        ``kind`` ``"leased"``: items under a lease, live or lapsed, soonest
        expiry first, so lapsed leases lead. ``"failed"``: items parked as
        failed, in creation order. ``after`` is the ``next_cursor`` of the
        previous page (an opaque string; a malformed one is a ``ValidationError``).
        """

    # -- the console: history, workers, failures, pause ---------------------

    def work_item_history(self, work_item_id: str) -> list[Attempt]:
        """Every attempt at the item (one per lease), oldest first; ``WorkItemNotFoundError`` for an unknown id.

        Each :class:`~litecoord.console.Attempt` has its ``lease_epoch``,
        ``worker_id``, ``leased_at``, ``ended_at`` (``None`` while running), its
        ``outcome`` (``running``, ``completed``, ``failed``, ``released``,
        ``lapsed`` when another lease took the item over after it expired,
        ``split``), the item's documents and bytes processed when it ended, and
        the ``error`` of a failure. Attempts are recorded in the same statement
        as the lease change, so the history is exactly what happened.
        """

    def list_workers(self) -> list[WorkerInfo]:
        """Every worker seen in the session (from its attempts), by worker id: the item it holds,
        its last heartbeat, how many items it completed and failed, and its mean rate."""

    def failure_groups(self) -> list[FailureGroup]:
        """Failed and retrying items grouped by their last error with ids, numbers and quoted
        values masked (:func:`~litecoord.console.error_pattern`), largest group first."""

    def retry_failed_work_items(self, error_pattern: str | None = None) -> list[str]:
        """Return every failed item (or those of one failure group: ``error_pattern`` is the group's
        pattern, or any error of it) to pending, as :meth:`retry_work_item` does; one transaction.
        Returns the ids retried, in creation order."""

    def pause(self) -> None:
        """Stop handing out work: acquire answers ``NoAvailableWorkToBeDone`` with ``paused=True``
        until :meth:`resume`. Leases in flight go on: they renew, complete, fail and release as usual.
        Pausing a paused session keeps the time it was first paused."""

    def resume(self) -> None:
        """Hand out work again (a no-op on a session that is not paused)."""

    def list_work_items_page(
        self,
        *,
        status: WorkItemStatus | str | None = None,
        index_name: str | None = None,
        worker_id: str | None = None,
        id_contains: str | None = None,
        sort: str = "created",
        descending: bool = False,
        limit: int = 50,
        after: str | None = None,
    ) -> WorkItemPage:
        """One page of the session's items that match every filter given, sorted; for finding items.

        Filters: ``status`` (as in :meth:`list_work_items`: ``pending``
        includes lapsed leases, ``assigned`` only live ones), ``index_name``
        and ``worker_id`` (the current or last holder) exactly, and
        ``id_contains`` (a substring of the id, case-sensitive). ``sort``:
        ``created`` (default), ``id``, ``progress`` (share of the documents
        done), ``heartbeat`` (age of a lease's last heartbeat; items without a
        lease last) or ``failures``; ``descending`` reverses it. Items without
        a value for the key come last either way; ties go in creation order.
        ``total`` counts every match; ``after`` is the previous page's
        ``next_cursor``. Reads the session's matching rows: meant for a person
        searching, not for a loop.
        """

    # -- housekeeping ------------------------------------------------------

    def cleanup_expired(self) -> int:
        """Mark assigned items with lapsed leases as pending; return how many.

        Never needed for correctness (lapsed leases are acquirable anyway);
        it makes listings show the truth. The former holder is kept on the
        item, so its late renewals get ``LeaseExpiredError``.
        """

    def delete_session(self) -> int:
        """Delete every item of the session, with its history; return how many items were deleted."""


@runtime_checkable
class SessionTransfer(Protocol):
    """Moving a whole session between stores (``litecoord export`` / ``litecoord import``).

    Implemented by the embedded backends (each over its own database, with one
    format: :mod:`litecoord.transfer`), so a session exported from any of them
    imports into any other. A live lease survives the move: the item keeps its
    holder, lease epoch and expiry, so the holder goes on renewing and
    completing it against the new store, and a holder that is gone is replaced
    when the lease lapses, with the next epoch, as on the old store.
    """

    session: str

    def export_session(self) -> Iterator[dict[str, Any]]:
        """The session's records, from one consistent snapshot: header, session, items, samples, end."""

    def import_session(self, records: Iterable[Any], *, replace: bool = False) -> ImportSummary:
        """Write exported records into this coordinator's session, in one transaction.

        Every record is checked first: a bad one raises ``ValidationError``
        naming its line (``line 12``) and nothing is written. A session that
        already holds items raises ``SessionNotEmptyError`` unless ``replace``,
        which deletes them in the same transaction.
        """
