"""The SQL of :class:`~.coordinator.SqliteCoordinator`: the statements its calls run, written once.

sqlite3 named (``:now``) or positional parameters; each statement is plain
text so that sqlite3 caches it prepared on the thread's connection (why the
hot paths are not peewee queries: see :mod:`.coordinator`). The coordinator's
methods (in :mod:`.coordinator` and :mod:`.reads`) bind and run these; kept
apart from them so that each file holds one concern. :mod:`.coordinator`
re-exports every name, where the benchmarks (``benchmarks/cycles.py``) and
tests read them.
"""

from __future__ import annotations

from ... import validation as check
from ..common import COLUMNS

# -- SQL, written once ----------------------------------------------------

_COLS = ", ".join(COLUMNS)


def _INSTR(column: str, text: str) -> str:
    return f"instr({column}, {text}) > 0"


# In exponential mode the n-th re-acquisition gets duration x 2^n (n = epoch
# so far). The exponent stops at 16 so the product stays inside 64 bits, and
# the grant at the longest lease allowed, so every expiry stays a time a
# datetime can hold (the clock is checked to leave that much room).
_GRANT = (
    "min(CASE WHEN (SELECT lease_mode FROM sessions WHERE id = :session) = 'exponential' "
    f"THEN :duration << min(lease_epoch, 16) ELSE :duration END, {check.MAX_LEASE_MICROS})"
)
_TAKE_SET = f"""
    status = 'assigned', worker_id = :worker, lease_epoch = lease_epoch + 1,
    lease_micros = {_GRANT}, lease_expiry = :now + {_GRANT},
    started_at = coalesce(started_at, :now), leased_at = :now, last_heartbeat = :now, updated_at = :now,
    next_attempt_at = NULL, split_requested_at = NULL"""

_HELD_BY_WORKER = f"""
SELECT {_COLS} FROM work_items
WHERE session_id = ? AND status = 'assigned' AND worker_id = ? AND +lease_expiry > ?
LIMIT 1"""
# The unary + keeps the planner on the holder index: the expiry index would
# walk every live lease of the session (114 us at 1,000 leases, against 5 us).

# Lapsed leases come back first (they were started earliest and may carry
# progress); then failed items whose retry delay has passed, earliest due
# first (like a lapsed lease, a due retry does not wait behind the whole
# queue); then pending items in the session's order. Each subquery reads the
# head of a partial index; an item still waiting out its delay is in none of
# the ranges read.
_ACQUIRE = f"""
UPDATE work_items SET {_TAKE_SET}
WHERE seq = coalesce(
    (SELECT seq FROM work_items
     WHERE session_id = :session AND status = 'assigned' AND lease_expiry <= :now
     ORDER BY lease_expiry LIMIT 1),
    (SELECT seq FROM work_items
     WHERE session_id = :session AND status = 'pending' AND next_attempt_at IS NOT NULL
       AND next_attempt_at <= :now
     ORDER BY next_attempt_at LIMIT 1),
    (SELECT seq FROM work_items
     WHERE session_id = :session AND status = 'pending' AND next_attempt_at IS NULL
     ORDER BY order_key, seq LIMIT 1))
  AND (SELECT paused_at FROM sessions WHERE id = :session) IS NULL
RETURNING {_COLS}"""
# A paused session hands out nothing (the subquery is constant: SQLite reads it once).

# When acquire found nothing: what remains, what failed, the next retry due, whether paused,
# and the session's split_min_documents (for the split request an idle acquire makes).
_NOTHING_TO_ACQUIRE = """
SELECT total_items - completed_items - failed_items, failed_items,
       (SELECT min(next_attempt_at) FROM work_items
        WHERE session_id = :session AND status = 'pending' AND next_attempt_at IS NOT NULL),
       paused_at IS NOT NULL, split_min_documents
FROM sessions WHERE id = :session"""

# The live leases an idle acquire may ask to split (read from the assigned-expiry index).
_SPLIT_CANDIDATES = """
SELECT seq, range_start, range_end, documents_processed, split_requested_at, started_at, last_progress_update
FROM work_items WHERE session_id = :session AND status = 'assigned' AND lease_expiry > :now"""

