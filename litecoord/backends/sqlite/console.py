"""The console's reads and session controls on SQLite: history, workers, failure groups, pause.

:class:`ConsoleCalls` is mixed into :class:`~.coordinator.SqliteCoordinator`.
The attempts it reads are written by the triggers in ``schema.sql``, inside
the statements that end leases, so the lease cycle pays no statement of its
own for them; a running attempt is read from its item's lease. Rows become results through :mod:`litecoord.console`,
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

__all__ = ["ConsoleCalls", "LEASES", "RUNNING", "SPLIT_ATTEMPT"]

#: The hook for a split that does not go through a completion (a live ``split_work_item``):
#: run it in the split's transaction to end the holder's running attempt as ``split`` when the
#: split ends that lease. (A split that completes the item with ``successor_ids`` set, as RFS's
#: successors do, is recorded as ``split`` by the trigger without it; a split that leaves the
#: holder working on a smaller item keeps its attempt running, and needs nothing.)
#: Parameters: ``:session`` (row id), ``:seq`` (the item's row), ``:epoch``, ``:now``.
SPLIT_ATTEMPT = """
INSERT INTO attempts (session_id, item_seq, lease_epoch, worker_id, leased_at, ended_at, outcome,
                      documents_processed, bytes_processed)
SELECT session_id, seq, lease_epoch, worker_id, coalesce(leased_at, started_at, updated_at), :now, 'split',
       documents_processed, bytes_processed
FROM work_items WHERE seq = :seq AND session_id = :session AND lease_epoch = :epoch
  AND status = 'assigned' AND worker_id IS NOT NULL
ON CONFLICT (session_id, item_seq, lease_epoch) DO UPDATE SET outcome = excluded.outcome,
    ended_at = excluded.ended_at, documents_processed = excluded.documents_processed,
    bytes_processed = excluded.bytes_processed
WHERE ended_at IS NULL"""

_COLS = ", ".join(f"w.{c}" for c in COLUMNS)

# A row is written when its attempt ends (schema.sql): a running attempt is the item's lease,
# with the figures the previous attempt ended with (what the item had when this lease began:
# nothing changes them between two leases; 0 before the first). A lease with a row of its own
# (a running row from before version 5, or imported) is read from that row instead. The
# caller adds to WHERE; work_items is ``w``.
_RUNNING_FROM = """
FROM work_items w
LEFT JOIN attempts p ON p.session_id = w.session_id AND p.item_seq = w.seq AND p.lease_epoch = w.lease_epoch - 1
WHERE w.status = 'assigned' AND w.worker_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM attempts a
                  WHERE a.session_id = w.session_id AND a.item_seq = w.seq AND a.lease_epoch = w.lease_epoch)"""

# A running attempt's columns, in ATTEMPT_COLUMNS order.
_RUNNING_COLUMNS = """w.lease_epoch, w.worker_id, coalesce(w.leased_at, w.started_at, w.updated_at), NULL, 'running',
       coalesce(p.documents_processed, 0), coalesce(p.bytes_processed, 0), NULL"""

#: The running attempts of session ``?`` without a row: the item's row (``seq``), then ATTEMPT_COLUMNS.
RUNNING = f"SELECT w.seq, {_RUNNING_COLUMNS} {_RUNNING_FROM} AND w.session_id = ?"

#: The items under a lease (live or lapsed), each with the item's documents when its lease
#: began (its running row's, else what the previous attempt ended with; 0 for a first lease;
#: NULL when unknown, as for a lease older than the history): what status() judges the ETA
#: by. Reads the assigned index, so it costs the number of leases (about the number of workers).
LEASES = f"""
SELECT {_COLS}, CASE WHEN a.item_seq IS NOT NULL THEN a.documents_processed
                     WHEN p.item_seq IS NOT NULL THEN p.documents_processed
                     WHEN w.lease_epoch = 1 THEN 0 END
FROM work_items w
LEFT JOIN attempts a ON a.session_id = w.session_id AND a.item_seq = w.seq AND a.lease_epoch = w.lease_epoch
    AND a.ended_at IS NULL
LEFT JOIN attempts p ON p.session_id = w.session_id AND p.item_seq = w.seq AND p.lease_epoch = w.lease_epoch - 1
WHERE w.session_id = ? AND w.status = 'assigned'"""

_HISTORY = f"""
SELECT {', '.join(ATTEMPT_COLUMNS)} FROM attempts WHERE session_id = :session AND item_seq = :seq
UNION ALL
SELECT {_RUNNING_COLUMNS} {_RUNNING_FROM} AND w.seq = :seq
ORDER BY lease_epoch"""

# One pass over the session's attempts (one range of the primary key) and its leases, per worker.
_WORKER_ATTEMPTS = f"""
SELECT worker_id, count(*), sum(outcome IN ('completed', 'split')), sum(outcome = 'failed'),
       sum(outcome = 'released'), sum(outcome = 'lapsed'), min(leased_at), max(coalesce(ended_at, leased_at)),
       sum(coalesce(ended_at, :now) - leased_at),
       sum(CASE WHEN outcome IN ('completed', 'split') THEN documents_processed ELSE 0 END)
FROM (SELECT worker_id, leased_at, ended_at, outcome, documents_processed FROM attempts WHERE session_id = :session
      UNION ALL
      SELECT w.worker_id, coalesce(w.leased_at, w.started_at, w.updated_at), NULL, 'running', 0
      {_RUNNING_FROM} AND w.session_id = :session)
GROUP BY worker_id"""

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
            return conn.execute(_HISTORY, {"session": sid, "seq": row[0]}).fetchall()

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

