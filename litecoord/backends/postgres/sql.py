"""The SQL of :class:`~.coordinator.PostgresCoordinator`: every statement its calls run, written once.

psycopg named parameters; every parameter is cast, since a ``None`` or a small
int gives PostgreSQL no type of its own. The coordinator's methods (in
:mod:`.coordinator` and :mod:`.reads`) bind and run these; kept apart from them
so that each file holds one concern. :mod:`.coordinator` re-exports every name,
where the benchmarks (``benchmarks/pg_cycles.py``) read the hot statements.
"""

from __future__ import annotations

from ... import validation as check
from ..common import COLUMNS

#: Counter rows per session; the trigger in schema.sql picks one by ``pg_backend_pid() % 32``.
COUNTER_SHARDS = 32

# -- SQL, written once (psycopg named parameters; every parameter is cast, since
# a None or a small int gives PostgreSQL no type of its own) ---------------------

_COLS = ", ".join(COLUMNS)


def _pg_param(name: str, kind: str) -> str:
    return f"%({name})s::{'bigint' if kind == 'int' else 'text'}"


def _STRPOS(column: str, text: str) -> str:
    return f"strpos({column}, {text}) > 0"


# In exponential mode the n-th re-acquisition gets duration x 2^n (n = epoch
# so far). The exponent stops at 16 so the product stays inside 64 bits, and
# the grant at the longest lease allowed (as on SQLite: expiries stay datetimes).
_GRANT = (
    "least(CASE WHEN (SELECT lease_mode FROM sessions WHERE id = %(session)s::bigint) = 'exponential' "
    "THEN %(duration)s::bigint << least(lease_epoch, 16)::int ELSE %(duration)s::bigint END, "
    f"{check.MAX_LEASE_MICROS}::bigint)"
)
_NOW = "%(now)s::bigint"
_TAKE_SET = f"""
    status = 'assigned', worker_id = %(worker)s::text, lease_epoch = lease_epoch + 1,
    lease_micros = {_GRANT}, lease_expiry = {_NOW} + {_GRANT},
    started_at = coalesce(started_at, {_NOW}), leased_at = {_NOW}, last_heartbeat = {_NOW}, updated_at = {_NOW},
    next_attempt_at = NULL, split_requested_at = NULL"""

_HELD_BY_WORKER = f"""
SELECT {_COLS} FROM work_items
WHERE session_id = %(session)s::bigint AND status = 'assigned' AND worker_id = %(worker)s::text
  AND lease_expiry > {_NOW}
LIMIT 1"""

# Lapsed leases come back first (they were started earliest and may carry
# progress); then failed items whose retry delay has passed, earliest due
# first; then pending items in the session's order. Each subquery reads the
# head of a partial index and locks what it picks; SKIP LOCKED passes over
# rows another transaction is claiming (after their commit, the row no longer
# matches), so claimers never wait on each other and never take the same row.
_ACQUIRE = f"""
UPDATE work_items SET {_TAKE_SET}
WHERE seq = coalesce(
    (SELECT seq FROM work_items
     WHERE session_id = %(session)s::bigint AND status = 'assigned' AND lease_expiry <= {_NOW}
     ORDER BY lease_expiry LIMIT 1 FOR UPDATE SKIP LOCKED),
    (SELECT seq FROM work_items
     WHERE session_id = %(session)s::bigint AND status = 'pending' AND next_attempt_at IS NOT NULL
       AND next_attempt_at <= {_NOW}
     ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED),
    (SELECT seq FROM work_items
     WHERE session_id = %(session)s::bigint AND status = 'pending' AND next_attempt_at IS NULL
     ORDER BY order_key, seq LIMIT 1 FOR UPDATE SKIP LOCKED))
  AND (SELECT paused_at FROM sessions WHERE id = %(session)s::bigint) IS NULL
RETURNING {_COLS}"""
# A paused session hands out nothing (the session row is read once per statement).

# The pending order of an item of size :size in session :session.
_ORDER_KEY = (
    "CASE WHEN (SELECT acquire_order FROM sessions WHERE id = %(session)s::bigint) = 'fifo' "
    "THEN 0 ELSE -coalesce({size}, -1) END"
)

