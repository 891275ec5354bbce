"""Export and import of whole sessions for the SQLite backend (the format is :mod:`litecoord.transfer`).

Export reads one snapshot through a connection of its own (a read
transaction held while the caller consumes the records, so a session of a
million items streams without being held in memory, and workers keep
writing meanwhile: WAL readers block no writer). Import checks the whole
file first, then writes it in one transaction: a bad file writes nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ...errors import SessionNotEmptyError
from ...transfer import (
    ATTEMPT_COLUMNS,
    ITEM_COLUMNS,
    SAMPLE_COLUMNS,
    SESSION_COLUMNS,
    ImportSummary,
    import_rows,
    item_row,
    new_session_row,
    parse_session,
    session_records,
)
from .console import RUNNING
from .store import Store

__all__ = ["export_session", "import_session"]

# Above any real time: while rows go in, the counter triggers' progress sampling
# (which fires when last_update passes last_sample_at + 10 s) must not write
# samples of its own; the exported history is restored instead.
_NO_SAMPLING = 2**62

_ITEM_SELECT = ", ".join(ITEM_COLUMNS)
# Attempts name their item by id in the file, by its row here. The running ones (the
# items' leases, console.RUNNING) go in the file as rows like the others.
_ATTEMPT_SELECT = f"""
SELECT w.work_item_id, {', '.join('a.' + c for c in ATTEMPT_COLUMNS[1:])}
FROM (SELECT item_seq, {', '.join(ATTEMPT_COLUMNS[1:])} FROM attempts WHERE session_id = ?
      UNION ALL {RUNNING}) a
JOIN work_items w ON w.seq = a.item_seq
ORDER BY a.item_seq, a.lease_epoch"""
_INSERT_ATTEMPT = f"""
INSERT OR REPLACE INTO attempts (session_id, item_seq, {', '.join(ATTEMPT_COLUMNS[1:])})
SELECT session_id, seq, ?, ?, ?, ?, ?, ?, ?, ? FROM work_items WHERE session_id = ? AND work_item_id = ?"""
_INSERT_ITEM = (
    f"INSERT INTO work_items (session_id, order_key, {_ITEM_SELECT}) "
    f"VALUES (?, ?, {', '.join('?' for _ in ITEM_COLUMNS)})"
)


def export_session(store: Store, session_name: str, now: int) -> Iterator[dict[str, Any]]:
    """The records of ``session_name`` (see :func:`litecoord.transfer.session_records`), from one snapshot."""
    store.check_file()  # an export only reads: a file that is not litecoord's is refused, unchanged
    uri = Path(store.path).resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("BEGIN")  # one snapshot for the session row, every item and every sample
        names = ("id",) + SESSION_COLUMNS
        row = conn.execute(f"SELECT {', '.join(names)} FROM sessions WHERE name = ?", (session_name,)).fetchone()
        if row is None:
            session = new_session_row(now)
            sid = None
        else:
            session = dict(zip(names, row, strict=True))
            sid = session.pop("id")

        def items() -> Iterator[dict[str, Any]]:
            if sid is None:
                return
            cursor = conn.execute(f"SELECT {_ITEM_SELECT} FROM work_items WHERE session_id = ? ORDER BY seq", (sid,))
            for values in cursor:
                yield item_row(values)

        def attempts() -> Iterator[Any]:
            if sid is not None:
                yield from conn.execute(_ATTEMPT_SELECT, (sid, sid))

        def samples() -> Iterator[dict[str, Any]]:
            if sid is None:
                return
            cursor = conn.execute(
                f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM progress_samples WHERE session_id = ? ORDER BY sampled_at",
                (sid,),
            )
            for values in cursor:
                yield dict(zip(SAMPLE_COLUMNS, values, strict=True))

        yield from session_records(
            session_name, session, items(), samples(), source="sqlite", exported_at=now, attempts=attempts()
        )
    finally:
        conn.close()


def import_session(
    store: Store, session_name: str, records: Iterable[Any], now: int, *, replace: bool
) -> ImportSummary:
    """Write a checked session file into ``session_name`` in one transaction."""
    parsed = parse_session(records)  # everything is checked before anything is written
    session = parsed.session
    sample_rows = parsed.samples

    def write(conn: sqlite3.Connection) -> ImportSummary:
        found = conn.execute("SELECT id FROM sessions WHERE name = ?", (session_name,)).fetchone()
        replaced = 0
        if found is None:
            sid = conn.execute(
                "INSERT INTO sessions (name, created_at, last_sample_at) VALUES (?, ?, ?) RETURNING id",
                (session_name, session["created_at"], _NO_SAMPLING),
            ).fetchone()[0]
        else:
            sid = found[0]
            replaced = conn.execute("SELECT count(*) FROM work_items WHERE session_id = ?", (sid,)).fetchone()[0]
            if replaced and not replace:
                raise SessionNotEmptyError(
                    f"session {session_name!r} already holds {replaced} work item(s); "
                    "import into another session, or replace them (--replace)",
                    session_name=session_name,
                )
            conn.execute("DELETE FROM work_items WHERE session_id = ?", (sid,))
            conn.execute("DELETE FROM progress_samples WHERE session_id = ?", (sid,))
            conn.execute("DELETE FROM attempts WHERE session_id = ?", (sid,))
            conn.execute("UPDATE sessions SET last_sample_at = ? WHERE id = ?", (_NO_SAMPLING, sid))
        conn.execute(
            "UPDATE sessions SET lease_mode = ?, acquire_order = ?, max_attempts = ?, created_at = ?, "
            "retry_delay_micros = ?, max_retry_delay_micros = ?, split_min_documents = ? WHERE id = ?",
            (session["lease_mode"], session["acquire_order"], session["max_attempts"], session["created_at"],
             session["retry_delay_micros"], session["max_retry_delay_micros"], session["split_min_documents"], sid),
        )  # fmt: skip
        # The rows are made afresh on each run of this function: the store may run it again after a busy rollback.
        conn.executemany(_INSERT_ITEM, ((sid, *row) for row in import_rows(parsed)))
        # A running attempt in the file keeps its row: it holds the figures its lease began with.
        conn.executemany(_INSERT_ATTEMPT, ((*row[1:], sid, row[0]) for row in parsed.attempts))
        conn.executemany(
            f"INSERT INTO progress_samples (session_id, {', '.join(SAMPLE_COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
            ((sid, *row) for row in sample_rows),
        )
        # The session's own times, as exported (the triggers kept their own while rows went in).
        conn.execute(
            "UPDATE sessions SET started_at = ?, last_update = ?, last_sample_at = ?, paused_at = ? WHERE id = ?",
            (session["started_at"], session["last_update"], session["last_sample_at"], session["paused_at"], sid),
        )
        live = conn.execute(
            "SELECT count(*) FROM work_items WHERE session_id = ? AND status = 'assigned' AND lease_expiry > ?",
            (sid, now),
        ).fetchone()[0]
        return ImportSummary(session_name, len(parsed.items), len(sample_rows), live, replaced)

    store.ensure_schema()  # an import may be the file's first write; reads never create the schema
    return store.write(write)
