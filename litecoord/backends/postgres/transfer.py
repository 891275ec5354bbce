"""Export and import of whole sessions for the PostgreSQL backend (the format is :mod:`litecoord.transfer`).

Export reads one snapshot (a ``REPEATABLE READ READ ONLY`` transaction on a
connection of its own) through a server-side cursor, so a session of a
million items streams without being held in memory while workers keep
writing. Import checks the whole file first, then writes it in one
transaction: a bad file writes nothing. Rows go in through the counting
trigger, so the session's counter shards come out right; the session's own
times are then set to the exported ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ...errors import SessionNotEmptyError
from ...transfer import (
    ATTEMPT_COLUMNS,
    ITEM_COLUMNS,
    SAMPLE_COLUMNS,
    ImportSummary,
    import_rows,
    item_row,
    new_session_row,
    parse_session,
    session_records,
)
from .console import RUNNING

if TYPE_CHECKING:
    from .coordinator import PostgresCoordinator

__all__ = ["export_session", "import_session"]

# Above any real time: while rows go in, the counting trigger's progress sampling
# (when an item's updated_at passes last_sample_at + 10 s) must not write samples
# of its own; the exported history is restored instead.
_NO_SAMPLING = 2**62

_ITEM_SELECT = ", ".join(ITEM_COLUMNS)
_SESSION = """
SELECT s.id, s.lease_mode, s.acquire_order, s.max_attempts, s.created_at,
       (SELECT min(started_at) FROM session_counters WHERE session_id = s.id),
       (SELECT max(last_update) FROM session_counters WHERE session_id = s.id),
       s.last_sample_at, s.retry_delay_micros, s.max_retry_delay_micros, s.paused_at, s.split_min_documents
FROM sessions s WHERE s.name = %s::text"""
_SESSION_NAMES = (
    "lease_mode", "acquire_order", "max_attempts", "created_at", "started_at", "last_update", "last_sample_at",
    "retry_delay_micros", "max_retry_delay_micros", "paused_at", "split_min_documents",
)  # fmt: skip
# Attempts name their item by id in the file, by its row here. The running ones (the
# items' leases, console.RUNNING) go in the file as rows like the others.
_ATTEMPT_SELECT = f"""
SELECT w.work_item_id, {', '.join('a.' + c for c in ATTEMPT_COLUMNS[1:])}
FROM (SELECT item_seq, {', '.join(ATTEMPT_COLUMNS[1:])} FROM attempts WHERE session_id = %s::bigint
      UNION ALL {RUNNING}) a
JOIN work_items w ON w.seq = a.item_seq
ORDER BY a.item_seq, a.lease_epoch"""
_INSERT_ATTEMPT = """
INSERT INTO attempts (session_id, item_seq, lease_epoch, worker_id, leased_at, ended_at, outcome,
                      documents_processed, bytes_processed, error)
SELECT session_id, seq, %s::bigint, %s::text, %s::bigint, %s::bigint, %s::text, %s::bigint, %s::bigint, %s::text
FROM work_items WHERE session_id = %s::bigint AND work_item_id = %s::text
ON CONFLICT (session_id, item_seq, lease_epoch) DO UPDATE SET
    worker_id = EXCLUDED.worker_id, leased_at = EXCLUDED.leased_at, ended_at = EXCLUDED.ended_at,
    outcome = EXCLUDED.outcome, documents_processed = EXCLUDED.documents_processed,
    bytes_processed = EXCLUDED.bytes_processed, error = EXCLUDED.error"""


def export_session(coordinator: PostgresCoordinator) -> Iterator[dict[str, Any]]:
    """The records of the coordinator's session, from one snapshot."""
    store = coordinator.store
    store.run(lambda cur, now: None, now=0, idempotent=True)  # the schema exists and is this version
    conn = store.snapshot_connection()
    try:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        now = coordinator._now()
        if now is None:
            now = conn.execute("SELECT litecoord_now()").fetchone()[0]  # type: ignore[index]
        row = conn.execute(_SESSION, (coordinator.session,)).fetchone()
        if row is None:
            sid = None
            session: dict[str, Any] = new_session_row(now)
        else:
            sid = row[0]
            session = dict(zip(_SESSION_NAMES, row[1:], strict=True))

        def items() -> Iterator[dict[str, Any]]:
            if sid is None:
                return
            with conn.cursor(name="litecoord_export_items") as cursor:
                cursor.itersize = 2000
                cursor.execute(
                    f"SELECT {_ITEM_SELECT} FROM work_items WHERE session_id = %s::bigint ORDER BY seq", (sid,)
                )
                for values in cursor:
                    yield item_row(values)

        def attempts() -> Iterator[Any]:
            if sid is not None:
                yield from conn.execute(_ATTEMPT_SELECT, (sid, sid)).fetchall()

        def samples() -> Iterator[dict[str, Any]]:
            if sid is None:
                return
            rows = conn.execute(
                f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM progress_samples WHERE session_id = %s::bigint "
                "ORDER BY sampled_at",
                (sid,),
            )
            for values in rows:  # documents and bytes are NUMERIC: Decimal, made int again
                yield dict(zip(SAMPLE_COLUMNS, map(int, values), strict=True))

        yield from session_records(
            coordinator.session, session, items(), samples(), source="postgres", exported_at=now,
            attempts=attempts(),
        )  # fmt: skip
        conn.rollback()
    finally:
        store.discard(conn)