_TAKE_NAMED = f"UPDATE work_items SET {_TAKE_SET} WHERE seq = %(seq)s::bigint RETURNING {_COLS}"

# counts_in_totals, then seq: the last two, after the item's columns.
_ITEM_BY_ID = (
    f"SELECT {_COLS}, counts_in_totals, seq FROM work_items WHERE session_id = %s::bigint AND work_item_id = %s::text"
)
_ITEM_FOR_UPDATE = _ITEM_BY_ID + " FOR UPDATE"

# The caller must hold the item: same worker, same epoch when one is given.
_HOLDER = "worker_id = %(worker)s::text AND (%(epoch)s::bigint IS NULL OR lease_epoch = %(epoch)s::bigint)"
_THIS_ITEM = "session_id = %(session)s::bigint AND work_item_id = %(id)s::text"

_RENEW = f"""
UPDATE work_items SET
    lease_micros = coalesce(%(duration)s::bigint, lease_micros),
    lease_expiry = {_NOW} + coalesce(%(duration)s::bigint, lease_micros),
    last_heartbeat = {_NOW},
    progress_changed_at = CASE
        WHEN coalesce(%(docs)s::bigint, documents_processed) != documents_processed
          OR coalesce(%(bytes)s::bigint, bytes_processed) != bytes_processed THEN {_NOW}
        ELSE progress_changed_at END,
    documents_processed = coalesce(%(docs)s::bigint, documents_processed),
    bytes_processed = coalesce(%(bytes)s::bigint, bytes_processed),
    last_progress_update = CASE WHEN %(docs)s::bigint IS NULL AND %(bytes)s::bigint IS NULL
        THEN last_progress_update ELSE {_NOW} END,
    updated_at = {_NOW}
WHERE {_THIS_ITEM} AND status = 'assigned' AND {_HOLDER} AND lease_expiry > {_NOW}
RETURNING {_COLS}"""

# A completed item counts all its documents and bytes as processed, so the
# totals reach 100% even for workers that never reported progress.
_COMPLETE = f"""
UPDATE work_items SET
    status = 'completed', completed_at = {_NOW}, updated_at = {_NOW},
    documents_processed = coalesce(%(docs)s::bigint, greatest(documents_processed, coalesce(document_count, 0))),
    bytes_processed = coalesce(%(bytes)s::bigint, greatest(bytes_processed, coalesce(total_size_bytes, 0))),
    last_progress_update = CASE WHEN %(docs)s::bigint IS NULL AND %(bytes)s::bigint IS NULL
        THEN last_progress_update ELSE {_NOW} END,
    split_requested_at = NULL
WHERE {_THIS_ITEM} AND status IN ('assigned', 'pending') AND {_HOLDER}
RETURNING {_COLS}"""

_RELEASE = f"""
UPDATE work_items SET status = 'pending', worker_id = NULL, lease_expiry = NULL, updated_at = {_NOW},
    split_requested_at = NULL
WHERE {_THIS_ITEM} AND status IN ('assigned', 'pending') AND {_HOLDER}
RETURNING seq"""

# The retry delay after the n-th failure (failure_count is n - 1 in SET, which
# reads the old row): d = min(cap, base x 2^(n-1)), drawn between d/2 and d by
# %(jitter)s in [0, 1). The shift stops at 20 so the product stays inside 64
# bits; no delay (base 0) leaves the item plainly pending.
_SESSION_RETRY = "(SELECT {} FROM sessions WHERE id = %(session)s::bigint)"
_RETRY_BACKOFF = (
    f"least({_SESSION_RETRY.format('max_retry_delay_micros')}, "
    f"{_SESSION_RETRY.format('retry_delay_micros')} << least(failure_count, 20))"
)
_NEXT_ATTEMPT = (
    f"CASE WHEN {_SESSION_RETRY.format('retry_delay_micros')} = 0 THEN NULL "
    f"ELSE {_NOW} + {_RETRY_BACKOFF} - trunc({_RETRY_BACKOFF} * %(jitter)s::float8 / 2)::bigint END"
)
_FAIL = f"""
UPDATE work_items SET
    failure_count = failure_count + 1, last_error = %(error)s::text,
    status = CASE WHEN failure_count + 1 >= (SELECT max_attempts FROM sessions WHERE id = %(session)s::bigint)
        THEN 'failed' ELSE 'pending' END,
    next_attempt_at = CASE WHEN failure_count + 1 >= (SELECT max_attempts FROM sessions WHERE id = %(session)s::bigint)
        THEN NULL ELSE {_NEXT_ATTEMPT} END,
    worker_id = NULL, lease_expiry = NULL, updated_at = {_NOW}, split_requested_at = NULL
WHERE {_THIS_ITEM} AND status IN ('assigned', 'pending') AND {_HOLDER}
RETURNING {_COLS}"""

