"""The ETA of a session, and why there is none, from its queue rate and its leases.

Written once for every database backend (``status_from`` in
:mod:`.common` calls :func:`estimate`). The rules an operator can trust:

* no ETA while the session is paused, while no lease is live, or when every
  live lease is silent or stalled (``eta_reason`` says which): what remains
  is not moving, and a rate from the past would promise an end that will not
  come;
* otherwise the queue's ETA (what remains over the recent rate) is raised to
  the longest remaining time of any healthy lease, its own rate since it
  was granted (the run cannot end before its slowest lease does);
  ``eta_bound_by`` names that item when it sets the ETA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..monitor import heartbeat_overdue, progress_stuck

__all__ = ["Estimate", "estimate", "EtaReason"]


class EtaReason:
    """Why a status has no ETA (``WorkQueueStatus.eta_reason``)."""

    PAUSED = "paused"
    #: Nobody holds a live lease: nobody is working (leases lapsed, or none taken yet).
    NO_LIVE_LEASE = "no_live_lease"
    #: Every live lease is silent (no heartbeats) or stalled (no progress).
    ONLY_STUCK = "only_stalled_or_silent"
    #: Work is moving but the rate window is too short or shows no progress yet.
    NO_RATE = "no_rate_yet"


@dataclass(frozen=True)
class Estimate:
    eta_seconds: float | None
    eta_reason: str | None
    eta_bound_by: str | None


def _lease_remaining(item: Any, start_docs: int | None, now_dt: Any) -> float | None:
    """Seconds the lease's item still needs at its own rate since the lease began (``None``: unknown)."""
    if item.document_count is None or item.leased_at is None or start_docs is None:
        return None
    took = (now_dt - item.leased_at).total_seconds()
    done = item.documents_processed - start_docs
    left = item.document_count - item.documents_processed
    if left <= 0:
        return 0.0
    if took <= 0 or done <= 0:
        return None
    return left / (done / took)


def estimate(
    *,
    finished: bool,
    paused: bool,
    live: int,
    queue_eta: float | None,
    leases: Sequence[tuple[Any, int | None]],
    now_dt: Any,
) -> Estimate:
    """The ETA from the queue's own (``queue_eta``) and ``leases``: (WorkItem, documents when its lease began)."""
    if finished:
        return Estimate(0.0, None, None)
    if paused:
        return Estimate(None, EtaReason.PAUSED, None)
    if live == 0:
        return Estimate(None, EtaReason.NO_LIVE_LEASE, None)
    healthy = [
        (item, start)
        for item, start in leases
        if item.lease_expiry is not None
        and item.lease_expiry > now_dt
        and not heartbeat_overdue(item, now_dt)
        and not progress_stuck(item, now_dt)
    ]
    if leases and not healthy:
        return Estimate(None, EtaReason.ONLY_STUCK, None)
    if queue_eta is None:
        return Estimate(None, EtaReason.NO_RATE, None)
    eta, bound = queue_eta, None
    for item, start in healthy:
        left = _lease_remaining(item, start, now_dt)
        if left is not None and left > eta:
            eta, bound = left, item.work_item_id
    return Estimate(eta, None, bound)
