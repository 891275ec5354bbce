"""The console's reads and session controls on PostgreSQL: history, workers, failure groups, pause.

:class:`ConsoleCalls` is mixed into :class:`~.coordinator.PostgresCoordinator`.
The attempts it reads are written by the triggers in ``schema.sql`` inside
the statements that end leases (no round trip of their own); a running
attempt is read from its item's lease. Rows become
results through :mod:`litecoord.console`, shared with the SQLite backend.
"""

from __future__ import annotations

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

#: The hook for a live ``split_work_item`` (see the SQLite backend's SPLIT_ATTEMPT): ends the
#: holder's running attempt as ``split`` in the split's transaction, when the split ends that lease.
SPLIT_ATTEMPT = """
INSERT INTO attempts AS a (session_id, item_seq, lease_epoch, worker_id, leased_at, ended_at, outcome,
                           documents_processed, bytes_processed)
SELECT session_id, seq, lease_epoch, worker_id, coalesce(leased_at, started_at, updated_at), %(now)s::bigint,
       'split', documents_processed, bytes_processed
FROM work_items WHERE seq = %(seq)s::bigint AND session_id = %(session)s::bigint
  AND lease_epoch = %(epoch)s::bigint AND status = 'assigned' AND worker_id IS NOT NULL
ON CONFLICT (session_id, item_seq, lease_epoch) DO UPDATE SET outcome = EXCLUDED.outcome,
    ended_at = EXCLUDED.ended_at, documents_processed = EXCLUDED.documents_processed,
    bytes_processed = EXCLUDED.bytes_processed
WHERE a.ended_at IS NULL"""

_COLS = ", ".join(f"w.{c}" for c in COLUMNS)

# A row is written when its attempt ends (schema.sql): a running attempt is the item's lease,
# with the figures the previous attempt ended with (what the item had when this lease began:
# nothing changes them between two leases; 0 before the first). A lease with a row of its own
# (a running row from before version 4, or imported) is read from that row instead. The
# caller adds to WHERE; work_items is ``w``.
_RUNNING_FROM = """
FROM work_items w
LEFT JOIN attempts p ON p.session_id = w.session_id AND p.item_seq = w.seq AND p.lease_epoch = w.lease_epoch - 1
WHERE w.status = 'assigned' AND w.worker_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM attempts a
                  WHERE a.session_id = w.session_id AND a.item_seq = w.seq AND a.lease_epoch = w.lease_epoch)"""

# A running attempt's columns, in ATTEMPT_COLUMNS order.
_RUNNING_COLUMNS = """w.lease_epoch, w.worker_id, coalesce(w.leased_at, w.started_at, w.updated_at), NULL::bigint,
       'running', coalesce(p.documents_processed, 0), coalesce(p.bytes_processed, 0), NULL::text"""

#: The running attempts of session ``%s`` without a row: the item's row (``seq``), then ATTEMPT_COLUMNS.
RUNNING = f"SELECT w.seq, {_RUNNING_COLUMNS} {_RUNNING_FROM} AND w.session_id = %s::bigint"

#: The items under a lease (live or lapsed), each with its documents when the lease began (its
#: running row's, else what the previous attempt ended with; 0 for a first lease; NULL when
#: unknown, as for a lease older than the history): what status() judges the ETA by.
LEASES = f"""
SELECT {_COLS}, CASE WHEN a.item_seq IS NOT NULL THEN a.documents_processed
                     WHEN p.item_seq IS NOT NULL THEN p.documents_processed
                     WHEN w.lease_epoch = 1 THEN 0 END
FROM work_items w
LEFT JOIN attempts a ON a.session_id = w.session_id AND a.item_seq = w.seq AND a.lease_epoch = w.lease_epoch
    AND a.ended_at IS NULL
LEFT JOIN attempts p ON p.session_id = w.session_id AND p.item_seq = w.seq AND p.lease_epoch = w.lease_epoch - 1
WHERE w.session_id = %s::bigint AND w.status = 'assigned'"""

_HISTORY = f"""
SELECT {', '.join(ATTEMPT_COLUMNS)} FROM attempts
WHERE session_id = %(session)s::bigint AND item_seq = %(seq)s::bigint
UNION ALL
SELECT {_RUNNING_COLUMNS} {_RUNNING_FROM} AND w.seq = %(seq)s::bigint
ORDER BY lease_epoch"""