# The pending order of an item of size :size in session :session.
_ORDER_KEY = (
    "CASE WHEN (SELECT acquire_order FROM sessions WHERE id = :session) = 'fifo' THEN 0 ELSE -coalesce(:size, -1) END"
)

_TAKE_NAMED = f"UPDATE work_items SET {_TAKE_SET} WHERE seq = :seq RETURNING {_COLS}"

# counts_in_totals, then seq: the last two, after the item's columns.
_ITEM_BY_ID = f"SELECT {_COLS}, counts_in_totals, seq FROM work_items WHERE session_id = ? AND work_item_id = ?"

# The caller must hold the item: same worker, same epoch when one is given.
_HOLDER = "worker_id = :worker AND (:epoch IS NULL OR lease_epoch = :epoch)"
_THIS_ITEM = "session_id = :session AND work_item_id = :id"

_RENEW = f"""
UPDATE work_items SET
    lease_micros = coalesce(:duration, lease_micros),
    lease_expiry = :now + coalesce(:duration, lease_micros),
    last_heartbeat = :now,
    progress_changed_at = CASE
        WHEN coalesce(:docs, documents_processed) != documents_processed
          OR coalesce(:bytes, bytes_processed) != bytes_processed THEN :now
        ELSE progress_changed_at END,
    documents_processed = coalesce(:docs, documents_processed),
    bytes_processed = coalesce(:bytes, bytes_processed),
    last_progress_update = CASE WHEN :docs IS NULL AND :bytes IS NULL
        THEN last_progress_update ELSE :now END,
    updated_at = :now
WHERE {_THIS_ITEM} AND status = 'assigned' AND {_HOLDER} AND lease_expiry > :now
RETURNING {_COLS}"""

# A holder that completes with its final figures (:docs, :bytes) is held to
# them: fewer documents than its range is a short completion the coverage
# audit reports. One that states none (the Java client sends only its worker
# id) is trusted to have done the whole item, which then counts in full.
_COMPLETE = f"""
UPDATE work_items SET
    status = 'completed', completed_at = :now, updated_at = :now,
    documents_processed = coalesce(:docs, max(documents_processed, coalesce(document_count, 0))),
    bytes_processed = coalesce(:bytes, max(bytes_processed, coalesce(total_size_bytes, 0))),
    last_progress_update = CASE WHEN :docs IS NULL AND :bytes IS NULL THEN last_progress_update ELSE :now END,
    split_requested_at = NULL
WHERE {_THIS_ITEM} AND status IN ('assigned', 'pending') AND {_HOLDER}
RETURNING {_COLS}"""

_RELEASE = f"""
UPDATE work_items SET status = 'pending', worker_id = NULL, lease_expiry = NULL, updated_at = :now,
    split_requested_at = NULL
WHERE {_THIS_ITEM} AND status IN ('assigned', 'pending') AND {_HOLDER}
RETURNING seq"""

# The retry delay after the n-th failure (failure_count is n - 1 in SET, which
# reads the old row): d = min(cap, base x 2^(n-1)), drawn between d/2 and d by
# :jitter in [0, 1). The shift stops at 20 so the product stays inside 64 bits
# (a base of a day is 2^36 us); no delay (base 0) leaves the item plainly pending.
_SESSION_RETRY = "(SELECT {} FROM sessions WHERE id = :session)"
_RETRY_BACKOFF = (
    f"min({_SESSION_RETRY.format('max_retry_delay_micros')}, "
    f"{_SESSION_RETRY.format('retry_delay_micros')} << min(failure_count, 20))"
)
_NEXT_ATTEMPT = (
    f"CASE WHEN {_SESSION_RETRY.format('retry_delay_micros')} = 0 THEN NULL "
    f"ELSE :now + {_RETRY_BACKOFF} - CAST({_RETRY_BACKOFF} * :jitter / 2 AS INTEGER) END"
)
_FAIL = f"""
UPDATE work_items SET
    failure_count = failure_count + 1, last_error = :error,
    status = CASE WHEN failure_count + 1 >= (SELECT max_attempts FROM sessions WHERE id = :session)
        THEN 'failed' ELSE 'pending' END,
    next_attempt_at = CASE WHEN failure_count + 1 >= (SELECT max_attempts FROM sessions WHERE id = :session)
        THEN NULL ELSE {_NEXT_ATTEMPT} END,
    worker_id = NULL, lease_expiry = NULL, updated_at = :now, split_requested_at = NULL
WHERE {_THIS_ITEM} AND status IN ('assigned', 'pending') AND {_HOLDER}
RETURNING {_COLS}"""

