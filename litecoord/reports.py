"""The session's progress reports: the status summary, per-index aggregates and progress samples.

Frozen dataclasses like the rest of :mod:`litecoord.types` (which re-exports
them): ``to_dict()`` gives the console API's field names, ``from_dict()``
reads them back. Kept apart from the item and lease types so that each file
holds one concern: these are what ``status()``, ``index_progress()`` and
``progress_samples()`` return, and what the monitor and the status page read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .times import format_time, parse_time

__all__ = ["WorkQueueStatus", "IndexProgress", "ProgressSample"]


@dataclass(frozen=True)
class WorkQueueStatus:
    """The session summary: the console's ``/status`` fields, then litecoord's extras."""

    session_name: str
    total_work_items: int
    #: Never leased, released, or leased with a lapsed lease (as in the console API).
    pending_work_items: int
    #: Held under a live lease.
    assigned_work_items: int
    completed_work_items: int
    total_documents: int
    total_documents_processed: int
    total_size_bytes: int
    total_bytes_processed: int
    started_at: datetime | None
    last_update: datetime | None
    failed_work_items: int = 0
    #: Same as assigned_work_items: items being worked on under a live lease.
    in_progress_work_items: int = 0
    #: Assigned items whose lease lapsed (already counted in pending_work_items).
    expired_lease_work_items: int = 0
    percent_complete: float = 0.0
    documents_per_second: float | None = None
    bytes_per_second: float | None = None
    eta_seconds: float | None = None
    estimated_completion: datetime | None = None
    as_of: datetime | None = None
    #: How long the run has taken: from the first lease to now, or to
    #: ``finished_at`` once nothing is left to do (then it no longer changes).
    elapsed_seconds: float | None = None
    #: When the last pending or leased item was settled (completed or parked as
    #: failed); ``None`` while work remains. Once set, the rates above are the
    #: run's mean and ``eta_seconds`` is 0: the figures are frozen.
    finished_at: datetime | None = None
    #: Pending items that failed and wait out their retry delay (or are due):
    #: already counted in ``pending_work_items``.
    retrying_work_items: int = 0
    #: The session is paused (since ``paused_at``): acquire hands out nothing;
    #: leases in flight go on and complete.
    paused: bool = False
    paused_at: datetime | None = None
    #: Why ``eta_seconds`` is ``None``: ``paused``, ``no_live_lease``,
    #: ``only_stalled_or_silent`` (what remains is not moving) or ``no_rate_yet``.
    eta_reason: str | None = None
    #: The item whose own remaining time sets the ETA (the run cannot end
    #: before its slowest lease does); ``None`` when the queue's rate sets it.
    eta_bound_by: str | None = None
    #: The mean rate over the whole run (from the first lease to now, or to the end).
    mean_documents_per_second: float | None = None
    mean_bytes_per_second: float | None = None
    #: The recent rate, over the last ``rate_window_seconds`` (up to 10 minutes).
    #: ``documents_per_second`` is this while work remains, the mean once finished.
    recent_documents_per_second: float | None = None
    recent_bytes_per_second: float | None = None
    rate_window_seconds: float | None = None
    #: How long the run took, from ``started_at`` to ``finished_at`` (set once finished).
    took_seconds: float | None = None

    @property
    def not_yet_complete(self) -> int:
        """What the Java client computes: pending + assigned."""
        return self.pending_work_items + self.assigned_work_items

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_name": self.session_name,
            "total_work_items": self.total_work_items,
            "pending_work_items": self.pending_work_items,
            "assigned_work_items": self.assigned_work_items,
            "completed_work_items": self.completed_work_items,
            "total_documents": self.total_documents,
            "total_documents_processed": self.total_documents_processed,
            "total_size_bytes": self.total_size_bytes,
            "total_bytes_processed": self.total_bytes_processed,
            "started_at": format_time(self.started_at),
            "last_update": format_time(self.last_update),
            "failed_work_items": self.failed_work_items,
            "in_progress_work_items": self.in_progress_work_items,
            "expired_lease_work_items": self.expired_lease_work_items,
            "percent_complete": self.percent_complete,
            "documents_per_second": self.documents_per_second,
            "bytes_per_second": self.bytes_per_second,
            "eta_seconds": self.eta_seconds,
            "estimated_completion": format_time(self.estimated_completion),
            "as_of": format_time(self.as_of),
            "elapsed_seconds": self.elapsed_seconds,
            "finished_at": format_time(self.finished_at),
            "retrying_work_items": self.retrying_work_items,
            "paused": self.paused,
            "paused_at": format_time(self.paused_at),
            "eta_reason": self.eta_reason,
            "eta_bound_by": self.eta_bound_by,
            "mean_documents_per_second": self.mean_documents_per_second,
            "mean_bytes_per_second": self.mean_bytes_per_second,
            "recent_documents_per_second": self.recent_documents_per_second,
            "recent_bytes_per_second": self.recent_bytes_per_second,
            "rate_window_seconds": self.rate_window_seconds,
            "took_seconds": self.took_seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkQueueStatus:
        def opt_float(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(
            session_name=data["session_name"],
            total_work_items=int(data["total_work_items"]),
            pending_work_items=int(data["pending_work_items"]),
            assigned_work_items=int(data["assigned_work_items"]),
            completed_work_items=int(data["completed_work_items"]),
            total_documents=int(data["total_documents"]),
            total_documents_processed=int(data["total_documents_processed"]),
            total_size_bytes=int(data["total_size_bytes"]),
            total_bytes_processed=int(data["total_bytes_processed"]),
            started_at=parse_time(data.get("started_at")),
            last_update=parse_time(data.get("last_update")),
            failed_work_items=int(data.get("failed_work_items") or 0),
            in_progress_work_items=int(data.get("in_progress_work_items") or 0),
            expired_lease_work_items=int(data.get("expired_lease_work_items") or 0),
            percent_complete=float(data.get("percent_complete") or 0.0),
            documents_per_second=opt_float("documents_per_second"),
            bytes_per_second=opt_float("bytes_per_second"),
            eta_seconds=opt_float("eta_seconds"),
            estimated_completion=parse_time(data.get("estimated_completion")),
            as_of=parse_time(data.get("as_of")),
            elapsed_seconds=opt_float("elapsed_seconds"),
            finished_at=parse_time(data.get("finished_at")),
            retrying_work_items=int(data.get("retrying_work_items") or 0),
            paused=bool(data.get("paused")),
            paused_at=parse_time(data.get("paused_at")),
            eta_reason=data.get("eta_reason"),
            eta_bound_by=data.get("eta_bound_by"),
            mean_documents_per_second=opt_float("mean_documents_per_second"),
            mean_bytes_per_second=opt_float("mean_bytes_per_second"),
            recent_documents_per_second=opt_float("recent_documents_per_second"),
            recent_bytes_per_second=opt_float("recent_bytes_per_second"),
            rate_window_seconds=opt_float("rate_window_seconds"),
            took_seconds=opt_float("took_seconds"),
        )


@dataclass(frozen=True)
class IndexProgress:
    """Aggregates of one index of a session: items by state, documents and bytes.

    Items without an index name are grouped under ``index_name=None``.
    ``assigned`` counts live and lapsed leases alike (``lapsed`` says how many
    of them lapsed); like ``status()``, documents and bytes totals count root
    items only (successors re-count a share of their parent).
    """

    index_name: str | None
    total_work_items: int = 0
    pending_work_items: int = 0
    assigned_work_items: int = 0
    lapsed_work_items: int = 0
    completed_work_items: int = 0
    failed_work_items: int = 0
    total_documents: int = 0
    documents_processed: int = 0
    total_size_bytes: int = 0
    bytes_processed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "index_name": self.index_name,
            "total_work_items": self.total_work_items,
            "pending_work_items": self.pending_work_items,
            "assigned_work_items": self.assigned_work_items,
            "lapsed_work_items": self.lapsed_work_items,
            "completed_work_items": self.completed_work_items,
            "failed_work_items": self.failed_work_items,
            "total_documents": self.total_documents,
            "documents_processed": self.documents_processed,
            "total_size_bytes": self.total_size_bytes,
            "bytes_processed": self.bytes_processed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexProgress:
        return cls(
            index_name=data.get("index_name"),
            **{key: int(data.get(key) or 0) for key in cls.__dataclass_fields__ if key != "index_name"},
        )


@dataclass(frozen=True)
class ProgressSample:
    """The session's cumulative totals at one instant (at most one sample per 10 s, kept an hour)."""

    sampled_at: datetime
    documents_processed: int
    bytes_processed: int
    completed_work_items: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "sampled_at": format_time(self.sampled_at),
            "documents_processed": self.documents_processed,
            "bytes_processed": self.bytes_processed,
            "completed_work_items": self.completed_work_items,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProgressSample:
        when = parse_time(data["sampled_at"])
        assert when is not None
        return cls(
            sampled_at=when,
            documents_processed=int(data["documents_processed"]),
            bytes_processed=int(data["bytes_processed"]),
            completed_work_items=int(data["completed_work_items"]),
        )
