"""The PostgreSQL backend: :class:`PostgresCoordinator`, for workers on many hosts sharing one database.

The contract is :class:`litecoord.protocol.Coordinator`, kept as on SQLite
(same rows, same results, same errors: the shared parts are in
:mod:`litecoord.backends.common`). What differs:

* The claim is one ``UPDATE ... WHERE seq = (SELECT ... FOR UPDATE SKIP
  LOCKED LIMIT 1) RETURNING``: concurrent claimers skip each other's rows
  instead of queueing on them, lapsed leases first, each choice read from
  the head of a partial index.
* Time is the database server's clock (one clock for every host), read once
  at the start of each transaction, unless a ``clock`` was given.
* Session totals live in sharded counter rows (see ``schema.sql``), so no
  row is written by every transaction.
* Connections: one per process and thread, or a pool (``pool_size``) for a
  server; see :mod:`.store` for reconnection and what is retried.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any

from ... import validation as check
from ...errors import ValidationError
from ...protocol import DEFAULT_LEASE_DURATION
from ...ranges import pick_split_request, split_item_id
from ...transfer import ImportSummary
from ...types import (
    KEEP,
    AcquireOrder,
    AcquisitionOutcome,
    AttentionKind,
    Clock,
    IndexProgress,
    Keep,
    LeaseMode,
    LeaseOutcome,
    NoAvailableWorkToBeDone,
    ProgressSample,
    SessionInfo,
    WorkItem,
    WorkItemPage,
    WorkItemStatus,
    WorkQueueStatus,
    from_micros,
    micros_of,
)
from ..common import (
    COLUMNS,
    THROUGHPUT_WINDOW,
    DatabaseCalls,
    completed_by,
    item_from_row,
    lease_from_row,
    live_split,
    named_lease,
    not_found,
    page_of,
    parse_cursor,
    range_params,
    refusal,
    session_not_found,
    setup_settings,
    split_candidates,
    split_children,
    status_from,
    successor_exists,
    successor_ids,
)
from ..item_search import item_page, item_page_params, item_page_sql, item_query
from . import console, transfer
from .store import Durability, PgStore, redact

__all__ = ["PostgresCoordinator"]

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


class PostgresCoordinator(console.ConsoleCalls, DatabaseCalls):
    """Work coordination for one session, over a PostgreSQL database shared by hosts.

    ``PostgresCoordinator("postgresql://user@db/backfill", session="s1", worker_id="w1")``
    connects (and on first use creates the schema, in the connection's
    ``search_path``). The password comes from the DSN, or better from the
    environment (``PGPASSWORD``) or ``~/.pgpass``, as libpq reads them.
    ``clock``: by default every time is the database server's (hosts'
    clocks may differ; the database's is one clock for all of them); a
    given ``clock`` (FakeClock, or ``time.time`` under freezegun) wins, for
    tests. ``durability`` is ``"full"`` (default: ``synchronous_commit=on``)
    or ``"normal"`` (``synchronous_commit=off`` per transaction: a crash of
    the database server may lose the last acknowledged calls). ``pool_size``
    shares that many connections between threads (a server); without it each
    thread has its own. ``connect_timeout``: how long an unreachable database
    is retried before :class:`~litecoord.errors.DatabaseUnavailableError`.
    ``call_timeout``: how long one call may take when the caller set no
    bound of its own (:func:`litecoord.backends.bounds.call_bound`; the
    runner sets what is left of the lease); then it raises that same error.
    ``prepared_statements``: off by default, so that the same DSN works
    behind a transaction-mode pooler (PgBouncer, RDS Proxy), which hands
    each transaction another server connection where this connection's
    prepared statements do not exist; on a direct connection ``True`` saves
    the server re-planning each statement (a fifth of the cycle rate at
    ``durability="normal"``, see BENCHMARKS.md).
    """

    _RENEW = _RENEW

    def __init__(
        self,
        dsn: str | PgStore,
        session: str = "default",
        worker_id: str | None = None,
        clock: Clock | None = None,
        *,
        durability: str = Durability.FULL,
        pool_size: int | None = None,
        connect_timeout: float = 10.0,
        call_timeout: float = 60.0,
        prepared_statements: bool = False,
    ) -> None:
        self._identity(session, worker_id, clock)
        self._clock = clock
        if isinstance(dsn, PgStore):
            self._store = dsn
        else:
            self._store = PgStore(
                dsn,
                durability=durability,
                pool_size=pool_size,
                connect_timeout=connect_timeout,
                call_timeout=call_timeout,
                prepared_statements=prepared_statements,
            )

    # -- identity ------------------------------------------------------------

    @property
    def store(self) -> PgStore:
        return self._store

    @property
    def dsn(self) -> str:
        return self._store.dsn

    def __repr__(self) -> str:
        return f"PostgresCoordinator({redact(self.dsn)!r}, session={self.session!r}, worker_id={self.worker_id!r})"

    def _now(self) -> int | None:
        """The caller's time, or ``None``: the database's, read when the transaction starts."""
        return None if self._clock is None else check.clock_micros(self._clock, self._clock())

    def _write(self, fn: Any, *, idempotent: bool = True, create: bool = False) -> Any:
        """``fn`` in one transaction; ``create``: it may create the session, so the schema too if missing."""
        known = self._session_id

        def attempt(cur: Any, now: int) -> Any:
            # A session created by an attempt that rolled back does not exist: forget its id.
            if known is None:
                self._session_id = None
            return fn(cur, now)

        try:
            return self._store.run(attempt, now=self._now(), idempotent=idempotent, create=create)
        except BaseException:
            if known is None:
                self._session_id = None
            raise

    _read = _write

    # -- sessions ------------------------------------------------------------

    def _sid(self, cur: Any, now: int, *, create: bool = True) -> int | None:
        """The session's row id (cached); created on first write, ``None`` for reads of an unknown one."""
        if self._session_id is None:
            cur.execute("SELECT id FROM sessions WHERE name = %s::text", (self.session,))
            row = cur.fetchone()
            if row is None and create:
                cur.execute(_CREATE_SESSION, {"name": self.session, "now": now, "shards": COUNTER_SHARDS})
                row = cur.fetchone()
                if row is None:
                    # Created by a concurrent transaction that committed after this
                    # statement's snapshot: the next statement sees it.
                    cur.execute("SELECT id FROM sessions WHERE name = %s::text", (self.session,))
                    row = cur.fetchone()
            if row is not None:
                self._session_id = row[0]
        return self._session_id

    def _existing(self, cur: Any, now: int) -> int:
        """The session's row id, or ``SessionNotFoundError``: only creating items (or setup) creates a session."""
        sid = self._sid(cur, now, create=False)
        if sid is None:
            raise session_not_found(self.session)
        return sid

    def setup(
        self,
        *,
        lease_mode: str | None = None,
        acquire_order: str | None = None,
        max_attempts: int | None = None,
        retry_delay: timedelta | float | None = None,
        max_retry_delay: timedelta | float | None = None,
        split_min_documents: int | None | Keep = KEEP,
    ) -> None:
        settings = setup_settings(
            lease_mode, acquire_order, max_attempts, retry_delay, max_retry_delay, split_min_documents
        )
        self._store.migrate()

        def apply(cur: Any, now: int) -> int:
            cur.execute("SELECT acquire_order FROM sessions WHERE name = %s::text FOR UPDATE", (self.session,))
            before = cur.fetchone()
            self._session_id = None
            sid = self._sid(cur, now)
            for column, value in settings.items():
                if value is not None or column == "split_min_documents":  # there None is a value: off
                    cur.execute(f"UPDATE sessions SET {column} = %s WHERE id = %s::bigint", (value, sid))
            if before is not None and settings["acquire_order"] not in (None, before[0]):
                cur.execute(_REORDER, {"session": sid})
            return sid

        self._session_id = self._write(apply)

    def close(self) -> None:
        self._store.close()

    # -- rows --------------------------------------------------------------------

    def _refuse(self, cur: Any, sid: int, work_item_id: str, now: int, epoch: int | None) -> None:
        """Raise the error that explains why a holder-only statement matched no row."""
        cur.execute(_ITEM_BY_ID, (sid, work_item_id))
        raise refusal(self.session, cur.fetchone(), work_item_id, self.worker_id, now, epoch)

    # -- creating work ---------------------------------------------------------

    def _insert(self, specs: list[dict[str, Any]]) -> list[WorkItem]:
        """Insert checked item specs in one transaction; return the ones that were new."""
        if not specs:
            return []

        def insert(cur: Any, now: int) -> list[Any]:
            sid = self._sid(cur, now)
            created = []
            for s in specs:
                cur.execute(
                    _INSERT_ITEM,
                    {"session": sid, "id": s["work_item_id"], "index": s["index_name"], "shard": s["shard_number"],
                     "docs": s["document_count"], "size": s["total_size_bytes"], "parent": None, "now": now,
                     "counted": True, **range_params(s["work_item_id"], s["document_count"])},
                )  # fmt: skip
                row = cur.fetchone()
                if row is not None:
                    created.append(item_from_row(self.session, row, now))
            return created

        # Not repeated after a commit that may have happened: "created" would read False the second time.
        return self._write(insert, idempotent=False, create=True)

    # -- leasing -----------------------------------------------------------------

    def acquire_next_work_item(self, lease_duration: timedelta = DEFAULT_LEASE_DURATION) -> AcquisitionOutcome:
        duration = micros_of(check.duration(lease_duration))
        worker = self.worker_id

        def acquire(cur: Any, now: int) -> AcquisitionOutcome:
            sid = self._existing(cur, now)
            return self._outcome(self._acquire_row(cur, sid, worker, now, duration), now)

        # Repeating it is safe: the worker's live lease is returned unchanged.
        return self._write(acquire)

    @staticmethod
    def _acquire_row(cur: Any, sid: int, worker: str, now: int, duration: int) -> tuple[bool, Any]:
        """(True, the lease row) or (False, (remaining, failed)): the acquire step of a transaction."""
        params = {"session": sid, "worker": worker, "now": now, "duration": duration}
        cur.execute(_HELD_BY_WORKER, params)
        held = cur.fetchone()
        if held is not None:
            return True, held
        cur.execute(_ACQUIRE, params)
        row = cur.fetchone()
        if row is not None:
            return True, row
        cur.execute(_NOTHING_TO_ACQUIRE, {"session": sid})
        nothing = cur.fetchone()
        # Idle with items leased: ask the lease with the most work left to split
        # (litecoord.ranges.pick_split_request). Only this path reads the leases.
        # Not while paused: idle workers then wait on purpose, and nothing would take the piece.
        if nothing[0] and not nothing[3] and nothing[4] is not None:
            cur.execute(_SPLIT_CANDIDATES, params)
            request = pick_split_request(split_candidates(cur.fetchall()), nothing[4])
            if request is not None:
                cur.execute(_REQUEST_SPLIT, {"seq": request[0], "at": request[1]})
        return False, nothing

    def _outcome(self, result: tuple[bool, Any], now: int) -> AcquisitionOutcome:
        leased, row = result
        if leased:
            return lease_from_row(self.session, row, now)
        return NoAvailableWorkToBeDone(
            remaining=row[0], failed=row[1], next_attempt_at=from_micros(row[2]), paused=bool(row[3])
        )

    def create_or_update_lease_for_work_item(
        self, work_item_id: str, lease_duration: timedelta = DEFAULT_LEASE_DURATION
    ) -> LeaseOutcome:
        work_item_id = check.work_item_id(work_item_id)
        duration = micros_of(check.duration(lease_duration))
        worker = self.worker_id

        def lease(cur: Any, now: int) -> LeaseOutcome:
            sid = self._sid(cur, now)
            params = {"session": sid, "id": work_item_id, "worker": worker, "now": now, "duration": duration}
            cur.execute(_ITEM_FOR_UPDATE, (sid, work_item_id))
            row = cur.fetchone()
            if row is None:
                cur.execute(_INSERT_LEASED, {**params, "start": range_params(work_item_id, None)["start"]})
                return lease_from_row(self.session, cur.fetchone(), now)
            answer = named_lease(self.session, row, worker, now)
            if answer is not None:
                return answer
            cur.execute(_TAKE_NAMED, {**params, "seq": row[-1]})
            return lease_from_row(self.session, cur.fetchone(), now)

        return self._write(lease, create=True)

    def complete_work_item(
        self,
        work_item_id: str,
        *,
        lease_epoch: int | None = None,
        documents_processed: int | None = None,
        bytes_processed: int | None = None,
    ) -> WorkItem:
        params = self._completion_params(work_item_id, lease_epoch, documents_processed, bytes_processed)

        def complete(cur: Any, now: int) -> WorkItem:
            return item_from_row(self.session, self._complete_row(cur, params, now), now)

        return self._write(complete)

    def complete_and_acquire_next(
        self,
        work_item_id: str,
        lease_duration: timedelta = DEFAULT_LEASE_DURATION,
        *,
        lease_epoch: int | None = None,
        documents_processed: int | None = None,
        bytes_processed: int | None = None,
    ) -> tuple[WorkItem, AcquisitionOutcome]:
        params = self._completion_params(work_item_id, lease_epoch, documents_processed, bytes_processed)
        duration = micros_of(check.duration(lease_duration))

        def step(cur: Any, now: int) -> tuple[WorkItem, AcquisitionOutcome]:
            done = self._complete_row(cur, params, now)
            acquired = self._acquire_row(cur, self._existing(cur, now), params["worker"], now, duration)
            return item_from_row(self.session, done, now), self._outcome(acquired, now)

        # Repeating it is safe: completing again is a no-op and the new lease is returned unchanged.
        return self._write(step)

    def _complete_row(self, cur: Any, params: dict[str, Any], now: int) -> Sequence[Any]:
        """The complete step of a transaction: the completed row, or the refusal raised."""
        params = self._bind_holder(cur, params, now)
        cur.execute(_COMPLETE, params)
        row = cur.fetchone()
        if row is not None:
            return row
        cur.execute(_ITEM_BY_ID, (params["session"], params["id"]))
        done = cur.fetchone()
        if completed_by(done, params["worker"], params["epoch"]):
            return done  # completing twice is a no-op
        raise refusal(self.session, done, params["id"], params["worker"], now, params["epoch"])

    def release_work_item(self, work_item_id: str, *, lease_epoch: int | None = None) -> bool:
        params = self._holder_params(work_item_id, lease_epoch)

        def release(cur: Any, now: int) -> bool:
            bound = self._bind_holder(cur, params, now)
            cur.execute(_RELEASE, bound)
            if cur.fetchone() is not None:
                return True
            cur.execute(_ITEM_BY_ID, (bound["session"], bound["id"]))
            if cur.fetchone() is None:
                raise not_found(self.session, bound["id"])
            return False

        return self._write(release, idempotent=False)

    def fail_work_item(self, work_item_id: str, error: str, *, lease_epoch: int | None = None) -> WorkItem:
        params = self._holder_params(work_item_id, lease_epoch)
        params["error"] = check.error_text(error)
        params["jitter"] = self._random()
        return self._holder_write(_FAIL, params, idempotent=False)

    def retry_work_item(self, work_item_id: str) -> WorkItem:
        work_item_id = check.work_item_id(work_item_id)

        def retry(cur: Any, now: int) -> WorkItem:
            sid = self._existing(cur, now)
            cur.execute(
                "UPDATE work_items SET status = 'pending', failure_count = 0, next_attempt_at = NULL, "
                "updated_at = %s::bigint "
                "WHERE session_id = %s::bigint AND work_item_id = %s::text AND status = 'failed'",
                (now, sid, work_item_id),
            )
            return self._get(cur, sid, work_item_id, now)

        return self._write(retry)

    def create_successor_work_items_and_mark_complete(
        self,
        work_item_id: str,
        successor_work_item_ids: Sequence[str],
        *,
        lease_epoch: int | None = None,
    ) -> WorkItem:
        params = self._holder_params(work_item_id, lease_epoch)
        work_item_id = params["id"]
        successors = successor_ids(work_item_id, successor_work_item_ids)

        def split(cur: Any, now: int) -> WorkItem:
            bound = self._bind_holder(cur, params, now)
            session = bound["session"]
            cur.execute(_ITEM_FOR_UPDATE, (session, work_item_id))
            row = cur.fetchone()
            made = split_children(self.session, work_item_id, row, successors, bound["worker"], now, lease_epoch)
            if isinstance(made, WorkItem):
                return made
            for name, docs, size, start, end in made.children:
                cur.execute(
                    _INSERT_ITEM,
                    {"session": session, "id": name, "index": row[2], "shard": row[3], "docs": docs, "size": size,
                     "parent": work_item_id, "now": now, "start": start, "end": end, "counted": False},
                )  # fmt: skip
                if cur.fetchone() is None and made.verifiable:
                    raise successor_exists(name)  # the partition would lose a range; the write rolls back
            cur.execute(
                "UPDATE work_items SET status = 'completed', completed_at = %s::bigint, updated_at = %s::bigint, "
                "successor_ids = %s::text, range_end = %s::bigint, documents_processed = %s::bigint, "
                f"split_requested_at = NULL WHERE seq = %s::bigint RETURNING {_COLS}",
                (now, now, ",".join(successors), made.parent_end, made.parent_processed, row[-1]),
            )
            return item_from_row(self.session, cur.fetchone(), now)

        return self._write(split)

    def split_work_item(
        self, work_item_id: str, at: int, *, lease_epoch: int | None = None
    ) -> tuple[WorkItem, WorkItem]:
        params = self._holder_params(work_item_id, lease_epoch)
        work_item_id = params["id"]
        at = check.count("at", at, optional=False)

        def split(cur: Any, now: int) -> tuple[WorkItem, WorkItem]:
            bound = self._bind_holder(cur, params, now)
            session = bound["session"]
            cur.execute(_ITEM_FOR_UPDATE, (session, work_item_id))
            row = cur.fetchone()
            cur.execute(_ITEM_BY_ID, (session, split_item_id(work_item_id, at)))
            child = cur.fetchone()
            plan = live_split(self.session, work_item_id, row, child, at, bound["worker"], now, lease_epoch)
            if isinstance(plan, tuple):
                return plan
            cur.execute(
                _SPLIT_KEEP,
                {"at": at, "docs": plan.kept_documents, "size": plan.kept_bytes, "now": now, "seq": row[-1]},
            )
            kept = cur.fetchone()
            cur.execute(
                _INSERT_ITEM,
                {"session": session, "id": plan.new_id, "index": row[2], "shard": row[3], "docs": plan.new_documents,
                 "size": plan.new_bytes, "parent": work_item_id, "now": now, "start": at, "end": plan.new_end,
                 "counted": row[-2]},
            )  # fmt: skip
            new = cur.fetchone()
            if new is None:  # created by a concurrent split between the read and the insert
                raise ValidationError("at", f"the item a split at {at} would create, {plan.new_id!r}, already exists")
            return item_from_row(self.session, kept, now), item_from_row(self.session, new, now)

        # Repeating it is safe: the same split again returns the same pair.
        return self._write(split)

    def _holder_params(self, work_item_id: str, lease_epoch: int | None) -> dict[str, Any]:
        return {
            "id": check.work_item_id(work_item_id),
            "epoch": check.lease_epoch(lease_epoch),
            "worker": self.worker_id,
        }

    def _bind_holder(self, cur: Any, params: dict[str, Any], now: int) -> dict[str, Any]:
        """``params`` with the session id and the transaction's time."""
        return {**params, "session": self._existing(cur, now), "now": now}

    def _holder_write(self, sql: str, params: dict[str, Any], *, idempotent: bool = True) -> WorkItem:
        def run(cur: Any, now: int) -> WorkItem:
            bound = self._bind_holder(cur, params, now)
            cur.execute(sql, bound)
            row = cur.fetchone()
            if row is None:
                self._refuse(cur, bound["session"], bound["id"], now, bound["epoch"])
            return item_from_row(self.session, row, now)

        return self._write(run, idempotent=idempotent)

    # -- reading -------------------------------------------------------------------

    def _get(self, cur: Any, sid: int | None, work_item_id: str, now: int) -> WorkItem:
        row = None
        if sid is not None:
            cur.execute(_ITEM_BY_ID, (sid, work_item_id))
            row = cur.fetchone()
        if row is None:
            raise not_found(self.session, work_item_id)
        return item_from_row(self.session, row, now)

    def get_work_item(self, work_item_id: str) -> WorkItem:
        work_item_id = check.work_item_id(work_item_id)
        return self._read(lambda cur, now: self._get(cur, self._existing(cur, now), work_item_id, now))

    def list_work_items(self, status: WorkItemStatus | str | None = None) -> list[WorkItem]:
        wanted = None if status is None else check.choice("status", status, WorkItemStatus)
        where = ""
        if wanted is WorkItemStatus.PENDING:
            where = "AND (status = 'pending' OR (status = 'assigned' AND lease_expiry <= %(now)s::bigint))"
        elif wanted is WorkItemStatus.ASSIGNED:
            where = "AND status = 'assigned' AND lease_expiry > %(now)s::bigint"
        elif wanted is not None:
            where = f"AND status = '{wanted.value}'"
        sql = f"SELECT {_COLS} FROM work_items WHERE session_id = %(session)s::bigint {where} ORDER BY seq"

        def rows(cur: Any, now: int) -> list[WorkItem]:
            sid = self._existing(cur, now)
            cur.execute(sql, {"session": sid, "now": now})
            return [item_from_row(self.session, r, now) for r in cur.fetchall()]

        return self._read(rows)

    def num_work_items_not_yet_complete(self) -> int:
        def count(cur: Any, now: int) -> int:
            sid = self._existing(cur, now)
            cur.execute(_REMAINING, (sid,))
            return int(cur.fetchone()[0])

        return self._read(count)

    def status(self) -> WorkQueueStatus:
        def read(cur: Any, now: int) -> WorkQueueStatus:
            sid = self._existing(cur, now)
            cur.execute(_STATUS, {"session": sid, "now": now, "window": now - micros_of(THROUGHPUT_WINDOW)})
            row = cur.fetchone()
            # Documents and bytes are NUMERIC (exact past 2**63 - 1), which psycopg reads as Decimal.
            totals = (*row[:4], *map(int, row[4:8]), *row[8:10])
            lapsed, retrying, sample, paused_at = row[10], row[11], row[12:16], row[16]
            if sample[0] is not None:
                sample = (sample[0], int(sample[1]), int(sample[2]), sample[3])
            live = totals[1] - lapsed
            cur.execute(console.LEASES, (sid,))
            return status_from(
                self.session, now, totals, live, None if sample[0] is None else sample, retrying,
                paused_at=paused_at, leases=cur.fetchall(),
            )  # fmt: skip

        return self._read(read)

    def list_sessions(self) -> list[SessionInfo]:
        def rows(cur: Any, now: int) -> list[SessionInfo]:
            cur.execute(
                "SELECT s.name, s.created_at, s.lease_mode, s.acquire_order, s.max_attempts, "
                "coalesce(sum(c.total_items), 0)::bigint, coalesce(sum(c.completed_items), 0)::bigint, "
                "s.retry_delay_micros, s.max_retry_delay_micros, s.split_min_documents "
                "FROM sessions s LEFT JOIN session_counters c ON c.session_id = s.id "
                "GROUP BY s.id ORDER BY s.name"
            )
            return [
                SessionInfo(
                    session_name=r[0],
                    created_at=from_micros(r[1]),
                    lease_mode=LeaseMode(r[2]),
                    acquire_order=AcquireOrder(r[3]),
                    max_attempts=r[4],
                    total_work_items=r[5],
                    completed_work_items=r[6],
                    retry_delay=timedelta(0, 0, r[7]),
                    max_retry_delay=timedelta(0, 0, r[8]),
                    split_min_documents=r[9],
                )
                for r in cur.fetchall()
            ]

        return self._read(rows)

    # -- monitoring ------------------------------------------------------------------

    def index_progress(self) -> list[IndexProgress]:
        def read(cur: Any, now: int) -> list[Any]:
            sid = self._existing(cur, now)
            cur.execute(_INDEX_PROGRESS, {"session": sid, "now": now})
            return cur.fetchall()

        return [IndexProgress(row[0], *(int(v or 0) for v in row[1:])) for row in self._read(read)]

    def progress_samples(self) -> list[ProgressSample]:
        def read(cur: Any, now: int) -> list[Any]:
            sid = self._existing(cur, now)
            cur.execute(
                "SELECT sampled_at, documents_processed, bytes_processed, completed_items "
                "FROM progress_samples WHERE session_id = %s::bigint ORDER BY sampled_at",
                (sid,),
            )
            return cur.fetchall()

        return [ProgressSample(from_micros(r[0]), int(r[1]), int(r[2]), r[3]) for r in self._read(read)]

    def list_attention_items(
        self, kind: AttentionKind | str, *, limit: int = 50, after: str | None = None
    ) -> WorkItemPage:
        kind = check.choice("kind", kind, AttentionKind)
        limit = check.page_limit(limit)
        leased = kind is AttentionKind.LEASED
        position = parse_cursor(after, 2 if leased else 1)

        def read(cur: Any, now: int) -> WorkItemPage:
            sid = self._existing(cur, now)
            cur.execute(
                _LEASED_PAGE if leased else _FAILED_PAGE,
                {"session": sid, "limit": limit + 1, "expiry": position[0], "seq": position[-1]},
            )
            rows = cur.fetchall()
            column = "assigned_items" if leased else "failed_items"
            cur.execute(
                f"SELECT coalesce(sum({column}), 0)::bigint FROM session_counters WHERE session_id = %s", (sid,)
            )
            return page_of(self.session, rows, cur.fetchone()[0], limit, leased, now)

        return self._read(read)

    def list_work_items_page(
        self,
        *,
        status: WorkItemStatus | str | None = None,
        index_name: str | None = None,
        worker_id: str | None = None,
        id_contains: str | None = None,
        sort: str = "created",
        descending: bool = False,
        limit: int = 50,
        after: str | None = None,
    ) -> WorkItemPage:
        q = item_query(
            status=status, index_name=index_name, worker_id=worker_id, id_contains=id_contains,
            sort=sort, descending=descending, limit=limit, after=after,
        )  # fmt: skip
        select, count = item_page_sql(q, param=_pg_param, contains=_STRPOS)

        def read(cur: Any, now: int) -> WorkItemPage:
            params = item_page_params(q, self._existing(cur, now), now)
            cur.execute(select.format(columns=_COLS), params)
            rows = cur.fetchall()
            cur.execute(count, params)
            return item_page(self.session, q, rows, cur.fetchone()[0], now)

        return self._read(read)

    # -- housekeeping -------------------------------------------------------------

    def cleanup_expired(self) -> int:
        def cleanup(cur: Any, now: int) -> int:
            sid = self._existing(cur, now)
            cur.execute(
                "UPDATE work_items SET status = 'pending', updated_at = %s::bigint "
                "WHERE session_id = %s::bigint AND status = 'assigned' AND lease_expiry <= %s::bigint",
                (now, sid, now),
            )
            return cur.rowcount

        return self._write(cleanup, idempotent=False)

    def delete_session(self) -> int:
        def delete(cur: Any, now: int) -> int:
            sid = self._existing(cur, now)
            cur.execute("DELETE FROM work_items WHERE session_id = %s::bigint", (sid,))
            count = cur.rowcount
            cur.execute("DELETE FROM progress_samples WHERE session_id = %s::bigint", (sid,))
            cur.execute("DELETE FROM attempts WHERE session_id = %s::bigint", (sid,))
            # The rows (and the id) stay, so other processes' cached ids stay valid.
            cur.execute("UPDATE sessions SET last_sample_at = NULL, paused_at = NULL WHERE id = %s::bigint", (sid,))
            cur.execute(
                "UPDATE session_counters SET started_at = NULL, last_update = NULL WHERE session_id = %s::bigint",
                (sid,),
            )
            return count

        return self._write(delete, idempotent=False)

    # -- moving sessions between stores ------------------------------------------------

    def export_session(self) -> Iterator[dict[str, Any]]:
        """The session as records of :mod:`litecoord.transfer`, read from one snapshot (lazily)."""
        self._read(self._existing)  # exporting a mistyped session is an error, not an empty file
        return transfer.export_session(self)

    def import_session(self, records: Iterable[Any], *, replace: bool = False) -> ImportSummary:
        """Write an exported session into this session, in one transaction; see :class:`SessionTransfer`."""
        return transfer.import_session(self, records, replace=replace)
