"""Prometheus metrics, through ``prometheus_client`` (``pip install 'litecoord[server]'``).

:class:`CoordinatorCollector` reads the coordinator at scrape time (one
``status()`` and the leases of each session, never every item), so the
figures are those of ``GET …/status`` at that instant. What reads more than
that (the coverage audit, the failed attempts in the history) is kept per
session and read again only when the session's figures moved. ``litecoord serve`` is one process with threads, so one
registry per app serves everything (no multiprocess mode).

Series (names after the conventions queue exporters use):

* ``litecoord_work_items{session,status}``: items by state; the states
  partition the session: ``pending``, ``assigned`` (live lease),
  ``lease_expired``, ``completed``, ``failed``.
* ``litecoord_documents_processed_total{session}``, ``litecoord_bytes_processed_total{session}``
  and the expected totals ``litecoord_documents_expected``, ``litecoord_bytes_expected``.
* ``litecoord_lease_expired_items``, ``litecoord_stalled_items``,
  ``litecoord_silent_items`` (see :mod:`litecoord.monitor` for the flags),
  ``litecoord_retrying_items`` (failed once, waiting out the retry delay),
  ``litecoord_eta_seconds`` (when known).
* ``litecoord_coverage_gaps{session}`` and ``litecoord_coverage_ok{session}``:
  the coverage audit (``verify_coverage()``), for a session with nothing left
  pending or leased only: while work runs every unfinished range is a gap by
  definition, and the audit reads every item, so it is read once per change
  of a finished session (kept until its counts or last update move).
* ``litecoord_work_item_failures_total{session}``: failed attempts (from each
  item's history, so retries do not undo it; ``delete-session`` resets it),
  counted again only when the session's figures moved (every failure moves them).
* ``litecoord_last_progress_timestamp_seconds{session}``: when the session's
  figures last moved (Unix time): alert on ``time() - it`` while work remains.
* ``litecoord_build_info{version,python}``: always 1; the labels say what runs.
* From the server only: ``litecoord_http_requests_total{route,code}``
  (``code``: the HTTP status, as Prometheus' own exporters name it),
  ``litecoord_http_request_duration_seconds{route}`` (``route`` is the
  route's template, so its values are bounded).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import monitor

__all__ = ["CONTENT_TYPE", "CoordinatorCollector", "ServerMetrics", "prometheus_text"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Request durations: from a cached read (under a millisecond) to a busy file.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class CoordinatorCollector(Collector):
    """The work items of every session of ``coordinator``'s store, read at each scrape.

    ``coordinator`` is any backend with ``list_sessions()`` and ``bind(session=)``
    (``SqliteCoordinator``, ``HttpCoordinator``).
    """

    def __init__(self, coordinator: Any, *, stall_after: timedelta = monitor.STALL_AFTER) -> None:
        self.coordinator = coordinator
        self.stall_after = stall_after
        #: The last audit of each finished session, by what would change it: {session: (key, report)}.
        self._audits: dict[str, tuple[Any, Any]] = {}
        #: The failed attempts of each session, by the figures every failure moves: {session: (key, count)}.
        self._failures: dict[str, tuple[Any, int]] = {}

    def _failed_attempts(self, coord: Any, status: Any, created_at: Any) -> int:
        """The session's failed attempts, read only when its figures moved since the last scrape.

        The count reads the session's whole history, so a store of long or many finished
        sessions would pay a scan per session and scrape for a number that cannot have
        changed: a failure changes its item's state (leased to pending or failed) and
        time, so it moves these figures. Read after ``status``: a failure between the two
        reads is counted now and the next scrape, seeing the figures moved, reads again.
        """
        key = (
            created_at, status.last_update, status.total_work_items, status.pending_work_items,
            status.assigned_work_items, status.completed_work_items, status.failed_work_items,
            status.retrying_work_items, status.total_documents_processed, status.total_bytes_processed,
        )  # fmt: skip
        cached = self._failures.get(status.session_name)
        if cached is None or cached[0] != key:
            # One count where the backend has it (SQLite, PostgreSQL); else the workers view's grouped read.
            count = getattr(coord, "_failed_attempts", None)
            value = count() if count is not None else sum(w.failed for w in coord.list_workers())
            cached = self._failures[status.session_name] = (key, value)
        return cached[1]

    def _audit(self, coord: Any, status: Any) -> Any:
        """The coverage report of a finished session (``None`` while work remains), read once per change."""
        if status.finished_at is None:
            return None
        key = (status.last_update, status.total_work_items, status.completed_work_items, status.failed_work_items)
        cached = self._audits.get(status.session_name)
        if cached is None or cached[0] != key:
            cached = self._audits[status.session_name] = (key, coord.verify_coverage())
        return cached[1]

    def describe(self) -> list[Metric]:
        return []  # read nothing at registration; the families are built per scrape

    def collect(self) -> Iterator[Metric]:
        items = GaugeMetricFamily(
            "litecoord_work_items",
            "Work items by state (pending, assigned = live lease, lease_expired, completed, failed)",
            labels=["session", "status"],
        )
        docs = CounterMetricFamily("litecoord_documents_processed", "Documents processed", labels=["session"])
        size = CounterMetricFamily("litecoord_bytes_processed", "Bytes processed", labels=["session"])
        docs_expected = GaugeMetricFamily(
            "litecoord_documents_expected",
            "Documents of the session's items (roots and live-split pieces)",
            labels=["session"],
        )
        size_expected = GaugeMetricFamily(
            "litecoord_bytes_expected", "Bytes of the session's items (roots and live-split pieces)", labels=["session"]
        )
        lapsed = GaugeMetricFamily(
            "litecoord_lease_expired_items", "Assigned items whose lease lapsed", labels=["session"]
        )
        stalled = GaugeMetricFamily(
            "litecoord_stalled_items",
            f"Live leases whose progress stood still for {self.stall_after.total_seconds():g}s under heartbeats",
            labels=["session"],
        )
        silent = GaugeMetricFamily(
            "litecoord_silent_items",
            "Live leases without a heartbeat for longer than a third of the lease",
            labels=["session"],
        )
        retrying = GaugeMetricFamily(
            "litecoord_retrying_items",
            "Pending items that failed and wait out their retry delay (counted as pending above)",
            labels=["session"],
        )
        eta = GaugeMetricFamily("litecoord_eta_seconds", "Estimated time to completion", labels=["session"])
        failures = CounterMetricFamily(
            "litecoord_work_item_failures", "Failed attempts recorded in the session's history", labels=["session"]
        )
        paused = GaugeMetricFamily(
            "litecoord_session_paused", "1 while the session is paused (acquire hands out nothing)", labels=["session"]
        )
        gaps = GaugeMetricFamily(
            "litecoord_coverage_gaps",
            "Ranges of documents no completed item covered (the coverage audit of a finished session)",
            labels=["session"],
        )
        covered = GaugeMetricFamily(
            "litecoord_coverage_ok", "1 when the coverage audit of a finished session is ok, else 0", labels=["session"]
        )
        moved = GaugeMetricFamily(
            "litecoord_last_progress_timestamp_seconds",
            "When the session's items or progress last changed (Unix time)",
            labels=["session"],
        )
        seen = set()
        for info in self.coordinator.list_sessions():
            name = info.session_name
            seen.add(name)
            coord = self.coordinator.bind(session=name)
            status = coord.status()
            assert status.as_of is not None
            counts = monitor.attention_counts(coord, status.as_of, self.stall_after)
            expired = status.expired_lease_work_items
            for state, value in (
                ("pending", status.pending_work_items - expired),
                ("assigned", status.assigned_work_items),
                ("lease_expired", expired),
                ("completed", status.completed_work_items),
                ("failed", status.failed_work_items),
            ):
                items.add_metric([name, state], value)
            docs.add_metric([name], status.total_documents_processed)
            size.add_metric([name], status.total_bytes_processed)
            docs_expected.add_metric([name], status.total_documents)
            size_expected.add_metric([name], status.total_size_bytes)
            lapsed.add_metric([name], expired)
            stalled.add_metric([name], counts["stalled"])
            silent.add_metric([name], counts["silent"])
            retrying.add_metric([name], status.retrying_work_items)
            if status.eta_seconds is not None:
                eta.add_metric([name], status.eta_seconds)
            paused.add_metric([name], 1 if status.paused else 0)
            report = self._audit(coord, status)
            if report is not None:
                gaps.add_metric([name], report.gap_count)
                covered.add_metric([name], 1 if report.ok else 0)
            if status.last_update is not None:
                moved.add_metric([name], status.last_update.timestamp())
            # From the session's history: failures stay counted after a retry.
            failures.add_metric([name], self._failed_attempts(coord, status, info.created_at))
        yield from (items, docs, size, docs_expected, size_expected, lapsed, stalled, silent, retrying, eta, paused)
        yield from (gaps, covered, failures, moved)
        yield build_info()
        # Sessions deleted since the last scrape keep nothing here.
        for gone in set(self._failures) - seen:
            del self._failures[gone]


def build_info() -> Metric:
    """``litecoord_build_info``: 1, labelled with the versions running (the usual ``*_build_info`` idiom)."""
    import platform

    from . import __version__

    info = GaugeMetricFamily(
        "litecoord_build_info", "litecoord's version and Python's; always 1", labels=["version", "python"]
    )
    info.add_metric([__version__, platform.python_version()], 1)
    return info


class ServerMetrics:
    """The metrics of one ``litecoord serve`` app: its store's work items and its requests."""

    def __init__(self, coordinator: Any, *, stall_after: timedelta = monitor.STALL_AFTER) -> None:
        # A registry of its own, not the global one: several apps (tests) in one process stay apart.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(CoordinatorCollector(coordinator, stall_after=stall_after))
        self.requests = Counter(
            "litecoord_http_requests",
            "HTTP requests answered, by route template and HTTP status code",
            ["route", "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "litecoord_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        # Requests are counted here first, and into the series above when the metrics are
        # read (render) or a thousand have waited. A deque's append takes no lock of
        # ours; prometheus_client's inc() and observe() take one per value. Per request,
        # with 8 request threads, they measured 10-35 us of the app's CPU per request
        # (1.6-1.8 us alone); batched, about 9 us less (BENCHMARKS.md, http-parts).
        self._pending: deque[tuple[str, int, float]] = deque()
        self._drain_lock = threading.Lock()
        # Each request's series, looked up once: labels() checks and converts its arguments.
        self._series: dict[tuple[str, int], tuple[Any, Any]] = {}

    #: Observations that may wait before a request thread moves them into the series.
    PENDING_LIMIT = 1024

    def observe(self, route: str, status: int, seconds: float) -> None:
        self._pending.append((route, status, seconds))
        # Past the limit one request moves the queue; the others do not wait for it. Whoever
        # moved it looks again after letting go of the lock, so an observation added meanwhile
        # (by a request that found the lock taken) never leaves the queue past the limit.
        while len(self._pending) > self.PENDING_LIMIT and self._drain_lock.acquire(blocking=False):
            try:
                self._drain()
            finally:
                self._drain_lock.release()

    def _drain(self) -> None:
        """Move the observations waiting now into the series (under the drain lock: in order)."""
        pending, series_of = self._pending, self._series
        for _ in range(len(pending)):  # not those arriving meanwhile: this request has its own to answer
            route, status, seconds = pending.popleft()
            series = series_of.get((route, status))
            if series is None:
                series = series_of[route, status] = (
                    self.requests.labels(route, str(status)),
                    self.duration.labels(route),
                )
            series[0].inc()
            series[1].observe(seconds)

    def render(self) -> bytes:
        with self._drain_lock:
            self._drain()  # every request answered before this one is counted
        return generate_latest(self.registry)


def prometheus_text(coordinator: Any, *, stall_after: timedelta = monitor.STALL_AFTER) -> str:
    """The work-item metrics of every session, in the text format (node_exporter's textfile collector)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CoordinatorCollector(coordinator, stall_after=stall_after))
    return generate_latest(registry).decode("utf-8")