def import_session(coordinator: PostgresCoordinator, records: Iterable[Any], *, replace: bool) -> ImportSummary:
    """Write a checked session file into the coordinator's session in one transaction."""
    parsed = parse_session(records)  # everything is checked before anything is written
    session = parsed.session
    name = coordinator.session

    def write(cur: Any, now: int) -> ImportSummary:
        coordinator._session_id = None
        sid = coordinator._sid(cur, now)  # created with its counter shards when missing
        cur.execute("SELECT id FROM sessions WHERE id = %s::bigint FOR UPDATE", (sid,))
        cur.execute("SELECT count(*) FROM work_items WHERE session_id = %s::bigint", (sid,))
        replaced = cur.fetchone()[0]
        if replaced and not replace:
            raise SessionNotEmptyError(
                f"session {name!r} already holds {replaced} work item(s); "
                "import into another session, or replace them (--replace)",
                session_name=name,
            )
        cur.execute("UPDATE sessions SET last_sample_at = %s::bigint WHERE id = %s::bigint", (_NO_SAMPLING, sid))
        cur.execute("DELETE FROM work_items WHERE session_id = %s::bigint", (sid,))
        cur.execute("DELETE FROM progress_samples WHERE session_id = %s::bigint", (sid,))
        cur.execute("DELETE FROM attempts WHERE session_id = %s::bigint", (sid,))
        cur.execute(
            "UPDATE sessions SET lease_mode = %s::text, acquire_order = %s::text, max_attempts = %s::int, "
            "created_at = %s::bigint, retry_delay_micros = %s::bigint, max_retry_delay_micros = %s::bigint, "
            "split_min_documents = %s::bigint WHERE id = %s::bigint",
            (session["lease_mode"], session["acquire_order"], session["max_attempts"], session["created_at"],
             session["retry_delay_micros"], session["max_retry_delay_micros"], session["split_min_documents"], sid),
        )  # fmt: skip
        # COPY: the fastest way in, and row triggers (the counters) fire for it as for INSERT.
        with cur.copy(f"COPY work_items (session_id, order_key, {_ITEM_SELECT}) FROM STDIN") as copy:
            for row in import_rows(parsed):
                copy.write_row((sid, *row))
        # A running attempt in the file keeps its row: it holds the figures its lease began with.
        if parsed.attempts:
            cur.executemany(_INSERT_ATTEMPT, [(*row[1:], sid, row[0]) for row in parsed.attempts])
        if parsed.samples:
            cur.executemany(
                f"INSERT INTO progress_samples (session_id, {', '.join(SAMPLE_COLUMNS)}) "
                "VALUES (%s::bigint, %s::bigint, %s::bigint, %s::bigint, %s::bigint)",
                [(sid, *row) for row in parsed.samples],
            )
        # The session's own times, as exported (the trigger derived its own while rows went in).
        cur.execute(
            "UPDATE session_counters SET started_at = NULL, last_update = NULL WHERE session_id = %s::bigint",
            (sid,),
        )
        cur.execute(
            "UPDATE session_counters SET started_at = %s::bigint, last_update = %s::bigint "
            "WHERE session_id = %s::bigint AND shard = 0",
            (session["started_at"], session["last_update"], sid),
        )
        cur.execute(
            "UPDATE sessions SET last_sample_at = %s::bigint, paused_at = %s::bigint WHERE id = %s::bigint",
            (session["last_sample_at"], session["paused_at"], sid),
        )
        cur.execute(
            "SELECT count(*) FROM work_items WHERE session_id = %s::bigint AND status = 'assigned' "
            "AND lease_expiry > %s::bigint",
            (sid, now),
        )
        live = cur.fetchone()[0]
        return ImportSummary(name, len(parsed.items), len(parsed.samples), live, replaced)

    return coordinator.store.run(write, now=coordinator._now(), idempotent=False, create=True)