_INSERT_ITEM = f"""
INSERT OR IGNORE INTO work_items
    (session_id, work_item_id, index_name, shard_number, document_count,
     total_size_bytes, order_key, parent_id, created_at, updated_at, range_start, range_end, counts_in_totals)
VALUES (:session, :id, :index, :shard, :docs, :size, {_ORDER_KEY}, :parent, :now, :now, :start, :end, :counted)
RETURNING {_COLS}"""

_REQUEST_SPLIT = "UPDATE work_items SET split_requested_at = ? WHERE seq = ? AND split_requested_at IS NULL"

# The holder's live split: the item keeps [range_start, :at) and the estimates left to it.
_SPLIT_KEEP = f"""
UPDATE work_items SET range_end = :at, document_count = :docs, total_size_bytes = :size,
    split_requested_at = NULL, updated_at = :now
WHERE seq = :seq RETURNING {_COLS}"""

_REORDER = (
    f"UPDATE work_items SET order_key = {_ORDER_KEY.replace(':size', 'total_size_bytes')} "
    "WHERE session_id = :session"
)

_INSERT_LEASED = f"""
INSERT INTO work_items
    (session_id, work_item_id, status, order_key, worker_id, lease_epoch, lease_micros,
     lease_expiry, started_at, leased_at, last_heartbeat, created_at, updated_at, range_start)
VALUES (:session, :id, 'assigned', {_ORDER_KEY.replace(':size', 'NULL')}, :worker, 1, :duration,
        :now + :duration, :now, :now, :now, :now, :now, :start)
RETURNING {_COLS}"""

_SESSION_ID = "SELECT id FROM sessions WHERE name = ?"

_SESSION_TOTALS = """
SELECT total_items, assigned_items, completed_items, failed_items, total_documents,
       total_size_bytes, documents_processed, bytes_processed, started_at, last_update, paused_at
FROM sessions WHERE id = ?"""

_LIVE_LEASES = """
SELECT count(*) FROM work_items WHERE session_id = ? AND status = 'assigned' AND lease_expiry > ?"""

# Failed items back in the queue, waiting out their retry delay or due (the retry_wait index).
_RETRY_WAITING = """
SELECT count(*) FROM work_items WHERE session_id = ? AND status = 'pending' AND next_attempt_at IS NOT NULL"""

# One pass over the session's rows. Documents and bytes totals count the
# items that count in totals only, as the session counters do.
_INDEX_PROGRESS = """
SELECT index_name, count(*), sum(status = 'pending'), sum(status = 'assigned'),
       sum(status = 'assigned' AND lease_expiry <= :now), sum(status = 'completed'), sum(status = 'failed'),
       sum(counts_in_totals * coalesce(document_count, 0)), sum(documents_processed),
       sum(counts_in_totals * coalesce(total_size_bytes, 0)), sum(bytes_processed)
FROM work_items WHERE session_id = :session
GROUP BY index_name ORDER BY index_name IS NULL, index_name"""

# Pages read the head of a partial index from the cursor on: leases in
# (expiry, seq) order from work_items_assigned_expiry (seq is its rowid).
_LEASED_PAGE = f"""
SELECT {_COLS}, seq FROM work_items
WHERE session_id = :session AND status = 'assigned' AND (lease_expiry, seq) > (:expiry, :seq)
ORDER BY lease_expiry, seq LIMIT :limit"""
_FAILED_PAGE = f"""
SELECT {_COLS}, seq FROM work_items
WHERE session_id = :session AND status = 'failed' AND seq > :seq ORDER BY seq LIMIT :limit"""
