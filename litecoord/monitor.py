"""What an operator watches, computed from any :class:`~litecoord.protocol.Coordinator`.

The web page (``GET /`` of ``litecoord serve``), its data request
(``GET /sessions/{session}/backfill/overview``) and the Prometheus metrics all
read a session through :func:`overview` and flag items with :func:`item_flags`,
so the three always agree. Everything here reads aggregates and pages of the
items that need attention, never every item: the cost follows the number of
leases and failures, not the size of the backfill.

Flags of an item, judged at the server's time ``now`` (never a browser's clock):

* ``lapsed``: it is assigned but its lease expired: its worker stopped
  renewing, probably died; the next acquire hands it to someone else.
* ``silent``: its lease is live but no heartbeat (renewal) arrived for longer
  than the renewal interval the lease implies, a third of its length (a
  worker renews well before its lease runs out; ``litecoord work`` renews
  every third of the lease or more often). The worker may be hung or cut off.
* ``stalled``: heartbeats arrive, but its progress has not moved for
  ``stall_after``: the worker is alive and stuck.
* ``failed``: parked after the session's ``max_attempts`` failures; it waits
  for a retry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from .errors import ValidationError
from .protocol import Coordinator
from .types import (
    AttentionKind,
    IndexProgress,
    WorkItem,
    WorkItemStatus,
    WorkQueueStatus,
    format_time,
    parse_time,
)

__all__ = [
    "STALL_AFTER",
    "INDEX_LIMIT",
    "renewal_interval",
    "item_flags",
    "heartbeat_overdue",
    "last_move",
    "progress_stuck",
    "item_view",
    "attention_counts",
    "overview",
    "IndexCache",
    "index_version",
]

#: Default time without progress, under live heartbeats, before an item is flagged stalled.
STALL_AFTER = timedelta(seconds=60)

#: At most this many indexes are sent per overview (the rest are counted).
INDEX_LIMIT = 200

#: Leases are counted for the flag totals in pages of this size.
_COUNT_PAGE = 1000


def renewal_interval(item: WorkItem) -> timedelta | None:
    """The longest a healthy holder goes between renewals: a third of its lease (``None`` if unknown)."""
    return None if item.lease_duration is None else item.lease_duration / 3


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else (now - then).total_seconds()


def last_move(item: WorkItem) -> datetime | None:
    """When the current holder last showed progress. Its lease start counts as a move, so an item
    just taken over from a dead worker (whose progress stood still since) is not taken for stalled."""
    moves = [t for t in (item.progress_changed_at, item.leased_at or item.started_at) if t is not None]
    return max(moves) if moves else None


def heartbeat_overdue(item: WorkItem, now: datetime) -> bool:
    """The last heartbeat (or the lease start) is older than the renewal interval the lease implies."""
    heartbeat = item.last_heartbeat or item.leased_at
    interval = renewal_interval(item)
    return heartbeat is not None and interval is not None and now - heartbeat > interval


def progress_stuck(item: WorkItem, now: datetime, stall_after: timedelta = STALL_AFTER) -> bool:
    """Heartbeats within ``stall_after`` but no progress for as long (a dying lease is not a stall)."""
    if item.last_heartbeat is None or now - item.last_heartbeat > stall_after:
        return False
    moved = last_move(item)
    return moved is not None and now - moved >= stall_after


def item_flags(item: WorkItem, now: datetime, stall_after: timedelta = STALL_AFTER) -> list[str]:
    """The flags of ``item`` at ``now``: some of ``lapsed``, ``silent``, ``stalled``, ``failed``.

    The same rules as ``litecoord status`` (:mod:`litecoord.cli.render`): silent
    before stalled, and stalled only while heartbeats are recent.
    """
    if item.status is WorkItemStatus.FAILED:
        return ["failed"]
    if item.worker_id is None or item.lease_expiry is None or item.status is WorkItemStatus.COMPLETED:
        return []
    if item.lease_expiry <= now:
        return ["lapsed"]
    if heartbeat_overdue(item, now):
        return ["silent"]
    if progress_stuck(item, now, stall_after):
        return ["stalled"]
    return []


def item_view(item: WorkItem, now: datetime, stall_after: timedelta = STALL_AFTER) -> dict[str, Any]:
    """The item's JSON with its flags and ages (seconds, at the server's ``now``)."""
    data = item.to_dict()
    expiry = item.lease_expiry
    data.update(
        flags=item_flags(item, now, stall_after),
        heartbeat_age_seconds=_age(now, item.last_heartbeat or item.leased_at),
        progress_age_seconds=_age(now, last_move(item)),
        lease_remaining_seconds=None if expiry is None else (expiry - now).total_seconds(),
    )
    return data


def attention_counts(coord: Coordinator, now: datetime, stall_after: timedelta = STALL_AFTER) -> dict[str, int]:
    """How many leases are live, lapsed, silent and stalled, over every lease of the session.

    Pages through the leases only (there are about as many as workers), so it
    costs the same at 1,000 items as at 1,000,000.
    """
    counts = dict.fromkeys(("leased", "live", "lapsed", "silent", "stalled"), 0)
    after = None
    while True:
        page = coord.list_attention_items(AttentionKind.LEASED, limit=_COUNT_PAGE, after=after)
        _count(page.items, now, stall_after, counts)
        after = page.next_cursor
        if after is None:
            return counts


def _count(items: Iterable[WorkItem], now: datetime, stall_after: timedelta, counts: dict[str, int]) -> None:
    for item in items:
        flags = item_flags(item, now, stall_after)
        counts["leased"] += 1
        counts["lapsed" if "lapsed" in flags else "live"] += 1
        for flag in ("silent", "stalled"):
            counts[flag] += flag in flags


class IndexCache:
    """Per-index aggregates, recomputed when the session changed, at most so often per session.

    ``index_progress()`` reads every row of the session (about 0.1 s at
    100,000 items on an idle core, growing with the session), while everything
    else the page reads costs the same at any size. An entry is kept while the
    session's ``version`` (see :func:`index_version`) stays the same, for up to
    ``max(min_age, share x the time the computation took)``; once the session
    changed, it is recomputed as soon as ``share x took`` has passed (at once when a scan
    takes under ``cheap`` seconds). So however
    many browsers watch, the scans take at most about ``1/share`` of one core's
    time (the default: 5%), and a small session's indexes always agree with
    the rest of the page's figures (a scan there takes a millisecond).
    """

    def __init__(
        self,
        *,
        min_age: float = 5.0,
        share: float = 20.0,
        cheap: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_age = min_age
        self.cheap = cheap
        self.share = share
        self._clock = clock
        self._lock = threading.Lock()
        # slot -> (computed at, took, version, aggregates, the version's own time)
        self._entries: dict[tuple[int, str], tuple[float, float, Any, list[IndexProgress], Any]] = {}

    def clear(self) -> None:
        """Forget every session's aggregates (the next request recomputes them)."""
        with self._lock:
            self._entries.clear()

    def get(self, coord: Coordinator, key: Any = None) -> list[IndexProgress]:
        """The aggregates of ``coord``'s session (``key`` tells stores apart; default: the coordinator's class)."""
        return self.lookup(coord, key)[0]

    def lookup(
        self, coord: Coordinator, key: Any = None, version: Any = None, as_of: Any = None
    ) -> tuple[list[IndexProgress], Any]:
        """The aggregates and the ``as_of`` they were computed at: ``as_of`` given here when they are current
        for ``version``, else that of an older version (when recomputing now would exceed the CPU share)."""
        slot = (id(key if key is not None else type(coord)), coord.session)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(slot)
        if entry is not None:
            computed, took, seen, value, seen_as_of = entry
            if seen == version and now < computed + max(self.min_age, self.share * took):
                return value, as_of if version is not None else seen_as_of
            if seen != version and took >= self.cheap and now < computed + self.share * took:
                return value, seen_as_of  # changed, but too soon to scan again
        started = self._clock()
        fresh = coord.index_progress()
        took = self._clock() - started
        with self._lock:
            self._entries[slot] = (self._clock(), took, version, fresh, as_of)
            if len(self._entries) > 4096:  # sessions come and go; keep the newest entries
                for old in sorted(self._entries, key=lambda k: self._entries[k][0])[:1024]:
                    del self._entries[old]
        return fresh, as_of


