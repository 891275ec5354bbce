"""Status arithmetic: the session summary (percent, rates, ETA) from what a backend counted.

A backend reads its session's totals, live leases and the oldest progress
sample of :data:`THROUGHPUT_WINDOW`; :func:`status_from` turns them into the
:class:`~litecoord.types.WorkQueueStatus` both database backends return (the
ETA's judgement of each lease is :mod:`.estimate`'s). Kept apart from the
checks, refusals and splits of :mod:`.common` (which re-exports every name
here) so that each file holds one concern.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from ..types import WorkQueueStatus, from_micros, to_micros
from .estimate import estimate
from .rows import COLUMNS, item_from_row

__all__ = ["THROUGHPUT_WINDOW", "status_from"]

#: Throughput for the ETA is measured over this window of progress samples.
THROUGHPUT_WINDOW = timedelta(minutes=10)

#: The last microsecond a datetime can hold.
_MAX_MICROS = to_micros(datetime.max.replace(tzinfo=timezone.utc))


def _completion_at(now: int, eta: float | None) -> datetime | None:
    # An ETA past what a datetime holds (a crawl through 2**53 documents) has no date.
    if eta is None or eta * 1e6 > _MAX_MICROS - now:
        return None
    return from_micros(now + int(eta * 1e6))


def status_from(
    session: str,
    now: int,
    totals: Sequence[Any] | None,
    live: int,
    sample: Sequence[Any] | None,
    retrying: int,
    *,
    paused_at: int | None = None,
    leases: Sequence[Sequence[Any]] = (),
) -> WorkQueueStatus:
    """The status summary from the session's totals, its live leases, the oldest sample in
    the throughput window and how many pending items are retries.

    ``totals``: (total, assigned incl. lapsed, completed, failed, documents,
    bytes, documents processed, bytes processed, started_at, last_update);
    ``sample``: (sampled_at, documents processed, bytes processed, completed);
    ``paused_at``: when the session was paused (``None``: it runs);
    ``leases``: the items under a lease, :data:`COLUMNS` rows followed by the
    item's documents when the lease began (see :mod:`.estimate`).
    """
    if totals is None:
        totals = (0, 0, 0, 0, 0, 0, 0, 0, None, None)
    total, assigned, completed, failed, docs, size, docs_done, bytes_done, started, last = totals
    remaining_items = total - completed - failed
    if docs > 0:
        percent = min(100.0, 100.0 * docs_done / docs)
    else:
        percent = 100.0 * completed / total if total else 0.0
    if total and remaining_items == 0 and failed == 0:
        percent = 100.0
    finished = total > 0 and remaining_items == 0
    # The run's own time: frozen at its last change once nothing is left to do,
    # so a finished session reads the same a minute or a week later.
    end = last if finished and last is not None else now
    elapsed = None if started is None else max(0, end - started) / 1e6
    docs_rate = bytes_rate = eta = None
    recent_docs = recent_bytes = window = None
    mean_docs = docs_done / elapsed if elapsed else None
    mean_bytes = bytes_done / elapsed if elapsed else None
    if finished:
        # The mean over the whole run (the recent window would decay with the wall clock).
        docs_rate, bytes_rate = mean_docs, mean_bytes
    elif sample is not None and now - sample[0] >= 1_000_000:
        window = (now - sample[0]) / 1e6
        docs_rate = recent_docs = max(0.0, (docs_done - sample[1]) / window)
        bytes_rate = recent_bytes = max(0.0, (bytes_done - sample[2]) / window)
        items_rate = max(0.0, (completed - sample[3]) / window)
        if docs > 0 and docs_rate > 0:
            eta = max(0.0, docs - docs_done) / docs_rate
        elif items_rate > 0:
            eta = remaining_items / items_rate
    now_dt = from_micros(now)
    held = [(item_from_row(session, row, now), row[len(COLUMNS)]) for row in leases]
    judged = estimate(
        finished=finished, paused=paused_at is not None, live=live, queue_eta=eta, leases=held, now_dt=now_dt
    )
    eta = judged.eta_seconds
    return WorkQueueStatus(
        session_name=session,
        total_work_items=total,
        pending_work_items=remaining_items - live,
        assigned_work_items=live,
        completed_work_items=completed,
        total_documents=docs,
        total_documents_processed=docs_done,
        total_size_bytes=size,
        total_bytes_processed=bytes_done,
        started_at=from_micros(started),
        last_update=from_micros(last),
        failed_work_items=failed,
        in_progress_work_items=live,
        expired_lease_work_items=assigned - live,
        percent_complete=round(percent, 2),
        documents_per_second=docs_rate,
        bytes_per_second=bytes_rate,
        eta_seconds=eta,
        estimated_completion=_completion_at(end if finished else now, eta),
        as_of=from_micros(now),
        elapsed_seconds=elapsed,
        finished_at=from_micros(last) if finished else None,
        retrying_work_items=retrying,
        paused=paused_at is not None,
        paused_at=from_micros(paused_at),
        eta_reason=judged.eta_reason,
        eta_bound_by=judged.eta_bound_by,
        mean_documents_per_second=mean_docs,
        mean_bytes_per_second=mean_bytes,
        recent_documents_per_second=recent_docs,
        recent_bytes_per_second=recent_bytes,
        rate_window_seconds=window,
        took_seconds=elapsed if finished else None,
    )