_INSERT_ITEM = f"""
INSERT INTO work_items
    (session_id, work_item_id, index_name, shard_number, document_count,
     total_size_bytes, order_key, parent_id, created_at, updated_at, range_start, range_end, counts_in_totals)
VALUES (%(session)s::bigint, %(id)s::text, %(index)s::text, %(shard)s::bigint, %(docs)s::bigint,
        %(size)s::bigint, {_ORDER_KEY.format(size="%(size)s::bigint")}, %(parent)s::text, {_NOW}, {_NOW},
        %(start)s::bigint, %(end)s::bigint, %(counted)s::boolean)
ON CONFLICT (session_id, work_item_id) DO NOTHING
RETURNING {_COLS}"""

_REORDER = (
    f"UPDATE work_items SET order_key = {_ORDER_KEY.format(size='total_size_bytes')} "
    "WHERE session_id = %(session)s::bigint AND order_key IS DISTINCT FROM "
    f"{_ORDER_KEY.format(size='total_size_bytes')}"
)

_INSERT_LEASED = f"""
INSERT INTO work_items
    (session_id, work_item_id, status, order_key, worker_id, lease_epoch, lease_micros,
     lease_expiry, started_at, leased_at, last_heartbeat, created_at, updated_at, range_start)
VALUES (%(session)s::bigint, %(id)s::text, 'assigned', {_ORDER_KEY.format(size="NULL")}, %(worker)s::text, 1,
        %(duration)s::bigint, {_NOW} + %(duration)s::bigint, {_NOW}, {_NOW}, {_NOW}, {_NOW}, {_NOW},
        %(start)s::bigint)
RETURNING {_COLS}"""

# The session's totals: the sum of its counter shards (a fixed number of rows).
# The whole status in one statement (one snapshot): the sum of the session's
# counter shards (a fixed number of rows); lapsed leases and waiting retries,
# counted from the low end of their partial indexes (only lapsed leases and
# failed items are read, however many items the session holds: live leases are
# the counters' assigned items minus the lapsed ones); and the oldest progress
# sample of the throughput window.
_STATUS = """
SELECT t.*, l.lapsed, r.retrying, s.sampled_at, s.documents_processed, s.bytes_processed, s.completed_items,
       (SELECT paused_at FROM sessions WHERE id = %(session)s::bigint)
FROM (SELECT coalesce(sum(total_items), 0)::bigint, coalesce(sum(assigned_items), 0)::bigint,
             coalesce(sum(completed_items), 0)::bigint, coalesce(sum(failed_items), 0)::bigint,
             coalesce(sum(total_documents), 0), coalesce(sum(total_size_bytes), 0),
             coalesce(sum(documents_processed), 0), coalesce(sum(bytes_processed), 0),
             min(started_at), max(last_update)
      FROM session_counters WHERE session_id = %(session)s::bigint) AS t
CROSS JOIN (SELECT count(*) AS lapsed FROM work_items
            WHERE session_id = %(session)s::bigint AND status = 'assigned' AND lease_expiry <= %(now)s::bigint) AS l
CROSS JOIN (SELECT count(*) AS retrying FROM work_items
            WHERE session_id = %(session)s::bigint AND status = 'pending' AND next_attempt_at IS NOT NULL) AS r
LEFT JOIN LATERAL (
    SELECT sampled_at, documents_processed, bytes_processed, completed_items FROM progress_samples
    WHERE session_id = %(session)s::bigint AND sampled_at >= %(window)s::bigint ORDER BY sampled_at LIMIT 1
) AS s ON true"""