_WORKER_ATTEMPTS = f"""
SELECT worker_id, count(*), count(*) FILTER (WHERE outcome IN ('completed', 'split')),
       count(*) FILTER (WHERE outcome = 'failed'), count(*) FILTER (WHERE outcome = 'released'),
       count(*) FILTER (WHERE outcome = 'lapsed'), min(leased_at), max(coalesce(ended_at, leased_at)),
       sum(coalesce(ended_at, %(now)s::bigint) - leased_at),
       coalesce(sum(documents_processed) FILTER (WHERE outcome IN ('completed', 'split')), 0)
FROM (SELECT worker_id, leased_at, ended_at, outcome, documents_processed FROM attempts
      WHERE session_id = %(session)s::bigint
      UNION ALL
      SELECT w.worker_id, coalesce(w.leased_at, w.started_at, w.updated_at), NULL, 'running', 0
      {_RUNNING_FROM} AND w.session_id = %(session)s::bigint) AS every
GROUP BY worker_id"""

_WORKER_LEASES = """
SELECT worker_id, work_item_id, lease_expiry, last_heartbeat, leased_at, lease_micros FROM work_items
WHERE session_id = %s::bigint AND status = 'assigned'"""

_FAILURES = """
SELECT work_item_id, status, last_error FROM work_items
WHERE session_id = %s::bigint AND (status = 'failed' OR (status = 'pending' AND failure_count > 0))
ORDER BY seq"""


class ConsoleCalls:
    """History, workers, failure groups, bulk retry and pause for :class:`PostgresCoordinator`."""

    session: str

    def _read(self, fn: Any, *, idempotent: bool = True) -> Any:
        raise NotImplementedError

    _write = _read

    def _existing(self, cur: Any, now: int) -> int:
        raise NotImplementedError

    def work_item_history(self, work_item_id: str) -> list[Attempt]:
        work_item_id = check.work_item_id(work_item_id)

        def read(cur: Any, now: int) -> list[Any]:
            sid = self._existing(cur, now)
            cur.execute("SELECT seq FROM work_items WHERE session_id = %s::bigint AND work_item_id = %s::text",
                        (sid, work_item_id))  # fmt: skip
            row = cur.fetchone()
            if row is None:
                raise not_found(self.session, work_item_id)
            cur.execute(_HISTORY, {"session": sid, "seq": row[0]})
            return cur.fetchall()

        return [attempt_from_row(work_item_id, r) for r in self._read(read)]

    def list_workers(self) -> list[WorkerInfo]:
        def read(cur: Any, now: int) -> list[WorkerInfo]:
            sid = self._existing(cur, now)
            cur.execute(_WORKER_ATTEMPTS, {"session": sid, "now": now})
            attempts = cur.fetchall()
            cur.execute(_WORKER_LEASES, (sid,))
            return workers_from(attempts, cur.fetchall(), now)

        return self._read(read)

    def _failed_attempts(self) -> int:
        """Failed attempts in the session's history (the /metrics failures counter): one count, no grouping."""

        def read(cur: Any, now: int) -> int:
            cur.execute("SELECT count(*) FROM attempts WHERE session_id = %s::bigint AND outcome = 'failed'",
                        (self._existing(cur, now),))  # fmt: skip
            return int(cur.fetchone()[0])

        return int(self._read(read))

    def failure_groups(self) -> list[FailureGroup]:
        def read(cur: Any, now: int) -> list[Any]:
            cur.execute(_FAILURES, (self._existing(cur, now),))
            return cur.fetchall()

        return failure_groups_from(self._read(read))

    def retry_failed_work_items(self, error_pattern: str | None = None) -> list[str]:
        wanted = None if error_pattern is None else group_of(check.error_text(error_pattern))

        def retry(cur: Any, now: int) -> list[str]:
            sid = self._existing(cur, now)
            cur.execute(
                "SELECT seq, work_item_id, last_error FROM work_items WHERE session_id = %s::bigint "
                "AND status = 'failed' ORDER BY seq FOR UPDATE",
                (sid,),
            )
            chosen = [(seq, name) for seq, name, error in cur.fetchall() if wanted in (None, group_of(error))]
            if chosen:
                cur.execute(
                    "UPDATE work_items SET status = 'pending', failure_count = 0, next_attempt_at = NULL, "
                    "updated_at = %s::bigint WHERE seq = ANY(%s::bigint[])",
                    (now, [seq for seq, _ in chosen]),
                )
            return [name for _, name in chosen]

        # Not repeated after a commit that may have happened: the second run would find none to retry.
        return self._write(retry, idempotent=False)

    def pause(self) -> None:
        def pause(cur: Any, now: int) -> None:
            cur.execute(
                "UPDATE sessions SET paused_at = %s::bigint WHERE id = %s::bigint AND paused_at IS NULL",
                (now, self._existing(cur, now)),
            )

        self._write(pause)

    def resume(self) -> None:
        def resume(cur: Any, now: int) -> None:
            cur.execute("UPDATE sessions SET paused_at = NULL WHERE id = %s::bigint", (self._existing(cur, now),))

        self._write(resume)