def index_version(status: WorkQueueStatus) -> tuple[Any, ...]:
    """What changes whenever a session's per-index aggregates may have: its last item change (and its
    counts, as several changes can share one instant) and its lapsed leases (those lapse with time alone)."""
    return (
        status.last_update,
        status.total_work_items,
        status.assigned_work_items,
        status.expired_lease_work_items,
        status.completed_work_items,
        status.failed_work_items,
        status.total_documents_processed,
        status.total_bytes_processed,
    )


def overview(
    coord: Coordinator,
    *,
    limit: int = 50,
    leased_after: str | None = None,
    failed_after: str | None = None,
    stall_after: timedelta = STALL_AFTER,
    indexes: Callable[[WorkQueueStatus], tuple[list[IndexProgress], Any]] | None = None,
    samples_after: str | None = None,
) -> dict[str, Any]:
    """One session's live view as JSON: the page's one data request per session and refresh.

    ``status`` (exactly the body of ``GET …/status``), ``indexes`` (the first
    :data:`INDEX_LIMIT` by name; ``indexes_total`` counts them all),
    ``samples`` (throughput over time), ``counts`` (flags over every lease),
    and one page each of the ``leased`` and ``failed`` items with their flags
    and ages, from the cursors given. ``indexes(status)`` supplies the aggregates
    and the time they are of (default: ``coord.index_progress()`` now; the
    server passes an :class:`IndexCache`): ``indexes_as_of`` equals ``as_of``
    when they are current, so the index table agrees with the rest.

    ``samples_after`` (the ``sampled_at`` of the newest sample a client
    holds) sends only the samples after it, with ``samples_complete`` false:
    the page keeps the rest and drops those older than ``samples_first``.
    When the server no longer holds that sample, every sample is sent
    (``samples_complete`` true), as without it.
    """
    status = coord.status()
    now = status.as_of
    assert now is not None
    leased = coord.list_attention_items(AttentionKind.LEASED, limit=limit, after=leased_after)
    failed = coord.list_attention_items(AttentionKind.FAILED, limit=limit, after=failed_after)
    if leased.next_cursor is None and leased_after is None:
        # The first page holds every lease: count them from it, without another read.
        counts = dict.fromkeys(("leased", "live", "lapsed", "silent", "stalled"), 0)
        _count(leased.items, now, stall_after, counts)
    else:
        counts = attention_counts(coord, now, stall_after)
    counts["failed"] = failed.total
    index_list, indexes_as_of = (coord.index_progress(), now) if indexes is None else indexes(status)
    return {
        "session_name": coord.session,
        "as_of": format_time(now),
        "stall_after_seconds": stall_after.total_seconds(),
        "status": status.to_dict(),
        "counts": counts,
        "indexes": [i.to_dict() for i in index_list[:INDEX_LIMIT]],
        "indexes_total": len(index_list),
        "indexes_as_of": format_time(indexes_as_of),
        **_samples(coord.progress_samples(), samples_after),
        "leased": _page(leased, now, stall_after),
        "failed": _page(failed, now, stall_after),
    }


def _samples(samples: list[Any], after: str | None) -> dict[str, Any]:
    """The samples a client lacks: those after ``after`` when the server still holds that one, else all."""
    since = None
    if after is not None:
        try:
            since = parse_time(after)
        except ValueError:
            raise ValidationError("samples_after", f"is not an RFC 3339 time: {after!r}") from None
    complete = since is None or not any(s.sampled_at == since for s in samples)
    return {
        "samples": [s.to_dict() for s in samples if complete or s.sampled_at > since],  # type: ignore[operator]
        "samples_complete": complete,
        "samples_first": format_time(samples[0].sampled_at) if samples else None,
    }


def _page(page: Any, now: datetime, stall_after: timedelta) -> Mapping[str, Any]:
    return {
        "items": [item_view(item, now, stall_after) for item in page.items],
        "total": page.total,
        "next_cursor": page.next_cursor,
    }