_REMAINING = """
SELECT coalesce(sum(total_items - completed_items - failed_items), 0)::bigint, coalesce(sum(failed_items), 0)::bigint
FROM session_counters WHERE session_id = %s::bigint"""

# When acquire found nothing: what remains, what failed, the next retry due, whether paused,
# and the session's split_min_documents (for the split request an idle acquire makes).
_NOTHING_TO_ACQUIRE = """
SELECT coalesce(sum(total_items - completed_items - failed_items), 0)::bigint, coalesce(sum(failed_items), 0)::bigint,
       (SELECT min(next_attempt_at) FROM work_items
        WHERE session_id = %(session)s::bigint AND status = 'pending' AND next_attempt_at IS NOT NULL),
       (SELECT paused_at IS NOT NULL FROM sessions WHERE id = %(session)s::bigint),
       (SELECT split_min_documents FROM sessions WHERE id = %(session)s::bigint)
FROM session_counters WHERE session_id = %(session)s::bigint"""

# The live leases an idle acquire may ask to split (read from the assigned-expiry index).
_SPLIT_CANDIDATES = f"""
SELECT seq, range_start, range_end, documents_processed, split_requested_at, started_at, last_progress_update
FROM work_items WHERE session_id = %(session)s::bigint AND status = 'assigned' AND lease_expiry > {_NOW}"""
# Only an item still without a request: two idle acquires at once do not rewrite each other's.
_REQUEST_SPLIT = """
UPDATE work_items SET split_requested_at = %(at)s::bigint
WHERE seq = %(seq)s::bigint AND split_requested_at IS NULL AND status = 'assigned'"""

# The holder's live split: the item keeps [range_start, at) and the estimates left to it.
_SPLIT_KEEP = f"""
UPDATE work_items SET range_end = %(at)s::bigint, document_count = %(docs)s::bigint,
    total_size_bytes = %(size)s::bigint, split_requested_at = NULL, updated_at = {_NOW}
WHERE seq = %(seq)s::bigint RETURNING {_COLS}"""


# One pass over the session's rows. Documents and bytes totals count the
# items that count in totals only, as the session counters do.
_INDEX_PROGRESS = """
SELECT index_name, count(*), count(*) FILTER (WHERE status = 'pending'),
       count(*) FILTER (WHERE status = 'assigned'),
       count(*) FILTER (WHERE status = 'assigned' AND lease_expiry <= %(now)s::bigint),
       count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'),
       sum(CASE WHEN counts_in_totals THEN coalesce(document_count, 0) ELSE 0 END), sum(documents_processed),
       sum(CASE WHEN counts_in_totals THEN coalesce(total_size_bytes, 0) ELSE 0 END), sum(bytes_processed)
FROM work_items WHERE session_id = %(session)s::bigint
GROUP BY index_name ORDER BY index_name IS NULL, index_name"""

# Pages read the head of a partial index from the cursor on: leases in
# (expiry, seq) order, failed items in creation order.
_LEASED_PAGE = f"""
SELECT {_COLS}, seq FROM work_items
WHERE session_id = %(session)s::bigint AND status = 'assigned'
  AND (lease_expiry, seq) > (%(expiry)s::bigint, %(seq)s::bigint)
ORDER BY lease_expiry, seq LIMIT %(limit)s::int"""
_FAILED_PAGE = f"""
SELECT {_COLS}, seq FROM work_items
WHERE session_id = %(session)s::bigint AND status = 'failed' AND seq > %(seq)s::bigint
ORDER BY seq LIMIT %(limit)s::int"""


_CREATE_SESSION = """
WITH made AS (
    INSERT INTO sessions (name, created_at) VALUES (%(name)s::text, %(now)s::bigint)
    ON CONFLICT (name) DO NOTHING RETURNING id
), shards AS (
    INSERT INTO session_counters (session_id, shard)
    SELECT made.id, shard FROM made, generate_series(0, %(shards)s::int - 1) AS shard
)
SELECT id FROM made UNION ALL SELECT id FROM sessions WHERE name = %(name)s::text"""
