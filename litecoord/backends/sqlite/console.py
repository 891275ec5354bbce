"""The console's reads and session controls on SQLite: history, workers, failure groups, pause.

:class:`ConsoleCalls` is mixed into :class:`~.coordinator.SqliteCoordinator`.
The attempts it reads are written by the triggers in ``schema.sql``, inside
the statements that change leases, so the lease cycle pays no statement of
its own for them. Rows become results through :mod:`litecoord.console`,
shared with the PostgreSQL backend.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ... import validation as check
from ...console import (
    ATTEMPT_COLUMNS,
    Attempt,
    FailureGroup,
    WorkerInfo,
    attempt_from_row,
    failure_groups_from,
    group_of,
    workers_from,
)
from ..common import COLUMNS, not_found

__all__ = ["ConsoleCalls", "LEASES", "SPLIT_ATTEMPT"]

#: The hook for a split that does not go through a completion (a live ``split_work_item``):
#: run it in the split's transaction to end the holder's running attempt as ``split`` when the
#: split ends that lease. (A split that completes the item with ``successor_ids`` set, as RFS's
#: successors do, is recorded as ``split`` by the trigger without it; a split that leaves the
#: holder working on a smaller item keeps its attempt running, and needs nothing.)
#: Parameters: ``:session`` (row id), ``:seq`` (the item's row), ``:epoch``, ``:now``.
SPLIT_ATTEMPT = """
UPDATE attempts SET outcome = 'split', ended_at = :now,
    documents_processed = (SELECT documents_processed FROM work_items WHERE seq = :seq),
    bytes_processed = (SELECT bytes_processed FROM work_items WHERE seq = :seq)
WHERE session_id = :session AND item_seq = :seq AND lease_epoch = :epoch AND ended_at IS NULL"""

_COLS = ", ".join(f"w.{c}" for c in COLUMNS)

#: The items under a lease (live or lapsed), each with the item's documents when its lease
#: began (from its running attempt): what status() judges the ETA by. Reads the assigned
#: index, so it costs the number of leases (about the number of workers).
LEASES = f"""
SELECT {_COLS}, a.documents_processed FROM work_items w
LEFT JOIN attempts a ON a.session_id = w.session_id AND a.item_seq = w.seq AND a.lease_epoch = w.lease_epoch
WHERE w.session_id = ? AND w.status = 'assigned'"""

_HISTORY = f"""
SELECT {', '.join(ATTEMPT_COLUMNS)} FROM attempts
WHERE session_id = ? AND item_seq = ? ORDER BY lease_epoch"""

# One pass over the session's attempts (one range of the primary key), per worker.
_WORKER_ATTEMPTS = """
SELECT worker_id, count(*), sum(outcome IN ('completed', 'split')), sum(outcome = 'failed'),
       sum(outcome = 'released'), sum(outcome = 'lapsed'), min(leased_at), max(coalesce(ended_at, leased_at)),
       sum(coalesce(ended_at, :now) - leased_at),
       sum(CASE WHEN outcome IN ('completed', 'split') THEN documents_processed ELSE 0 END)
FROM attempts WHERE session_id = :session GROUP BY worker_id"""

_WORKER_LEASES = """
SELECT worker_id, work_item_id, lease_expiry, last_heartbeat, leased_at, lease_micros FROM work_items
WHERE session_id = ? AND status = 'assigned'"""

# Failed items (their partial index) and retrying ones: pending after a failure.
_FAILURES = """
SELECT work_item_id, status, last_error FROM work_items
WHERE session_id = ? AND (status = 'failed' OR (status = 'pending' AND failure_count > 0))
ORDER BY seq"""


class ConsoleCalls:
    """History, workers, failure groups, bulk retry and pause for :class:`SqliteCoordinator`."""

    session: str
    _store: Any

    def _sid(self) -> int:
        raise NotImplementedError

    def _now(self) -> int:
        raise NotImplementedError

    def work_item_history(self, work_item_id: str) -> list[Attempt]:
        work_item_id = check.work_item_id(work_item_id)
        sid = self._sid()

        def read(conn: sqlite3.Connection) -> list[Any]:
            row = conn.execute("SELECT seq FROM work_items WHERE session_id = ? AND work_item_id = ?",
                               (sid, work_item_id)).fetchone()  # fmt: skip
            if row is None:
                raise not_found(self.session, work_item_id)
            return conn.execute(_HISTORY, (sid, row[0])).fetchall()

        return [attempt_from_row(work_item_id, r) for r in self._store.read(read)]

    def list_workers(self) -> list[WorkerInfo]:
        sid = self._sid()
        now = self._now()

        def read(conn: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            attempts = conn.execute(_WORKER_ATTEMPTS, {"session": sid, "now": now}).fetchall()
            return attempts, conn.execute(_WORKER_LEASES, (sid,)).fetchall()

        attempts, leases = self._store.read(read)
        return workers_from(attempts, leases, now)

    def _failed_attempts(self) -> int:
        """Failed attempts in the session's history (the /metrics failures counter): one count, no grouping."""
        sid = self._sid()
        query = "SELECT count(*) FROM attempts WHERE session_id = ? AND outcome = 'failed'"
        return int(self._store.read(lambda conn: conn.execute(query, (sid,)).fetchone()[0]))

    def failure_groups(self) -> list[FailureGroup]:
        sid = self._sid()
        return failure_groups_from(self._store.read(lambda conn: conn.execute(_FAILURES, (sid,)).fetchall()))

    def retry_failed_work_items(self, error_pattern: str | None = None) -> list[str]:
        wanted = None if error_pattern is None else group_of(check.error_text(error_pattern))
        sid = self._sid()
        now = self._now()

        def retry(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT seq, work_item_id, last_error FROM work_items WHERE session_id = ? AND status = 'failed' "
                "ORDER BY seq",
                (sid,),
            ).fetchall()
            chosen = [(seq, name) for seq, name, error in rows if wanted in (None, group_of(error))]
            conn.executemany(
                "UPDATE work_items SET status = 'pending', failure_count = 0, next_attempt_at = NULL, updated_at = ? "
                "WHERE seq = ?",
                [(now, seq) for seq, _ in chosen],
            )
            return [name for _, name in chosen]

        return self._store.write(retry)

    def pause(self) -> None:
        sid = self._sid()
        now = self._now()
        self._store.write(
            lambda conn: conn.execute(
                "UPDATE sessions SET paused_at = ? WHERE id = ? AND paused_at IS NULL", (now, sid)
            )
        )

    def resume(self) -> None:
        sid = self._sid()
        self._store.write(lambda conn: conn.execute("UPDATE sessions SET paused_at = NULL WHERE id = ?", (sid,)))

